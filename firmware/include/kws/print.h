// Text on the board's UART without stdio (newlib's printf family would pull in the heap).
#ifndef KWS_PRINT_H
#define KWS_PRINT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Writes the NUL-terminated string s (read during the call only) with board_uart_write.
void kws_print(const char *s);
// Writes label (may be "") then v in decimal.
void kws_print_u64(const char *label, uint64_t v);
// Writes "<app>: error: <why>\n" and returns 1 (an app's exit status for main()).
int kws_print_error(const char *app, const char *why);

#ifdef __cplusplus
}
#endif

#endif  // KWS_PRINT_H
