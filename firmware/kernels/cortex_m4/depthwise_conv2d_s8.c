// DEPTHWISE_CONV_2D, int8, per-channel, for Cortex-M4 (DSP extension). Same results as
// src/nn/depthwise_conv2d_s8.c.
//
// Fast path (p->packed of layout KWS_M4_PACK_DW3X3, written by `kws compile --target cortex-m4` for
// 3x3 kernels with stride 1, no dilation and depth multiplier 1): one channel at a time, the input
// channel is copied into the scratch buffer as an int16 plane stored column by column (input +
// input_offset, 0 in the padding).
// Down each output column, pairs of outputs (oy, oy + 1) take, from each of the three plane columns,
// the words (oy, oy+1) and (oy+2, oy+3) (one LDRD) and (oy+1, oy+2) (one unaligned LDR): SMLAD with
// the vertical weight pairs, SMLAxy for the third kernel row. Weights are doubled int16 (nn_m4.h).
// Other layouts: K x 1 and 1 x K windows with stride 1 go to depthwise_line_s8.c; a single input
// channel is a CONV_2D (conv2d_s8.c's packed GEMM); multiplier 1 with channels in fours: dw_simd
// below. Otherwise: portable loops.
//
// Packed layout (int32 words): [KWS_M4_PACK_DW3X3, KWS_M4_RQ_FAST, PH, PW], then per channel 9 words:
//   (w00,w10) (w01,w11) (w02,w12) (w20,w21) (w22,0)  doubled int16 weights w<ky><kx>, (low, high)
//   bias2, m, c, e                                      requantization (see nn_m4.h)
// The plane has PW = out_w + 2 columns of PH = out_h + 2 (+1 if out_h is odd) values; value r of
// column q is input (r - pad_top, q - pad_left). Scratch: 2 * PH * PW bytes rounded up to a multiple
// of 4.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn/nn_ref.h"
#include "nn_m4.h"

static int dw_fast(const kws_nn_conv_params *p) {
    return p->packed != NULL && p->packed[0] == KWS_M4_PACK_DW3X3 && p->k_h == 3 && p->k_w == 3 &&
           p->stride_h == 1 && p->stride_w == 1 && p->dilation_h == 1 && p->dilation_w == 1 &&
           p->depth_multiplier == 1;
}

size_t kws_nn_depthwise_conv2d_s8_buffer_size(const kws_nn_conv_params *p) {
    if (p->packed != NULL && p->packed[0] == KWS_M4_PACK_CONV) {
        return kws_nn_m4_conv_packed_buffer_size(p);
    }
    if (kws_nn_m4_dw_line_ok(p)) {
        return kws_nn_m4_dw_line_buffer_size(p);
    }
    if (!dw_fast(p)) {
        return 0;
    }
    const int32_t ph = p->out_h + (p->out_h & 1) + 2;
    const int32_t pw = p->out_w + 2;
    return ((size_t)ph * (size_t)pw * 2u + 3u) & ~(size_t)3;
}

// Channel c of in_b (in_b already points at channel c) into the plane interior; the border stays 0
// from dw3x3_packed's memset.
__attribute__((noinline)) static void fill_plane(const kws_nn_conv_params *p, const int8_t *in_b, int16_t *plane,
                                                 int32_t ph, int32_t pw) {
    const int32_t in_c = p->in_c;
    const int32_t off = p->input_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xffffu) * 0x10001u);
    int32_t rows = p->in_h, cols = p->in_w;
    if (rows > ph - p->pad_top) {
        rows = ph - p->pad_top;
    }
    if (cols > pw - p->pad_left) {
        cols = pw - p->pad_left;
    }
    const int32_t rs = p->in_w * in_c;  // input row stride
    int16_t *dst_col = plane + p->pad_left * ph + p->pad_top;
    for (int32_t x = 0; x < cols; x++) {
        const int8_t *src = in_b + x * in_c;
        int16_t *dst = dst_col;
        int16_t *const end = dst + (rows & ~1);
        while (dst != end) {
            const uint32_t a = (uint8_t)src[0];
            const uint32_t b = (uint8_t)src[rs];
            src += 2 * rs;
            m4_st32(dst, m4_sxtab16(off2, (int32_t)(a | (b << 16))));
            dst += 2;
        }
        if (rows & 1) {
            *dst = (int16_t)(src[0] + off);
        }
        dst_col += ph;
    }
}

#if KWS_M4_DSP
// One output pair: r0/r1/r2 walk plane columns ox, ox+1, ox+2 (4 bytes per pair), r8-r12 hold the
// weights (V0 V1 V2 H0 H1); results int8 in r6 (oy) and r7 (oy + 1); leaves the output stride in r3.
#define M4_DW_PAIR                      \
    "ldr r6, [sp, #0]\n\t"              \
    "mov r7, r6\n\t"                    \
    "ldrd r3, r5, [r0], #4\n\t"         \
    "ldr r4, [r0, #-2]\n\t"             \
    "smlad r6, r3, r8, r6\n\t"          \
    "smlabb r6, r5, r11, r6\n\t"        \
    "smlad r7, r4, r8, r7\n\t"          \
    "smlatb r7, r5, r11, r7\n\t"        \
    "ldrd r3, r5, [r1], #4\n\t"         \
    "ldr r4, [r1, #-2]\n\t"             \
    "smlad r6, r3, r9, r6\n\t"          \
    "smlabt r6, r5, r11, r6\n\t"        \
    "smlad r7, r4, r9, r7\n\t"          \
    "smlatt r7, r5, r11, r7\n\t"        \
    "ldrd r3, r5, [r2], #4\n\t"         \
    "ldr r4, [r2, #-2]\n\t"             \
    "smlad r6, r3, r10, r6\n\t"         \
    "smlabb r6, r5, r12, r6\n\t"        \
    "smlad r7, r4, r10, r7\n\t"         \
    "smlatb r7, r5, r12, r7\n\t"        \
    "ldrd r3, r4, [sp, #4]\n\t"         \
    "ldr r5, [sp, #12]\n\t"             \
    "add r12, r4, r6, asr #31\n\t"      \
    "smmlar r6, r6, r3, r12\n\t"        \
    "asr r6, r6, r5\n\t"                \
    "ssat r6, #8, r6\n\t"               \
    "add r12, r4, r7, asr #31\n\t"      \
    "smmlar r7, r7, r3, r12\n\t"        \
    "asr r7, r7, r5\n\t"                \
    "ssat r7, #8, r7\n\t"               \
    "ldr r12, [sp, #16]\n\t"            \
    "ldr r3, [sp, #20]\n\t"

// All output columns of one channel. geom: [column stride of the plane in bytes, output row stride
// (out_w * in_c), full pairs per column, out_h odd, out_w, in_c]. Stack frame: [sp] bias2, [sp+4] m,
// [sp+8] c, [sp+12] e, [sp+16] H1, [sp+20] output row stride, [sp+24] end of the column's full pairs,
// [sp+28] 4 * pairs, [sp+32] odd, [sp+36] columns left, [sp+40] next column's plane pointer,
// [sp+44] plane column stride, [sp+48] next column's output pointer, [sp+52] in_c.
__attribute__((naked, noinline)) static void dw3x3_channel_asm(const int16_t *plane M4_UNUSED,
                                                               const int32_t *pk M4_UNUSED,
                                                               int8_t *out M4_UNUSED,
                                                               const int32_t *geom M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #56\n\t"
        "ldr r4, [r1, #20]\n\t"
        "str r4, [sp, #0]\n\t"
        "ldrd r4, r5, [r1, #24]\n\t"
        "strd r4, r5, [sp, #4]\n\t"
        "ldrd r4, r5, [r1, #32]\n\t"      // e (and the next word, unused)
        "str r4, [sp, #12]\n\t"
        "ldr r4, [r1, #16]\n\t"
        "str r4, [sp, #16]\n\t"
        "ldm r3, {r4, r5, r6, r7, r8, r9}\n\t"
        "str r5, [sp, #20]\n\t"
        "lsl r6, r6, #2\n\t"
        "str r6, [sp, #28]\n\t"
        "strd r7, r8, [sp, #32]\n\t"
        "str r0, [sp, #40]\n\t"
        "str r4, [sp, #44]\n\t"
        "strd r2, r9, [sp, #48]\n\t"
        "ldm r1, {r8, r9, r10, r11, r12}\n"
        "1:\n\t"
        "ldrd r0, r3, [sp, #40]\n\t"
        "add r1, r0, r3\n\t"
        "add r2, r1, r3\n\t"
        "str r1, [sp, #40]\n\t"
        "ldrd lr, r4, [sp, #48]\n\t"
        "add r4, lr, r4\n\t"
        "str r4, [sp, #48]\n\t"
        "ldr r4, [sp, #28]\n\t"
        "add r4, r0, r4\n\t"
        "str r4, [sp, #24]\n\t"
        "cmp r0, r4\n\t"
        "beq 3f\n"
        "2:\n\t" M4_DW_PAIR
        "strb r6, [lr]\n\t"
        "strb r7, [lr, r3]\n\t"
        "add lr, lr, r3, lsl #1\n\t"
        "ldr r3, [sp, #24]\n\t"
        "cmp r0, r3\n\t"
        "bne 2b\n"
        "3:\n\t"
        "ldr r3, [sp, #32]\n\t"
        "cmp r3, #0\n\t"
        "beq 4f\n\t" M4_DW_PAIR
        "strb r6, [lr]\n"
        "4:\n\t"
        "ldr r3, [sp, #36]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #36]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #56\n\t"
        "pop {r4-r11, pc}\n");
}
#endif

// Portable equivalent of dw3x3_channel_asm (also the path with a clamp narrower than int8).
static void dw3x3_channel(const kws_nn_conv_params *p, const int16_t *plane, int32_t ph, const int32_t *pk,
                          int8_t *out) {
    const int32_t in_c = p->in_c, out_h = p->out_h, out_w = p->out_w;
    const int32_t row_stride = out_w * in_c;
    const int32_t v0 = pk[0], v1 = pk[1], v2 = pk[2], h0 = pk[3], h1 = pk[4];
    const int32_t bias2 = pk[5], m = pk[6], cc = pk[7], e = pk[8];
    for (int32_t ox = 0; ox < out_w; ox++) {
        const int16_t *c0 = plane + ox * ph, *c1 = c0 + ph, *c2 = c1 + ph;
        int8_t *o = out + ox * in_c;
        for (int32_t oy = 0; oy < out_h; oy += 2) {
            int32_t a0 = bias2, a1 = bias2;
            int32_t lo = m4_ld32(c0 + oy), mid = m4_ld32(c0 + oy + 1), hi = m4_ld32(c0 + oy + 2);
            a0 = m4_smlabb(hi, h0, m4_smlad(lo, v0, a0));
            a1 = m4_smlatb(hi, h0, m4_smlad(mid, v0, a1));
            lo = m4_ld32(c1 + oy);
            mid = m4_ld32(c1 + oy + 1);
            hi = m4_ld32(c1 + oy + 2);
            a0 = m4_smlabt(hi, h0, m4_smlad(lo, v1, a0));
            a1 = m4_smlatt(hi, h0, m4_smlad(mid, v1, a1));
            lo = m4_ld32(c2 + oy);
            mid = m4_ld32(c2 + oy + 1);
            hi = m4_ld32(c2 + oy + 2);
            a0 = m4_smlabb(hi, h1, m4_smlad(lo, v2, a0));
            a1 = m4_smlatb(hi, h1, m4_smlad(mid, v2, a1));
            const int32_t y0 = kws_nn_clamp(m4_requant(a0, m, cc, e), p->act_min, p->act_max);
            const int32_t y1 = kws_nn_clamp(m4_requant(a1, m, cc, e), p->act_min, p->act_max);
            o[0] = (int8_t)y0;
            if (oy + 1 < out_h) {
                o[row_stride] = (int8_t)y1;
            }
            o += 2 * row_stride;
        }
    }
}

static void dw3x3_packed(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, int16_t *plane) {
    const int32_t ph = p->packed[2], pw = p->packed[3];
    const size_t in_size = (size_t)p->in_h * p->in_w * p->in_c;
    const size_t out_size = (size_t)p->out_h * p->out_w * p->out_c;
    memset(plane, 0, (size_t)ph * (size_t)pw * sizeof(int16_t));
#if KWS_M4_DSP
    const int use_asm = p->act_min == -128 && p->act_max == 127;
    const int32_t geom[6] = {ph * 2, p->out_w * p->in_c, p->out_h >> 1, p->out_h & 1, p->out_w, p->in_c};
#endif
    for (int32_t b = 0; b < p->batches; b++) {
        const int32_t *pk = p->packed + 4;
        for (int32_t c = 0; c < p->in_c; c++, pk += 9) {
            int8_t *out = output + (size_t)b * out_size + c;
            fill_plane(p, input + (size_t)b * in_size + c, plane, ph, pw);
#if KWS_M4_DSP
            if (use_asm) {
                dw3x3_channel_asm(plane, pk, out, geom);
                continue;
            }
#endif
            dw3x3_channel(p, plane, ph, pk, out);
        }
    }
}

// n taps of one group of four channels: input words at q, q + qs, ...; weight word pairs at w,
// w + ws bytes, ...; acc[0..3] += the products of channels c0..c3.
#if KWS_M4_DSP
__attribute__((naked, noinline)) static void dw_taps(int32_t acc[4] M4_UNUSED, const int8_t *q M4_UNUSED,
                                                     const int32_t *w M4_UNUSED, int32_t n M4_UNUSED,
                                                     int32_t qs M4_UNUSED, int32_t ws M4_UNUSED,
                                                     int32_t off2 M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldrd r10, r11, [sp, #36]\n\t"    // qs, ws
        "ldr r12, [sp, #44]\n\t"          // off2
        "push {r0}\n\t"
        "ldm r0, {r4-r7}\n"
        "1:\n\t"
        "ldr r0, [r1]\n\t"
        "ldrd r8, r9, [r2]\n\t"
        "add r1, r1, r10\n\t"
        "add r2, r2, r11\n\t"
        "sxtab16 lr, r12, r0\n\t"
        "sxtab16 r0, r12, r0, ror #8\n\t"
        "smlabb r4, lr, r8, r4\n\t"
        "smlatt r6, lr, r8, r6\n\t"
        "smlabb r5, r0, r9, r5\n\t"
        "smlatt r7, r0, r9, r7\n\t"
        "subs r3, r3, #1\n\t"
        "bne 1b\n\t"
        "pop {r0}\n\t"
        "stm r0, {r4-r7}\n\t"
        "pop {r4-r11, pc}\n");
}
#else
static void dw_taps(int32_t acc[4], const int8_t *q, const int32_t *w, int32_t n, int32_t qs, int32_t ws,
                    int32_t off2) {
    for (; n > 0; n--) {
        const int32_t v = m4_ld32(q);
        const int32_t e = m4_sxtab16(off2, v), o = m4_sxtab16_ror8(off2, v);
        acc[0] = m4_smlabb(e, w[0], acc[0]);
        acc[2] = m4_smlatt(e, w[0], acc[2]);
        acc[1] = m4_smlabb(o, w[1], acc[1]);
        acc[3] = m4_smlatt(o, w[1], acc[3]);
        q += qs;
        w = (const int32_t *)(const void *)((const char *)w + ws);
    }
}
#endif

// Multiplier 1, in_c % 4 == 0, any window: per output pixel and group of four channels, each tap's
// input word is widened with SXTAB16 into (c0, c2) and (c1, c3) and multiplied with SMLABB/SMLATT
// against the packed (w c0, w c2) and (w c1, w c3) words. Packed layout: [KWS_M4_PACK_DWSIMD,
// KWS_M4_RQ_FAST, taps = k_h * k_w, groups = in_c / 4], then per group: bias2[4], per tap (ky, kx) in
// order the two weight words, then (m, c, e) per channel.
static void dw_simd(const kws_nn_conv_params *p, const int8_t *input, int8_t *output) {
    const int32_t taps = p->packed[2], groups = p->packed[3];
    const int32_t per_group = 4 + 2 * taps + 12;
    const int32_t in_c = p->in_c, in_w = p->in_w, k_w = p->k_w;
    const int32_t dh = p->dilation_h, dw = p->dilation_w;
    const int32_t off2 = (int32_t)(((uint32_t)p->input_offset & 0xffffu) * 0x10001u);
    const int clamp_lo = p->act_min > -128, clamp_hi = p->act_max < 127;
    const uint32_t lo4 = m4_splat8(p->act_min), hi4 = m4_splat8(p->act_max);
    const size_t tap_step = (size_t)dw * in_c, row_step = (size_t)dh * in_w * in_c;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky_lo = y0 >= 0 ? 0 : (dh - 1 - y0) / dh;
            int32_t ky_hi = p->in_h - y0 <= 0 ? 0 : (p->in_h - y0 + dh - 1) / dh;
            ky_hi = ky_hi > p->k_h ? p->k_h : ky_hi;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx_lo = x0 >= 0 ? 0 : (dw - 1 - x0) / dw;
                int32_t kx_hi = in_w - x0 <= 0 ? 0 : (in_w - x0 + dw - 1) / dw;
                kx_hi = kx_hi > k_w ? k_w : kx_hi;
                const int32_t rows = ky_hi - ky_lo, cols = kx_hi - kx_lo;
                const int8_t *first = in_b + ((size_t)(y0 + ky_lo * dh) * in_w + (x0 + kx_lo * dw)) * in_c;
                const int32_t *g = p->packed + 4;
                for (int32_t grp = 0; grp < groups; grp++, g += per_group, first += 4) {
                    int32_t acc[4] = {g[0], g[1], g[2], g[3]};
                    const int32_t *w_first = g + 4 + 2 * (ky_lo * k_w + kx_lo);
                    if (rows > 0 && cols > 0) {
                        if (cols == 1) {  // one column (e.g. k_w == 1): a single run down the rows
                            dw_taps(acc, first, w_first, rows, (int32_t)row_step, 8 * k_w, off2);
                        } else {
                            const int8_t *q_row = first;
                            const int32_t *w_row = w_first;
                            for (int32_t r = 0; r < rows; r++, q_row += row_step, w_row += 2 * k_w) {
                                dw_taps(acc, q_row, w_row, cols, (int32_t)tap_step, 8, off2);
                            }
                        }
                    }
                    const int32_t *rq = g + 4 + 2 * taps;
                    uint32_t word = m4_pack4(m4_requant(acc[0], rq[0], rq[1], rq[2]),
                                             m4_requant(acc[1], rq[3], rq[4], rq[5]),
                                             m4_requant(acc[2], rq[6], rq[7], rq[8]),
                                             m4_requant(acc[3], rq[9], rq[10], rq[11]));
                    if (clamp_lo) {
                        word = m4_max8(word, lo4);
                    }
                    if (clamp_hi) {
                        word = m4_min8(word, hi4);
                    }
                    m4_st32(output, (int32_t)word);
                    output += 4;
                }
            }
        }
    }
}

void kws_nn_depthwise_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                                const int32_t *bias, int8_t *output, void *scratch) {
    const int32_t layout = p->packed != NULL ? p->packed[0] : 0;
    if (layout == KWS_M4_PACK_CONV && scratch != NULL) {
        kws_nn_m4_conv_packed(p, input, output, scratch);
    } else if (layout == KWS_M4_PACK_DWLINE && scratch != NULL && kws_nn_m4_dw_line_ok(p)) {
        kws_nn_m4_dw_line(p, input, output, scratch);
    } else if (dw_fast(p) && scratch != NULL) {
        dw3x3_packed(p, input, output, (int16_t *)scratch);
    } else if (layout == KWS_M4_PACK_DWSIMD && p->depth_multiplier == 1 && (p->in_c & 3) == 0) {
        dw_simd(p, input, output);
    } else {
        kws_nn_depthwise_conv2d_s8_ref(p, input, filter, bias, output, NULL);
    }
}
