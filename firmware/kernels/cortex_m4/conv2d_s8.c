// CONV_2D, int8, per-channel, for Cortex-M4 (DSP extension). Same results as src/nn/conv2d_s8.c.
//
// With p->packed (written by `kws compile --target cortex-m4`, see ops_nn.py) the convolution is an
// im2col GEMM: two output pixels at a time are expanded into the scratch buffer as int16
// (input + input_offset; 0 for padding), and each group of four output channels is computed for both
// pixels at once with SMLAD against weights stored as doubled int16. Without it, the portable loops.
//
// Packed layout (int32 words): [KWS_M4_PACK_CONV, mode, K4, groups], then per group of four output
// channels g (channel 4g + j; channels past out_c are zero):
//   8 words: bias2[j] = 2 * bias, twice (the initial accumulators of both pixels)
//   K4/2 * 4 words: for column word k, the weight words of channels 4g+0..3, each holding the doubled
//   weights of patch values (4(k/2) + (k%2), 4(k/2) + (k%2) + 2) in its (low, high) halves
//   12 words: per channel j, (m, c, e) (fast mode, see nn_m4.h) or (m, shift, 0) (generic mode).
// The patch is OHWI order (ky, kx, ic), K = k_h * k_w * in_c values, zero-padded to K4 (multiple of 4).
//
// Scratch: two columns of K4 int16, interleaved word by word (word k of pixel A, then of pixel B):
// 4 * K4 bytes.
//
// Patches that are contiguous input bytes (1x1 without padding; whole input rows when k_w == in_w, as
// in 1-D convolutions over time) are widened straight from the input; runs of evenly spaced ones go
// pair by pair to the assembly GEMM. An odd last pixel goes alone (gemm_1x4_asm) when the assembly
// applies.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn/nn_ref.h"
#include "nn_m4.h"

static int32_t patch_len4(const kws_nn_conv_params *p) {
    return (p->k_h * p->k_w * p->in_c + 3) & ~3;
}

size_t kws_nn_m4_conv_packed_buffer_size(const kws_nn_conv_params *p) {
    return (size_t)patch_len4(p) * 4u;
}

size_t kws_nn_conv2d_s8_buffer_size(const kws_nn_conv_params *p) {
    if (p->packed == NULL) {
        return 0;
    }
    return kws_nn_m4_conv_packed_buffer_size(p);
}

// Stores value v (int16) at patch index k of the column whose first word is col (every other word).
static inline void put16(int32_t *col, int32_t k, int32_t v) {
    const int16_t h = (int16_t)v;
    char *at = (char *)(col + 2 * (((k >> 2) << 1) | (k & 1))) + ((k & 2) ? 2 : 0);
    memcpy(at, &h, sizeof(h));
}

// im2col for patches whose rows are contiguous input bytes (dilation_w == 1, k_w * in_c a multiple of
// 4, input rows of at least 4 bytes): each patch row is row_len bytes starting at byte x0 * in_c of an
// input row of L bytes; its groups of four bytes are, left to right, outside (zero), straddling the
// left edge (load the row's first word, shift in zero-point bytes), inside (load), straddling the
// right edge, outside. The split is the same for every row of the pixel.
__attribute__((noinline)) static void im2col_rows(const kws_nn_conv_params *p, const int8_t *in_b, int32_t oy,
                                                  int32_t ox, int32_t *col, int32_t k4) {
    const int32_t off2 = (int32_t)(((uint32_t)p->input_offset & 0xffffu) * 0x10001u);
    const uint32_t zp4 = m4_splat8(-p->input_offset);  // bytes that expand to 0
    const int32_t L = p->in_w * p->in_c;
    const int32_t groups = (p->k_w * p->in_c) >> 2;
    const int32_t b0 = (ox * p->stride_w - p->pad_left) * p->in_c;  // first byte of the patch row
    // Group g covers bytes [b0 + 4g, b0 + 4g + 4) of the input row.
    int32_t g_lo = b0 >= 0 ? 0 : (3 - b0) >> 2;                    // first group starting at >= 0
    int32_t g_hi = L - b0 >= 4 ? ((L - b0 - 4) >> 2) + 1 : 0;      // past the last group ending <= L
    if (g_lo > groups) {
        g_lo = groups;
    }
    if (g_hi > groups) {
        g_hi = groups;
    }
    if (g_hi < g_lo) {
        g_hi = g_lo;
    }
    // A group straddling the left edge starts at b0 + 4(g_lo - 1) in (-4, 0); the right edge: a group
    // starting at b0 + 4 g_hi in (L - 4, L).
    const int32_t left_at = b0 + 4 * (g_lo - 1);
    const int left = g_lo > 0 && left_at > -4;
    const int32_t right_at = b0 + 4 * g_hi;
    const int right = g_hi < groups && right_at < L && right_at > L - 4 && !(left && g_lo - 1 == g_hi);
    const int32_t zl = g_lo - left, zr = groups - g_hi - right, mid = g_hi - g_lo;
    const int lsh = left ? -8 * left_at : 0;           // bytes to shift in on the left, in bits
    const int rsh = right ? 8 * (right_at - (L - 4)) : 0;
    const uint32_t lfill = left ? zp4 >> (32 - lsh) : 0;
    const uint32_t rfill = right ? zp4 << (32 - rsh) : 0;
    // Rows [ky_lo, ky_hi) are inside the input, the others zero.
    const int32_t dh = p->dilation_h, y0 = oy * p->stride_h - p->pad_top;
    int32_t ky_lo = y0 >= 0 ? 0 : (dh - 1 - y0) / dh;
    int32_t ky_hi = p->in_h - y0 <= 0 ? 0 : (p->in_h - y0 + dh - 1) / dh;
    if (ky_hi > p->k_h) {
        ky_hi = p->k_h;
    }
    if (ky_lo > ky_hi) {
        ky_lo = ky_hi;
    }
    int32_t *dst = col;
    for (int32_t g = ky_lo * groups; g > 0; g--, dst += 4) {
        dst[0] = 0;
        dst[2] = 0;
    }
    const size_t row_step = (size_t)dh * L;
    const int32_t rows = ky_hi - ky_lo;
    const int8_t *row = rows > 0 ? in_b + (ptrdiff_t)(y0 + ky_lo * dh) * L : in_b;
    if (groups == 1 && (left || right || mid == 1)) {
        // One group per row: (load << lsh >> rsh) | fill covers the inside, left and right cases.
        const int8_t *src = row + (left ? 0 : right ? L - 4 : b0);
        const uint32_t fill = lfill | rfill;
        for (int32_t r = 0; r < rows; r++, src += row_step, dst += 4) {
            const int32_t v = (int32_t)((((uint32_t)m4_ld32(src) << lsh) >> rsh) | fill);
            dst[0] = m4_sxtab16(off2, v);
            dst[2] = m4_sxtab16_ror8(off2, v);
        }
    } else if (mid == groups) {
        const int8_t *src = row + b0;
        for (int32_t r = 0; r < rows; r++, src += row_step) {
            for (int32_t g = 0; g < groups; g++, dst += 4) {
                const int32_t v = m4_ld32(src + 4 * g);
                dst[0] = m4_sxtab16(off2, v);
                dst[2] = m4_sxtab16_ror8(off2, v);
            }
        }
    } else {
        for (int32_t r = 0; r < rows; r++, row += row_step) {
            for (int32_t g = 0; g < zl; g++, dst += 4) {
                dst[0] = 0;
                dst[2] = 0;
            }
            if (left) {
                const int32_t v = (int32_t)(((uint32_t)m4_ld32(row) << lsh) | lfill);
                dst[0] = m4_sxtab16(off2, v);
                dst[2] = m4_sxtab16_ror8(off2, v);
                dst += 4;
            }
            const int8_t *src = mid > 0 ? row + b0 + 4 * g_lo : row;
            for (int32_t g = 0; g < mid; g++, dst += 4, src += 4) {
                const int32_t v = m4_ld32(src);
                dst[0] = m4_sxtab16(off2, v);
                dst[2] = m4_sxtab16_ror8(off2, v);
            }
            if (right) {
                const int32_t v = (int32_t)(((uint32_t)m4_ld32(row + L - 4) >> rsh) | rfill);
                dst[0] = m4_sxtab16(off2, v);
                dst[2] = m4_sxtab16_ror8(off2, v);
                dst += 4;
            }
            for (int32_t g = 0; g < zr; g++, dst += 4) {
                dst[0] = 0;
                dst[2] = 0;
            }
        }
    }
    for (int32_t g = (p->k_h - ky_hi) * groups; g > 0; g--, dst += 4) {
        dst[0] = 0;
        dst[2] = 0;
    }
    for (int32_t k = p->k_h * groups * 4; k < k4; k += 4, dst += 4) {
        dst[0] = 0;
        dst[2] = 0;
    }
}

// The patch of output pixel (oy, ox) of batch input in_b, as (x + input_offset) int16 in the packed
// order, into every other word of col, zero-padded to k4 values. Rows of contiguous bytes go to
// im2col_rows; the rest (dilation_w > 1, rows not a multiple of 4 bytes) tap by tap.
static void im2col(const kws_nn_conv_params *p, const int8_t *in_b, int32_t oy, int32_t ox, int32_t *col,
                   int32_t k4) {
    if (p->dilation_w == 1 && ((p->k_w * p->in_c) & 3) == 0 && p->in_w * p->in_c >= 4) {
        im2col_rows(p, in_b, oy, ox, col, k4);
        return;
    }
    const int32_t off = p->input_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xffffu) * 0x10001u);
    const uint32_t zp = (uint32_t)(uint8_t)(int8_t)(-off);  // the byte that expands to 0
    const int32_t in_c = p->in_c;
    const int32_t row_len = p->k_w * in_c;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int32_t x_last = x0 + (p->k_w - 1) * p->dilation_w;
    const int row_words = (row_len & 3) == 0;
    const int32_t in_w = p->in_w;
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        const int y_in = y >= 0 && y < p->in_h;
        const int8_t *src_row = y_in ? in_b + (size_t)y * in_w * in_c : in_b;
        if (row_words && (!y_in || x_last < 0 || x0 >= in_w)) {
            int32_t *dst = col + k;  // k is a multiple of 4: word k/2 of the column, interleaved
            for (int32_t i = 0; i < row_len; i += 4) {
                dst[0] = 0;
                dst[2] = 0;
                dst += 4;
            }
            k += row_len;
        } else if ((in_c & 3) == 0) {
            // Partly in the padding, whole taps of four channels: copy or zero each tap.
            int32_t *dst = col + k;
            for (int32_t kx = 0; kx < p->k_w; kx++) {
                const int32_t x = x0 + kx * p->dilation_w;
                if (x >= 0 && x < in_w) {
                    const int8_t *src = src_row + (size_t)x * in_c;
                    for (int32_t i = 0; i < in_c; i += 4) {
                        const int32_t v = m4_ld32(src + i);
                        dst[0] = m4_sxtab16(off2, v);
                        dst[2] = m4_sxtab16_ror8(off2, v);
                        dst += 4;
                    }
                } else {
                    for (int32_t i = 0; i < in_c; i += 4) {
                        dst[0] = 0;
                        dst[2] = 0;
                        dst += 4;
                    }
                }
            }
            k += row_len;
        } else if (row_words) {
            // Partly in the padding: gather the row's bytes (the zero point outside), four at a time.
            int32_t *dst = col + k;
            uint32_t word = 0;
            int32_t fill = 0;
            for (int32_t kx = 0; kx < p->k_w; kx++) {
                const int32_t x = x0 + kx * p->dilation_w;
                const int inside = x >= 0 && x < in_w;
                const int8_t *src = inside ? src_row + (size_t)x * in_c : src_row;
                for (int32_t ic = 0; ic < in_c; ic++) {
                    const uint32_t b = inside ? (uint32_t)(uint8_t)src[ic] : zp;
                    word |= b << (8 * fill);
                    if (++fill == 4) {
                        dst[0] = m4_sxtab16(off2, (int32_t)word);
                        dst[2] = m4_sxtab16_ror8(off2, (int32_t)word);
                        dst += 4;
                        word = 0;
                        fill = 0;
                    }
                }
            }
            k += row_len;
        } else {
            for (int32_t kx = 0; kx < p->k_w; kx++) {
                const int32_t x = x0 + kx * p->dilation_w;
                if (y_in && x >= 0 && x < in_w) {
                    const int8_t *src = src_row + (size_t)x * in_c;
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

// 1x1 kernels without padding, in_c a multiple of 4: the two pixels' input vectors a and b straight
// into the interleaved columns.
#if KWS_M4_DSP
__attribute__((naked, noinline)) static void im2col_pair_asm(const int8_t *a M4_UNUSED, const int8_t *b M4_UNUSED,
                                                             int32_t *col M4_UNUSED, int32_t n M4_UNUSED,
                                                             int32_t off2 M4_UNUSED) {
    // Eight bytes of each pixel per loop turn; a first step of four when n % 8 == 4.
    __asm__ volatile(
        "push {r4-r10, lr}\n\t"
        "ldr r12, [sp, #32]\n\t"
        "add lr, r0, r3\n\t"
        "tst r3, #4\n\t"
        "beq 1f\n\t"
        "ldr r3, [r0], #4\n\t"
        "ldr r8, [r1], #4\n\t"
        "sxtab16 r4, r12, r3\n\t"
        "sxtab16 r5, r12, r8\n\t"
        "sxtab16 r6, r12, r3, ror #8\n\t"
        "sxtab16 r7, r12, r8, ror #8\n\t"
        "stmia r2!, {r4-r7}\n\t"
        "cmp r0, lr\n\t"
        "beq 2f\n"
        "1:\n\t"
        "ldr r3, [r0], #4\n\t"
        "ldr r9, [r0], #4\n\t"
        "ldr r8, [r1], #4\n\t"
        "ldr r10, [r1], #4\n\t"
        "sxtab16 r4, r12, r3\n\t"
        "sxtab16 r5, r12, r8\n\t"
        "sxtab16 r6, r12, r3, ror #8\n\t"
        "sxtab16 r7, r12, r8, ror #8\n\t"
        "stmia r2!, {r4-r7}\n\t"
        "sxtab16 r4, r12, r9\n\t"
        "sxtab16 r5, r12, r10\n\t"
        "sxtab16 r6, r12, r9, ror #8\n\t"
        "sxtab16 r7, r12, r10, ror #8\n\t"
        "stmia r2!, {r4-r7}\n\t"
        "cmp r0, lr\n\t"
        "bne 1b\n"
        "2:\n\t"
        "pop {r4-r10, pc}\n");
}
#endif

static void im2col_1x1_pair(const int8_t *a, const int8_t *b, int32_t in_c, int32_t off, int32_t *col) {
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xffffu) * 0x10001u);
#if KWS_M4_DSP
    im2col_pair_asm(a, b, col, in_c, off2);
#else
    for (int32_t i = 0; i < in_c; i += 4) {
        const int32_t va = m4_ld32(a + i), vb = m4_ld32(b + i);
        col[0] = m4_sxtab16(off2, va);
        col[1] = m4_sxtab16(off2, vb);
        col[2] = m4_sxtab16_ror8(off2, va);
        col[3] = m4_sxtab16_ror8(off2, vb);
        col += 4;
    }
#endif
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

// The fast case in assembly: every group full (out_c % 4 == 0), fast requantization, no clamp beyond
// int8, both pixels stored. Registers: r0-r3 pixel A accumulators, r4-r7 pixel B, r8/r9 the two column
// words, r10/r11 two weight words, r12 the column pointer, lr the packed pointer; the rest lives in a
// small stack frame: [sp] out_a, [sp+4] out_b, [sp+8] out_a past the last group, [sp+12] column start,
// [sp+16] column end - 256, [sp+20] where each group enters the column steps (Thumb bit set).
// The T = k4 / 2 column word pairs run in two unrolled copies of 32 steps: the last 32 (or all of
// them, T <= 32) in the second copy, which falls through to the requantization; the rest in the
// first, a loop entered part-way when T is not a multiple of 32.
#define M4_STEP                        \
    "ldrd r8, r9, [r12], #8\n\t"       \
    "ldrd r10, r11, [lr], #8\n\t"      \
    "smlad r0, r8, r10, r0\n\t"        \
    "smlad r4, r9, r10, r4\n\t"        \
    "smlad r1, r8, r11, r1\n\t"        \
    "smlad r5, r9, r11, r5\n\t"        \
    "ldrd r10, r11, [lr], #8\n\t"      \
    "smlad r2, r8, r10, r2\n\t"        \
    "smlad r6, r9, r10, r6\n\t"        \
    "smlad r3, r8, r11, r3\n\t"        \
    "smlad r7, r9, r11, r7\n\t"
// Requantize channel j of both pixels (accumulators a, b) with the next (m, c, e) triple.
#define M4_RQ(a, b)                    \
    "ldmia lr!, {r8, r9, r10}\n\t"     \
    "add r11, r9, " a ", asr #31\n\t"  \
    "smmlar " a ", " a ", r8, r11\n\t" \
    "asr " a ", " a ", r10\n\t"        \
    "ssat " a ", #8, " a "\n\t"        \
    "add r11, r9, " b ", asr #31\n\t"  \
    "smmlar " b ", " b ", r8, r11\n\t" \
    "asr " b ", " b ", r10\n\t"        \
    "ssat " b ", #8, " b "\n\t"
#define M4_STEPS_31 "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31"

__attribute__((naked, noinline)) static void gemm_2x4_asm(const int32_t *col M4_UNUSED, const int32_t *pk M4_UNUSED,
                                                          int8_t *out_a M4_UNUSED, int8_t *out_b M4_UNUSED,
                                                          int32_t k4 M4_UNUSED, int32_t groups M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldrd r4, r5, [sp, #36]\n\t"     // k4, groups
        "sub sp, sp, #24\n\t"
        "mov r12, r0\n\t"
        "add r6, r0, r4, lsl #2\n\t"
        "sub r6, r6, #256\n\t"
        "strd r2, r3, [sp, #0]\n\t"
        "add r8, r2, r5, lsl #2\n\t"   // out_a past the last group
        "strd r8, r0, [sp, #8]\n\t"
        "str r6, [sp, #16]\n\t"
        "lsr r7, r4, #1\n\t"           // T
        "cmp r7, #32\n\t"
        "ite ls\n\t"
        "adrls.w r9, .Lm4_gemm_last\n\t"
        "adrhi.w r9, .Lm4_gemm_loop\n\t"
        "it hi\n\t"
        "andhi r7, r7, #31\n\t"
        "ldr r9, [r9, r7, lsl #2]\n\t"
        "str r9, [sp, #20]\n\t"
        "mov lr, r1\n"
        "1:\n\t"
        "ldmia lr!, {r0-r7}\n\t"
        "ldr pc, [sp, #20]\n\t"
        ".Lm4_gemm_a0:\n\t" M4_STEP
        ".irp s, " M4_STEPS_31 "\n"
        ".Lm4_gemm_a\\s:\n\t" M4_STEP
        ".endr\n\t"
        "ldr r8, [sp, #16]\n\t"
        "cmp r12, r8\n\t"
        "bne .Lm4_gemm_a0\n"
        ".Lm4_gemm_b0:\n\t" M4_STEP
        ".irp s, " M4_STEPS_31 "\n"
        ".Lm4_gemm_b\\s:\n\t" M4_STEP
        ".endr\n\t"
        M4_RQ("r0", "r4") M4_RQ("r1", "r5") M4_RQ("r2", "r6") M4_RQ("r3", "r7")
        "bfi r0, r1, #8, #8\n\t"
        "bfi r4, r5, #8, #8\n\t"
        "bfi r0, r2, #16, #8\n\t"
        "bfi r4, r6, #16, #8\n\t"
        "bfi r0, r3, #24, #8\n\t"
        "bfi r4, r7, #24, #8\n\t"
        "ldm sp, {r8, r9, r10, r12}\n\t"   // out_a, out_b, out_a end, column start
        "str r0, [r8], #4\n\t"
        "str r4, [r9], #4\n\t"
        "strd r8, r9, [sp]\n\t"
        "cmp r8, r10\n\t"
        "bne 1b\n\t"
        "add sp, sp, #24\n\t"
        "pop {r4-r11, pc}\n\t"
        // Entry points: T <= 32 steps, all in the last copy (index T, 1..32); T > 32, the first turn
        // of the loop does T % 32 of them (index T % 32; 0: a whole turn).
        ".p2align 2\n"
        ".Lm4_gemm_last:\n\t"
        ".word .Lm4_gemm_b0 + 1\n\t"
        ".irp s, 31,30,29,28,27,26,25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1\n\t"
        ".word .Lm4_gemm_b\\s + 1\n\t"
        ".endr\n\t"
        ".word .Lm4_gemm_b0 + 1\n"
        ".Lm4_gemm_loop:\n\t"
        ".word .Lm4_gemm_a0 + 1\n\t"
        ".irp s, 31,30,29,28,27,26,25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1\n\t"
        ".word .Lm4_gemm_a\\s + 1\n\t"
        ".endr\n");
}

// One pixel (an odd last one), same conditions as gemm_2x4_asm: its column in the even words of col
// (the odd ones are read and skipped). Registers: r0-r3 accumulators, r4-r7 the four weight words of a
// column word (one LDM), r8 and r10 two column words (with r9 and r11, one LDM of four words), r12 the
// column pointer, lr the packed pointer. Loop turns of four column words, entered at the second half
// when k4 / 4 is odd. Stack frame: [sp] column end, [sp+4] the entry (Thumb bit set), [sp+8] out,
// [sp+12] out past the last group, [sp+16] column start.
#define M4_HALF1                       \
    "ldm r12!, {r8, r9, r10, r11}\n\t" \
    "ldm lr!, {r4, r5, r6, r7}\n\t"    \
    "smlad r0, r8, r4, r0\n\t"         \
    "smlad r1, r8, r5, r1\n\t"         \
    "smlad r2, r8, r6, r2\n\t"         \
    "smlad r3, r8, r7, r3\n\t"         \
    "ldm lr!, {r4, r5, r6, r7}\n\t"    \
    "smlad r0, r10, r4, r0\n\t"        \
    "smlad r1, r10, r5, r1\n\t"        \
    "smlad r2, r10, r6, r2\n\t"        \
    "smlad r3, r10, r7, r3\n\t"
#define M4_RQ1(a)                      \
    "ldmia lr!, {r4, r5, r6}\n\t"      \
    "add r5, r5, " a ", asr #31\n\t"   \
    "smmlar " a ", " a ", r4, r5\n\t"  \
    "asr " a ", " a ", r6\n\t"         \
    "ssat " a ", #8, " a "\n\t"

__attribute__((naked, noinline)) static void gemm_1x4_asm(const int32_t *col M4_UNUSED, const int32_t *pk M4_UNUSED,
                                                          int8_t *out M4_UNUSED, int32_t k4 M4_UNUSED,
                                                          int32_t groups M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldr r4, [sp, #36]\n\t"         // groups
        "sub sp, sp, #20\n\t"
        "add r9, r0, r3, lsl #2\n\t"     // column end (k4 / 2 words of each pixel, interleaved)
        "tst r3, #4\n\t"
        "ite ne\n\t"
        "adrne.w r10, .Lm4_g1_h2\n\t"
        "adreq.w r10, .Lm4_g1_h1\n\t"
        "orr r10, r10, #1\n\t"
        "strd r9, r10, [sp, #0]\n\t"
        "add r8, r2, r4, lsl #2\n\t"    // out past the last group
        "strd r2, r8, [sp, #8]\n\t"
        "str r0, [sp, #16]\n\t"
        "mov lr, r1\n"
        "1:\n\t"
        "ldr r12, [sp, #16]\n\t"
        "ldm lr, {r0-r3}\n\t"
        "add lr, lr, #32\n\t"
        "ldr pc, [sp, #4]\n\t"
        ".p2align 2\n"
        ".Lm4_g1_h1:\n\t" M4_HALF1
        ".Lm4_g1_h2:\n\t" M4_HALF1
        "ldr r9, [sp, #0]\n\t"
        "cmp r12, r9\n\t"
        "bne .Lm4_g1_h1\n\t"
        M4_RQ1("r0") M4_RQ1("r1") M4_RQ1("r2") M4_RQ1("r3")
        "bfi r0, r1, #8, #8\n\t"
        "bfi r0, r2, #16, #8\n\t"
        "bfi r0, r3, #24, #8\n\t"
        "ldrd r8, r9, [sp, #8]\n\t"
        "str r0, [r8], #4\n\t"
        "str r8, [sp, #8]\n\t"
        "cmp r8, r9\n\t"
        "bne 1b\n\t"
        "add sp, sp, #20\n\t"
        "pop {r4-r11, pc}\n");
}
#endif

// acc[0..3] (pixel A) and acc[4..7] (pixel B) += the dot products of the two interleaved columns
// (k4 int16 each) with the four weight rows of one group; returns the pointer past those weights.
static const int32_t *dot_2x4(const int32_t *col, const int32_t *w, int32_t k4, int32_t acc[8]) {
    for (int32_t i = 0; i < k4; i += 2) {
        const int32_t x = col[i], y = col[i + 1];
        for (int j = 0; j < 4; j++) {
            acc[j] = m4_smlad(x, w[j], acc[j]);
            acc[4 + j] = m4_smlad(y, w[j], acc[4 + j]);
        }
        w += 4;
    }
    return w;
}

// Both columns against every group of output channels; results to out_a, then out_b.
static void gemm_pair(const kws_nn_conv_params *p, const int32_t *col, int32_t k4, int8_t *out_a, int8_t *out_b) {
    const int32_t *pk = p->packed + 4;
    const int32_t groups = p->packed[3];
    const int fast = p->packed[1] == KWS_M4_RQ_FAST;
    const int clamp_lo = p->act_min > -128, clamp_hi = p->act_max < 127;
#if KWS_M4_DSP
    if (fast && !clamp_lo && !clamp_hi && (p->out_c & 3) == 0) {
        gemm_2x4_asm(col, pk, out_a, out_b, k4, groups);
        return;
    }
#endif
    const uint32_t lo4 = m4_splat8(p->act_min), hi4 = m4_splat8(p->act_max);
    for (int32_t g = 0; g < groups; g++) {
        int32_t acc[8] = {pk[0], pk[1], pk[2], pk[3], pk[4], pk[5], pk[6], pk[7]};
        pk = dot_2x4(col, pk + 8, k4, acc);
        int32_t y[8];
        for (int j = 0; j < 4; j++, pk += 3) {
            if (fast) {
                y[j] = m4_requant(acc[j], pk[0], pk[1], pk[2]);
                y[4 + j] = m4_requant(acc[4 + j], pk[0], pk[1], pk[2]);
            } else {
                y[j] = kws_nn_clamp(kws_nn_requantize(acc[j] >> 1, pk[0], pk[1]) + p->output_offset, -128, 127);
                y[4 + j] =
                    kws_nn_clamp(kws_nn_requantize(acc[4 + j] >> 1, pk[0], pk[1]) + p->output_offset, -128, 127);
            }
        }
        uint32_t ra = m4_pack4(y[0], y[1], y[2], y[3]), rb = m4_pack4(y[4], y[5], y[6], y[7]);
        if (clamp_lo) {
            ra = m4_max8(ra, lo4);
            rb = m4_max8(rb, lo4);
        }
        if (clamp_hi) {
            ra = m4_min8(ra, hi4);
            rb = m4_min8(rb, hi4);
        }
        const int32_t n = p->out_c - 4 * g;
        store4(out_a + 4 * g, ra, n);
        store4(out_b + 4 * g, rb, n);
    }
}

// How the patches of a layer can be gathered (see kws_nn_m4_conv_packed).
typedef struct {
    int one_by_one;       // 1x1, no padding, in_c % 4 == 0: the pixel's input vector
    int rows_patch;       // whole input rows (k_w == in_w, one output column): contiguous from a row
    int asm_ok;           // the assembly GEMMs apply (fast requantization, int8 clamp, out_c % 4 == 0)
    int32_t k, k4;        // patch length, rounded up to a multiple of 4
} conv_plan;

// Pixels [n0, n1) of batch input in_b (output out) two at a time (A in the even column words, B in
// the odd ones). An odd last pixel goes alone (gemm_1x4_asm), or in column B with zeros in A, both
// results going to the same place (B's are stored last).
static void conv_pixels(const kws_nn_conv_params *p, const conv_plan *c, const int8_t *in_b, int8_t *out,
                        int32_t n0, int32_t n1, int32_t *col) {
    const int32_t out_w = p->out_w, in_c = p->in_c, k4 = c->k4;
    const size_t step_x = (size_t)p->stride_w * in_c, step_y = (size_t)p->stride_h * p->in_w * in_c;
    const size_t row_bytes = (size_t)p->in_w * in_c;
    int32_t oy = n0 / out_w, ox = n0 % out_w;
    for (int32_t n = n0; n < n1; n += 2) {
        int8_t *out_a = out + (size_t)n * p->out_c;
        int8_t *out_b = out_a + p->out_c;
        const int32_t oy_a = oy, ox_a = ox;
        if (++ox == out_w) {
            ox = 0;
            oy++;
        }
        if (n + 1 == n1) {
#if KWS_M4_DSP
            if (c->asm_ok) {
                im2col(p, in_b, oy_a, ox_a, col, k4);
                gemm_1x4_asm(col, p->packed + 4, out_a, k4, p->packed[3]);
                return;
            }
#endif
            for (int32_t i = 0; i < k4; i += 2) {
                col[i] = 0;
            }
            im2col(p, in_b, oy_a, ox_a, col + 1, k4);
            out_b = out_a;
        } else if (c->one_by_one) {
            im2col_1x1_pair(in_b + oy_a * step_y + ox_a * step_x, in_b + oy * step_y + ox * step_x, in_c,
                            p->input_offset, col);
        } else if (c->rows_patch && oy_a * p->stride_h >= p->pad_top &&
                   oy * p->stride_h - p->pad_top + p->k_h <= p->in_h) {
            const int32_t ya = oy_a * p->stride_h - p->pad_top, yb = oy * p->stride_h - p->pad_top;
            im2col_1x1_pair(in_b + (size_t)ya * row_bytes, in_b + (size_t)yb * row_bytes, c->k, p->input_offset,
                            col);
        } else {
            im2col(p, in_b, oy_a, ox_a, col, k4);
            im2col(p, in_b, oy, ox, col + 1, k4);
        }
        if (++ox == out_w) {
            ox = 0;
            oy++;
        }
        gemm_pair(p, col, k4, out_a, out_b);
    }
}

void kws_nn_m4_conv_packed(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, void *scratch) {
    int32_t *col = (int32_t *)scratch;
    const int32_t out_w = p->out_w, pixels = p->out_h * out_w, in_c = p->in_c;
    const size_t in_size = (size_t)p->in_h * p->in_w * in_c;
    conv_plan c;
    c.k = p->k_h * p->k_w * in_c;
    c.k4 = patch_len4(p);
    c.one_by_one = p->k_h == 1 && p->k_w == 1 && p->pad_top == 0 && p->pad_left == 0 && (in_c & 3) == 0 &&
                   (p->out_h - 1) * p->stride_h < p->in_h && (out_w - 1) * p->stride_w < p->in_w;
    // Patches that are whole input rows (k_w == in_w, one output column: 1-D convolutions over time):
    // the k values of pixel oy are contiguous from row oy * stride_h - pad_top when all its rows are
    // inside the input.
    c.rows_patch = !c.one_by_one && p->k_w == p->in_w && out_w == 1 && p->pad_left == 0 && p->dilation_h == 1 &&
                   (p->k_w == 1 || p->dilation_w == 1) && (c.k & 3) == 0;
    c.asm_ok = p->packed[1] == KWS_M4_RQ_FAST && p->act_min == -128 && p->act_max == 127 && (p->out_c & 3) == 0;
    // A run of pixels [n_lo, n_hi) whose patches are evenly spaced (pixel n at n * run_step - run_back
    // bytes): pairs of it go straight to the assembly, without the bookkeeping of conv_pixels.
    int32_t n_lo = 0, n_hi = 0;
    size_t run_step = 0, run_back = 0;
    if (c.one_by_one && p->stride_h == 1 && p->stride_w == 1 && out_w == p->in_w) {
        n_hi = pixels;
        run_step = (size_t)in_c;
    } else if (c.rows_patch) {
        const size_t row_bytes = (size_t)p->in_w * in_c;
        n_lo = (p->pad_top + p->stride_h - 1) / p->stride_h;
        n_hi = p->in_h >= p->k_h ? (p->in_h - p->k_h + p->pad_top) / p->stride_h + 1 : 0;
        n_hi = n_hi > pixels ? pixels : n_hi;
        run_step = (size_t)p->stride_h * row_bytes;
        run_back = (size_t)p->pad_top * row_bytes;
    }
#if KWS_M4_DSP
    const int run = c.asm_ok && n_hi - n_lo >= 2;
    const int32_t off2 = (int32_t)(((uint32_t)p->input_offset & 0xffffu) * 0x10001u);
#else
    const int run = 0;
    (void)run_step;
    (void)run_back;
    (void)n_lo;
    (void)n_hi;
#endif
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * in_size;
        int8_t *out = output + (size_t)b * pixels * p->out_c;
        if (!run) {
            conv_pixels(p, &c, in_b, out, 0, pixels, col);
            continue;
        }
#if KWS_M4_DSP
        const int32_t n_end = n_lo + ((n_hi - n_lo) & ~1);
        conv_pixels(p, &c, in_b, out, 0, n_lo, col);
        const int8_t *a = in_b + (size_t)n_lo * run_step - run_back;
        int8_t *o = out + (size_t)n_lo * p->out_c;
        for (int32_t n = n_lo; n < n_end; n += 2, a += 2 * run_step, o += 2 * p->out_c) {
            im2col_pair_asm(a, a + run_step, col, c.k, off2);
            gemm_2x4_asm(col, p->packed + 4, o, o + p->out_c, c.k4, p->packed[3]);
        }
        conv_pixels(p, &c, in_b, out, n_end, pixels, col);
#endif
    }
}

void kws_nn_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, void *scratch) {
    if (p->packed != NULL && p->packed[0] == KWS_M4_PACK_CONV && scratch != NULL) {
        kws_nn_m4_conv_packed(p, input, output, scratch);
    } else {
        kws_nn_conv2d_s8_ref(p, input, filter, bias, output, NULL);
    }
}
