// Real FFT magnitude for the frontend: a half-size complex radix-2 FFT on interleaved int32 data
// with Q30 twiddles, then the split step that turns it into the spectrum of the real input.
// Exact integer definition (every kernels/<arch>/ replacement must reproduce it bit for bit):
//   complex multiply: (a * w + 2^29) >> 30 per product sum, computed in int64;
//   mag[k] = isqrt_approx(re^2 + im^2) of 2 * X[k] (see kws_isqrt64 below).
#include "kws/frontend.h"

#include <stdint.h>

static inline int32_t mul_q30(int32_t ar, int32_t ai, int32_t wr, int32_t wi, int32_t *out_i) {
    int64_t re = (int64_t)ar * wr - (int64_t)ai * wi;
    int64_t im = (int64_t)ar * wi + (int64_t)ai * wr;
    *out_i = (int32_t)((im + (1 << 29)) >> 30);
    return (int32_t)((re + (1 << 29)) >> 30);
}

static inline int clz64(uint64_t u) {
    return __builtin_clzll(u);
}

// sqrt(p) for p < 2^63, within about 1e-6 relative: p is moved into [2^30, 2^32) by an even
// shift, a linear first guess is refined by two Newton steps (32-bit divides), and shifted back.
static uint32_t kws_isqrt64(uint64_t p) {
    if (p == 0) {
        return 0;
    }
    int bits = 64 - clz64(p);             // p in [2^(bits-1), 2^bits)
    int e = (bits - 31) >> 1;             // half of the (even) shift that lands p in [2^30, 2^32)
    if (bits - 31 < 0) {
        e = -((32 - bits) >> 1);
    }
    uint32_t pn = e >= 0 ? (uint32_t)(p >> (2 * e)) : (uint32_t)(p << (-2 * e));
    uint32_t g = ((pn >> 15) + 65536u) / 3u;  // sqrt(x) ~ (x + 2) / 3 on [1, 4), scaled by 2^15
    g = (g + pn / g) >> 1;
    g = (g + pn / g) >> 1;
    if (e >= 0) {
        return g << e;
    }
    return (g + (1u << (-e - 1))) >> (-e);
}

void kws_frontend_rfft_mag(const kws_frontend_config_t *cfg, kws_frontend_scratch_t *scratch) {
    const int32_t n_real = cfg->fft_size;
    const int32_t m = n_real / 2;  // complex points
    int32_t *z = scratch->fft;     // z[2i] = re, z[2i + 1] = im of point i

    for (int32_t i = 0; i < m; i++) {
        int32_t j = cfg->bitrev[i];
        if (j > i) {
            int32_t tr = z[2 * i], ti = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = tr;
            z[2 * j + 1] = ti;
        }
    }
    // Twiddle k of the table is exp(-2 pi i k / n_real); a span-`half` stage of the m-point FFT
    // uses exp(-2 pi i j / (2 half)) = table[j * n_real / (2 half)].
    for (int32_t half = 1; half < m; half *= 2) {
        const int32_t step = n_real / (2 * half);
        for (int32_t start = 0; start < m; start += 2 * half) {
            for (int32_t j = 0; j < half; j++) {
                int32_t *a = &z[2 * (start + j)];
                int32_t *b = &z[2 * (start + j + half)];
                const int32_t *w = &cfg->twiddle[2 * (j * step)];
                int32_t ti;
                int32_t tr = j == 0 ? b[0] : mul_q30(b[0], b[1], w[0], w[1], &ti);
                if (j == 0) {
                    ti = b[1];
                }
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] = a[0] + tr;
                a[1] = a[1] + ti;
            }
        }
    }
    // Split step: 2 X[k] = (Z[k] + conj Z[m-k]) - i W^k (Z[k] - conj Z[m-k]), W = exp(-2 pi i / n_real).
    uint32_t *mag = scratch->mag;
    {
        int64_t x0 = (int64_t)z[0] + z[1];
        int64_t xm = (int64_t)z[0] - z[1];
        mag[0] = kws_isqrt64((uint64_t)(4 * x0 * x0));
        mag[m] = kws_isqrt64((uint64_t)(4 * xm * xm));
    }
    for (int32_t k = 1; k < m; k++) {
        int32_t zr = z[2 * k], zi = z[2 * k + 1];
        int32_t cr = z[2 * (m - k)], ci = z[2 * (m - k) + 1];
        int32_t ar = zr + cr, ai = zi - ci;            // Z[k] + conj Z[m-k]
        int32_t nr = zi + ci, ni = cr - zr;            // -i (Z[k] - conj Z[m-k])
        int32_t ti;
        int32_t tr = mul_q30(nr, ni, cfg->twiddle[2 * k], cfg->twiddle[2 * k + 1], &ti);
        int64_t re = (int64_t)ar + tr;
        int64_t im = (int64_t)ai + ti;
        mag[k] = kws_isqrt64((uint64_t)(re * re) + (uint64_t)(im * im));
    }
}
