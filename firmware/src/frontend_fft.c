// Windowed real-FFT magnitude for the frontend (see kws_frontend_spectrum in frontend.h).
//
// Exact integer definition, the same on every target (host and Cortex-M produce the same bytes):
//  1. s = 13 - floor(log2(max |frame|)) (13 for a silent frame), so |frame * window * 2^s| <= 2^29.
//     v[n] = frame[n] * window[n] (Q15) scaled by 2^s (rounding right shift when s < 0), zero past
//     window_samples, read as m = fft_size/2 complex points z[n] = v[2n] + i v[2n+1], in base-4
//     digit-reversed order.
//  2. A radix-4 decimation-in-time FFT of m = 4^p points with Q15 twiddles. Each stage scales by
//     1/4: twiddled inputs are (a * w) >> 16 per product (floor), the untwiddled one a >> 1, and the
//     four-point sums are shifted right by 1. So Z = DFT(z) / m, up to rounding.
//  3. Split step: X[k] = (A >> 1) + ((-i D) W^k) >> 16-products, A = Z[k] + conj Z[m-k],
//     D = Z[k] - conj Z[m-k], W = exp(-2 pi i / fft_size); X[0] = Re Z0 + Im Z0, X[m] = Re Z0 - Im Z0.
//  4. mag[k] = kws_isqrt64(Re X^2 + Im X^2) for k in [cfg->bin_lo, cfg->bin_hi] (other bins untouched).
//
// How it is computed (the same values, fewer instructions): the first radix-4 stage reads the frame
// and the window directly (step 1's scaled value halved is one shift of the product: v << (s - 1), or
// (v + round) >> (1 - s)), so the digit-reversed frame is never stored; every stage but the last
// stores its four-point sums unhalved and the next stage halves them as it reads them (x >> 1 >> 1 =
// x >> 2); the other stages run with their twiddles in stage order (cfg->fft_twiddle) and constant
// strides; bins k and m - k share their split-step sums. On Cortex-M with the DSP extension the
// (a * w) >> 16 products are single SMULWB/SMULWT/SMLAWB instructions, the window products
// SMULBB/SMULTT on sample pairs, complex values one LDRD/STRD, and the frame peak a packed SSUB16/SEL
// maximum and minimum; elsewhere the same arithmetic in C (so host and device agree by construction).
#include "kws/frontend.h"

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// (a * low16(w)) >> 16 and (a * high16(w)) >> 16, floor: SMULWB / SMULWT (not every toolchain's
// arm_acle.h has them as intrinsics).
static inline int32_t mulw_lo(int32_t a, int32_t w) {
    int32_t r;
    __asm__("smulwb %0, %1, %2" : "=r"(r) : "r"(a), "r"(w));
    return r;
}
static inline int32_t mulw_hi(int32_t a, int32_t w) {
    int32_t r;
    __asm__("smulwt %0, %1, %2" : "=r"(r) : "r"(a), "r"(w));
    return r;
}
// acc + ((a * low16(w)) >> 16): SMLAWB, the same value as the separate product and sum.
static inline int32_t mlaw_lo(int32_t a, int32_t w, int32_t acc) {
    int32_t r;
    __asm__("smlawb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(w), "r"(acc));
    return r;
}
// low16(a) * low16(b) and high16(a) * high16(b), signed: SMULBB / SMULTT.
static inline int32_t mul_bb(uint32_t a, uint32_t b) {
    int32_t r;
    __asm__("smulbb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t mul_tt(uint32_t a, uint32_t b) {
    int32_t r;
    __asm__("smultt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
// Per signed 16-bit lane: mx = max(mx, x), mn = min(mn, x) (SSUB16 sets the lane flags SEL reads).
#define MAX_MIN16(x, mx, mn)                                                                              \
    do {                                                                                                  \
        uint32_t d_;                                                                                      \
        __asm__("ssub16 %0, %2, %1\n\tsel %1, %2, %1" : "=&r"(d_), "+r"(mx) : "r"(x) : "cc");           \
        __asm__("ssub16 %0, %2, %1\n\tsel %1, %1, %2" : "=&r"(d_), "+r"(mn) : "r"(x) : "cc");           \
    } while (0)
// acc |= |x| per 16-bit lane (as unsigned 16-bit; -32768 gives 32768): SSUB16 from zero sets the lane
// flags where x <= 0, SEL takes -x there and x elsewhere.
#define ABS16_OR(x, zero, acc)                                                                        \
    do {                                                                                              \
        uint32_t n_;                                                                                  \
        __asm__("ssub16 %0, %2, %1\n\tsel %0, %0, %1" : "=&r"(n_) : "r"(x), "r"(zero) : "cc");        \
        (acc) |= n_;                                                                                  \
    } while (0)
#if defined(__OPTIMIZE__)
// A complex value (two int32 words) at word offset OFF (a constant once inlined, hence optimized
// builds only) from p: one LDRD / STRD (GCC splits 64-bit accesses into word accesses when it can).
typedef struct {
    int32_t v[2];
} kws_fft_pair_t;
#define LOAD_C(p, OFF, re, im)                                                                           \
    __asm__("ldrd %0, %1, [%2, %3]" : "=&r"(re), "=&r"(im)                                             \
            : "r"(p), "n"(4 * (OFF)), "m"(*(const kws_fft_pair_t *)(const void *)((p) + (OFF))))
#define STORE_C(p, OFF, re, im)                                                                          \
    __asm__("strd %1, %2, [%3, %4]" : "=m"(*(kws_fft_pair_t *)(void *)((p) + (OFF)))                    \
            : "r"(re), "r"(im), "r"(p), "n"(4 * (OFF)))
#endif
// x >> n for n in [0, 32] (32 gives 0): LSR by a register does that on Arm.
static inline uint32_t lsr32(uint32_t x, int32_t n) {
    uint32_t r;
    __asm__("lsr %0, %1, %2" : "=r"(r) : "r"(x), "r"(n));
    return r;
}
#define LSR32(x, n) lsr32((x), (n))
// x << n for n in [0, 32] (32 gives 0), and the count of leading zeros of x (32 for 0): LSL by a
// register and CLZ do that on Arm.
static inline uint32_t lsl32(uint32_t x, int32_t n) {
    uint32_t r;
    __asm__("lsl %0, %1, %2" : "=r"(r) : "r"(x), "r"(n));
    return r;
}
static inline int32_t clz32(uint32_t x) {
    int32_t r;
    __asm__("clz %0, %1" : "=r"(r) : "r"(x));
    return r;
}
#define LSL32(x, n) lsl32((x), (n))
#define CLZ32(x) clz32(x)
#define MULW_LO(a, w) mulw_lo((a), (int32_t)(w))
#define MULW_HI(a, w) mulw_hi((a), (int32_t)(w))
#define MLAW_LO(a, w, acc) mlaw_lo((a), (int32_t)(w), (acc))
#define MUL_BB(a, b) mul_bb((a), (b))
#define MUL_TT(a, b) mul_tt((a), (b))
#else
#define LSR32(x, n) ((n) < 32 ? (x) >> (n) : 0u)
#define LSL32(x, n) ((n) < 32 ? (x) << (n) : 0u)
#define CLZ32(x) ((x) != 0 ? __builtin_clz(x) : 32)
#define MULW_LO(a, w) ((int32_t)(((int64_t)(a) * (int16_t)((uint32_t)(w) & 0xFFFFu)) >> 16))
#define MULW_HI(a, w) ((int32_t)(((int64_t)(a) * (int16_t)((uint32_t)(w) >> 16)) >> 16))
#define MLAW_LO(a, w, acc) ((acc) + MULW_LO((a), (w)))
#define MUL_BB(a, b) ((int32_t)(int16_t)((a) & 0xFFFFu) * (int16_t)((b) & 0xFFFFu))
#define MUL_TT(a, b) ((int32_t)(int16_t)((a) >> 16) * (int16_t)((b) >> 16))
static inline uint32_t lane_max(uint32_t x, uint32_t m) {
    int16_t a = (int16_t)(x & 0xFFFFu), b = (int16_t)(m & 0xFFFFu);
    return (uint16_t)(a > b ? a : b);
}
static inline uint32_t lane_min(uint32_t x, uint32_t m) {
    int16_t a = (int16_t)(x & 0xFFFFu), b = (int16_t)(m & 0xFFFFu);
    return (uint16_t)(a < b ? a : b);
}
static inline uint32_t abs16_pair(uint32_t x) {
    const int32_t a = (int16_t)(x & 0xFFFFu), b = (int16_t)(x >> 16);
    return (uint32_t)(uint16_t)(a < 0 ? -a : a) | ((uint32_t)(uint16_t)(b < 0 ? -b : b) << 16);
}
#define ABS16_OR(x, zero, acc) ((void)(zero), (acc) |= abs16_pair(x))
#define MAX_MIN16(x, mx, mn)                                                                \
    do {                                                                                    \
        (mx) = lane_max((x), (mx)) | (lane_max((x) >> 16, (mx) >> 16) << 16);               \
        (mn) = lane_min((x), (mn)) | (lane_min((x) >> 16, (mn) >> 16) << 16);               \
    } while (0)
#endif
#ifndef LOAD_C
#define LOAD_C(p, OFF, re, im) ((re) = (p)[OFF], (im) = (p)[(OFF) + 1])
#define STORE_C(p, OFF, re, im) ((p)[OFF] = (re), (p)[(OFF) + 1] = (im))
#endif

// (a * W) / 2 for complex a and packed twiddle W = cos | (-sin) << 16 (Q15 each).
#define CMUL_HALF(ar, ai, w, outr, outi)                 \
    do {                                                \
        (outr) = MULW_LO((ar), (w)) - MULW_HI((ai), (w)); \
        (outi) = MLAW_LO((ai), (w), MULW_HI((ar), (w)));  \
    } while (0)

#define ALWAYS_INLINE inline __attribute__((always_inline))

// Two consecutive int16 samples as one word (low half = p[0]); any 2-byte alignment.
static ALWAYS_INLINE uint32_t load_pair(const int16_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint16_t)p[0] | ((uint32_t)(uint16_t)p[1] << 16);
#else
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
#endif
}

// g + pn / g for pn in [2^30, 2^32), or pn = 0 (then the guess's constant term): twice the Newton
// step from the guess g, before its halving, so the caller can fold the halving into its own shift.
static ALWAYS_INLINE uint32_t isqrt_sum(uint32_t pn) {
    // x = pn / 2^30 in [1, 4): sqrt(x) ~ 0.4142 x + 0.5947 on [1, 2), 0.2929 x + 0.8410 on [2, 4)
    // (chords of sqrt, lifted by half their largest gap), times 2^15.
    uint32_t g = pn < (1u << 31) ? (((pn >> 16) * 54292u) >> 16) + 19487u : (((pn >> 16) * 38391u) >> 16) + 27558u;
    return g + pn / g;
}

// The guess and the Newton step, g' = (g + pn / g) >> 1, for pn normalized to [2^30, 2^32) by an even
// shift, then scaled back: p >= 2^32 (hi != 0): g' << (16 - L / 2), L = clz(hi) rounded down to even;
// p < 2^32: g' rounded by (g' + 2^(k-1)) >> k for k = clz(lo) >> 1 >= 1, g' itself for k = 0.
static ALWAYS_INLINE uint32_t kws_isqrt64(uint32_t lo, uint32_t hi) {
    if (hi != 0) {
        // p has 64 - c >= 33 bits (c = clz(hi)): e = (33 - c) >> 1 = 16 - L / 2 >= 1 with L = c rounded
        // down to even, and p >> 2e = the top word of p << L.
        const int32_t l = __builtin_clz(hi) & ~1;
        const uint32_t pn = (hi << l) | LSR32(lo, 32 - l);
        return (isqrt_sum(pn) >> 1) << (16 - (l >> 1));
    }
    // pn = lo << 2k. With S = g + pn / g (g' = S >> 1): (g' + 2^(k-1)) >> k = (2 g' + 2^k) >> (k + 1), and
    // (2 g' + 1) >> 1 = g' for k = 0, so one expression serves every k. lo = 0: c = 32, pn = 0, S < 2^15
    // and the result is 0.
    const int32_t c = CLZ32(lo), k = c >> 1;
    const uint32_t sum = isqrt_sum(LSL32(lo, c & ~1));
    return ((sum & ~1u) + (1u << k)) >> (k + 1);
}

// |xr + i xi| by the definition above.
static ALWAYS_INLINE uint32_t magnitude(int32_t xr, int32_t xi) {
    const uint64_t p = (uint64_t)((int64_t)xr * xr) + (uint64_t)((int64_t)xi * xi);
    return kws_isqrt64((uint32_t)p, (uint32_t)(p >> 32));
}

// Radix-4 DIT butterfly outputs on p[0], p[off], p[2 off], p[3 off] (complex, interleaved) from the four
// inputs already scaled (t0 = a >> 1, twiddled ones (a * w) >> 16 per product). Each output is
// (four-point sum) >> 1; with HALVE = 0 the sum itself is stored and the next stage halves it when
// it reads it (x >> 1 >> 1 = x >> 2, one shift folded into an add), the same value in fewer steps.
static ALWAYS_INLINE void butterfly_out(int32_t *pa, int32_t *pb, const int32_t off, const int32_t offb, int32_t t0r,
                                        int32_t t0i, int32_t t1r, int32_t t1i, int32_t t2r, int32_t t2i,
                                        int32_t t3r, int32_t t3i, const int HALVE) {
    const int32_t s02r = t0r + t2r, s02i = t0i + t2i, d02r = t0r - t2r, d02i = t0i - t2i;
    const int32_t s13r = t1r + t3r, s13i = t1i + t3i, d13r = t1r - t3r, d13i = t1i - t3i;
    const int h = HALVE ? 1 : 0;
    STORE_C(pa, 0, (s02r + s13r) >> h, (s02i + s13i) >> h);    // t0 + t1 + t2 + t3
    STORE_C(pa, off, (d02r + d13i) >> h, (d02i - d13r) >> h);  // t0 - i t1 - t2 + i t3
    STORE_C(pb, offb, (s02r - s13r) >> h, (s02i - s13i) >> h);        // t0 - t1 + t2 - t3
    STORE_C(pb, offb + off, (d02r - d13i) >> h, (d02i + d13r) >> h);  // t0 + i t1 - t2 - i t3
}

// Butterflies of the later stages on pa[0], pa[off], pb[offb], pb[offb + off] (pb + offb = pa + 2 off:
// one pointer where the offsets fit an LDRD, two where they do not), whose inputs
// are stored unhalved (x = 2 a + 0 or 1, a = x >> 1); read in the order they are consumed.
static ALWAYS_INLINE void butterfly_plain(int32_t *pa, int32_t *pb, const int32_t off, const int32_t offb,
                                          const int HALVE) {
    int32_t a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i;
    LOAD_C(pb, offb, a2r, a2i);
    LOAD_C(pa, 0, a0r, a0i);
    LOAD_C(pa, off, a1r, a1i);
    LOAD_C(pb, offb + off, a3r, a3i);
    butterfly_out(pa, pb, off, offb, a0r >> 2, a0i >> 2, a1r >> 2, a1i >> 2, a2r >> 2, a2i >> 2, a3r >> 2, a3i >> 2, HALVE);
}

static ALWAYS_INLINE void butterfly_twiddled(int32_t *pa, int32_t *pb, const int32_t off, const int32_t offb,
                                             const uint32_t *w, const int HALVE) {
    int32_t a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i, t1r, t1i, t2r, t2i, t3r, t3i;
    LOAD_C(pb, offb, a2r, a2i);
    CMUL_HALF(a2r >> 1, a2i >> 1, w[1], t2r, t2i);
    LOAD_C(pa, 0, a0r, a0i);
    LOAD_C(pa, off, a1r, a1i);
    CMUL_HALF(a1r >> 1, a1i >> 1, w[0], t1r, t1i);
    LOAD_C(pb, offb + off, a3r, a3i);
    CMUL_HALF(a3r >> 1, a3i >> 1, w[2], t3r, t3i);
    butterfly_out(pa, pb, off, offb, a0r >> 2, a0i >> 2, t1r, t1i, t2r, t2i, t3r, t3i, HALVE);
}

// One radix-4 stage of span 4q over z[0 .. m) with the stage's twiddles tw = (W^j, W^2j, W^3j) for
// j = 1 .. q-1, W = exp(-2 pi i / 4q). q and HALVE are constants where inlined, so the strides are too.
static ALWAYS_INLINE void radix4_stage(int32_t *z, int32_t m, const uint32_t *tw, const int32_t q, const int HALVE) {
    const int two = q >= 64;  // p[3 off] is 24 q bytes away: beyond LDRD's reach (1020) from q = 64 on
    const int32_t off = 2 * q, offb = two ? 0 : 2 * off;
    for (int32_t g = 0; g < m; g += 4 * q) {
        int32_t *pa = &z[2 * g], *pb = two ? pa + 2 * off : pa;
        butterfly_plain(pa, pb, off, offb, HALVE);
        const uint32_t *w = tw, *const w_end = tw + 3 * (q - 1);
#pragma GCC unroll 3
        for (; w < w_end; w += 3) {
            pa += 2;
            if (two) {
                pb += 2;
            } else {
                pb = pa;
            }
            butterfly_twiddled(pa, pb, off, offb, w, HALVE);
        }
    }
}

// Step 1 for one sample, halved (the first stage's untwiddled input): v = frame * window, then
// v * 2^(s - 1), or (v + round) >> (1 - s) (= ((v + round) >> -s) >> 1).
static ALWAYS_INLINE int32_t halve_scaled(int32_t v, int32_t s) {
    return s >= 1 ? (int32_t)((uint32_t)v << (s - 1)) : (v + (s < 0 ? 1 << (-s - 1) : 0)) >> (1 - s);
}

// The first stage: group n0 takes the complex points n0 + q m/4 (q = 0..3) and writes to
// z[digitrev[n0] ..] (digitrev[n0] = 4 rev_{p-1}(n0)). Groups [0, n4) have all four points inside the
// window, [n4, n3) the first three (the fourth is zero padding); LEFT: s >= 1.
static ALWAYS_INLINE void first_stage_fast(int32_t *z, const int16_t *frame, const int16_t *win, const uint8_t *rev,
                                           const int32_t quarter, int32_t n4, int32_t n3, int32_t s, const int LEFT) {
    const int32_t ls = s - 1, rs = 1 - s, rnd = s < 0 ? 1 << (-s - 1) : 0;
    const int32_t step = 2 * quarter;  // samples between the group's points
#define KWS_SCALED(v) (LEFT ? (int32_t)((uint32_t)(v) << ls) : ((v) + rnd) >> rs)
#pragma GCC unroll 2
    for (int32_t n0 = 0; n0 < n4; n0++) {
        const int16_t *f = frame + 2 * n0, *w = win + 2 * n0;
        uint32_t fv = load_pair(f), wv = load_pair(w);
        const int32_t t0r = KWS_SCALED(MUL_BB(fv, wv)), t0i = KWS_SCALED(MUL_TT(fv, wv));
        fv = load_pair(f + 2 * step);
        wv = load_pair(w + 2 * step);
        const int32_t t2r = KWS_SCALED(MUL_BB(fv, wv)), t2i = KWS_SCALED(MUL_TT(fv, wv));
        fv = load_pair(f + step);
        wv = load_pair(w + step);
        const int32_t t1r = KWS_SCALED(MUL_BB(fv, wv)), t1i = KWS_SCALED(MUL_TT(fv, wv));
        fv = load_pair(f + 3 * step);
        wv = load_pair(w + 3 * step);
        const int32_t t3r = KWS_SCALED(MUL_BB(fv, wv)), t3i = KWS_SCALED(MUL_TT(fv, wv));
        butterfly_out(&z[2 * rev[n0]], &z[2 * rev[n0]], 2, 4, t0r, t0i, t1r, t1i, t2r, t2i, t3r, t3i, 0);
    }
#pragma GCC unroll 2
    for (int32_t n0 = n4; n0 < n3; n0++) {
        const int16_t *f = frame + 2 * n0, *w = win + 2 * n0;
        uint32_t fv = load_pair(f), wv = load_pair(w);
        const int32_t t0r = KWS_SCALED(MUL_BB(fv, wv)), t0i = KWS_SCALED(MUL_TT(fv, wv));
        fv = load_pair(f + 2 * step);
        wv = load_pair(w + 2 * step);
        const int32_t t2r = KWS_SCALED(MUL_BB(fv, wv)), t2i = KWS_SCALED(MUL_TT(fv, wv));
        fv = load_pair(f + step);
        wv = load_pair(w + step);
        const int32_t t1r = KWS_SCALED(MUL_BB(fv, wv)), t1i = KWS_SCALED(MUL_TT(fv, wv));
        butterfly_out(&z[2 * rev[n0]], &z[2 * rev[n0]], 2, 4, t0r, t0i, t1r, t1i, t2r, t2i, 0, 0, 0);
    }
#undef KWS_SCALED
}

typedef uint32_t __attribute__((may_alias)) kws_frontend_word_t;  // two int16 samples

// Copies 4 words from s to d, both advanced by 4 words, and leaves them in v0 .. v3 (in some order).
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__OPTIMIZE__)
#define COPY4_WORDS(d, s, v0, v1, v2, v3)                                                               \
    __asm__ volatile("ldrd %0, %1, [%4, #8]\n\tldrd %2, %3, [%4], #16\n\t"                            \
                     "strd %0, %1, [%5, #8]\n\tstrd %2, %3, [%5], #16"                                  \
                     : "=&r"(v0), "=&r"(v1), "=&r"(v2), "=&r"(v3), "+r"(s), "+r"(d) : : "memory")
#else
#define COPY4_WORDS(d, s, v0, v1, v2, v3)                                                               \
    do {                                                                                                \
        (v0) = (s)[0], (v1) = (s)[1], (v2) = (s)[2], (v3) = (s)[3];                                     \
        (d)[0] = (v0), (d)[1] = (v1), (d)[2] = (v2), (d)[3] = (v3);                                     \
        (s) += 4, (d) += 4;                                                                             \
    } while (0)
#endif

uint32_t kws_frontend_copy_peak_bits(int16_t *dst, const int16_t *src, int32_t n) {
    // |x| OR-ed per lane, 8 samples a step when both are word aligned; then the two lanes
    uint32_t acc = 0;
    int32_t i = 0;
    if (((((uintptr_t)dst) | ((uintptr_t)src)) & 3u) == 0) {
        const uint32_t zero = 0;
        const kws_frontend_word_t *s4 = (const kws_frontend_word_t *)(const void *)src;
        kws_frontend_word_t *d4 = (kws_frontend_word_t *)(void *)dst;
        for (; i + 7 < n; i += 8) {
            uint32_t v0, v1, v2, v3;
            COPY4_WORDS(d4, s4, v0, v1, v2, v3);
            ABS16_OR(v0, zero, acc);
            ABS16_OR(v1, zero, acc);
            ABS16_OR(v2, zero, acc);
            ABS16_OR(v3, zero, acc);
        }
    }
    acc = (acc & 0xFFFFu) | (acc >> 16);
    for (; i < n; i++) {
        const int32_t v = src[i];
        dst[i] = (int16_t)v;
        acc |= (uint32_t)(v < 0 ? -v : v);
    }
    return acc;
}

uint32_t kws_frontend_peak(const int16_t *x, int32_t n) {
    // the largest and the smallest sample, two lanes at a time
    uint32_t mx = 0x80008000u, mn = 0x7FFF7FFFu;
    int32_t i = 0;
    for (; i + 3 < n; i += 4) {
        const uint32_t a = load_pair(x + i), b = load_pair(x + i + 2);
        MAX_MIN16(a, mx, mn);
        MAX_MIN16(b, mx, mn);
    }
    int32_t hi = (int16_t)(mx & 0xFFFFu), lo = (int16_t)(mn & 0xFFFFu);
    hi = (int16_t)(mx >> 16) > hi ? (int16_t)(mx >> 16) : hi;
    lo = (int16_t)(mn >> 16) < lo ? (int16_t)(mn >> 16) : lo;
    for (; i < n; i++) {
        hi = x[i] > hi ? x[i] : hi;
        lo = x[i] < lo ? x[i] : lo;
    }
    return n > 0 ? (uint32_t)(hi > -lo ? hi : -lo) : 0;
}

int32_t kws_frontend_spectrum(const kws_frontend_config_t *cfg, const int16_t *frame, kws_frontend_scratch_t *scratch) {
    return kws_frontend_spectrum_peak(cfg, frame, kws_frontend_peak(frame, cfg->window_samples), scratch);
}

int32_t kws_frontend_spectrum_peak(const kws_frontend_config_t *cfg, const int16_t *frame, uint32_t peak,
                                   kws_frontend_scratch_t *scratch) {
    const int32_t m = cfg->fft_size / 2;
    const int32_t n = cfg->window_samples;
    int32_t *z = scratch->fft;
    const int16_t *win = cfg->window;
    const uint8_t *rev = cfg->digitrev;

    // 1. block scaling from the frame's peak.
    const int32_t s = peak ? 13 - (31 - __builtin_clz(peak)) : 13;  // silent: as for a peak of 1

    // 2a. first stage (quarter 1) from the windowed frame; outputs stored unhalved.
    const int32_t quarter = m / 4;
    const int32_t full = n / 2;            // complex points with both samples inside the window
    const int32_t used = (n + 1) / 2;      // complex points with any sample inside
    int32_t n4 = full - 3 * quarter;       // groups n0 < n4: all four points inside
    n4 = n4 < 0 ? 0 : (n4 > quarter ? quarter : n4);
    int32_t n3 = n4;                       // groups n4 <= n0 < n3: three inside, the fourth zero
    if (used == full && full >= 3 * quarter) {
        n3 = full - 2 * quarter;
        n3 = n3 > quarter ? quarter : n3;
    }
    // (quarter as a constant: the four points are at constant offsets from the group's first)
    if (s >= 1) {
        if (quarter == 64) {
            first_stage_fast(z, frame, win, rev, 64, n4, n3, s, 1);
        } else if (quarter == 16) {
            first_stage_fast(z, frame, win, rev, 16, n4, n3, s, 1);
        } else {
            first_stage_fast(z, frame, win, rev, 4, n4, n3, s, 1);
        }
    } else {
        if (quarter == 64) {
            first_stage_fast(z, frame, win, rev, 64, n4, n3, s, 0);
        } else if (quarter == 16) {
            first_stage_fast(z, frame, win, rev, 16, n4, n3, s, 0);
        } else {
            first_stage_fast(z, frame, win, rev, 4, n4, n3, s, 0);
        }
    }
    for (int32_t n0 = n3; n0 < quarter; n0++) {
        int32_t t[8];
        for (int32_t q = 0; q < 4; q++) {
            const int32_t j = 2 * (n0 + q * quarter);
            t[2 * q] = j < n ? halve_scaled((int32_t)frame[j] * win[j], s) : 0;
            t[2 * q + 1] = j + 1 < n ? halve_scaled((int32_t)frame[j + 1] * win[j + 1], s) : 0;
        }
        butterfly_out(&z[2 * rev[n0]], &z[2 * rev[n0]], 2, 4, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], 0);
    }
    // 2b. the other stages, span 16, 64, 256; the last one stores halved (true) values.
    const uint32_t *tw = (const uint32_t *)cfg->fft_twiddle;
    for (int32_t q = 4; q < m; q *= 4) {
        const int last = 4 * q == m;
        if (q == 4) {
            if (last) {
                radix4_stage(z, m, tw, 4, 1);
            } else {
                radix4_stage(z, m, tw, 4, 0);
            }
        } else if (q == 16) {
            if (last) {
                radix4_stage(z, m, tw, 16, 1);
            } else {
                radix4_stage(z, m, tw, 16, 0);
            }
        } else {
            radix4_stage(z, m, tw, 64, 1);  // m <= 256: always the last
        }
        tw += 3 * (q - 1);
    }

    // 3-4. split step and magnitudes of the bins the mel bands use; bins k and m - k together
    // where both are used (they share A and D up to sign).
    const uint32_t *wk = (const uint32_t *)cfg->twiddle;
    uint32_t *mag = scratch->mag;
    int32_t blo = cfg->bin_lo, bhi = cfg->bin_hi;
    if (blo == 0) {
        mag[0] = magnitude(z[0] + z[1], 0);
        blo = 1;
    }
    if (bhi == m) {
        mag[m] = magnitude(z[0] - z[1], 0);
        bhi = m - 1;
    }
    // pairs (k, m - k) for k in [plo, phi]; the other bins one by one
    int32_t plo = blo > m - bhi ? blo : m - bhi;
    int32_t phi = m / 2 - 1;
    phi = phi < bhi ? phi : bhi;
    phi = phi < m - blo ? phi : m - blo;
    if (plo > phi) {
        plo = phi = -1;  // no pairs
    }
    for (int32_t k = blo; k <= bhi; k++) {
        if (k == plo) {
            // k indexes twiddles and magnitudes from the bottom, m - k from the top: one index
            for (int32_t i = plo; i <= phi; i++) {
                int32_t zr, zi, cr, ci;
                LOAD_C(&z[2 * i], 0, zr, zi);
                LOAD_C(&z[2 * (m - i)], 0, cr, ci);
                const int32_t nr = zi + ci, ni = cr - zr, nic = zr - cr;
                const int32_t a = (zr + cr) >> 1;
                int32_t tr, ti, ur, ui;
                CMUL_HALF(nr, ni, wk[i], tr, ti);
                mag[i] = magnitude(a + tr, ((zi - ci) >> 1) + ti);
                CMUL_HALF(nr, nic, wk[m - i], ur, ui);
                mag[m - i] = magnitude(a + ur, ((ci - zi) >> 1) + ui);
            }
            k = phi;
            continue;
        }
        if (plo >= 0 && k == m - phi) {
            k = m - plo;  // done with their pairs
            continue;
        }
        int32_t zr, zi, cr, ci;
        LOAD_C(&z[2 * k], 0, zr, zi);
        LOAD_C(&z[2 * (m - k)], 0, cr, ci);
        const int32_t nr = zi + ci, ni = cr - zr;  // -i (Z[k] - conj Z[m-k])
        int32_t tr, ti;
        CMUL_HALF(nr, ni, wk[k], tr, ti);
        mag[k] = magnitude(((zr + cr) >> 1) + tr, ((zi - ci) >> 1) + ti);
    }
    return s;
}
