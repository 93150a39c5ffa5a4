// Board port for the x86 (or any POSIX) host: the same apps and core built as a normal program.
//
//   UART        stdout (write) and stdin (non-blocking read)
//   ticks       CLOCK_MONOTONIC in microseconds (1 MHz; wraps after 71 minutes)
//   wake line   a line on stderr at each change: "board: wake line 1" / "board: wake line 0"
//   timestamp   board_timestamp_pulse() (the bench app's energy mode) prints "board: timestamp <us>" on
//               stderr, <us> the 64-bit microsecond clock: what a power monitor would see as an edge
//   audio       KWS_AUDIO (environment): a .wav file (PCM16 mono at the requested rate), a raw int16
//               little-endian file, or "-" for raw int16 on stdin (the UART then reads nothing);
//               default wake_audio.raw. One block is delivered per board_idle() call, as if an audio
//               interrupt had woken the core: the host runs the stream as fast as the app consumes it.
//   idle        delivers the next audio block if capture runs, else waits up to 1 ms for input on
//               stdin (a stand-in for the next interrupt)
//   exit        exit(status)

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static size_t board_uart_read_stdin(uint8_t *buf, size_t cap)
{
    if (cap == 0 || !board_stdin_ready(0)) {
        return 0;
    }
    const ssize_t n = read(STDIN_FILENO, buf, cap);
    return n > 0 ? (size_t)n : 0;
}

void board_timestamp_pulse(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    fprintf(stderr, "board: timestamp %llu\n",
            (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_nsec / 1000ull);
    fflush(stderr);
}

void board_wake_line(bool asserted)
{
    if (asserted != board_wake_state) {
        board_wake_state = asserted;
        fprintf(stderr, "board: wake line %d\n", asserted ? 1 : 0);
    }
}

// --- audio ---------------------------------------------------------------------------------------
#define BOARD_AUDIO_MAX_BLOCK 4096u

static board_audio_config board_audio;
static FILE *board_audio_in;
static bool board_audio_stdin;
static int16_t board_audio_block[BOARD_AUDIO_MAX_BLOCK];

static uint32_t board_le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

// Positions f at the first sample of a RIFF/WAVE file's data chunk after checking the format.
// Returns NULL on success, else the cause.
static const char *board_wav_open(FILE *f, uint32_t rate)
{
    uint8_t h[12];
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) != 0 || memcmp(h + 8, "WAVE", 4) != 0) {
        return "not a RIFF/WAVE file";
    }
    bool have_fmt = false;
    for (;;) {
        uint8_t c[8];
        if (fread(c, 1, 8, f) != 8) {
            return "no data chunk";
        }
        const uint32_t size = board_le32(c + 4);
        if (memcmp(c, "fmt ", 4) == 0) {
            uint8_t fmt[16];
            if (size < 16 || fread(fmt, 1, 16, f) != 16) {
                return "fmt chunk too short";
            }
            const unsigned tag = fmt[0] | fmt[1] << 8, channels = fmt[2] | fmt[3] << 8, bits = fmt[14] | fmt[15] << 8;
            if (tag != 1 || channels != 1 || bits != 16) {
                return "not 16-bit PCM mono";
            }
            if (board_le32(fmt + 4) != rate) {
                return "sample rate differs from the one the app needs";
            }
            have_fmt = true;
            if (fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR) != 0) {
                return "truncated";
            }
        } else if (memcmp(c, "data", 4) == 0) {
            return have_fmt ? NULL : "data chunk before fmt chunk";
        } else if (fseek(f, (long)(size + (size & 1)), SEEK_CUR) != 0) {
            return "truncated";
        }
    }
}

int board_audio_start(const board_audio_config *cfg)
{
    if (cfg == NULL || cfg->on_block == NULL || cfg->block_samples == 0 || cfg->block_samples > BOARD_AUDIO_MAX_BLOCK) {
        return -1;
    }
    board_audio_stop();
    const char *path = getenv("KWS_AUDIO");
    if (path == NULL || path[0] == '\0') {
        path = "wake_audio.raw";
    }
    board_audio_stdin = strcmp(path, "-") == 0;
    FILE *f = board_audio_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "board: audio %s: cannot open\n", path);
        return -1;
    }
    const size_t n = strlen(path);
    if (n >= 4 && (strcmp(path + n - 4, ".wav") == 0 || strcmp(path + n - 4, ".WAV") == 0)) {
        const char *why = board_wav_open(f, cfg->sample_rate_hz);
        if (why != NULL) {
            fprintf(stderr, "board: audio %s: %s\n", path, why);
            fclose(f);
            return -1;
        }
    }
    board_audio = *cfg;
    board_audio_in = f;
    return 0;
}

void board_audio_stop(void)
{
    if (board_audio_in != NULL && !board_audio_stdin) {
        fclose(board_audio_in);
    }
    board_audio_in = NULL;
}

size_t board_uart_read(uint8_t *buf, size_t cap)
{
    if (board_audio_stdin && board_audio_in != NULL) {
        return 0;  // stdin carries the audio
    }
    return board_uart_read_stdin(buf, cap);
}

void board_idle(void)
{
    if (board_audio_in == NULL) {
        (void)board_stdin_ready(1);
        return;
    }
    const size_t want = board_audio.block_samples;
    uint8_t bytes[BOARD_AUDIO_MAX_BLOCK * 2];
    if (fread(bytes, 2, want, board_audio_in) != want) {
        board_audio_stop();
        board_audio.on_block(NULL, 0, board_audio.user);
        return;
    }
    for (size_t i = 0; i < want; i++) {
        board_audio_block[i] = (int16_t)(uint16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8);
    }
    board_audio.on_block(board_audio_block, want, board_audio.user);
}

void board_exit(int status)
{
    fflush(stderr);
    exit(status);
}
