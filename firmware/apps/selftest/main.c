// selftest: checks a board port end to end.
//   1. prints "kws selftest" and the board name over the UART;
//   2. times a busy loop of SELFTEST_SPIN_ITERATIONS and 2x that many iterations with board_ticks() and
//      prints "spin <iterations> ticks <ticks>" for each, plus "ticks_hz <hz>";
//      (on Arm the loop is hand-written: 2 instructions per iteration, see selftest_spin)
//   3. with semihosting (KWS_HAVE_SEMIHOST): reverses the bytes of the host file SELFTEST_INPUT into
//      SELFTEST_OUTPUT (paths relative to QEMU's working directory) and prints
//      "reversed <n> bytes"; an absent input prints "no input <name>" and is not an error;
//   4. with SELFTEST_ECHO defined: reads one line from the UART (waiting in board_idle) and prints
//      "echo <line>";
//   5. prints "done" and exits with status 3, so the exit-code path is tested too (1 on I/O errors).

#include <stdbool.h>
#include <stdint.h>

#include "kws/board.h"
#if KWS_HAVE_SEMIHOST
#include "kws/semihost.h"
#endif

#ifndef SELFTEST_SPIN_ITERATIONS
#define SELFTEST_SPIN_ITERATIONS 1000000u
#endif
#ifndef SELFTEST_INPUT
#define SELFTEST_INPUT "selftest_in.bin"
#endif
#ifndef SELFTEST_OUTPUT
#define SELFTEST_OUTPUT "selftest_out.bin"
#endif

#ifndef KWS_BOARD_NAME
#define KWS_BOARD_NAME "unknown"
#endif

#define SELFTEST_EXIT_OK 3
#define SELFTEST_EXIT_FAILED 1

void selftest_spin(uint32_t iterations);

#if defined(__arm__) && defined(__thumb2__)
// Exactly 2 * iterations + 1 instructions for iterations >= 1: subs/bne per iteration, then bx lr.
__attribute__((naked, noinline)) void selftest_spin(uint32_t iterations)
{
    (void)iterations;
    __asm__ volatile(
        "1:\n\t"
        "subs r0, r0, #1\n\t"
        "bne 1b\n\t"
        "bx lr\n");
}
#else
__attribute__((noinline)) void selftest_spin(uint32_t iterations)
{
    while (iterations-- != 0u) {
        __asm__ volatile("" ::: "memory");
    }
}
#endif

static void selftest_puts(const char *text)
{
    size_t n = 0;
    while (text[n] != '\0') {
        n++;
    }
    board_uart_write((const uint8_t *)text, n);
}

static void selftest_put_u32(uint32_t value)
{
    char text[11];
    size_t n = sizeof text - 1u;
    text[n] = '\0';
    do {
        text[--n] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    selftest_puts(&text[n]);
}

// The iteration count is read through a volatile so the compiler cannot specialise the call.
static volatile uint32_t selftest_iterations = SELFTEST_SPIN_ITERATIONS;

static void selftest_time_spin(uint32_t iterations)
{
    const uint32_t t0 = board_ticks();
    selftest_spin(iterations);
    const uint32_t t1 = board_ticks();
    selftest_puts("spin ");
    selftest_put_u32(iterations);
    selftest_puts(" ticks ");
    selftest_put_u32(t1 - t0);
    selftest_puts("\n");
}

#if KWS_HAVE_SEMIHOST
static uint8_t selftest_block[512];

// Reads the input from its end backwards, one block at a time, so any size works without a heap.
static int selftest_reverse_file(void)
{
    const int32_t in = kws_semihost_open(SELFTEST_INPUT, KWS_SEMIHOST_READ);
    if (in < 0) {
        selftest_puts("no input " SELFTEST_INPUT "\n");
        return 0;
    }
    const int32_t len = kws_semihost_flen(in);
    const int32_t out = kws_semihost_open(SELFTEST_OUTPUT, KWS_SEMIHOST_WRITE);
    if (len < 0 || out < 0) {
        selftest_puts("error: cannot open " SELFTEST_OUTPUT "\n");
        kws_semihost_close(in);
        return -1;
    }
    uint32_t end = (uint32_t)len;
    int status = 0;
    while (end > 0u && status == 0) {
        const uint32_t n = end < sizeof selftest_block ? end : (uint32_t)sizeof selftest_block;
        end -= n;
        if (kws_semihost_seek(in, end) != 0 || kws_semihost_read(in, selftest_block, n) != (int32_t)n) {
            status = -1;
            break;
        }
        for (uint32_t i = 0; i < n / 2u; i++) {
            const uint8_t t = selftest_block[i];
            selftest_block[i] = selftest_block[n - 1u - i];
            selftest_block[n - 1u - i] = t;
        }
        if (kws_semihost_write(out, selftest_block, n) != (int32_t)n) {
            status = -1;
        }
    }
    if (kws_semihost_close(out) != 0) {
        status = -1;
    }
    kws_semihost_close(in);
    if (status != 0) {
        selftest_puts("error: semihosting I/O failed\n");
        return -1;
    }
    selftest_puts("reversed ");
    selftest_put_u32((uint32_t)len);
    selftest_puts(" bytes\n");
    return 0;
}
#endif

#ifdef SELFTEST_ECHO
// Waits for one line (at most 1000 wakeups, so a silent host cannot hang the host build).
static void selftest_echo_line(void)
{
    char line[81];
    size_t n = 0;
    bool complete = false;
    for (uint32_t wakeups = 0; !complete && wakeups < 1000u; wakeups++) {
        uint8_t c;
        while (!complete && board_uart_read(&c, 1) == 1u) {
            if (c == '\n' || n == sizeof line - 1u) {
                complete = true;
            } else {
                line[n++] = (char)c;
            }
        }
        if (!complete) {
            board_idle();
        }
    }
    line[n] = '\0';
    selftest_puts("echo ");
    selftest_puts(line);
    selftest_puts("\n");
}
#endif

int main(void)
{
    board_init();
    selftest_puts("kws selftest on " KWS_BOARD_NAME "\n");

    const uint32_t iterations = selftest_iterations;
    selftest_time_spin(iterations);
    selftest_time_spin(2u * iterations);
    selftest_puts("ticks_hz ");
    selftest_put_u32(board_ticks_hz());
    selftest_puts("\n");

    int status = SELFTEST_EXIT_OK;
#if KWS_HAVE_SEMIHOST
    if (selftest_reverse_file() != 0) {
        status = SELFTEST_EXIT_FAILED;
    }
#endif
#ifdef SELFTEST_ECHO
    selftest_echo_line();
#endif
    selftest_puts("done\n");
    return status;
}
