// libFuzzer harness for the DUT command parser (src/bench.c) with a stub model and stub board.
//
// Each input is one session: the first byte picks the mode (bit 0: energy) and how the rest is cut
// into kws_bench_feed() calls (bits 1..3: chunk size 1..8, 0 = all at once); the rest is UART input.
// Besides ASan/UBSan, the harness checks the protocol's invariants and abort()s when one fails:
//   - every '%' in the input gets exactly one "m-ready" line, and the output ends with one after each;
//   - every output line is "m-..." or "e-[...]" in printable ASCII and ends in "\r\n";
//   - no line is longer than a bound (no runaway output);
//   - perf mode: m-lap-us- values never decrease; energy mode: no m-lap-us- line at all;
//   - the stub model never runs before a complete load of exactly its input size.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kws/bench.h"
#include "kws/board.h"

#define STUB_INPUT_BYTES 8u
#define STUB_DB_CAP 12u   // > input: db load 9..12 is accepted, infer then refuses the size
#define STUB_OUTPUTS 4u
#define OUT_CAP (1u << 20)

static uint8_t out[OUT_CAP];
static size_t out_len;
static int out_overflow;
static uint32_t fake_ticks;
static unsigned pulses;

// --- board stubs -------------------------------------------------------------------------------
size_t board_uart_write(const uint8_t *data, size_t len) {
    if (len > OUT_CAP - out_len) {
        out_overflow = 1;
        len = OUT_CAP - out_len;
    }
    memcpy(out + out_len, data, len);
    out_len += len;
    return len;
}
uint32_t board_ticks(void) {
    fake_ticks += 0x01000001u;  // wraps often: exercises the 64-bit extension
    return fake_ticks;
}
uint32_t board_ticks_hz(void) { return 25000000u; }
void board_timestamp_pulse(void) { pulses++; }

// --- stub model --------------------------------------------------------------------------------
static uint8_t db[STUB_DB_CAP];
static uint8_t model_in[STUB_INPUT_BYTES];
static int8_t model_out[STUB_OUTPUTS];
static unsigned runs;

static void stub_run(const uint8_t *input, size_t bytes, void *user) {
    (void)user;
    if (bytes != STUB_INPUT_BYTES || input != db) {
        abort();
    }
    memcpy(model_in, input, bytes);
    for (unsigned i = 0; i < STUB_OUTPUTS; i++) {
        model_out[i] = (int8_t)(model_in[i] ^ model_in[i + 4u]);
    }
    runs++;
}

static const int8_t *stub_output(void *user) {
    (void)user;
    return model_out;
}

static void check_output(const uint8_t *in, size_t in_len, int energy) {
    if (out_overflow) {
        abort();
    }
    size_t commands = 0;
    for (size_t i = 0; i < in_len; i++) {
        commands += in[i] == '%';
    }
    size_t readies = 0, start = 0;
    uint64_t last_lap = 0;
    for (size_t i = 0; i < out_len; i++) {
        if (out[i] != '\n') {
            continue;
        }
        const uint8_t *l = out + start;
        const size_t n = i - start;  // without '\n'
        start = i + 1;
        if (n < 3 || l[n - 1] != '\r' || n > 400) {
            abort();
        }
        for (size_t j = 0; j + 1 < n; j++) {
            if (l[j] < 0x20 || l[j] >= 0x7f) {
                abort();
            }
        }
        if (n - 1 == 7 && memcmp(l, "m-ready", 7) == 0) {
            readies++;
        } else if (l[0] == 'e' && l[1] == '-') {
            if (l[2] != '[' || l[n - 2] != ']') {
                abort();
            }
        } else if (!(l[0] == 'm' && l[1] == '-')) {
            abort();
        }
        if (n > 9 && memcmp(l, "m-lap-us-", 9) == 0) {
            if (energy) {
                abort();
            }
            uint64_t v = 0;
            for (size_t j = 9; j + 1 < n; j++) {
                if (l[j] < '0' || l[j] > '9') {
                    abort();
                }
                v = v * 10u + (uint64_t)(l[j] - '0');
            }
            if (v < last_lap) {
                abort();
            }
            last_lap = v;
        }
    }
    if (start != out_len || readies != commands + 1u) {  // + the banner's m-ready
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const int energy = data[0] & 1;
    const size_t chunk = (size_t)((data[0] >> 1) & 7u);
    data++;
    size--;
    out_len = 0;
    out_overflow = 0;
    pulses = 0;
    runs = 0;
    memset(db, 0xA5, sizeof db);
    const kws_bench_config cfg = {
        .name = "fuzz",
        .model = "stub",
        .db = db,
        .db_cap = STUB_DB_CAP,
        .input_bytes = STUB_INPUT_BYTES,
        .output_count = STUB_OUTPUTS,
        .output_scale = 1.0f / 256.0f,
        .output_zero_point = -128,
        .energy_mode = energy != 0,
        .run = stub_run,
        .output = stub_output,
        .user = NULL,
    };
    static kws_bench b;
    if (kws_bench_init(&b, &cfg) != 0) {
        abort();
    }
    kws_bench_banner(&b);
    if (chunk == 0) {
        kws_bench_feed(&b, data, size);
    } else {
        for (size_t i = 0; i < size; i += chunk) {
            kws_bench_feed(&b, data + i, size - i < chunk ? size - i : chunk);
        }
    }
    check_output(data, size, energy);
    return 0;
}
