// Weak defaults for the port contract (kws/board.h): a board overrides only what it has.
// Each default is the documented "not supported" behaviour; none touches hardware.

#include "kws/board.h"

#define BOARD_WEAK __attribute__((weak))

BOARD_WEAK void board_init(void) {}

BOARD_WEAK uint32_t board_ticks(void) { return 0; }

BOARD_WEAK uint32_t board_ticks_hz(void) { return 1; }

BOARD_WEAK size_t board_uart_write(const uint8_t *data, size_t len)
{
    (void)data;
    return len;
}

BOARD_WEAK size_t board_uart_read(uint8_t *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return 0;
}

BOARD_WEAK int board_audio_start(const board_audio_config *cfg)
{
    (void)cfg;
    return -1;
}

BOARD_WEAK void board_audio_stop(void) {}

BOARD_WEAK void board_wake_line(bool asserted) { (void)asserted; }

BOARD_WEAK void board_timestamp_pulse(void) {}

BOARD_WEAK void board_idle(void) {}

BOARD_WEAK void board_exit(int status)
{
    (void)status;
    for (;;) {
    }
}
