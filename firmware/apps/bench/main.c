// bench: the MLPerf Tiny DUT. Runs a compiled model (generated model.h, e.g. from the MLPerf Tiny DS-CNN
// kws_ref_model.tflite) under the runner's serial protocol (kws/bench.h): load an input with db commands,
// time N inferences, print the results.
//
// Build: make -C firmware BOARD=<board> MODEL=<model.tflite>   (APP defaults to bench for a .tflite)
// Modes: performance (default: m-lap-us- timestamps over the UART at 115200 baud) or energy
// (EXTRA_CFLAGS="-DKWS_BENCH_ENERGY=1 -DKWS_UART_BAUD=9600": timestamps are falling edges of the
// board's timestamp pin, board_timestamp_pulse(), and the timed section prints nothing).
// KWS_BENCH_NAME / KWS_BENCH_MODEL override the name% and profile% replies (defaults "kws", "kws01").
#include <stdint.h>
#include <string.h>

#include "kws/bench.h"
#include "kws/board.h"
#include "model.h"

#if KWS_MODEL_NUM_INPUTS != 1 || KWS_MODEL_NUM_OUTPUTS != 1
#error "the bench app handles models with one input and one output"
#endif
#if !defined(KWS_MODEL_OUTPUT0_DTYPE_INT8)
#error "the bench app prints int8 outputs"
#endif

#ifndef KWS_BENCH_ENERGY
#define KWS_BENCH_ENERGY 0
#endif
#ifndef KWS_BENCH_NAME
#define KWS_BENCH_NAME "kws"
#endif
#ifndef KWS_BENCH_MODEL
#define KWS_BENCH_MODEL "kws01"
#endif

static uint8_t db_buf[KWS_MODEL_INPUT0_BYTES];
static kws_bench bench;

// The compiled model may reuse its input's bytes for activations: copy the input in before every run.
static void run_model(const uint8_t *input, size_t bytes, void *user) {
    (void)user;
    memcpy(kws_model_input(0), input, bytes);
    kws_model_invoke();
}

static const int8_t *model_output(void *user) {
    (void)user;
    return (const int8_t *)kws_model_output(0);
}

int main(void) {
    board_init();
    kws_model_init();
    const kws_bench_config cfg = {
        .name = KWS_BENCH_NAME,
        .model = KWS_BENCH_MODEL,
        .db = db_buf,
        .db_cap = sizeof db_buf,
        .input_bytes = KWS_MODEL_INPUT0_BYTES,
        .output_count = KWS_MODEL_OUTPUT0_ELEMENTS,
        .output_scale = KWS_MODEL_OUTPUT0_SCALE,
        .output_zero_point = KWS_MODEL_OUTPUT0_ZERO_POINT,
        .energy_mode = KWS_BENCH_ENERGY != 0,
        .run = run_model,
        .output = model_output,
        .user = NULL,
    };
    if (kws_bench_init(&bench, &cfg) != 0) {
        static const char msg[] = "e-[bench: bad configuration]\r\n";
        board_uart_write((const uint8_t *)msg, sizeof msg - 1u);
        board_exit(1);
    }
    kws_bench_banner(&bench);
    for (;;) {
        uint8_t buf[64];
        const size_t n = board_uart_read(buf, sizeof buf);
        if (n == 0u) {
            (void)kws_bench_us(&bench);  // keeps the tick extension current across long idle periods
            board_idle();
            continue;
        }
        kws_bench_feed(&bench, buf, n);
    }
}
