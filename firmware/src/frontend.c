// The kws frontend: framing, windowing, mel filterbank, log, DCT and int8 output (see frontend.h).
// Integer only; the same file is built into the firmware and into the host library.
#include "kws/frontend.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KWS_LN2_Q31 1488522236  // round(ln(2) * 2^31)

static int is_pow4(int32_t v) {
    return v > 0 && (v & (v - 1)) == 0 && (v & 0x55555555) != 0;
}

int kws_frontend_init(kws_frontend_t *fe, const kws_frontend_config_t *cfg) {
    if (!is_pow4(cfg->fft_size / 2) || cfg->fft_size < 32 || cfg->fft_size > KWS_FRONTEND_MAX_FFT ||
        cfg->fft_size > 512 || cfg->bin_lo < 0 || cfg->bin_hi > cfg->fft_size / 2 || cfg->bin_lo > cfg->bin_hi || cfg->window_samples < 1 || cfg->window_samples > cfg->fft_size ||
        cfg->hop_samples < 1 || cfg->num_mel < 1 || cfg->num_mel > KWS_FRONTEND_MAX_MEL || cfg->num_coeffs < 0 || cfg->num_coeffs > cfg->num_mel ||
        (cfg->num_coeffs > 0 && cfg->out_matrix == NULL) || cfg->fft_twiddle == NULL ||
        cfg->mel_seg_start[0] != cfg->bin_lo || cfg->mel_seg_start[cfg->num_mel + 1] != cfg->bin_hi + 1) {
        return -1;
    }
    int32_t hops = (cfg->window_samples + cfg->hop_samples - 1) / cfg->hop_samples;
    if ((int64_t)hops * cfg->hop_samples > KWS_FRONTEND_MAX_HISTORY) {
        return -1;
    }
    fe->cfg = cfg;
    fe->history_samples = hops * cfg->hop_samples;
    kws_frontend_reset(fe);
    kws_frontend_set_norm_max(fe, 32768);
    return 0;
}

void kws_frontend_reset(kws_frontend_t *fe) {
    fe->samples_seen = 0;
    fe->hop_peak = 0;
    memset(fe->history, 0, sizeof(fe->history));
}

#define ALWAYS_INLINE inline __attribute__((always_inline))

// x >> 16 saturated to [-128, 127]: one SSAT on Cortex-M, the same clamp in C elsewhere.
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
static ALWAYS_INLINE int32_t sat8_asr16(int32_t x) {
    int32_t r;
    __asm__("ssat %0, #8, %1, asr #16" : "=r"(r) : "r"(x) : "cc");
    return r;
}
#define SAT8_ASR16(x) sat8_asr16(x)
#else
#define SAT8_ASR16(x) ((x) >> 16 > 127 ? 127 : ((x) >> 16 < -128 ? -128 : (x) >> 16))
#endif

// (a * b + 2^31) >> 32, the rounded high word of a signed product: one SMMULR on Cortex-M.
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static ALWAYS_INLINE int32_t mulhi_round(int32_t a, int32_t b) {
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#define MULHI_ROUND(a, b) mulhi_round((a), (b))
#else
#define MULHI_ROUND(a, b) ((int32_t)(((int64_t)(a) * (b) + ((int64_t)1 << 31)) >> 32))
#endif

// log2(u) in Q24 for u > 0: the exponent from the leading bit, the fraction by linear
// interpolation in cfg->log2_table over the next 8 + 23 bits. (The table increases, so the
// interpolation step is a 32 x 32 -> high 32 unsigned product: (d * rem) >> 23 = (d * (rem << 9)) >> 32.)
static ALWAYS_INLINE int32_t log2_q24(const int32_t *table, uint64_t u) {
    const uint32_t hi = (uint32_t)(u >> 32), lo = (uint32_t)u;
    int32_t n;
    uint32_t m;  // u normalized to [2^31, 2^32)
    if (hi != 0) {
        const int32_t c = __builtin_clz(hi);
        n = 63 - c;
        m = (hi << c) | ((lo >> 1) >> (31 - c));
    } else {
        const int32_t c = __builtin_clz(lo);
        n = 31 - c;
        m = lo << c;
    }
    const uint32_t idx = (m >> 23) & 0xFFu;
    const int32_t t0 = table[idx], t1 = table[idx + 1];
    const int32_t frac = t0 + (int32_t)(((uint64_t)(uint32_t)(t1 - t0) * (m << 9)) >> 32);
    return n * (1 << 24) + frac;
}

// 2 (log2_q24(table, u) - 63 * 2^24) + k2 (mod 2^32), the same interpolation as log2_q24: for the mel
// pass, which wants 2 (log2 - offset) and passes k2 = 2 (63 * 2^24 - offset).
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static ALWAYS_INLINE uint32_t lsr32(uint32_t x, int32_t n) {  // x >> n for n in [0, 32] (32 gives 0)
    uint32_t r;
    __asm__("lsr %0, %1, %2" : "=r"(r) : "r"(x), "r"(n));
    return r;
}
#define LSR32(x, n) lsr32((x), (n))
#else
#define LSR32(x, n) ((n) < 32 ? (x) >> (n) : 0u)
#endif
static ALWAYS_INLINE uint32_t log2_x2_plus(const int32_t *table, uint64_t u, uint32_t k2) {
    uint32_t hi = (uint32_t)(u >> 32), lo = (uint32_t)u;
    if (hi == 0) {  // u = lo * 2^0: as hi = lo, lo = 0 with 32 more leading zeros
        hi = lo;
        lo = 0;
        k2 -= 32u << 25;
    }
    const int32_t c = __builtin_clz(hi);
    const uint32_t m = (hi << c) | LSR32(lo, 32 - c);  // u normalized to [2^31, 2^32)
    const uint32_t idx = (m >> 23) & 0xFFu;
    const int32_t t0 = table[idx], t1 = table[idx + 1];
    const uint32_t frac = (uint32_t)t0 + (uint32_t)(((uint64_t)(uint32_t)(t1 - t0) * (m << 9)) >> 32);
    return k2 - ((uint32_t)c << 25) + 2 * frac;
}

void kws_frontend_set_norm_max(kws_frontend_t *fe, int32_t max_sample) {
    if (fe->cfg->normalize != KWS_FRONTEND_NORM_CLIP_MAX) {
        max_sample = 32768;
    }
    if (max_sample <= 0) {
        max_sample = 1;
    }
    fe->norm_max = max_sample;
    fe->log2_norm_q24 = log2_q24(fe->cfg->log2_table, (uint64_t)max_sample);
}

int32_t kws_frontend_clip_max(const int16_t *pcm, int32_t n) {
    int32_t mx = 0, mag = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t v = pcm[i];
        if (v > mx) {
            mx = v;
        }
        if (-v > mag) {
            mag = -v;
        }
    }
    if (mx > 0) {
        return mx;
    }
    return mag > 0 ? mag : 1;
}

// int8 of v / 2^48 with the preset's rounding and overflow rule: trunc toward zero, or round half
// away from zero (v >= 0 ? (v + h) >> 48 : -((-v + h) >> 48), h = 2^47, which is (v + h - 1) >> 48 for
// v < 0); then wrap modulo 256 or saturate. ROUNDING and OVERFLOW are constants where inlined.
static ALWAYS_INLINE int8_t to_int8(const int32_t ROUNDING, const int32_t OVERFLOW, int64_t v_q48) {
    const int64_t neg = v_q48 >> 63;  // -1 or 0
    const int64_t t = ROUNDING == KWS_FRONTEND_ROUND_TRUNC ? v_q48 + (neg & (((int64_t)1 << 48) - 1))
                                                            : v_q48 + ((int64_t)1 << 47) + neg;
    const int32_t t_hi = (int32_t)(t >> 32);  // q = t >> 48 = t_hi >> 16, |q| <= 2^15
    if (OVERFLOW == KWS_FRONTEND_WRAP) {
        return (int8_t)(uint8_t)((uint32_t)(t_hi >> 16) & 0xFFu);
    }
    return (int8_t)SAT8_ASR16(t_hi);
}

// Log-mel rows: row[b] = int8(zp + gain * ln[b]) (the output matrix is gain times the identity).
// ROUNDING and OVERFLOW are constants where inlined.
static ALWAYS_INLINE void logmel_row(int8_t *row, const int32_t *ln_q24, int32_t num_mel, int64_t zp_q48,
                                     int32_t gain_q24, const int32_t ROUNDING, const int32_t OVERFLOW) {
    for (int32_t b = 0; b < num_mel; b++) {
        row[b] = to_int8(ROUNDING, OVERFLOW, zp_q48 + (int64_t)gain_q24 * ln_q24[b]);
    }
}

// MFCC rows: row[j] = int8(zp + sum_b mat[j][b] ln[b]).
static ALWAYS_INLINE void dct_row(int8_t *row, const int32_t *ln_q24, const int32_t *mat, int32_t num_coeffs,
                                  int32_t num_mel, int64_t zp_q48, const int32_t ROUNDING, const int32_t OVERFLOW) {
    for (int32_t j = 0; j < num_coeffs; j++) {
        int64_t acc = zp_q48;
#pragma GCC unroll 4
        for (int32_t b = 0; b < num_mel; b++) {
            acc += (int64_t)mat[b] * ln_q24[b];
        }
        mat += num_mel;
        row[j] = to_int8(ROUNDING, OVERFLOW, acc);
    }
}

// The low (HIGH = 0) or high (HIGH = 1) half-word of *w: one halfword load where the memory order
// allows it (little-endian), rather than a word load and a shift or mask.
static ALWAYS_INLINE uint32_t weight_half(const uint32_t *w, const int HIGH) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t h;
    memcpy(&h, (const unsigned char *)w + 2 * HIGH, sizeof(h));
    return h;
#else
    return HIGH ? *w >> 16 : *w & 0xFFFFu;
#endif
}

// One frame: history[0 .. window) -> one row.
static void frame_to_row(kws_frontend_t *fe, int8_t *row, uint32_t peak, kws_frontend_scratch_t *scratch) {
    const kws_frontend_config_t *cfg = fe->cfg;
    const int32_t s = kws_frontend_spectrum_peak(cfg, fe->history, peak, scratch);

    // mag = |X| of (pcm * window_q15 * 2^s) / m (m = fft_size / 2, the half-size FFT's scaling), so
    // mel_int = mel(pcm units) * 2^(30 + s - log2 m) with Q15 mel weights. In the log:
    // ln(mel / norm + floor) = ln(mel_int + floor * norm * 2^e) - e ln 2 - ln norm, e = 30 + s - log2 m.
    const int32_t e = 30 + s - (31 - __builtin_clz((uint32_t)(cfg->fft_size / 2)));
    // log_floor_q52 * norm * 2^(e - 52). Since |pcm| <= norm (clip_max) or norm = 32768 (fixed),
    // s >= 13 - log2(norm) and this term keeps at least 15 significant bits.
    const int32_t shift = 52 - e;
    const uint64_t floor_prod = cfg->log_floor_q52 * (uint32_t)fe->norm_max;
    const uint64_t floor_term = shift >= 0 ? floor_prod >> shift : floor_prod << (-shift);
    const int32_t offset_q24 = e * (1 << 24) + fe->log2_norm_q24;
    int32_t ln_q24[KWS_FRONTEND_MAX_MEL];
    // One pass over the bins: segment u adds into bands u - 1 (acc_lo, complete at the segment's end)
    // and u (acc_hi). Sums of integers, so the order does not matter.
    const uint32_t *w = cfg->mel_pair_weights;
    const uint16_t *seg = cfg->mel_seg_start;
    const uint32_t *x = &scratch->mag[seg[0]];
    const int32_t *log2_table = cfg->log2_table;
    const int32_t num_mel = cfg->num_mel;
    // segment 0: band 0 only (its weights in band -1 are 0)
    uint64_t acc_lo = floor_term, acc_hi;
    for (const uint32_t *const end = &scratch->mag[seg[1]]; x < end; x++, w++) {
        acc_lo += (uint64_t)weight_half(w, 1) * *x;
    }
    const uint32_t k2 = 2u * ((63u << 24) - (uint32_t)offset_q24);
    for (int32_t u = 1; u <= num_mel; u++) {
        acc_hi = floor_term;
        // the segment's bins by one index counting up to 0
        const int32_t nb = seg[u + 1] - seg[u];
        x += nb;
        w += nb;
        for (int32_t k = -nb; k != 0; k++) {
            const uint32_t v = x[k];
            acc_lo += (uint64_t)weight_half(w + k, 0) * v;
            acc_hi += (uint64_t)weight_half(w + k, 1) * v;
        }
        // ln = round(l2 ln 2 / 2^31) = (2 l2 * ln2_q31 + 2^31) >> 32 with l2 = log2 - offset (|2 l2| < 2^31:
        // l2 is in [-54, 44] * 2^24 for every preset the init accepts)
        ln_q24[u - 1] = MULHI_ROUND((int32_t)log2_x2_plus(log2_table, acc_lo, k2), KWS_LN2_Q31);
        acc_lo = acc_hi;
    }
    const int64_t zp_q48 = (int64_t)cfg->out_zero_point * ((int64_t)1 << 48);
    if (cfg->num_coeffs == 0) {
        const int32_t gain = cfg->out_gain_q24;
        if (cfg->rounding == KWS_FRONTEND_ROUND_NEAREST && cfg->overflow == KWS_FRONTEND_SATURATE) {
            logmel_row(row, ln_q24, num_mel, zp_q48, gain, KWS_FRONTEND_ROUND_NEAREST, KWS_FRONTEND_SATURATE);
        } else if (cfg->rounding == KWS_FRONTEND_ROUND_TRUNC && cfg->overflow == KWS_FRONTEND_WRAP) {
            logmel_row(row, ln_q24, num_mel, zp_q48, gain, KWS_FRONTEND_ROUND_TRUNC, KWS_FRONTEND_WRAP);
        } else if (cfg->rounding == KWS_FRONTEND_ROUND_TRUNC) {
            logmel_row(row, ln_q24, num_mel, zp_q48, gain, KWS_FRONTEND_ROUND_TRUNC, KWS_FRONTEND_SATURATE);
        } else {
            logmel_row(row, ln_q24, num_mel, zp_q48, gain, KWS_FRONTEND_ROUND_NEAREST, KWS_FRONTEND_WRAP);
        }
        return;
    }
    const int32_t *mat = cfg->out_matrix;
    const int32_t nc = cfg->num_coeffs;
    if (cfg->rounding == KWS_FRONTEND_ROUND_TRUNC && cfg->overflow == KWS_FRONTEND_WRAP) {
        dct_row(row, ln_q24, mat, nc, num_mel, zp_q48, KWS_FRONTEND_ROUND_TRUNC, KWS_FRONTEND_WRAP);
    } else if (cfg->rounding == KWS_FRONTEND_ROUND_NEAREST && cfg->overflow == KWS_FRONTEND_SATURATE) {
        dct_row(row, ln_q24, mat, nc, num_mel, zp_q48, KWS_FRONTEND_ROUND_NEAREST, KWS_FRONTEND_SATURATE);
    } else if (cfg->rounding == KWS_FRONTEND_ROUND_TRUNC) {
        dct_row(row, ln_q24, mat, nc, num_mel, zp_q48, KWS_FRONTEND_ROUND_TRUNC, KWS_FRONTEND_SATURATE);
    } else {
        dct_row(row, ln_q24, mat, nc, num_mel, zp_q48, KWS_FRONTEND_ROUND_NEAREST, KWS_FRONTEND_WRAP);
    }
}

// Copies n int16 samples from src to dst, front to back (so dst < src may overlap), in 32-byte blocks
// (LDM/STM on Cortex-M) when both are word aligned and `blocks` says no block overlaps its source
// (dst at least 16 samples below src, or the two do not overlap).
typedef struct {
    uint32_t w[8];
} __attribute__((may_alias)) kws_frontend_block_t;

static void copy_forward(int16_t *dst, const int16_t *src, int32_t n, int blocks) {
    if (blocks && ((((uintptr_t)dst) | ((uintptr_t)src)) & 3u) == 0) {
        kws_frontend_block_t *d = (kws_frontend_block_t *)(void *)dst;
        const kws_frontend_block_t *s = (const kws_frontend_block_t *)(const void *)src;
        for (; n >= 16; n -= 16) {
            *d++ = *s++;
        }
        dst = (int16_t *)(void *)d;
        src = (const int16_t *)(const void *)s;
    }
    for (int32_t i = 0; i < n; i++) {
        dst[i] = src[i];
    }
}

int kws_frontend_push(kws_frontend_t *fe, const int16_t *hop, int8_t *row, kws_frontend_scratch_t *scratch) {
    const int32_t h = fe->cfg->hop_samples, total = fe->history_samples, w = fe->cfg->window_samples;
    copy_forward(fe->history, fe->history + h, total - h, h >= 16);
    // The frame's peak from the peaks of its hops where the window spans at most two: the frame is
    // the previous hop and the new hop's first w - h samples. Only its leading bit matters (the block
    // scaling), so peaks here are ORs of |sample| (the leading bit of an OR is the largest one's).
    uint32_t peak = 0;
    if (total == 2 * h) {
        int16_t *dst = fe->history + h;
        const uint32_t head = kws_frontend_copy_peak_bits(dst, hop, w - h);
        const uint32_t tail = kws_frontend_copy_peak_bits(dst + (w - h), hop + (w - h), 2 * h - w);
        peak = fe->hop_peak | head;
        fe->hop_peak = head | tail;
    } else {
        copy_forward(fe->history + (total - h), hop, h, 1);
        if (total == h) {
            peak = kws_frontend_peak(hop, w);
        }
    }
    if (fe->samples_seen < total) {
        fe->samples_seen += h;
        if (fe->samples_seen < total) {
            return 0;
        }
    }
    if (total != 2 * h && total != h) {
        peak = kws_frontend_peak(fe->history, w);
    }
    frame_to_row(fe, row, peak, scratch);
    return 1;
}

int32_t kws_frontend_clip(kws_frontend_t *fe, const kws_frontend_config_t *cfg, const int16_t *pcm, int32_t n,
                          int8_t *out, int32_t max_rows, kws_frontend_scratch_t *scratch) {
    if (kws_frontend_init(fe, cfg) != 0 || n < 0) {
        return -1;
    }
    const int32_t len = cfg->clip_samples > 0 ? cfg->clip_samples : n;
    const int32_t avail = n < len ? n : len;
    kws_frontend_set_norm_max(fe, kws_frontend_clip_max(pcm, avail));
    const int32_t h = cfg->hop_samples;
    const int32_t row_size = cfg->num_coeffs ? cfg->num_coeffs : cfg->num_mel;
    int16_t hop[KWS_FRONTEND_MAX_HISTORY];
    int32_t rows = 0;
    // Frames need [i h, i h + window) inside the clip: stop after the last hop a frame can end in.
    for (int32_t start = 0; start + h <= len + (fe->history_samples - cfg->window_samples) && rows < max_rows; start += h) {
        for (int32_t i = 0; i < h; i++) {
            int32_t t = start + i;
            hop[i] = t < avail ? pcm[t] : 0;
        }
        if (kws_frontend_push(fe, hop, out + (size_t)rows * row_size, scratch)) {
            int32_t frame_start = start + h - fe->history_samples;
            if (frame_start + cfg->window_samples > len) {
                break;
            }
            rows++;
        }
    }
    return rows;
}
