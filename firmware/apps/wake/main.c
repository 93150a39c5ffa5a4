// wake: the always-on wake-word loop. Per 20 ms hop: the C frontend makes one feature row; every
// KWS_DETECTOR_STRIDE_HOPS hops the compiled model scores the last KWS_DETECTOR_WINDOW_FRAMES rows and
// the integer detector (smoothing, threshold, refractory period: generated constants from the model's
// thresholds.json) decides. On a detection: assert the wake line and print
//   wake <label> <score 0..255> <t_ms>
// where t_ms is the end of the last hop's samples in the stream, exactly as `kws eval` times it.
//
// Audio source on simulators: wake_audio.raw (int16 little-endian, 16 kHz mono) through semihosting,
// processed as fast as the simulator runs. At the end it prints the per-hop instruction time of the
// frontend and of the model (board ticks) so the always-on cost can be computed:
//   wake: hops H invocations M detections D frontend_ticks F model_ticks T ticks_hz Z
//
// Generated headers (kws.compile.firmware writes them for a model folder): model.h (kws compile),
// kws_frontend_config.h (frontend tables), kws_detector_config.h (thresholds.json).
#include <stdint.h>
#include <string.h>

#include "kws/board.h"
#include "kws/print.h"
#include "kws/detector.h"
#include "kws/frontend.h"
#include "kws/semihost.h"
#include "kws_detector_config.h"
#include "kws_frontend_config.h"
#include "model.h"

#define HOP KWS_FRONTEND_HOP_SAMPLES
#define ROW KWS_FRONTEND_ROW_SIZE
#define WF KWS_DETECTOR_WINDOW_FRAMES
#define STRIDE KWS_DETECTOR_STRIDE_HOPS

#if KWS_MODEL_INPUT0_BYTES != WF * ROW
#error "the model's input is not window_frames x the frontend's row size"
#endif
#ifndef KWS_MODEL_INPUT0_DTYPE_INT8
#error "the wake app needs an int8 model input (the frontend's codes)"
#endif

static kws_frontend_t fe;
static kws_frontend_scratch_t scratch;
static kws_detector_t det;
static int8_t rows[WF][ROW];
static int16_t hop[HOP];

int main(void) {
    board_init();
    board_wake_line(false);
    if (kws_frontend_init(&fe, &kws_frontend_config) != 0) {
        return kws_print_error("wake", "frontend configuration rejected");
    }
    kws_frontend_set_norm_max(&fe, 32768);
    const kws_detector_params_t params = {KWS_DETECTOR_THRESHOLD, KWS_DETECTOR_WINDOW, KWS_DETECTOR_REFRACTORY};
    if (kws_detector_init(&det, &params) != 0) {
        return kws_print_error("wake", "detector parameters rejected");
    }
    kws_model_init();
    int32_t in = kws_semihost_open("wake_audio.raw", KWS_SEMIHOST_READ);
    if (in < 0) {
        return kws_print_error("wake", "cannot open wake_audio.raw");
    }
    uint64_t hops = 0, frames = 0, invocations = 0, detections = 0, fe_ticks = 0, nn_ticks = 0;
    uint32_t head = 0;
    while (kws_semihost_read(in, hop, sizeof(hop)) == (int32_t)sizeof(hop)) {
        hops++;
        uint32_t t0 = board_ticks();
        int got = kws_frontend_push(&fe, hop, rows[head], &scratch);
        fe_ticks += (uint32_t)(board_ticks() - t0);
        if (!got) {
            continue;
        }
        head = (head + 1) % WF;
        frames++;
        if (frames < WF || frames % STRIDE != 0) {
            continue;
        }
        t0 = board_ticks();
        int8_t *x = (int8_t *)kws_model_input(0);
        for (uint32_t k = 0; k < WF; k++) {
            memcpy(x + k * ROW, rows[(head + k) % WF], ROW);
        }
        kws_model_invoke();
        const int8_t *y = (const int8_t *)kws_model_output(0);
        const uint8_t score = (uint8_t)(y[KWS_DETECTOR_POSITIVE_CLASS] + 128);
        const int hit = kws_detector_push(&det, score);
        nn_ticks += (uint32_t)(board_ticks() - t0);
        invocations++;
        if (hit) {
            detections++;
            board_wake_line(true);
            const uint64_t end = (frames - 1) * HOP + KWS_FRONTEND_WINDOW_SAMPLES;
            kws_print("wake " KWS_DETECTOR_LABEL);
            kws_print_u64(" ", kws_detector_sum(&det) / KWS_DETECTOR_WINDOW);
            kws_print_u64(" ", end * 1000u / KWS_FRONTEND_SAMPLE_RATE_HZ);
            kws_print("\n");
            board_wake_line(false);
        }
    }
    kws_semihost_close(in);
    kws_print_u64("wake: hops ", hops);
    kws_print_u64(" invocations ", invocations);
    kws_print_u64(" detections ", detections);
    kws_print_u64(" frontend_ticks ", fe_ticks);
    kws_print_u64(" model_ticks ", nn_ticks);
    kws_print_u64(" ticks_hz ", board_ticks_hz());
    kws_print("\n");
    return 0;
}
