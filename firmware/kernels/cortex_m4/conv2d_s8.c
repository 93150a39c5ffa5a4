// CONV_2D, int8, per-channel, for Cortex-M4 (DSP extension). Same results as src/nn/conv2d_s8.c.
//
// With p->packed (written by `kws compile --target cortex-m4`, see ops_nn.py) the convolution is an
// im2col GEMM: two output pixels at a time are expanded into the scratch buffer as int16
// (input + input_offset; 0 for padding), and each group of four output channels is computed for both
// pixels at once with SMLAD against weights stored as doubled int16. Without it, the portable loops.
//
// Packed layout (int32 words): [KWS_M4_PACK_CONV, mode, K4, groups], then per group of four output
// channels g (channel 4g + j; channels past out_c are zero):
//   16 words: bias2[4] (2 * bias), m[4], c[4] (fast) or shift[4] (generic), e[4] (fast) or 0[4]
//   K4/2 * 4 words: for column word k, the weight words of channels 4g+0..3, each holding the doubled
//   weights of patch values (4(k/2) + (k%2), 4(k/2) + (k%2) + 2) in its (low, high) halves.
// The patch is OHWI order (ky, kx, ic), K = k_h * k_w * in_c values, zero-padded to K4 (multiple of 4).
//
// Scratch: two columns of K4 int16, interleaved word by word (word k of pixel A, then of pixel B):
// 4 * K4 bytes.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn_m4.h"

static int32_t patch_len4(const kws_nn_conv_params *p) {
    return (p->k_h * p->k_w * p->in_c + 3) & ~3;
}

size_t kws_nn_conv2d_s8_buffer_size(const kws_nn_conv_params *p) {
    if (p->packed == NULL) {
        return 0;
    }
    return (size_t)patch_len4(p) * 4u;
}

// Stores value v (int16) at patch index k of the column whose first word is col (every other word).
static inline void put16(int32_t *col, int32_t k, int32_t v) {
    const int16_t h = (int16_t)v;
    char *at = (char *)(col + 2 * (((k >> 2) << 1) | (k & 1))) + ((k & 2) ? 2 : 0);
    memcpy(at, &h, sizeof(h));
}

// The patch of output pixel (oy, ox) of batch input in_b, as (x + input_offset) int16 in the packed
// order, into every other word of col, zero-padded to k4 values.
static void im2col(const kws_nn_conv_params *p, const int8_t *in_b, int32_t oy, int32_t ox, int32_t *col,
                   int32_t k4) {
    const int32_t off = p->input_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xffffu) * 0x10001u);
    const int32_t in_c = p->in_c;
    const int32_t row_len = p->k_w * in_c;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int32_t x_last = x0 + (p->k_w - 1) * p->dilation_w;
    const int row_words = (row_len & 3) == 0;
    const int row_contiguous = row_words && p->dilation_w == 1;
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        const int y_in = y >= 0 && y < p->in_h;
        if (row_words && (!y_in || x_last < 0 || x0 >= p->in_w)) {
            int32_t *dst = col + k;  // k is a multiple of 4: word k/2 of the column, interleaved
            for (int32_t i = 0; i < row_len; i += 4) {
                dst[0] = 0;
                dst[2] = 0;
                dst += 4;
            }
            k += row_len;
        } else if (row_contiguous && x0 >= 0 && x_last < p->in_w) {
            const int8_t *src = in_b + ((size_t)y * p->in_w + x0) * in_c;
            int32_t *dst = col + k;
            for (int32_t i = 0; i < row_len; i += 4) {
                const int32_t v = m4_ld32(src + i);
                dst[0] = m4_sxtab16(off2, v);
                dst[2] = m4_sxtab16_ror8(off2, v);
                dst += 4;
            }
            k += row_len;
        } else {
            for (int32_t kx = 0; kx < p->k_w; kx++) {
                const int32_t x = x0 + kx * p->dilation_w;
                if (y_in && x >= 0 && x < p->in_w) {
                    const int8_t *src = in_b + ((size_t)y * p->in_w + x) * in_c;
                    for (int32_t ic = 0; ic < in_c; ic++) {
                        put16(col, k++, src[ic] + off);
                    }
                } else {
                    for (int32_t ic = 0; ic < in_c; ic++) {
                        put16(col, k++, 0);
                    }
                }
            }
        }
    }
    while (k < k4) {
        put16(col, k++, 0);
    }
}

// Writes the four results of one group (already int8) for one pixel.
static inline void store4(int8_t *out, uint32_t word, int32_t n) {
    if (n >= 4) {
        m4_st32(out, (int32_t)word);
    } else {
        for (int32_t j = 0; j < n; j++) {
            out[j] = (int8_t)(word >> (8 * j));
        }
    }
}

#if KWS_M4_DSP
#define M4_STEP                                                \
    "ldrd %[x], %[y], [%[c]], #8\n\t"                          \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                        \
    "smlad %[a0], %[x], %[w0], %[a0]\n\t"                      \
    "smlad %[b0], %[y], %[w0], %[b0]\n\t"                      \
    "smlad %[a1], %[x], %[w1], %[a1]\n\t"                      \
    "smlad %[b1], %[y], %[w1], %[b1]\n\t"                      \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                        \
    "smlad %[a2], %[x], %[w0], %[a2]\n\t"                      \
    "smlad %[b2], %[y], %[w0], %[b2]\n\t"                      \
    "smlad %[a3], %[x], %[w1], %[a3]\n\t"                      \
    "smlad %[b3], %[y], %[w1], %[b3]\n\t"
#endif

// acc[0..3] (pixel A) and acc[4..7] (pixel B) += the dot products of the two interleaved columns
// (k4 int16 each, k4 a multiple of 4) with the four weight rows of one group; returns the pointer
// past the group's weights. All 14 general registers are in use in the loop, so its end pointer lives
// on the stack.
static inline const int32_t *dot_2x4(const int32_t *col, const int32_t *w, int32_t k4, int32_t acc[8]) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
#if KWS_M4_DSP
    // k4 / 2 word steps (an even number), four per loop turn: enter half-way when it is 2 mod 4.
    int32_t x = (int32_t)(uintptr_t)(col + k4), y = k4 & 4, w0, w1;
    __asm__ volatile(
        "push {%[x]}\n\t"
        "cmp %[y], #0\n\t"
        "bne 2f\n"
        "1:\n\t" M4_STEP M4_STEP
        "2:\n\t" M4_STEP M4_STEP
        "ldr %[x], [sp]\n\t"
        "cmp %[c], %[x]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #4\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b0] "+r"(b0), [b1] "+r"(b1),
          [b2] "+r"(b2), [b3] "+r"(b3), [c] "+r"(col), [w] "+r"(w), [x] "+r"(x), [y] "+r"(y),
          [w0] "=&r"(w0), [w1] "=&r"(w1)
        :
        : "cc", "memory");
#else
    for (int32_t i = 0; i < k4; i += 2) {
        const int32_t x = col[i], y = col[i + 1];
        a0 = m4_smlad(x, w[0], a0);
        b0 = m4_smlad(y, w[0], b0);
        a1 = m4_smlad(x, w[1], a1);
        b1 = m4_smlad(y, w[1], b1);
        a2 = m4_smlad(x, w[2], a2);
        b2 = m4_smlad(y, w[2], b2);
        a3 = m4_smlad(x, w[3], a3);
        b3 = m4_smlad(y, w[3], b3);
        w += 4;
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
    return w;
}

// Both columns against every group of output channels; results to out_a and (if not NULL) out_b.
static void gemm_pair(const kws_nn_conv_params *p, const int32_t *col, int32_t k4, int8_t *out_a, int8_t *out_b) {
    const int32_t *pk = p->packed + 4;
    const int32_t groups = p->packed[3];
    const int fast = p->packed[1] == KWS_M4_RQ_FAST;
    const int clamp_lo = p->act_min > -128, clamp_hi = p->act_max < 127;
    const uint32_t lo4 = m4_splat8(p->act_min), hi4 = m4_splat8(p->act_max);
    for (int32_t g = 0; g < groups; g++) {
        const int32_t *prm = pk;
        int32_t acc[8] = {prm[0], prm[1], prm[2], prm[3], prm[0], prm[1], prm[2], prm[3]};
        pk = dot_2x4(col, pk + 16, k4, acc);
        const int32_t n = p->out_c - 4 * g;
        uint32_t ra, rb;
        if (fast) {
            ra = m4_pack4(m4_requant(acc[0], prm[4], prm[8], prm[12]), m4_requant(acc[1], prm[5], prm[9], prm[13]),
                          m4_requant(acc[2], prm[6], prm[10], prm[14]), m4_requant(acc[3], prm[7], prm[11], prm[15]));
            rb = m4_pack4(m4_requant(acc[4], prm[4], prm[8], prm[12]), m4_requant(acc[5], prm[5], prm[9], prm[13]),
                          m4_requant(acc[6], prm[6], prm[10], prm[14]), m4_requant(acc[7], prm[7], prm[11], prm[15]));
        } else {
            int32_t y[8];
            for (int j = 0; j < 8; j++) {
                y[j] = kws_nn_clamp(kws_nn_requantize(acc[j] >> 1, prm[4 + (j & 3)], prm[8 + (j & 3)]) +
                                        p->output_offset, -128, 127);
            }
            ra = m4_pack4(y[0], y[1], y[2], y[3]);
            rb = m4_pack4(y[4], y[5], y[6], y[7]);
        }
        if (clamp_lo) {
            ra = m4_max8(ra, lo4);
            rb = m4_max8(rb, lo4);
        }
        if (clamp_hi) {
            ra = m4_min8(ra, hi4);
            rb = m4_min8(rb, hi4);
        }
        store4(out_a + 4 * g, ra, n);
        if (out_b != NULL) {
            store4(out_b + 4 * g, rb, n);
        }
    }
}

static void conv_packed(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, void *scratch) {
    const int32_t k4 = patch_len4(p);
    int32_t *col = (int32_t *)scratch;
    const int32_t pixels = p->out_h * p->out_w;
    const size_t in_size = (size_t)p->in_h * p->in_w * p->in_c;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * in_size;
        int32_t oy = 0, ox = 0;
        for (int32_t n = 0; n < pixels; n += 2) {
            im2col(p, in_b, oy, ox, col, k4);
            int8_t *out_a = output + (size_t)n * p->out_c;
            int8_t *out_b = NULL;
            if (++ox == p->out_w) {
                ox = 0;
                oy++;
            }
            if (n + 1 < pixels) {
                im2col(p, in_b, oy, ox, col + 1, k4);
                out_b = out_a + p->out_c;
                if (++ox == p->out_w) {
                    ox = 0;
                    oy++;
                }
            } else {
                for (int32_t i = 0; i < k4; i += 2) {
                    col[i + 1] = 0;
                }
            }
            gemm_pair(p, col, k4, out_a, out_b);
        }
        output += (size_t)pixels * p->out_c;
    }
}

static void conv_portable(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output) {
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t oc = 0; oc < p->out_c; oc++) {
                    const int8_t *f = filter + (size_t)oc * p->k_h * p->k_w * p->in_c;
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
                            const int8_t *px = in_b + ((size_t)y * p->in_w + x) * p->in_c;
                            const int8_t *fk = f + ((size_t)ky * p->k_w + kx) * p->in_c;
                            for (int32_t ic = 0; ic < p->in_c; ic++) {
                                acc += (px[ic] + p->input_offset) * fk[ic];
                            }
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

void kws_nn_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, void *scratch) {
    if (p->packed != NULL && p->packed[0] == KWS_M4_PACK_CONV && scratch != NULL) {
        conv_packed(p, input, output, scratch);
    } else {
        conv_portable(p, input, filter, bias, output);
    }
}
