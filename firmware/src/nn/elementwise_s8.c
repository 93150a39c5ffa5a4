// Element-wise int8 kernels: table look-up, ADD and MUL with broadcasting, MEAN, QUANTIZE/DEQUANTIZE,
// block copies. The portable reference (see kws/nn.h).
#include <string.h>

#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"

void kws_nn_lut_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t count) {
    for (int32_t i = 0; i < count; i++) {
        output[i] = table[input[i] + 128];
    }
}

static int32_t add_one(const kws_nn_binary_params *p, int32_t a, int32_t b) {
    const int32_t sa = (int32_t)((uint32_t)(a + p->in1_offset) << p->left_shift);
    const int32_t sb = (int32_t)((uint32_t)(b + p->in2_offset) << p->left_shift);
    const int32_t ra = kws_nn_requantize(sa, p->in1_multiplier, p->in1_shift);
    const int32_t rb = kws_nn_requantize(sb, p->in2_multiplier, p->in2_shift);
    const int32_t out = kws_nn_requantize(ra + rb, p->out_multiplier, p->out_shift) + p->output_offset;
    return kws_nn_clamp(out, p->act_min, p->act_max);
}

static int32_t mul_one(const kws_nn_binary_params *p, int32_t a, int32_t b) {
    const int32_t prod = (a + p->in1_offset) * (b + p->in2_offset);
    const int32_t out = kws_nn_requantize(prod, p->out_multiplier, p->out_shift) + p->output_offset;
    return kws_nn_clamp(out, p->act_min, p->act_max);
}

static void binary(const kws_nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                   int32_t (*fn)(const kws_nn_binary_params *, int32_t, int32_t)) {
    const int32_t *n = p->out_shape;
    const int32_t *s1 = p->in1_strides;
    const int32_t *s2 = p->in2_strides;
    for (int32_t i0 = 0; i0 < n[0]; i0++) {
        for (int32_t i1 = 0; i1 < n[1]; i1++) {
            for (int32_t i2 = 0; i2 < n[2]; i2++) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                for (int32_t i3 = 0; i3 < n[3]; i3++) {
                    *out++ = (int8_t)fn(p, a[i3 * s1[3]], b[i3 * s2[3]]);
                }
            }
        }
    }
}

void kws_nn_add_s8(const kws_nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    binary(p, in1, in2, output, add_one);
}

void kws_nn_mul_s8(const kws_nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    binary(p, in1, in2, output, mul_one);
}

void kws_nn_mean_s8(const kws_nn_mean_params *p, const int8_t *input, int8_t *output) {
    for (int32_t o = 0; o < p->outer; o++) {
        for (int32_t i = 0; i < p->inner; i++) {
            int32_t sum = 0;
            const int8_t *in = input + (size_t)o * p->reduce * p->inner + i;
            for (int32_t r = 0; r < p->reduce; r++) {
                sum += in[(size_t)r * p->inner];
            }
            sum -= p->reduce * p->input_zero_point;
            const int32_t v = kws_nn_requantize(sum, p->multiplier, p->shift) + p->output_zero_point;
            output[(size_t)o * p->inner + i] = (int8_t)kws_nn_clamp(v, -128, 127);
        }
    }
}

void kws_nn_copy(const kws_nn_copy_params *p, const void *src, void *dst) {
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    const int32_t e = p->elem_bytes;
    const int32_t *n = p->count;
    const int32_t *ss = p->src_stride;
    const int32_t *ds = p->dst_stride;
    const int contiguous = ss[3] == 1 && ds[3] == 1;
    for (int32_t i0 = 0; i0 < n[0]; i0++) {
        for (int32_t i1 = 0; i1 < n[1]; i1++) {
            for (int32_t i2 = 0; i2 < n[2]; i2++) {
                const uint8_t *sp = s + (size_t)(i0 * ss[0] + i1 * ss[1] + i2 * ss[2]) * e;
                uint8_t *dp = d + (size_t)(i0 * ds[0] + i1 * ds[1] + i2 * ds[2]) * e;
                if (contiguous) {
                    memcpy(dp, sp, (size_t)n[3] * e);
                } else {
                    for (int32_t i3 = 0; i3 < n[3]; i3++) {
                        memcpy(dp + (size_t)i3 * ds[3] * e, sp + (size_t)i3 * ss[3] * e, (size_t)e);
                    }
                }
            }
        }
    }
}

void kws_nn_fill_s8(int8_t *dst, int8_t value, int32_t count) {
    memset(dst, value, (size_t)count);
}

void kws_nn_quantize_f32_s8(const float *input, int8_t *output, int32_t count, float scale, int32_t zero_point) {
    for (int32_t i = 0; i < count; i++) {
        const float q = input[i] / scale;
        if (!(q > -1e9f && q < 1e9f)) {  // also NaN: clamp without undefined float->int conversion
            output[i] = (int8_t)(q > 0.0f ? 127 : -128);
            continue;
        }
        // Round half away from zero (std::round) without libm: q - trunc(q) is exact.
        int32_t r = (int32_t)q;
        const float frac = q - (float)r;
        r += frac >= 0.5f ? 1 : (frac <= -0.5f ? -1 : 0);
        const int32_t v = r + zero_point;
        output[i] = (int8_t)kws_nn_clamp(v, -128, 127);
    }
}

void kws_nn_dequantize_s8_f32(const int8_t *input, float *output, int32_t count, float scale, int32_t zero_point) {
    for (int32_t i = 0; i < count; i++) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
}
