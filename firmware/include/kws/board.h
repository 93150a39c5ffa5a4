// The port contract: everything the portable core and the apps need from a board, and nothing more.
//
// A board implements these functions in firmware/boards/<board>/board.c. Each one also has a weak
// default in firmware/src/board_default.c, so a board implements only what it has: the defaults do
// nothing, report "unsupported" or spin, as documented below. Porting guide:
// firmware/boards/template/board.c.
//
// Threading: none of these functions is reentrant. Call them from the main loop only, except where a
// function says it may be called from an interrupt handler. Nothing here allocates memory.

#ifndef KWS_BOARD_H
#define KWS_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BOARD_NORETURN __attribute__((noreturn))
#else
#define BOARD_NORETURN
#endif

// The UART's baud rate where the board can set it. 115200 by default; the bench app's energy mode
// builds with -DKWS_UART_BAUD=9600 (MLPerf Tiny: the DUT talks to the IO manager at 9600 baud).
#ifndef KWS_UART_BAUD
#define KWS_UART_BAUD 115200u
#endif

// Brings up the clocks, the UART (8N1 at KWS_UART_BAUD where the baud rate is configurable), the tick
// counter, the timestamp pin (high) and the wake line (deasserted). The app calls it once, first
// thing in main(); the startup code does not. Calling any other board_* function before it is undefined.
void board_init(void);

// A free-running counter that counts up at board_ticks_hz() and wraps modulo 2^32.
// Measure an interval as (uint32_t)(t1 - t0); that is exact for intervals shorter than
// 2^32 / board_ticks_hz() seconds (171 s at 25 MHz). Cheap (a register read): it may be called
// from interrupt handlers. The default returns 0 forever.
uint32_t board_ticks(void);

// The rate of board_ticks() in ticks per second (> 0). The default returns 1.
// Under QEMU this is the rate of the emulated timer in virtual time: with `-icount shift=N` every
// guest instruction advances it by exactly 2^N / 40 ticks of a 25 MHz clock.
uint32_t board_ticks_hz(void);

// Sends len bytes from data (read-only, owned by the caller, not retained after the call) over the
// board's UART, in order. Blocks until every byte has been handed to the UART hardware; returns len.
// data may be NULL when len is 0. The default discards the bytes and returns len.
size_t board_uart_write(const uint8_t *data, size_t len);

// Receives up to cap bytes into buf (owned by the caller, cap bytes writable) without blocking:
// copies what the UART has already received and returns that count, 0 when nothing is waiting
// (0 also at end of input on the host). Bytes are returned once, in arrival order.
// The default returns 0.
size_t board_uart_read(uint8_t *buf, size_t cap);

// Called by the board for every filled block of audio, from interrupt context (keep it short).
// samples: block_samples signed 16-bit mono PCM samples at the configured rate, owned by the board
// and valid only until the callback returns (copy what you need). user: board_audio_config.user.
typedef void (*board_audio_fn)(const int16_t *samples, size_t block_samples, void *user);

typedef struct {
    uint32_t sample_rate_hz;  // e.g. 16000
    size_t block_samples;     // samples per callback, e.g. 320 (20 ms at 16 kHz)
    board_audio_fn on_block;  // not NULL
    void *user;               // passed back to on_block unchanged; may be NULL
} board_audio_config;

// Starts continuous microphone capture (DMA double-buffering on hardware, a host file or generated
// signal on simulators) and calls cfg->on_block for each block until board_audio_stop(). cfg is read
// during the call only. Returns 0 on success, -1 when the board has no audio input or cannot provide
// this rate or block size (the default). A finite source (a file on a simulator, audio streamed by
// a host over the UART) ends with one last call with block_samples == 0 (samples may be NULL); no
// call follows it. Blocks the app has not consumed in time are the app's overruns to count.
int board_audio_start(const board_audio_config *cfg);

// Stops capture; no callback runs after it returns. Safe to call when capture is not running.
void board_audio_stop(void);

// Drives the wake line to the host processor: true = asserted (keyword heard), false = idle.
// The electrical level (active high or low) is the board's choice and documented in its board.c.
// The default does nothing.
void board_wake_line(bool asserted);

// Energy mode timestamp (MLPerf Tiny th_timestamp): drives the timestamp GPIO low for at least 1 us,
// then high again; the IO manager / power monitor records the falling edge. The level at rest is high.
// The default does nothing (boards without the pin: perf mode prints timestamps over the UART instead).
void board_timestamp_pulse(void);

// Sleeps until the next interrupt (WFI on Cortex-M), then returns. It returns at once if an interrupt
// has been taken since the previous call returned, so `while (!ready) board_idle();` cannot miss a
// wakeup; it may also return spuriously, so always re-check the condition. The default returns at
// once (a busy wait).
void board_idle(void);

// Ends the program with status (0 = success). On simulators this ends the simulation and becomes its
// exit code (QEMU: semihosting SYS_EXIT_EXTENDED; host: exit()). On hardware it flushes the UART and
// loops forever. Never returns. On Cortex-M boards the startup code calls it with main()'s return value.
BOARD_NORETURN void board_exit(int status);

#ifdef __cplusplus
}
#endif

#endif  // KWS_BOARD_H
