// Board port for the x86 (or any POSIX) host: the same apps and core built as a normal program.
//
//   UART        stdout (write) and stdin (non-blocking read)
//   ticks       CLOCK_MONOTONIC in microseconds (1 MHz; wraps after 71 minutes)
//   wake line   a line on stderr at each change: "board: wake line 1" / "board: wake line 0"
//   idle        waits up to 1 ms for input on stdin (a stand-in for the next interrupt)
//   exit        exit(status)

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kws/board.h"

static bool board_wake_state;

void board_init(void) { board_wake_state = false; }

uint32_t board_ticks(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const uint64_t us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    return (uint32_t)us;
}

uint32_t board_ticks_hz(void) { return 1000000u; }

size_t board_uart_write(const uint8_t *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        const ssize_t n = write(STDOUT_FILENO, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;  // stdout closed: like a UART with nothing attached, the bytes are lost
        }
        done += (size_t)n;
    }
    return len;
}

static bool board_stdin_ready(int timeout_ms)
{
    struct pollfd fd = {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
    return poll(&fd, 1, timeout_ms) > 0 && (fd.revents & (POLLIN | POLLHUP)) != 0;
}

size_t board_uart_read(uint8_t *buf, size_t cap)
{
    if (cap == 0 || !board_stdin_ready(0)) {
        return 0;
    }
    const ssize_t n = read(STDIN_FILENO, buf, cap);
    return n > 0 ? (size_t)n : 0;
}

void board_wake_line(bool asserted)
{
    if (asserted != board_wake_state) {
        board_wake_state = asserted;
        fprintf(stderr, "board: wake line %d\n", asserted ? 1 : 0);
    }
}

void board_idle(void) { (void)board_stdin_ready(1); }

void board_exit(int status)
{
    fflush(stderr);
    exit(status);
}
