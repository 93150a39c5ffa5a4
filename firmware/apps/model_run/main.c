// model_run: runs a compiled model (kws compile --name model) over inputs read from a host file and
// writes the outputs back, so the toolchain can compare this build with the tflite-micro interpreter
// bit for bit and count instructions (`kws sim --engine qemu`).
//
// Files (semihosting), in the simulator's working directory:
//   model_in.bin       N inputs of KWS_MODEL_INPUT0_BYTES each, run in order (state carries over)
//   model_out.bin      N outputs of KWS_MODEL_OUTPUT0_BYTES each
//   model_ticks.bin    N uint32: board ticks spent in kws_model_invoke()
//   model_trace.bin    built with KWS_MODEL_TRACE: every op's outputs, per inference, in op order
//   model_profile.bin  built with KWS_MODEL_PROFILE: N x (KWS_MODEL_NUM_OPS + 1) uint32 tick stamps
// UART: one summary line. Exit status 0, or 1 on any error.
#include <stdint.h>
#include <string.h>

#include "kws/board.h"
#include "kws/print.h"
#include "kws/semihost.h"
#include "model.h"

#if KWS_MODEL_NUM_INPUTS != 1 || KWS_MODEL_NUM_OUTPUTS != 1
#error "model_run handles models with one input and one output"
#endif

static uint8_t in_buf[KWS_MODEL_INPUT0_BYTES];

#ifdef KWS_MODEL_TRACE
static int32_t trace_fd = -1;
static int trace_failed;
void kws_model_trace(int op, int tensor, const void *data, uint32_t bytes) {
    (void)op;
    (void)tensor;
    if (kws_semihost_write(trace_fd, data, bytes) != (int32_t)bytes) {
        trace_failed = 1;
    }
}
#endif

#ifdef KWS_MODEL_PROFILE
static uint32_t stamps[KWS_MODEL_NUM_OPS + 1];
void kws_model_profile(int op) {
    stamps[op] = board_ticks();
}
#endif

int main(void) {
    board_init();
    int32_t in = kws_semihost_open("model_in.bin", KWS_SEMIHOST_READ);
    int32_t out = kws_semihost_open("model_out.bin", KWS_SEMIHOST_WRITE);
    int32_t tk = kws_semihost_open("model_ticks.bin", KWS_SEMIHOST_WRITE);
    if (in < 0 || out < 0 || tk < 0) {
        return kws_print_error("model_run", "cannot open model_in.bin / model_out.bin / model_ticks.bin");
    }
#ifdef KWS_MODEL_TRACE
    trace_fd = kws_semihost_open("model_trace.bin", KWS_SEMIHOST_WRITE);
    if (trace_fd < 0) {
        return kws_print_error("model_run", "cannot open model_trace.bin");
    }
#endif
#ifdef KWS_MODEL_PROFILE
    int32_t pf = kws_semihost_open("model_profile.bin", KWS_SEMIHOST_WRITE);
    if (pf < 0) {
        return kws_print_error("model_run", "cannot open model_profile.bin");
    }
#endif
    int32_t len = kws_semihost_flen(in);
    if (len < 0 || len % KWS_MODEL_INPUT0_BYTES != 0) {
        return kws_print_error("model_run", "model_in.bin is not a whole number of inputs");
    }
    uint32_t n = (uint32_t)len / KWS_MODEL_INPUT0_BYTES;
    kws_model_init();
    for (uint32_t i = 0; i < n; i++) {
        if (kws_semihost_read(in, in_buf, sizeof(in_buf)) != (int32_t)sizeof(in_buf)) {
            return kws_print_error("model_run", "short read from model_in.bin");
        }
        memcpy(kws_model_input(0), in_buf, sizeof(in_buf));
        uint32_t t0 = board_ticks();
        kws_model_invoke();
        uint32_t ticks = board_ticks() - t0;
        if (kws_semihost_write(out, kws_model_output(0), KWS_MODEL_OUTPUT0_BYTES) != KWS_MODEL_OUTPUT0_BYTES ||
            kws_semihost_write(tk, &ticks, sizeof(ticks)) != (int32_t)sizeof(ticks)) {
            return kws_print_error("model_run", "cannot write results");
        }
#ifdef KWS_MODEL_PROFILE
        if (kws_semihost_write(pf, stamps, sizeof(stamps)) != (int32_t)sizeof(stamps)) {
            return kws_print_error("model_run", "cannot write model_profile.bin");
        }
#endif
    }
#ifdef KWS_MODEL_TRACE
    if (trace_failed) {
        return kws_print_error("model_run", "cannot write model_trace.bin");
    }
    kws_semihost_close(trace_fd);
#endif
    kws_semihost_close(in);
    kws_semihost_close(out);
    kws_semihost_close(tk);
    kws_print_u64("model_run: inferences ", n);
    kws_print_u64(" arena ", KWS_MODEL_ARENA_BYTES);
    kws_print("\n");
    return 0;
}
