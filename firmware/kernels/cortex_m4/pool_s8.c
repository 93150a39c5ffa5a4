// AVERAGE_POOL_2D and MAX_POOL_2D, int8, for Cortex-M4 (DSP extension). Same results as
// src/nn/pool_s8.c.
//
// Channels in groups of four (channels % 4 == 0): average pooling sums each window with SXTAB16 into
// 16-bit lanes (exact while the window has at most 255 pixels: |sum| <= 128 * 255), max pooling takes
// lane-wise maxima with SSUB8/SEL. Other shapes: the portable loops.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn_m4.h"

// The window of output (oy, ox): rows [ky0, ky1) and columns [kx0, kx1) relative to (y0, x0).
typedef struct {
    int32_t y0, x0, ky0, ky1, kx0, kx1;
} window;

static window window_at(const kws_nn_pool_params *p, int32_t oy, int32_t ox) {
    window w;
    w.y0 = oy * p->stride_h - p->pad_top;
    w.ky0 = w.y0 < 0 ? -w.y0 : 0;
    w.ky1 = p->k_h < p->in_h - w.y0 ? p->k_h : p->in_h - w.y0;
    w.x0 = ox * p->stride_w - p->pad_left;
    w.kx0 = w.x0 < 0 ? -w.x0 : 0;
    w.kx1 = p->k_w < p->in_w - w.x0 ? p->k_w : p->in_w - w.x0;
    return w;
}

static int32_t avg_round(int32_t acc, int32_t n) {
    if (n == 0) {
        return 0;
    }
    return acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
}

void kws_nn_avgpool_s8(const kws_nn_pool_params *p, const int8_t *input, int8_t *output) {
    const int32_t ch = p->channels;
    const size_t row = (size_t)p->in_w * ch;
    const int simd = (ch & 3) == 0 && p->k_h * p->k_w <= 255;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const window w = window_at(p, oy, ox);
                const int32_t n = (w.ky1 - w.ky0) * (w.kx1 - w.kx0);
                const int32_t cols = w.kx1 - w.kx0;
                const int8_t *first = in_b + (size_t)(w.y0 + w.ky0) * row + (size_t)(w.x0 + w.kx0) * ch;
                if (simd) {
                    for (int32_t c = 0; c < ch; c += 4) {
                        int32_t even = 0, odd = 0;  // 16-bit lanes: channels (c, c+2) and (c+1, c+3)
                        const int8_t *r = first + c;
                        if ((size_t)cols * ch == row) {
                            // Whole rows (e.g. a global pool): one run of n pixels, two at a time.
                            const int8_t *q = r;
                            int32_t i = n;
                            for (; i >= 2; i -= 2, q += 2 * ch) {
                                const int32_t v = m4_ld32(q), u = m4_ld32(q + ch);
                                even = m4_sxtab16(m4_sxtab16(even, v), u);
                                odd = m4_sxtab16_ror8(m4_sxtab16_ror8(odd, v), u);
                            }
                            if (i) {
                                const int32_t v = m4_ld32(q);
                                even = m4_sxtab16(even, v);
                                odd = m4_sxtab16_ror8(odd, v);
                            }
                        } else {
                            for (int32_t ky = w.ky0; ky < w.ky1; ky++, r += row) {
                                const int8_t *q = r;
                                for (int32_t i = 0; i < cols; i++, q += ch) {
                                    const int32_t v = m4_ld32(q);
                                    even = m4_sxtab16(even, v);
                                    odd = m4_sxtab16_ror8(odd, v);
                                }
                            }
                        }
                        const int32_t s0 = (int16_t)(uint16_t)((uint32_t)even & 0xffffu);
                        const int32_t s2 = (int16_t)(uint16_t)((uint32_t)even >> 16);
                        const int32_t s1 = (int16_t)(uint16_t)((uint32_t)odd & 0xffffu);
                        const int32_t s3 = (int16_t)(uint16_t)((uint32_t)odd >> 16);
                        output[0] = (int8_t)kws_nn_clamp(avg_round(s0, n), p->act_min, p->act_max);
                        output[1] = (int8_t)kws_nn_clamp(avg_round(s1, n), p->act_min, p->act_max);
                        output[2] = (int8_t)kws_nn_clamp(avg_round(s2, n), p->act_min, p->act_max);
                        output[3] = (int8_t)kws_nn_clamp(avg_round(s3, n), p->act_min, p->act_max);
                        output += 4;
                    }
                } else {
                    for (int32_t c = 0; c < ch; c++) {
                        int32_t acc = 0;
                        const int8_t *r = first + c;
                        for (int32_t ky = w.ky0; ky < w.ky1; ky++, r += row) {
                            for (int32_t i = 0; i < cols; i++) {
                                acc += r[(size_t)i * ch];
                            }
                        }
                        *output++ = (int8_t)kws_nn_clamp(avg_round(acc, n), p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

void kws_nn_maxpool_s8(const kws_nn_pool_params *p, const int8_t *input, int8_t *output) {
    const int32_t ch = p->channels;
    const size_t row = (size_t)p->in_w * ch;
    const uint32_t lo4 = m4_splat8(p->act_min), hi4 = m4_splat8(p->act_max);
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * row;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const window w = window_at(p, oy, ox);
                const int32_t cols = w.kx1 - w.kx0;
                const int8_t *first = in_b + (size_t)(w.y0 + w.ky0) * row + (size_t)(w.x0 + w.kx0) * ch;
                int32_t c = 0;
                for (; c + 4 <= ch; c += 4) {
                    uint32_t m = 0x80808080u;  // -128 in every lane
                    const int8_t *r = first + c;
                    for (int32_t ky = w.ky0; ky < w.ky1; ky++, r += row) {
                        const int8_t *q = r;
                        for (int32_t i = 0; i < cols; i++, q += ch) {
                            m = m4_max8(m, (uint32_t)m4_ld32(q));
                        }
                    }
                    m4_st32(output, (int32_t)m4_min8(m4_max8(m, lo4), hi4));
                    output += 4;
                }
                for (; c < ch; c++) {
                    int32_t m = -128;
                    const int8_t *r = first + c;
                    for (int32_t ky = w.ky0; ky < w.ky1; ky++, r += row) {
                        for (int32_t i = 0; i < cols; i++) {
                            const int32_t v = r[(size_t)i * ch];
                            m = v > m ? v : m;
                        }
                    }
                    *output++ = (int8_t)kws_nn_clamp(m, p->act_min, p->act_max);
                }
            }
        }
    }
}
