// Integer helpers shared by the kernels: TFLite's quantized-multiplier arithmetic (see kws/nn.h).
#ifndef KWS_NN_FIXEDPOINT_H
#define KWS_NN_FIXEDPOINT_H

#include <stdint.h>

static inline int32_t kws_nn_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    // Division (not a shift): it truncates toward zero, as the specification's reference does.
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

static inline int32_t kws_nn_rdbpot(int32_t x, int exponent) {
    int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t kws_nn_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return kws_nn_rdbpot(kws_nn_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t kws_nn_clamp(int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif  // KWS_NN_FIXEDPOINT_H
