// The MLPerf Tiny DUT (device under test) protocol: a byte-at-a-time command parser that lets the
// MLCommons / EEMBC runner (or tools/bench_dut.py) load an input, time N inferences and read the result
// over the board's UART. Portable: it knows nothing about the model (the app passes callbacks) and uses
// board.h only (board_uart_write, board_ticks, board_ticks_hz, board_timestamp_pulse).
//
// Wire format (DESIGN.md decision 6). The host sends commands terminated by '%'; every reply line ends
// in "\r\n" and every command's reply ends with the line "m-ready". Errors are "e-[<cause>]".
//   name                 m-name-dut-[<name>]
//   profile              m-profile-[ULPMark for tinyML Firmware V0.0.1]  m-model-[<model>]
//   help                 the command list (m- lines)
//   timestamp            perf mode: m-lap-us-<microseconds>; energy mode: one timestamp pin pulse
//   db load N            1 <= N <= db_cap: m-[Expecting N bytes]; the buffer is empty again
//   db HH[HH]*           appends the bytes (an even number of hex digits); m-load-done when N are in.
//                        The whole command is checked first: on any error nothing is appended.
//   db print             m-buffer-xx-xx-... (8 bytes a line) of the bytes loaded so far
//   infer [N [W]]        defaults N=1, W=10. Needs exactly input_bytes loaded. Prints
//                        m-warmup-start-W, m-warmup-done, m-infer-start-N, then perf mode: m-lap-us-T0,
//                        (N timed runs), m-lap-us-T1; energy mode: pulse, (N runs), pulse and no line;
//                        then m-infer-done and the results line below.
//   results              m-results-[v0,v1,...]: each output value dequantized to float,
//                        (q - zero_point) * scale, printed truncated to 3 decimals as the reference
//                        KWS submission prints it (0.992 for 254/256)
//   results raw          m-results-raw-[q0,q1,...]: the int8 output values themselves (exact)
// Unknown commands, bad arguments, over-long lines (more than KWS_BENCH_LINE_MAX bytes before '%'),
// bytes outside printable ASCII, a db load over db_cap, odd or invalid hex, more data than announced,
// infer before a complete load, N = 0: one e-[...] line, then m-ready; the state is left unchanged.
// An empty command ("%" alone) replies m-ready only (the runner sends it to flush a partial command).
//
// Timestamps: board_ticks() extended to 64 bits (the extension is updated at every call into this
// module and between timed inferences, so it survives any number of counter wraps as long as the gap
// between two such calls is shorter than one wrap), converted to microseconds since kws_bench_init().
//
// Not reentrant; one kws_bench per UART. All memory is the struct itself and the caller's buffers.

#ifndef KWS_BENCH_H
#define KWS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The longest command (bytes before '%') the parser accepts. 31 data bytes per db command (the
// MLCommons runner's chunk) need 65; 128 leaves room for 62-byte chunks.
#ifndef KWS_BENCH_LINE_MAX
#define KWS_BENCH_LINE_MAX 128u
#endif

// The largest N or W infer accepts (a bound on how long one command can keep the DUT busy).
#ifndef KWS_BENCH_MAX_RUNS
#define KWS_BENCH_MAX_RUNS 1000000u
#endif

typedef struct {
    const char *name;            // in m-name-dut-[name]; printable ASCII, not NULL
    const char *model;           // in m-model-[model], e.g. "kws01"; not NULL
    uint8_t *db;                 // the input buffer db commands fill: db_cap bytes, owned by the caller
    size_t db_cap;               // >= input_bytes
    size_t input_bytes;          // bytes one inference consumes; infer needs exactly this many loaded
    size_t output_count;         // int8 values the model outputs (>= 1)
    float output_scale;          // output quantization: value = (q - output_zero_point) * output_scale
    int32_t output_zero_point;
    bool energy_mode;            // true: timestamps pulse the pin and print nothing (MLPerf energy mode)
    // Runs one inference on input (input_bytes bytes, read-only, valid during the call). Called once per
    // warm-up and timed run; it must copy the input in itself (models may overwrite their input).
    void (*run)(const uint8_t *input, size_t input_bytes, void *user);
    // The int8 outputs of the last run (output_count values), valid until the next run.
    const int8_t *(*output)(void *user);
    void *user;                  // passed back to run / output unchanged
} kws_bench_config;

typedef struct {
    kws_bench_config cfg;
    char line[KWS_BENCH_LINE_MAX];
    size_t line_len;
    bool line_too_long;          // bytes were dropped: the command is refused at its '%'
    bool line_bad_byte;          // a byte outside printable ASCII / space / CR / LF / TAB was seen
    bool loading;                // a db load N is active
    size_t db_size;              // N of the last db load (0: none)
    size_t db_pos;               // bytes received since then
    bool have_results;           // an inference has run since init
    uint32_t last_ticks;         // the tick extension
    uint64_t ticks_high;
    uint64_t ticks0;
} kws_bench;

// Prepares b for cfg (copied; the buffers it points to must stay valid). Returns 0, or -1 when cfg is
// unusable (NULL fields, db_cap < input_bytes, input_bytes or output_count 0); b is then unusable too.
int kws_bench_init(kws_bench *b, const kws_bench_config *cfg);

// Prints the reset banner the runner expects: m-timestamp-mode-performance|energy, a timestamp,
// m-init-done, m-ready.
void kws_bench_banner(kws_bench *b);

// Feeds len received bytes (data read-only; may be NULL when len is 0); every complete command is
// executed before the call returns, its replies written with board_uart_write.
void kws_bench_feed(kws_bench *b, const uint8_t *data, size_t len);

// Microseconds since kws_bench_init(), from board_ticks(); also keeps the 64-bit extension current
// (the app may call it from its idle loop).
uint64_t kws_bench_us(kws_bench *b);

#ifdef __cplusplus
}
#endif

#endif  // KWS_BENCH_H
