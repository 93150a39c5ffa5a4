// AVERAGE_POOL_2D and MAX_POOL_2D, int8: the portable reference (see kws/nn.h).
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"

void kws_nn_avgpool_s8(const kws_nn_pool_params *p, const int8_t *input, int8_t *output) {
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * p->in_w * p->channels;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = y0 < 0 ? -y0 : 0;
            const int32_t ky1 = p->k_h < p->in_h - y0 ? p->k_h : p->in_h - y0;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = x0 < 0 ? -x0 : 0;
                const int32_t kx1 = p->k_w < p->in_w - x0 ? p->k_w : p->in_w - x0;
                const int32_t n = (ky1 - ky0) * (kx1 - kx0);
                for (int32_t c = 0; c < p->channels; c++) {
                    int32_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            acc += in_b[((size_t)(y0 + ky) * p->in_w + (x0 + kx)) * p->channels + c];
                        }
                    }
                    if (n == 0) {
                        acc = 0;
                    } else {
                        acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
                    }
                    *output++ = (int8_t)kws_nn_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void kws_nn_maxpool_s8(const kws_nn_pool_params *p, const int8_t *input, int8_t *output) {
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * p->in_w * p->channels;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t ky0 = y0 < 0 ? -y0 : 0;
            const int32_t ky1 = p->k_h < p->in_h - y0 ? p->k_h : p->in_h - y0;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = x0 < 0 ? -x0 : 0;
                const int32_t kx1 = p->k_w < p->in_w - x0 ? p->k_w : p->in_w - x0;
                for (int32_t c = 0; c < p->channels; c++) {
                    int32_t m = -128;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            int32_t v = in_b[((size_t)(y0 + ky) * p->in_w + (x0 + kx)) * p->channels + c];
                            m = v > m ? v : m;
                        }
                    }
                    *output++ = (int8_t)kws_nn_clamp(m, p->act_min, p->act_max);
                }
            }
        }
    }
}
