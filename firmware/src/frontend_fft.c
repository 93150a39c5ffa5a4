// Windowed real-FFT magnitude for the frontend (see kws_frontend_spectrum in frontend.h).
//
// Exact integer definition, the same on every target (host and Cortex-M produce the same bytes):
//  1. s = 13 - floor(log2(max |frame|)) (13 for a silent frame), so |frame * window * 2^s| <= 2^29.
//     v[n] = frame[n] * window[n] (Q15) scaled by 2^s (rounding right shift when s < 0), zero past
//     window_samples, read as m = fft_size/2 complex points z[n] = v[2n] + i v[2n+1], stored in
//     base-4 digit-reversed order.
//  2. A radix-4 decimation-in-time FFT of m = 4^p points with Q15 twiddles. Each stage scales by
//     1/4: twiddled inputs are (a * w) >> 16 per product (floor), the untwiddled one a >> 1, and the
//     four-point sums are shifted right by 1. So Z = DFT(z) / m, up to rounding.
//  3. Split step: X[k] = (A >> 1) + ((-i D) W^k) >> 16-products, A = Z[k] + conj Z[m-k],
//     D = Z[k] - conj Z[m-k], W = exp(-2 pi i / fft_size); X[0] = Re Z0 + Im Z0, X[m] = Re Z0 - Im Z0.
//  4. mag[k] = kws_isqrt64(Re X^2 + Im X^2) for k in [cfg->bin_lo, cfg->bin_hi] (other bins untouched).
// On Cortex-M with the DSP extension the (a * w) >> 16 products are single SMULWB/SMULWT
// instructions; elsewhere the same arithmetic in C.
#include "kws/frontend.h"

#include <stdint.h>

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
#define MULW_LO(a, w) mulw_lo((a), (int32_t)(w))
#define MULW_HI(a, w) mulw_hi((a), (int32_t)(w))
#define MLAW_LO(a, w, acc) mlaw_lo((a), (int32_t)(w), (acc))
#else
#define MULW_LO(a, w) ((int32_t)(((int64_t)(a) * (int16_t)((uint32_t)(w) & 0xFFFFu)) >> 16))
#define MULW_HI(a, w) ((int32_t)(((int64_t)(a) * (int16_t)((uint32_t)(w) >> 16)) >> 16))
#define MLAW_LO(a, w, acc) ((acc) + MULW_LO((a), (w)))
#endif

// (a * W) / 2 for complex a and packed twiddle W = cos | (-sin) << 16 (Q15 each).
#define CMUL_HALF(ar, ai, w, outr, outi)                 \
    do {                                                \
        (outr) = MULW_LO((ar), (w)) - MULW_HI((ai), (w)); \
        (outi) = MLAW_LO((ai), (w), MULW_HI((ar), (w)));  \
    } while (0)

// sqrt(p) for p < 2^63, within about 1e-4 relative: p is moved into [2^30, 2^32) by an even
// shift, a two-piece linear first guess (within 1.5 %) is refined by one Newton step (a 32-bit
// divide), and shifted back.
static uint32_t kws_isqrt64(uint64_t p) {
    if (p == 0) {
        return 0;
    }
    int bits = 64 - __builtin_clzll(p);
    int e = bits >= 31 ? (bits - 31) >> 1 : -((32 - bits) >> 1);
    uint32_t pn = e >= 0 ? (uint32_t)(p >> (2 * e)) : (uint32_t)(p << (-2 * e));
    // x = pn / 2^30 in [1, 4): sqrt(x) ~ 0.4142 x + 0.5947 on [1, 2), 0.2929 x + 0.8410 on [2, 4)
    // (chords of sqrt, lifted by half their largest gap), times 2^15.
    uint32_t g = pn < (1u << 31) ? (((pn >> 16) * 54292u) >> 16) + 19487u : (((pn >> 16) * 38391u) >> 16) + 27558u;
    g = (g + pn / g) >> 1;
    if (e >= 0) {
        return g << e;
    }
    return (g + (1u << (-e - 1))) >> (-e);
}

// One radix-4 DIT butterfly on p[0], p[off], p[2 off], p[3 off] (complex, interleaved).
static inline __attribute__((always_inline)) void butterfly4(int32_t *p, int32_t off, int twiddled, uint32_t w1,
                                                             uint32_t w2, uint32_t w3) {
    int32_t *p1 = p + off, *p2 = p1 + off, *p3 = p2 + off;
    int32_t t0r = p[0] >> 1, t0i = p[1] >> 1, t1r, t1i, t2r, t2i, t3r, t3i;
    if (!twiddled) {
        t1r = p1[0] >> 1; t1i = p1[1] >> 1;
        t2r = p2[0] >> 1; t2i = p2[1] >> 1;
        t3r = p3[0] >> 1; t3i = p3[1] >> 1;
    } else {
        CMUL_HALF(p2[0], p2[1], w2, t2r, t2i);
        CMUL_HALF(p1[0], p1[1], w1, t1r, t1i);
        CMUL_HALF(p3[0], p3[1], w3, t3r, t3i);
    }
    const int32_t s02r = t0r + t2r, s02i = t0i + t2i, d02r = t0r - t2r, d02i = t0i - t2i;
    const int32_t s13r = t1r + t3r, s13i = t1i + t3i, d13r = t1r - t3r, d13i = t1i - t3i;
    p[0] = (s02r + s13r) >> 1;  p[1] = (s02i + s13i) >> 1;   // t0 + t1 + t2 + t3
    p1[0] = (d02r + d13i) >> 1; p1[1] = (d02i - d13r) >> 1;  // t0 - i t1 - t2 + i t3
    p2[0] = (s02r - s13r) >> 1; p2[1] = (s02i - s13i) >> 1;  // t0 - t1 + t2 - t3
    p3[0] = (d02r - d13i) >> 1; p3[1] = (d02i + d13r) >> 1;  // t0 + i t1 - t2 - i t3
}

int32_t kws_frontend_spectrum(const kws_frontend_config_t *cfg, const int16_t *frame, kws_frontend_scratch_t *scratch) {
    const int32_t m = cfg->fft_size / 2;
    const int32_t n = cfg->window_samples;
    int32_t *z = scratch->fft;
    const uint32_t *tw = (const uint32_t *)cfg->twiddle;

    // 1. block scaling from the frame's peak, windowing, digit-reversed placement. The highest set
    // bit of the OR of |frame[i]| is that of the peak, which is all s depends on.
    uint32_t bits = 0;
#pragma GCC unroll 8
    for (int32_t i = 0; i < n; i++) {
        int32_t v = frame[i];
        bits |= (uint32_t)(v < 0 ? -v : v);
    }
    const int32_t s = bits ? 13 - (31 - __builtin_clz(bits)) : 13;  // silent: as for a peak of 1
    const int16_t *w = cfg->window;
    const uint8_t *rev = cfg->digitrev;
    const int32_t full = n / 2;  // complex points with both samples inside the window
    if (s >= 0) {
#pragma GCC unroll 4
        for (int32_t i = 0; i < full; i++) {
            int32_t *dst = &z[2 * rev[i]];
            dst[0] = (int32_t)((uint32_t)((int32_t)frame[2 * i] * w[2 * i]) << s);
            dst[1] = (int32_t)((uint32_t)((int32_t)frame[2 * i + 1] * w[2 * i + 1]) << s);
        }
    } else {
        const int32_t r = 1 << (-s - 1);
#pragma GCC unroll 4
        for (int32_t i = 0; i < full; i++) {
            int32_t *dst = &z[2 * rev[i]];
            dst[0] = ((int32_t)frame[2 * i] * w[2 * i] + r) >> (-s);
            dst[1] = ((int32_t)frame[2 * i + 1] * w[2 * i + 1] + r) >> (-s);
        }
    }
    for (int32_t i = full; i < m; i++) {
        int32_t *dst = &z[2 * rev[i]];
        int32_t re = 2 * i < n ? (int32_t)frame[2 * i] * w[2 * i] : 0;  // odd window: one sample left
        dst[0] = s >= 0 ? (int32_t)((uint32_t)re << s) : (re + (1 << (-s - 1))) >> (-s);
        dst[1] = 0;
    }
    // 2. radix-4 stages; the span-L stage uses W_L^(j q) = table[j q fft_size / L], q = 1, 2, 3.
    for (int32_t quarter = 1; quarter < m; quarter *= 4) {
        const int32_t step = cfg->fft_size / (4 * quarter);
        for (int32_t g = 0; g < m; g += 4 * quarter) {
            int32_t *p = &z[2 * g];
            butterfly4(p, 2 * quarter, 0, 0, 0, 0);
            const uint32_t *w1 = tw, *w2 = tw, *w3 = tw;
            for (int32_t j = 1; j < quarter; j++) {
                p += 2;
                w1 += step;
                w2 += 2 * step;
                w3 += 3 * step;
                butterfly4(p, 2 * quarter, 1, *w1, *w2, *w3);
            }
        }
    }
    // 3-4. split step and magnitudes of the bins the mel bands use.
    uint32_t *mag = scratch->mag;
    int32_t lo = cfg->bin_lo, hi = cfg->bin_hi;
    if (lo == 0) {
        const int32_t x0 = z[0] + z[1];
        mag[0] = kws_isqrt64((uint64_t)((int64_t)x0 * x0));
        lo = 1;
    }
    if (hi == m) {
        const int32_t xm = z[0] - z[1];
        mag[m] = kws_isqrt64((uint64_t)((int64_t)xm * xm));
        hi = m - 1;
    }
    for (int32_t k = lo; k <= hi; k++) {
        const int32_t zr = z[2 * k], zi = z[2 * k + 1];
        const int32_t cr = z[2 * (m - k)], ci = z[2 * (m - k) + 1];
        const int32_t nr = zi + ci, ni = cr - zr;  // -i (Z[k] - conj Z[m-k])
        int32_t tr, ti;
        CMUL_HALF(nr, ni, tw[k], tr, ti);
        const int32_t xr = ((zr + cr) >> 1) + tr;
        const int32_t xi = ((zi - ci) >> 1) + ti;
        mag[k] = kws_isqrt64((uint64_t)((int64_t)xr * xr) + (uint64_t)((int64_t)xi * xi));
    }
    return s;
}
