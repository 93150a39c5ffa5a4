// Host-library entry points over firmware/src/frontend.c for the Python toolchain (ctypes).
// Not part of any firmware build. State and scratch live on the stack of each call, so calls
// from several threads are independent.
#include <stdint.h>

#include "kws/frontend.h"

int32_t kws_host_sizes(int32_t *state_bytes, int32_t *scratch_bytes) {
    *state_bytes = (int32_t)sizeof(kws_frontend_t);
    *scratch_bytes = (int32_t)sizeof(kws_frontend_scratch_t);
    return KWS_FRONTEND_MAX_FFT;
}

// Whole clip: see kws_frontend_clip.
int32_t kws_host_clip(const kws_frontend_config_t *cfg, const int16_t *pcm, int32_t n, int8_t *out, int32_t max_rows) {
    kws_frontend_t fe;
    kws_frontend_scratch_t scratch;
    return kws_frontend_clip(&fe, cfg, pcm, n, out, max_rows, &scratch);
}

// Streaming: pushes pcm[0 .. n) hop by hop (n a multiple of hop_samples) with the given
// normalization divisor (ignored by FIXED presets); returns the rows written.
int32_t kws_host_stream(const kws_frontend_config_t *cfg, const int16_t *pcm, int32_t n, int32_t norm_max,
                        int8_t *out, int32_t max_rows) {
    kws_frontend_t fe;
    kws_frontend_scratch_t scratch;
    if (kws_frontend_init(&fe, cfg) != 0) {
        return -1;
    }
    kws_frontend_set_norm_max(&fe, norm_max);
    const int32_t h = cfg->hop_samples, row_size = cfg->num_coeffs ? cfg->num_coeffs : cfg->num_mel;
    int32_t rows = 0;
    for (int32_t start = 0; start + h <= n && rows < max_rows; start += h) {
        rows += kws_frontend_push(&fe, pcm + start, out + (int64_t)rows * row_size, &scratch);
    }
    return rows;
}
