// DEPTHWISE_CONV_2D for Cortex-M4 (DSP extension), windows of one row or one column (K x 1 or 1 x K),
// stride 1, depth multiplier 1: the packed layout KWS_M4_PACK_DWLINE written by
// `kws compile --target cortex-m4`. Same results as src/nn/depthwise_conv2d_s8.c.
//
// Every line of the input along the window's axis (a column for K x 1, a row for 1 x K) is a 1-D
// convolution per channel. Four channels at a time, the line is copied into the scratch buffer as four
// int16 "planes" (x + input_offset, 0 in the padding), one per channel: P[i] = x[i - pad]. Outputs go
// in pairs (y, y + 1), y even, from the aligned words A_i = (P[y + 2i], P[y + 2i + 1]), i < J = K/2 + 1:
//   out[y]     = bias + sum_i SMLAD(A_i, E_i)   with E_i = (w[2i], w[2i + 1])
//   out[y + 1] = bias + sum_i SMLAD(A_i, O_i)   with O_i = (w[2i - 1], w[2i])
// (w[-1] = w[K] = ... = 0), so one load of J words serves both outputs. Weights are doubled int16
// (nn_m4.h). For K = 5 with the int8 clamp, the channels of a group and the plane fill are in
// assembly: E2 = (w4, 0) and O0 = (0, w0) share one register as (w4, w0), read with SMLABB and SMLATT;
// the pair loop has one copy per shift e <= 12 whose SSAT shifts by an immediate (a per-channel TBH
// picks it), and a generic copy. Other K and clamps: the portable line_channel.
//
// Packed layout (int32 words): [KWS_M4_PACK_DWLINE, KWS_M4_RQ_FAST, K, R], then per channel 2J + 4
// words: E_0 .. E_{J-1}, O_0 .. O_{J-1}, bias2, m, c, e. Each plane holds R = ceil(out_len / 2) + J - 1
// words; scratch: 4 planes, 16 R bytes.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn_m4.h"

// Geometry of the lines: count per batch, input/output length, padding before, and byte steps between
// consecutive elements of a line and between consecutive lines.
typedef struct {
    int32_t lines, len_in, len_out, pad;
    int32_t in_step, out_step, in_line, out_line;
} dw_line_geom;

static int line_geom(const kws_nn_conv_params *p, dw_line_geom *g) {
    if (p->stride_h != 1 || p->stride_w != 1 || p->depth_multiplier != 1 || p->in_c != p->out_c) {
        return 0;
    }
    const int32_t c = p->in_c;
    if (p->k_w == 1) {  // K x 1: along the height, one line per column
        if (p->dilation_h != 1 || p->out_w != p->in_w || p->pad_left != 0) {
            return 0;
        }
        *g = (dw_line_geom){p->in_w, p->in_h, p->out_h, p->pad_top, p->in_w * c, p->out_w * c, c, c};
    } else if (p->k_h == 1) {  // 1 x K: along the width, one line per row
        if (p->dilation_w != 1 || p->out_h != p->in_h || p->pad_top != 0) {
            return 0;
        }
        *g = (dw_line_geom){p->in_h, p->in_w, p->out_w, p->pad_left, c, c, p->in_w * c, p->out_w * c};
    } else {
        return 0;
    }
    return 1;
}

int kws_nn_m4_dw_line_ok(const kws_nn_conv_params *p) {
    dw_line_geom g;
    return p->packed != NULL && p->packed[0] == KWS_M4_PACK_DWLINE && p->packed[1] == KWS_M4_RQ_FAST &&
           p->packed[2] == (p->k_w == 1 ? p->k_h : p->k_w) && line_geom(p, &g);
}

size_t kws_nn_m4_dw_line_buffer_size(const kws_nn_conv_params *p) {
    return (size_t)p->packed[3] * 16u;
}

#if KWS_M4_DSP
// One output pair of a K = 5 channel: r0 the plane (advanced by one word), r4 E0, r5 E1, r6 (w4, w0),
// r8 O1, r9 O2, r10 bias2; [sp] e, [sp+4] m, [sp+8] c. Results (int8) in lr (y) and r7 (y + 1), stored
// at [r1] and [r1 + r2] (r2 = out_step), r1 advanced by two outputs.
#define M4_DWL_MAC5                      \
    "ldm r0, {r7, r11, r12}\n\t"         \
    "adds r0, r0, #4\n\t"                \
    "smlad lr, r7, r4, r10\n\t"          \
    "smlatt r7, r7, r6, r10\n\t"         \
    "smlad lr, r11, r5, lr\n\t"          \
    "smlad r7, r11, r8, r7\n\t"          \
    "smlabb lr, r12, r6, lr\n\t"         \
    "smlad r7, r12, r9, r7\n\t"          \
    "ldrd r11, r12, [sp, #4]\n\t"        \
    "add r12, r12, lr, asr #31\n\t"      \
    "smmlar lr, lr, r11, r12\n\t"        \
    "ldr r12, [sp, #8]\n\t"              \
    "add r12, r12, r7, asr #31\n\t"      \
    "smmlar r7, r7, r11, r12\n\t"
#define M4_DWL_STORE2                    \
    "strb lr, [r1]\n\t"                  \
    "strb r7, [r1, r2]\n\t"              \
    "add r1, r1, r2, lsl #1\n\t"
#define M4_DWL_PAIR5                     \
    M4_DWL_MAC5                          \
    "ldr r11, [sp]\n\t"                  \
    "asr lr, lr, r11\n\t"                \
    "asr r7, r7, r11\n\t"                \
    "ssat lr, #8, lr\n\t"                \
    "ssat r7, #8, r7\n\t" M4_DWL_STORE2
// The same with the shift e an immediate (\e of an .irp below): SSAT shifts before saturating.
#define M4_DWL_PAIR5_IMM                 \
    M4_DWL_MAC5                          \
    "ssat lr, #8, lr, asr #\\e\n\t"      \
    "ssat r7, #8, r7, asr #\\e\n\t" M4_DWL_STORE2
#define M4_DWL_SHIFTS "1,2,3,4,5,6,7,8,9,10,11,12"
#define M4_DWL_BIG "13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30"

// n channels (a group of at most four) of one line, K = 5, clamp = the int8 range. args (int32):
// [0] plane of the first channel - adv, [1] its first output + back, [2] out_step, [3] tofs,
// [4] odd (len_out & 1), [5] packed words of the first channel, [6] past those of the last,
// [7] adv = bytes from the end of a channel's pairs to the next plane, [8] back = 2 pairs out_step - 1,
// [9] 4 * pairs. tofs selects the row of the dispatch table: 0 no pairs, 31 an odd count (the loop,
// two pairs per turn, is entered at its second pair), 62 an even count; the column is the shift e
// (1..30 in the fast requantization), immediate-shift copies for e <= 12, the generic loop above.
// Stack frame: [sp] e, m, c of the channel, [sp+12] tofs, [sp+16] where a channel's pairs end to
// (the odd last output, or the next channel; Thumb bit set), [sp+20] next packed words,
// [sp+24] their end, [sp+28] adv, back, [sp+36] 4 * pairs. Between channels r0 is the end of the
// pairs (the plane + 4 pairs) and r1 the output after them.
__attribute__((naked, noinline)) static void line_group5_asm(const int32_t *args M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #44\n\t"
        "ldm r0, {r0, r1, r2, r3, r4, r5, r6, r7, r8, r9}\n\t"
        "str r3, [sp, #12]\n\t"
        "strd r5, r6, [sp, #20]\n\t"
        "strd r7, r8, [sp, #28]\n\t"
        "str r9, [sp, #36]\n\t"
        "mov lr, r5\n\t"
        "adr.w r10, .Ldwl5_next\n\t"
        "adr.w r11, .Ldwl5_odd\n\t"
        "cmp r4, #0\n\t"
        "it ne\n\t"
        "movne r10, r11\n\t"
        "orr r10, r10, #1\n\t"
        "str r10, [sp, #16]\n\t"
        "b .Ldwl5_channel\n\t"
        ".p2align 2\n"
        ".Ldwl5_odd:\n\t"                // an odd last output: the even half of a pair
        "ldm r0, {r7, r11, r12}\n\t"
        "smlad lr, r7, r4, r10\n\t"
        "smlad lr, r11, r5, lr\n\t"
        "smlabb lr, r12, r6, lr\n\t"
        "ldrd r11, r12, [sp, #4]\n\t"
        "add r12, r12, lr, asr #31\n\t"
        "smmlar lr, lr, r11, r12\n\t"
        "ldr r11, [sp]\n\t"
        "asr lr, lr, r11\n\t"
        "ssat lr, #8, lr\n\t"
        "strb lr, [r1]\n\t"
        ".p2align 2\n"
        ".Ldwl5_next:\n\t"
        "ldrd lr, r12, [sp, #20]\n\t"
        "cmp lr, r12\n\t"
        "bne .Ldwl5_channel\n\t"
        "add sp, sp, #44\n\t"
        "pop {r4-r11, pc}\n"
        ".Ldwl5_channel:\n\t"
        "ldm lr!, {r4, r5, r6, r7, r8, r9, r10, r11, r12}\n\t"   // E0 E1 E2 O0 O1 O2 bias2 m c
        "orr r6, r6, r7\n\t"                                     // (w4, w0)
        "ldr r7, [lr], #4\n\t"                                   // e
        "str lr, [sp, #20]\n\t"
        "stm sp, {r7, r11, r12}\n\t"
        "ldrd r11, r12, [sp, #28]\n\t"
        "add r0, r0, r11\n\t"                                    // this channel's plane
        "sub r1, r1, r12\n\t"                                    // and output
        "ldr r12, [sp, #12]\n\t"                                 // tofs
        "ldr r11, [sp, #36]\n\t"
        "add r3, r0, r11\n\t"                                    // end of the full pairs
        "add r12, r12, r7\n\t"
        "tbh [pc, r12, lsl #1]\n"
        ".Ldwl5_table:\n\t"
        ".rept 32\n\t"
        ".hword (.Ldwl5_none - .Ldwl5_table) / 2\n\t"
        ".endr\n\t"
        ".irp e, " M4_DWL_SHIFTS "\n\t"
        ".hword (.Ldwl5_b\\e - .Ldwl5_table) / 2\n\t"
        ".endr\n\t"
        ".irp e, " M4_DWL_BIG "\n\t"
        ".hword (.Ldwl5_gb - .Ldwl5_table) / 2\n\t"
        ".endr\n\t"
        ".hword (.Ldwl5_none - .Ldwl5_table) / 2\n\t"
        ".irp e, " M4_DWL_SHIFTS "\n\t"
        ".hword (.Ldwl5_a\\e - .Ldwl5_table) / 2\n\t"
        ".endr\n\t"
        ".irp e, " M4_DWL_BIG "\n\t"
        ".hword (.Ldwl5_ga - .Ldwl5_table) / 2\n\t"
        ".endr\n\t"
        ".p2align 1\n"
        ".Ldwl5_none:\n\t"
        "ldr pc, [sp, #16]\n"
        ".Ldwl5_ga:\n\t" M4_DWL_PAIR5
        ".Ldwl5_gb:\n\t" M4_DWL_PAIR5
        "cmp r0, r3\n\t"
        "bne .Ldwl5_ga\n\t"
        "ldr pc, [sp, #16]\n\t"
        ".irp e, " M4_DWL_SHIFTS "\n"
        ".Ldwl5_a\\e:\n\t" M4_DWL_PAIR5_IMM
        ".Ldwl5_b\\e:\n\t" M4_DWL_PAIR5_IMM
        "cmp r0, r3\n\t"
        "bne .Ldwl5_a\\e\n\t"
        "ldr pc, [sp, #16]\n\t"
        ".endr\n");
}

// Four channels of a line into the planes. cfg: [dst, pairs, step, last, off2, plane_bytes]: pairs x
// (two consecutive line elements), then one more element if last; src steps by step bytes per element,
// the words go to dst (plane 0), dst + plane_bytes, ... (one word per element pair and plane; the last
// element in the low half of the next word); off2 the input offset in both halves.
__attribute__((naked, noinline)) static void fill4_asm(const int8_t *src M4_UNUSED, const int32_t *cfg M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r10, lr}\n\t"
        "ldm r1, {r1, r2, r3, r10, r12, lr}\n\t"
        "add r9, lr, lr, lsl #1\n\t"
        "cbz r2, 2f\n"
        "1:\n\t"
        "ldr r4, [r0]\n\t"
        "ldr r5, [r0, r3]\n\t"
        "add r0, r0, r3, lsl #1\n\t"
        "sxtab16 r6, r12, r4\n\t"
        "sxtab16 r4, r12, r4, ror #8\n\t"
        "sxtab16 r7, r12, r5\n\t"
        "sxtab16 r5, r12, r5, ror #8\n\t"
        "pkhbt r8, r6, r7, lsl #16\n\t"   // channel 0
        "pkhtb r7, r7, r6, asr #16\n\t"   // channel 2
        "pkhbt r6, r4, r5, lsl #16\n\t"   // channel 1
        "pkhtb r5, r5, r4, asr #16\n\t"   // channel 3
        "str r6, [r1, lr]\n\t"
        "str r7, [r1, lr, lsl #1]\n\t"
        "str r5, [r1, r9]\n\t"
        "str r8, [r1], #4\n\t"
        "subs r2, r2, #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "cmp r10, #0\n\t"
        "beq 3f\n\t"
        "ldr r4, [r0]\n\t"
        "sxtab16 r6, r12, r4\n\t"         // channels 0, 2
        "sxtab16 r4, r12, r4, ror #8\n\t" // channels 1, 3
        "strh r6, [r1]\n\t"
        "strh r4, [r1, lr]\n\t"
        "lsrs r6, r6, #16\n\t"
        "lsrs r4, r4, #16\n\t"
        "strh r6, [r1, lr, lsl #1]\n\t"
        "strh r4, [r1, r9]\n"
        "3:\n\t"
        "pop {r4-r10, pc}\n");
}
#endif

// Channels c0 .. c0 + n - 1 (n <= 4) of one input line (src points at its element 0, channel c0) into
// the planes (4 x R words, plane j from word j R). Only the values inside the input are written; the
// rest stays 0 from the memset of kws_nn_m4_dw_line.
static void fill_planes(const int8_t *src, int32_t n, const dw_line_geom *g, int32_t off, int32_t rows,
                        int16_t *planes) {
    const int32_t step = g->in_step;
    const int32_t plane_len = 2 * rows;
    int32_t i = g->pad;
    int32_t end = g->pad + g->len_in;
    if (end > plane_len) {
        end = plane_len;
    }
    if (n == 4) {
        if ((i & 1) && i < end) {
            for (int32_t j = 0; j < 4; j++) {
                planes[j * plane_len + i] = (int16_t)(src[j] + off);
            }
            i++;
            src += step;
        }
        const int32_t off2 = (int32_t)(((uint32_t)off & 0xffffu) * 0x10001u);
        int32_t *d = (int32_t *)(void *)(planes + i);
#if KWS_M4_DSP
        if (i < end) {
            const int32_t cfg[6] = {(int32_t)d, (end - i) >> 1, step, (end - i) & 1, off2, 4 * rows};
            fill4_asm(src, cfg);
        }
        return;
#endif
        for (; i + 1 < end; i += 2, d++) {
            const int32_t a = m4_ld32(src), b = m4_ld32(src + step);
            src += 2 * step;
            const int32_t a02 = m4_sxtab16(off2, a), a13 = m4_sxtab16_ror8(off2, a);
            const int32_t b02 = m4_sxtab16(off2, b), b13 = m4_sxtab16_ror8(off2, b);
            d[0] = m4_pkhbt16(a02, b02);
            d[rows] = m4_pkhbt16(a13, b13);
            d[2 * rows] = m4_pkhtb16(b02, a02);
            d[3 * rows] = m4_pkhtb16(b13, a13);
        }
    }
    for (; i < end; i++, src += step) {
        for (int32_t j = 0; j < n; j++) {
            planes[j * plane_len + i] = (int16_t)(src[j] + off);
        }
    }
}

// One channel (portable; any K, any clamp): plane of R words, per-channel packed words pc, outputs
// from out with byte step out_step.
static void line_channel(const kws_nn_conv_params *p, const int32_t *plane, const int32_t *pc, int32_t jn,
                         int32_t len_out, int32_t out_step, int8_t *out) {
    const int32_t *ev = pc, *od = pc + jn;
    const int32_t bias2 = pc[2 * jn], m = pc[2 * jn + 1], cc = pc[2 * jn + 2], e = pc[2 * jn + 3];
    for (int32_t y = 0; y < len_out; y += 2, plane++) {
        int32_t a0 = bias2, a1 = bias2;
        for (int32_t i = 0; i < jn; i++) {
            a0 = m4_smlad(plane[i], ev[i], a0);
            a1 = m4_smlad(plane[i], od[i], a1);
        }
        out[0] = (int8_t)kws_nn_clamp(m4_requant(a0, m, cc, e), p->act_min, p->act_max);
        if (y + 1 < len_out) {
            out[out_step] = (int8_t)kws_nn_clamp(m4_requant(a1, m, cc, e), p->act_min, p->act_max);
        }
        out += 2 * out_step;
    }
}


void kws_nn_m4_dw_line(const kws_nn_conv_params *p, const int8_t *input, int8_t *output, void *scratch) {
    dw_line_geom g;
    line_geom(p, &g);
    const int32_t k = p->packed[2], rows = p->packed[3];
    const int32_t jn = k / 2 + 1, per = 2 * jn + 4;
    const int32_t c = p->in_c;
    int16_t *planes = (int16_t *)scratch;
    const int32_t *plane32 = (const int32_t *)scratch;
    memset(planes, 0, (size_t)rows * 16u);
#if KWS_M4_DSP
    const int use_asm = k == 5 && p->act_min == -128 && p->act_max == 127;
    // line_group5_asm's arguments; [1], [5] and [6] set per group.
    const int32_t pairs = g.len_out >> 1, adv = 4 * (rows - pairs);
    const int32_t back = 2 * pairs * g.out_step - 1;
    int32_t args[10] = {(int32_t)plane32 - adv, 0, g.out_step, pairs == 0 ? 0 : (pairs & 1) ? 31 : 62,
                        g.len_out & 1, 0, 0, adv, back, 4 * pairs};
#endif
    const size_t in_size = (size_t)p->in_h * p->in_w * c, out_size = (size_t)p->out_h * p->out_w * c;
#if KWS_M4_DSP
    if (use_asm) {
        // Groups of four channels whose line starts at an even plane index fill in one call.
        const int32_t i0 = g.pad, i1 = g.pad + g.len_in < 2 * rows ? g.pad + g.len_in : 2 * rows;
        const int fill_fast = (i0 & 1) == 0 && i0 < i1;
        const int32_t off2 = (int32_t)(((uint32_t)p->input_offset & 0xffffu) * 0x10001u);
        const int32_t fcfg[6] = {(int32_t)(plane32 + i0 / 2), (i1 - i0) >> 1, g.in_step, (i1 - i0) & 1, off2, 4 * rows};
        for (int32_t b = 0; b < p->batches; b++) {
            for (int32_t l = 0; l < g.lines; l++) {
                const int8_t *src = input + b * in_size + (size_t)l * g.in_line;
                int8_t *dst = output + b * out_size + (size_t)l * g.out_line;
                const int32_t *pc = p->packed + 4;
                for (int32_t c0 = 0; c0 < c; c0 += 4, pc += 4 * per) {
                    const int32_t n = c - c0 < 4 ? c - c0 : 4;
                    if (n == 4 && fill_fast) {
                        fill4_asm(src + c0, fcfg);
                    } else {
                        fill_planes(src + c0, n, &g, p->input_offset, rows, planes);
                    }
                    args[1] = (int32_t)(dst + c0) + back;
                    args[5] = (int32_t)pc;
                    args[6] = (int32_t)(pc + n * per);
                    line_group5_asm(args);
                }
            }
        }
        return;
    }
#endif
    for (int32_t b = 0; b < p->batches; b++) {
        for (int32_t l = 0; l < g.lines; l++) {
            const int8_t *src = input + b * in_size + (size_t)l * g.in_line;
            int8_t *dst = output + b * out_size + (size_t)l * g.out_line;
            for (int32_t c0 = 0; c0 < c; c0 += 4) {
                const int32_t n = c - c0 < 4 ? c - c0 : 4;
                fill_planes(src + c0, n, &g, p->input_offset, rows, planes);
                const int32_t *pc = p->packed + 4 + (size_t)c0 * per;
                for (int32_t j = 0; j < n; j++, pc += per) {
                    line_channel(p, plane32 + j * rows, pc, jn, g.len_out, g.out_step, dst + c0 + j);
                }
            }
        }
    }
}
