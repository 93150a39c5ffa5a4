// Porting guide: copy this folder to firmware/boards/<your_board>/, then make each function below do
// what its comment says (kws/board.h has the full contract). Delete a function to keep the weak default
// from src/board_default.c. `make -C firmware BOARD=template` always compiles, so this file stays honest.

#include "kws/board.h"

// Start clocks, the UART at KWS_UART_BAUD 8N1, a free-running 32-bit counter, the timestamp pin (high) and
// the wake line (idle). Install interrupt handlers by defining startup_irq<N>_handler (common startup).
void board_init(void) {}

// Return the free-running up-counter (e.g. DWT->CYCCNT, or ~value of a down-counting timer).
uint32_t board_ticks(void) { return 0; }

// Return the counter's rate in Hz (e.g. SystemCoreClock for DWT->CYCCNT).
uint32_t board_ticks_hz(void) { return 1; }

// Send every byte in order, waiting while the UART's transmit register or FIFO is full; return len.
size_t board_uart_write(const uint8_t *data, size_t len)
{
    (void)data;
    return len;
}

// Copy the bytes already received (from the RX register or an interrupt-filled ring) without waiting.
size_t board_uart_read(uint8_t *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return 0;
}

// Start microphone DMA at cfg->sample_rate_hz and call cfg->on_block per block; return -1 if you can't.
int board_audio_start(const board_audio_config *cfg)
{
    (void)cfg;
    return -1;
}

// Stop the microphone DMA; no callback may run after this returns.
void board_audio_stop(void) {}

// Drive the GPIO wired to the host's wake interrupt (document its polarity here).
void board_wake_line(bool asserted) { (void)asserted; }

// Drive the energy-mode timestamp GPIO low for >= 1 us, then high again (high at rest; set up in board_init).
void board_timestamp_pulse(void) {}

// Mask interrupts, WFI unless an interrupt has been seen since the last call, unmask (see the QEMU port).
void board_idle(void) {}

// Flush the UART, then loop forever (a debugger or simulator may instead end the session with status).
void board_exit(int status)
{
    (void)status;
    for (;;) {
    }
}
