// SOFTMAX, int8 -> int8: the portable reference (see kws/nn.h). The exponentials come from the
// compiler's table; the reciprocal of their sum is computed here in Q-format fixed point with three
// Newton-Raphson steps, as the TFLite reference does.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"

static int32_t sat_shift_left(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

// 1 / (1 + a) for a in [0, 1), both in Q0.31.
static int32_t one_over_one_plus_x(int32_t a) {
    int64_t sum = (int64_t)a + INT32_MAX;
    int64_t t = sum + (sum >= 0 ? 1 : -1);
    const int32_t half_denominator = (int32_t)(t / 2);
    const int32_t c48_17 = 1515870810;      // 48/17 in Q2.29
    const int32_t cneg32_17 = -1010580540;  // -32/17 in Q2.29
    int32_t x = (int32_t)((uint32_t)c48_17 + (uint32_t)kws_nn_srdhm(half_denominator, cneg32_17));
    for (int i = 0; i < 3; i++) {
        const int32_t hdx = kws_nn_srdhm(half_denominator, x);
        const int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t)hdx);
        x = (int32_t)((uint32_t)x + (uint32_t)sat_shift_left(kws_nn_srdhm(x, one_minus), 2));
    }
    return sat_shift_left(x >> 1, 2);
}

static int count_leading_zeros(uint32_t x) {
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

void kws_nn_softmax_s8(const kws_nn_softmax_params *p, const int8_t *input, int8_t *output) {
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *in = input + (size_t)r * p->depth;
        int8_t *out = output + (size_t)r * p->depth;
        int32_t max = -128;
        for (int32_t c = 0; c < p->depth; c++) {
            max = in[c] > max ? in[c] : max;
        }
        int32_t sum = 0;  // Q12.19
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t d = max - in[c];
            if (d <= p->diff_limit) {
                sum = (int32_t)((uint32_t)sum + (uint32_t)kws_nn_rdbpot(p->exp_table[d], 12));
            }
        }
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum);
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum << headroom_plus_one) - (UINT32_C(1) << 31));
        const int32_t scale = one_over_one_plus_x(shifted_sum_minus_one);
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t d = max - in[c];
            int32_t v = -128;
            if (d <= p->diff_limit) {
                v = kws_nn_rdbpot(kws_nn_srdhm(scale, p->exp_table[d]), num_bits_over_unit + 31 - 8) - 128;
                v = kws_nn_clamp(v, -128, 127);
            }
            out[c] = (int8_t)v;
        }
    }
}
