// UART text helpers for the apps (see kws/print.h).
#include "kws/print.h"

#include <string.h>

#include "kws/board.h"

void kws_print(const char *s) {
    board_uart_write((const uint8_t *)s, strlen(s));
}

void kws_print_u64(const char *label, uint64_t v) {
    char buf[24];
    int i = (int)sizeof(buf);
    buf[--i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0 && i > 0);
    kws_print(label);
    kws_print(&buf[i]);
}

int kws_print_error(const char *app, const char *why) {
    kws_print(app);
    kws_print(": error: ");
    kws_print(why);
    kws_print("\n");
    return 1;
}
