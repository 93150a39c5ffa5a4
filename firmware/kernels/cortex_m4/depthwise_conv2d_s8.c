// DEPTHWISE_CONV_2D, int8, per-channel, for Cortex-M4 (DSP extension). Same results as
// src/nn/depthwise_conv2d_s8.c.
//
// Fast path (p->packed, written by `kws compile --target cortex-m4` for 3x3 kernels with stride 1,
// no dilation and depth multiplier 1): one channel at a time, the input channel is copied into the
// scratch buffer as an int16 plane (input + input_offset, 0 in the padding), then 2x2 blocks of outputs
// are computed with SMLAD on pairs of horizontally adjacent plane values (unaligned word loads) and
// SMLAxy for the third column, against doubled int16 weights. Otherwise: portable loops.
//
// Packed layout (int32 words): [KWS_M4_PACK_DW3X3, KWS_M4_RQ_FAST, PH, PW], then per channel 9 words:
//   (w00,w01) (w10,w11) (w20,w21) (w02,w12) (w22,0)  doubled int16 weights w<ky><kx>, (low, high)
//   bias2, m, c, e                                      requantization (see nn_m4.h)
// The plane has PH = out_h + 2 (+1 if out_h is odd) rows and PW = out_w + 2 (+1 if out_w is odd)
// columns; plane (r, q) holds input (r - pad_top, q - pad_left). Scratch: 2 * PH * PW bytes.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn_m4.h"

static int dw_fast(const kws_nn_conv_params *p) {
    return p->packed != NULL && p->packed[0] == KWS_M4_PACK_DW3X3 && p->k_h == 3 && p->k_w == 3 &&
           p->stride_h == 1 && p->stride_w == 1 && p->dilation_h == 1 && p->dilation_w == 1 &&
           p->depth_multiplier == 1;
}

size_t kws_nn_depthwise_conv2d_s8_buffer_size(const kws_nn_conv_params *p) {
    if (!dw_fast(p)) {
        return 0;
    }
    const int32_t ph = p->out_h + (p->out_h & 1) + 2;
    const int32_t pw = p->out_w + (p->out_w & 1) + 2;
    return (size_t)ph * (size_t)pw * 2u;
}

// Plane of channel c of in_b: ph x pw int16, (x + input_offset), 0 outside the input.
static void build_plane(const kws_nn_conv_params *p, const int8_t *in_b, int32_t c, int16_t *plane, int32_t ph,
                        int32_t pw) {
    const int32_t in_c = p->in_c;
    const int32_t off = p->input_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xffffu) * 0x10001u);
    const int32_t x_lo = p->pad_left;                          // first plane column inside the input
    int32_t x_hi = p->pad_left + p->in_w;                      // one past the last
    if (x_hi > pw) {
        x_hi = pw;
    }
    for (int32_t r = 0; r < ph; r++) {
        int16_t *row = plane + r * pw;
        const int32_t y = r - p->pad_top;
        if (y < 0 || y >= p->in_h || x_lo >= x_hi) {
            for (int32_t q = 0; q < pw; q++) {
                row[q] = 0;
            }
            continue;
        }
        for (int32_t q = 0; q < x_lo; q++) {
            row[q] = 0;
        }
        const int8_t *src = in_b + (size_t)y * p->in_w * in_c + c;
        int32_t q = x_lo;
        for (; q + 1 < x_hi; q += 2) {
            const int32_t a = (uint8_t)src[0];
            const int32_t b = (uint8_t)src[in_c];
            src += 2 * in_c;
            const int32_t v = m4_sxtab16(off2, (int32_t)((uint32_t)a | ((uint32_t)b << 16)));
            memcpy(row + q, &v, sizeof(v));
        }
        if (q < x_hi) {
            row[q++] = (int16_t)(src[0] + off);
        }
        for (; q < pw; q++) {
            row[q] = 0;
        }
    }
}

static void dw3x3_packed(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, int16_t *plane) {
    const int32_t ph = p->packed[2], pw = p->packed[3];
    const int32_t in_c = p->in_c, out_w = p->out_w, out_h = p->out_h;
    const size_t in_size = (size_t)p->in_h * p->in_w * in_c;
    const size_t row_stride = (size_t)out_w * in_c;  // output row, in bytes
    const int clamp = p->act_min > -128 || p->act_max < 127;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * in_size;
        int8_t *out_b = output + (size_t)b * out_h * row_stride;
        const int32_t *pk = p->packed + 4;
        for (int32_t c = 0; c < in_c; c++, pk += 9) {
            build_plane(p, in_b, c, plane, ph, pw);
            const int32_t w0 = pk[0], w1 = pk[1], w2 = pk[2], w3 = pk[3], w4 = pk[4];
            const int32_t bias2 = pk[5];
            for (int32_t oy = 0; oy < out_h; oy += 2) {
                const int16_t *r0 = plane + oy * pw;
                int8_t *o = out_b + (size_t)oy * row_stride + c;
                const int last_row = oy + 1 >= out_h;
                for (int32_t ox = 0; ox < out_w; ox += 2) {
                    const int16_t *r = r0 + ox;
                    int32_t l01 = m4_ld32(r), l12 = m4_ld32(r + 1), l23 = m4_ld32(r + 2);
                    int32_t a00 = m4_smlad(l01, w0, bias2);
                    int32_t a01 = m4_smlad(l12, w0, bias2);
                    a00 = m4_smlabb(l23, w3, a00);
                    a01 = m4_smlatb(l23, w3, a01);
                    r += pw;
                    l01 = m4_ld32(r);
                    l12 = m4_ld32(r + 1);
                    l23 = m4_ld32(r + 2);
                    a00 = m4_smlad(l01, w1, a00);
                    a01 = m4_smlad(l12, w1, a01);
                    int32_t a10 = m4_smlad(l01, w0, bias2);
                    int32_t a11 = m4_smlad(l12, w0, bias2);
                    a00 = m4_smlabt(l23, w3, a00);
                    a01 = m4_smlatt(l23, w3, a01);
                    a10 = m4_smlabb(l23, w3, a10);
                    a11 = m4_smlatb(l23, w3, a11);
                    r += pw;
                    l01 = m4_ld32(r);
                    l12 = m4_ld32(r + 1);
                    l23 = m4_ld32(r + 2);
                    a00 = m4_smlad(l01, w2, a00);
                    a01 = m4_smlad(l12, w2, a01);
                    a10 = m4_smlad(l01, w1, a10);
                    a11 = m4_smlad(l12, w1, a11);
                    a00 = m4_smlabb(l23, w4, a00);
                    a01 = m4_smlatb(l23, w4, a01);
                    a10 = m4_smlabt(l23, w3, a10);
                    a11 = m4_smlatt(l23, w3, a11);
                    r += pw;
                    l01 = m4_ld32(r);
                    l12 = m4_ld32(r + 1);
                    l23 = m4_ld32(r + 2);
                    a10 = m4_smlad(l01, w2, a10);
                    a11 = m4_smlad(l12, w2, a11);
                    a10 = m4_smlabb(l23, w4, a10);
                    a11 = m4_smlatb(l23, w4, a11);
                    const int32_t m = pk[6], cc = pk[7], e = pk[8];
                    int32_t y00 = m4_requant(a00, m, cc, e), y01 = m4_requant(a01, m, cc, e);
                    int32_t y10 = m4_requant(a10, m, cc, e), y11 = m4_requant(a11, m, cc, e);
                    if (clamp) {
                        y00 = kws_nn_clamp(y00, p->act_min, p->act_max);
                        y01 = kws_nn_clamp(y01, p->act_min, p->act_max);
                        y10 = kws_nn_clamp(y10, p->act_min, p->act_max);
                        y11 = kws_nn_clamp(y11, p->act_min, p->act_max);
                    }
                    const int last_col = ox + 1 >= out_w;
                    o[0] = (int8_t)y00;
                    if (!last_col) {
                        o[in_c] = (int8_t)y01;
                    }
                    if (!last_row) {
                        o[row_stride] = (int8_t)y10;
                        if (!last_col) {
                            o[row_stride + in_c] = (int8_t)y11;
                        }
                    }
                    o += 2 * in_c;
                }
            }
        }
    }
}

static void dw_portable(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                        const int32_t *bias, int8_t *output) {
    const int32_t m = p->depth_multiplier;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t oc = 0; oc < p->out_c; oc++) {
                    const int32_t ic = oc / m;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < p->k_h; ky++) {
                        const int32_t y = y0 + ky * p->dilation_h;
                        if (y < 0 || y >= p->in_h) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < p->k_w; kx++) {
                            const int32_t x = x0 + kx * p->dilation_w;
                            if (x < 0 || x >= p->in_w) {
                                continue;
                            }
                            const int32_t v = in_b[((size_t)y * p->in_w + x) * p->in_c + ic] + p->input_offset;
                            acc += v * filter[((size_t)ky * p->k_w + kx) * p->out_c + oc];
                        }
                    }
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = kws_nn_requantize(acc, p->multiplier[oc], p->shift[oc]) + p->output_offset;
                    *output++ = (int8_t)kws_nn_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void kws_nn_depthwise_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                                const int32_t *bias, int8_t *output, void *scratch) {
    if (dw_fast(p) && scratch != NULL) {
        dw3x3_packed(p, input, output, (int16_t *)scratch);
    } else {
        dw_portable(p, input, filter, bias, output);
    }
}
