// Helpers shared by the Cortex-M4 kernels: the DSP-extension instructions they use (ACLE intrinsics or
// inline assembly), with portable C equivalents so that the same kernels also build and can be tested
// on a machine without them (x86 host).
//
// Requantization. The kernels that take data packed by `kws compile --target cortex-m4` accumulate
// 2 * acc (the packed weights and biases are doubled; the compiler checks that 2 * |acc| < 2^31), which
// lets TFLite's double rounding (see src/nn/nn_fixedpoint.h) be done with one SMMLAR: for a shift
// e = -shift >= 1 and output zero point z,
//   clamp8(rdbpot(srdhm(acc, m), e) + z) == ssat8(smmlar(2 acc, m, c + (acc < 0 ? -1 : 0)) >> e)
// with c = 2^(e-1) + z * 2^e, because srdhm(acc, m) = floor((2 acc m + 2^31) / 2^32) and both floors
// (and the -1 that makes rdbpot round ties away from zero) compose into one (the compiler checks
// |c| < 2^30). The packed per-channel triple is (m, c, e).
#ifndef KWS_KERNELS_CORTEX_M4_NN_M4_H
#define KWS_KERNELS_CORTEX_M4_NN_M4_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kws/nn.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define KWS_M4_DSP 1
#include <arm_acle.h>
#else
#define KWS_M4_DSP 0
#endif

// Layout versions of the packed data (first word of every packed array); the compiler writes them.
#define KWS_M4_PACK_CONV 0x4d344331      // "M4C1": im2col GEMM, 2 pixels x 4 output channels
#define KWS_M4_PACK_DW3X3 0x4d344431     // "M4D1": depthwise 3x3, stride 1, one channel plane at a time
#define KWS_M4_PACK_DWSIMD 0x4d344432    // "M4D2": depthwise, multiplier 1, four channels per word
#define KWS_M4_PACK_DWLINE 0x4d344433    // "M4D3": depthwise k x 1 or 1 x k, stride 1, int16 channel lines
// Requantization modes (second word).
#define KWS_M4_RQ_FAST 1                 // per channel (m, c, e): see above
#define KWS_M4_RQ_GENERIC 2              // per channel (m, shift): kws_nn_requantize(acc2 >> 1)

// The packed CONV_2D of conv2d_s8.c (p->packed[0] == KWS_M4_PACK_CONV), also used for the
// DEPTHWISE_CONV_2D of a single input channel (a CONV_2D with out_c = depth_multiplier); scratch of
// kws_nn_m4_conv_packed_buffer_size(p) bytes.
void kws_nn_m4_conv_packed(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
size_t kws_nn_m4_conv_packed_buffer_size(const kws_nn_conv_params *p);

// The DEPTHWISE_CONV_2D of depthwise_line_s8.c (p->packed[0] == KWS_M4_PACK_DWLINE: K x 1 or 1 x K
// windows, stride 1); kws_nn_m4_dw_line_ok(p) says whether p qualifies; scratch of
// kws_nn_m4_dw_line_buffer_size(p) bytes.
int kws_nn_m4_dw_line_ok(const kws_nn_conv_params *p);
void kws_nn_m4_dw_line(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, void *scratch);
size_t kws_nn_m4_dw_line_buffer_size(const kws_nn_conv_params *p);

// Parameters of the naked assembly functions (the assembly reads them from r0-r3 and the stack).
#define M4_UNUSED __attribute__((unused))

static inline int32_t m4_ld32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void m4_st32(void *p, int32_t v) {
    memcpy(p, &v, sizeof(v));
}

#if KWS_M4_DSP

// acc + lo(a) * lo(b) + hi(a) * hi(b), halves signed 16-bit.
static inline int32_t m4_smlad(int32_t a, int32_t b, int32_t acc) {
    return __smlad(a, b, acc);
}
// acc + lo(a) * lo(b)
static inline int32_t m4_smlabb(int32_t a, int32_t b, int32_t acc) {
    return __smlabb(a, b, acc);
}
// acc + lo(a) * hi(b)
static inline int32_t m4_smlabt(int32_t a, int32_t b, int32_t acc) {
    return __smlabt(a, b, acc);
}
// acc + hi(a) * lo(b)
static inline int32_t m4_smlatb(int32_t a, int32_t b, int32_t acc) {
    return __smlatb(a, b, acc);
}
// acc + hi(a) * hi(b)
static inline int32_t m4_smlatt(int32_t a, int32_t b, int32_t acc) {
    return __smlatt(a, b, acc);
}
// Halfwords (h0 + sext(byte0 of x), h1 + sext(byte2 of x)).
static inline int32_t m4_sxtab16(int32_t h, int32_t x) {
    return (int32_t)__sxtab16((uint32_t)h, (uint32_t)x);
}
// Halfwords (h0 + sext(byte1 of x), h1 + sext(byte3 of x)).
static inline int32_t m4_sxtab16_ror8(int32_t h, int32_t x) {
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(h), "r"(x));
    return r;
}
// c + floor((a * b + 2^31) / 2^32)
static inline int32_t m4_smmlar(int32_t a, int32_t b, int32_t c) {
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}
static inline int32_t m4_ssat8(int32_t x) {
    return __ssat(x, 8);
}
// Per byte: max(a, lo) and min(a, hi) of four int8 lanes.
static inline uint32_t m4_max8(uint32_t a, uint32_t lo) {
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(lo) : "cc");
    return r;
}
static inline uint32_t m4_min8(uint32_t a, uint32_t hi) {
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(hi) : "cc");
    return r;
}
// (lo16 of a) | (lo16 of b) << 16
static inline int32_t m4_pkhbt16(int32_t a, int32_t b) {
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
// (hi16 of a) << 16 | (hi16 of b)
static inline int32_t m4_pkhtb16(int32_t a, int32_t b) {
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#else  // portable equivalents

static inline int32_t m4_lo(int32_t x) {
    return (int16_t)(uint16_t)((uint32_t)x & 0xffffu);
}
static inline int32_t m4_hi(int32_t x) {
    return (int16_t)(uint16_t)((uint32_t)x >> 16);
}
static inline int32_t m4_smlad(int32_t a, int32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(m4_lo(a) * m4_lo(b)) + (uint32_t)(m4_hi(a) * m4_hi(b)));
}
static inline int32_t m4_smlabb(int32_t a, int32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(m4_lo(a) * m4_lo(b)));
}
static inline int32_t m4_smlabt(int32_t a, int32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(m4_lo(a) * m4_hi(b)));
}
static inline int32_t m4_smlatb(int32_t a, int32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(m4_hi(a) * m4_lo(b)));
}
static inline int32_t m4_smlatt(int32_t a, int32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(m4_hi(a) * m4_hi(b)));
}
static inline int32_t m4_pack16(int32_t lo, int32_t hi) {
    return (int32_t)(((uint32_t)lo & 0xffffu) | ((uint32_t)hi << 16));
}
static inline int32_t m4_sxtab16(int32_t h, int32_t x) {
    return m4_pack16(m4_lo(h) + (int8_t)(uint8_t)((uint32_t)x & 0xffu),
                     m4_hi(h) + (int8_t)(uint8_t)(((uint32_t)x >> 16) & 0xffu));
}
static inline int32_t m4_sxtab16_ror8(int32_t h, int32_t x) {
    return m4_sxtab16(h, (int32_t)(((uint32_t)x >> 8) | ((uint32_t)x << 24)));
}
static inline int32_t m4_smmlar(int32_t a, int32_t b, int32_t c) {
    return (int32_t)((uint32_t)c + (uint32_t)(((int64_t)a * b + (INT64_C(1) << 31)) >> 32));
}
static inline int32_t m4_ssat8(int32_t x) {
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}
static inline uint32_t m4_max8(uint32_t a, uint32_t lo) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int8_t x = (int8_t)(uint8_t)(a >> i), y = (int8_t)(uint8_t)(lo >> i);
        r |= (uint32_t)(uint8_t)(x > y ? x : y) << i;
    }
    return r;
}
static inline uint32_t m4_min8(uint32_t a, uint32_t hi) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int8_t x = (int8_t)(uint8_t)(a >> i), y = (int8_t)(uint8_t)(hi >> i);
        r |= (uint32_t)(uint8_t)(x < y ? x : y) << i;
    }
    return r;
}
static inline int32_t m4_pkhbt16(int32_t a, int32_t b) {
    return m4_pack16(a, b);
}
static inline int32_t m4_pkhtb16(int32_t a, int32_t b) {
    return (int32_t)(((uint32_t)a & 0xffff0000u) | ((uint32_t)b >> 16));
}

#endif

// Fast requantization of a doubled accumulator (see the top of this file); result in [-128, 127].
static inline int32_t m4_requant(int32_t acc2, int32_t m, int32_t c, int32_t e) {
    return m4_ssat8(m4_smmlar(acc2, m, c + (acc2 >> 31)) >> e);
}

// Four int8 results (each already in [-128, 127]) as one little-endian word.
static inline uint32_t m4_pack4(int32_t y0, int32_t y1, int32_t y2, int32_t y3) {
    return ((uint32_t)y0 & 0xffu) | (((uint32_t)y1 & 0xffu) << 8) | (((uint32_t)y2 & 0xffu) << 16) |
           ((uint32_t)y3 << 24);
}

// Four copies of an int8 in a word.
static inline uint32_t m4_splat8(int32_t v) {
    return ((uint32_t)v & 0xffu) * 0x01010101u;
}

#endif  // KWS_KERNELS_CORTEX_M4_NN_M4_H
