// frontend_check: runs the frontend over clips read from a host file and writes the features back,
// so the toolchain can compare this build with the host library bit for bit and count instructions.
//
// Files (semihosting on simulators, stdio on the host board), in the simulator's working directory:
//   frontend_in.bin     int16 little-endian clips of KWS_FRONTEND_CLIP_SAMPLES (or CHECK_CLIP_SAMPLES)
//   frontend_out.bin    per clip: rows x KWS_FRONTEND_ROW_SIZE int8 (streaming interface)
//   frontend_ticks.bin  per produced row: uint32 board ticks spent in kws_frontend_push
// Each clip is also run through kws_frontend_clip; a mismatch with the streamed rows fails the run.
// UART: one summary line. Exit status 0, or 1 on any error.
#include <stdint.h>
#include <string.h>

#include "kws/board.h"
#include "kws/print.h"
#include "kws/frontend.h"
#include "kws/semihost.h"
#include "kws_frontend_config.h"

#ifndef CHECK_CLIP_SAMPLES
#if KWS_FRONTEND_CLIP_SAMPLES > 0
#define CHECK_CLIP_SAMPLES KWS_FRONTEND_CLIP_SAMPLES
#else
#define CHECK_CLIP_SAMPLES 16000
#endif
#endif
#define CHECK_ROWS (1 + (CHECK_CLIP_SAMPLES - KWS_FRONTEND_WINDOW_SAMPLES) / KWS_FRONTEND_HOP_SAMPLES)

static int16_t clip[CHECK_CLIP_SAMPLES];
static int8_t streamed[CHECK_ROWS * KWS_FRONTEND_ROW_SIZE];
static int8_t whole[CHECK_ROWS * KWS_FRONTEND_ROW_SIZE];
static uint32_t ticks[CHECK_ROWS];
static kws_frontend_t fe;
static kws_frontend_scratch_t scratch;

int main(void) {
    board_init();
    int32_t in = kws_semihost_open("frontend_in.bin", KWS_SEMIHOST_READ);
    int32_t out = kws_semihost_open("frontend_out.bin", KWS_SEMIHOST_WRITE);
    int32_t tk = kws_semihost_open("frontend_ticks.bin", KWS_SEMIHOST_WRITE);
    if (in < 0 || out < 0 || tk < 0) {
        return kws_print_error("frontend_check", "cannot open frontend_in.bin / frontend_out.bin / frontend_ticks.bin");
    }
    int32_t len = kws_semihost_flen(in);
    if (len < 0 || len % (int32_t)sizeof(clip) != 0) {
        return kws_print_error("frontend_check", "frontend_in.bin is not a whole number of clips");
    }
    const int32_t clips = len / (int32_t)sizeof(clip);
    uint64_t total_ticks = 0;
    uint32_t max_ticks = 0, min_ticks = UINT32_MAX;
    for (int32_t c = 0; c < clips; c++) {
        if (kws_semihost_read(in, clip, sizeof(clip)) != (int32_t)sizeof(clip)) {
            return kws_print_error("frontend_check", "short read");
        }
        if (kws_frontend_init(&fe, &kws_frontend_config) != 0) {
            return kws_print_error("frontend_check", "configuration rejected");
        }
        kws_frontend_set_norm_max(&fe, kws_frontend_clip_max(clip, CHECK_CLIP_SAMPLES));
        int32_t rows = 0;
        for (int32_t s = 0; s + KWS_FRONTEND_HOP_SAMPLES <= CHECK_CLIP_SAMPLES; s += KWS_FRONTEND_HOP_SAMPLES) {
            uint32_t t0 = board_ticks();
            int got = kws_frontend_push(&fe, clip + s, streamed + rows * KWS_FRONTEND_ROW_SIZE, &scratch);
            uint32_t dt = board_ticks() - t0;
            if (got) {
                if (rows >= CHECK_ROWS) {
                    return kws_print_error("frontend_check", "too many rows");
                }
                ticks[rows++] = dt;
                total_ticks += dt;
                max_ticks = dt > max_ticks ? dt : max_ticks;
                min_ticks = dt < min_ticks ? dt : min_ticks;
            }
        }
        int32_t wrows = kws_frontend_clip(&fe, &kws_frontend_config, clip, CHECK_CLIP_SAMPLES, whole, CHECK_ROWS, &scratch);
        if (wrows != rows || memcmp(whole, streamed, (size_t)rows * KWS_FRONTEND_ROW_SIZE) != 0) {
            return kws_print_error("frontend_check", "streaming and whole-clip features differ");
        }
        const size_t nout = (size_t)rows * KWS_FRONTEND_ROW_SIZE, ntk = (size_t)rows * sizeof(uint32_t);
        if (kws_semihost_write(out, streamed, nout) != (int32_t)nout || kws_semihost_write(tk, ticks, ntk) != (int32_t)ntk) {
            return kws_print_error("frontend_check", "write failed");
        }
    }
    kws_semihost_close(in);
    kws_semihost_close(out);
    kws_semihost_close(tk);
    kws_print("frontend_check " KWS_FRONTEND_PRESET);
    kws_print_u64(" clips=", (uint64_t)clips);
    kws_print_u64(" rows=", CHECK_ROWS);
    kws_print_u64(" ticks_total=", total_ticks);
    kws_print_u64(" min=", min_ticks);
    kws_print_u64(" max=", max_ticks);
    kws_print_u64(" state=", sizeof(kws_frontend_t));
    kws_print_u64(" scratch=", sizeof(kws_frontend_scratch_t));
    kws_print("\n");
    return 0;
}
