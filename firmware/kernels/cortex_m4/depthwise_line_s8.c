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
// One output pair of a K = 5 channel: r0 the plane (advanced by one word), r4-r8 the weights E0 E1
// (w4, w0) O1 O2, r9 bias2; [sp] m, c, e. Results (int8) in lr (y) and r10 (y + 1).
#define M4_DWL_MAC5                      \
    "ldm r0, {r10, r11, r12}\n\t"        \
    "adds r0, r0, #4\n\t"                \
    "smlad lr, r10, r4, r9\n\t"          \
    "smlatt r10, r10, r6, r9\n\t"        \
    "smlad lr, r11, r5, lr\n\t"          \
    "smlad r10, r11, r7, r10\n\t"        \
    "smlabb lr, r12, r6, lr\n\t"         \
    "smlad r10, r12, r8, r10\n\t"        \
    "ldrd r11, r12, [sp]\n\t"            \
    "add r12, r12, lr, asr #31\n\t"      \
    "smmlar lr, lr, r11, r12\n\t"        \
    "ldr r12, [sp, #4]\n\t"              \
    "add r12, r12, r10, asr #31\n\t"     \
    "smmlar r10, r10, r11, r12\n\t"
#define M4_DWL_PAIR5                     \
    M4_DWL_MAC5                          \
    "ldr r11, [sp, #8]\n\t"              \
    "asr lr, lr, r11\n\t"                \
    "asr r10, r10, r11\n\t"              \
    "ssat lr, #8, lr\n\t"                \
    "ssat r10, #8, r10\n\t"
// The same with the shift e an immediate (\e of an .irp below): SSAT shifts before saturating.
#define M4_DWL_PAIR5_IMM                 \
    M4_DWL_MAC5                          \
    "ssat lr, #8, lr, asr #\\e\n\t"      \
    "ssat r10, #8, r10, asr #\\e\n\t"
#define M4_DWL_SHIFTS "1,2,3,4,5,6,7,8,9,10,11,12"

// n channels (a group of at most four) of one line, K = 5, clamp = the int8 range. args: [plane of
// the first channel, its packed words, its first output, out_step, full pairs, odd (len_out & 1), n,
// bytes per plane]. Stack frame: [sp] m, c, e of the channel, [sp+12] odd, [sp+16] channels left,
// [sp+20] next packed words, [sp+24] next plane, [sp+28] next output, [sp+32] out_step,
// [sp+36] 4 * pairs, [sp+40] bytes per plane.
__attribute__((naked, noinline)) static void line_group5_asm(const int32_t *args M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #44\n\t"
        "ldm r0, {r1, r2, r3, r4, r5, r6, r7, r8}\n\t"
        "lsl r5, r5, #2\n\t"
        "strd r6, r7, [sp, #12]\n\t"
        "strd r2, r1, [sp, #20]\n\t"
        "strd r3, r4, [sp, #28]\n\t"
        "strd r5, r8, [sp, #36]\n"
        "4:\n\t"
        "ldr lr, [sp, #20]\n\t"
        "ldm lr!, {r4, r5, r6, r7, r8, r9, r10, r11, r12}\n\t"   // E0 E1 E2 O0 O1 O2 bias2 m c
        "ldr r0, [lr], #4\n\t"                                   // e
        "str lr, [sp, #20]\n\t"
        "strd r11, r12, [sp]\n\t"
        "str r0, [sp, #8]\n\t"
        "orr r6, r6, r7\n\t"                                     // (w4, w0)
        "mov r7, r8\n\t"
        "mov r8, r9\n\t"
        "mov r9, r10\n\t"
        "ldrd r0, r1, [sp, #24]\n\t"                             // plane, out
        "ldrd r2, r3, [sp, #32]\n\t"                             // out_step, 4 * pairs
        "ldr r10, [sp, #40]\n\t"
        "add r10, r0, r10\n\t"
        "add r11, r1, #1\n\t"
        "strd r10, r11, [sp, #24]\n\t"
        "add r3, r0, r3\n\t"                                     // end of the full pairs
        "cmp r0, r3\n\t"
        "beq .Ldwl5_tail\n\t"
        // The pairs: a copy of the loop per shift e <= 12 (immediate shifts), else the generic one.
        "ldr r11, [sp, #8]\n\t"
        "cmp r11, #12\n\t"
        "bhi 1f\n\t"
        "tbh [pc, r11, lsl #1]\n"
        ".Ldwl5_table:\n\t"
        ".hword (1f - .Ldwl5_table) / 2\n\t"
        ".irp e, " M4_DWL_SHIFTS "\n\t"
        ".hword (.Ldwl5_e\\e - .Ldwl5_table) / 2\n\t"
        ".endr\n"
        "1:\n\t" M4_DWL_PAIR5
        "strb lr, [r1]\n\t"
        "strb r10, [r1, r2]\n\t"
        "add r1, r1, r2, lsl #1\n\t"
        "cmp r0, r3\n\t"
        "bne 1b\n"
        ".Ldwl5_tail:\n\t"
        "ldr r3, [sp, #12]\n\t"
        "cbz r3, 3f\n\t"                 // an odd last output: the even half of a pair
        "ldm r0, {r10, r11, r12}\n\t"
        "smlad lr, r10, r4, r9\n\t"
        "smlad lr, r11, r5, lr\n\t"
        "smlabb lr, r12, r6, lr\n\t"
        "ldrd r11, r12, [sp]\n\t"
        "add r12, r12, lr, asr #31\n\t"
        "smmlar lr, lr, r11, r12\n\t"
        "ldr r11, [sp, #8]\n\t"
        "asr lr, lr, r11\n\t"
        "ssat lr, #8, lr\n\t"
        "strb lr, [r1]\n"
        "3:\n\t"
        "ldr r3, [sp, #16]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #16]\n\t"
        "bne 4b\n\t"
        "add sp, sp, #44\n\t"
        "pop {r4-r11, pc}\n\t"
        ".irp e, " M4_DWL_SHIFTS "\n"
        ".Ldwl5_e\\e:\n\t" M4_DWL_PAIR5_IMM
        "strb lr, [r1]\n\t"
        "strb r10, [r1, r2]\n\t"
        "add r1, r1, r2, lsl #1\n\t"
        "cmp r0, r3\n\t"
        "bne .Ldwl5_e\\e\n\t"
        "b .Ldwl5_tail\n\t"
        ".endr\n");
}

// pairs x (two consecutive line elements of four channels): src steps by step bytes per element, the
// words go to dst (plane 0), dst + plane_bytes, ... (one word per element pair and plane).
__attribute__((naked, noinline)) static void fill4_asm(const int8_t *src M4_UNUSED, int32_t *dst M4_UNUSED,
                                                       int32_t pairs M4_UNUSED, int32_t step M4_UNUSED,
                                                       int32_t plane_bytes M4_UNUSED, int32_t off2 M4_UNUSED) {
    __asm__ volatile(
        "push {r4-r9, lr}\n\t"
        "ldrd lr, r12, [sp, #28]\n\t"    // plane_bytes, off2
        "add r9, lr, lr, lsl #1\n"
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
        "bne 1b\n\t"
        "pop {r4-r9, pc}\n");
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
        const int32_t pairs = (end - i) >> 1;
        if (pairs > 0) {
            fill4_asm(src, d, pairs, step, 4 * rows, off2);
            i += 2 * pairs;
            src += 2 * pairs * step;
        }
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
#endif
    const size_t in_size = (size_t)p->in_h * p->in_w * c, out_size = (size_t)p->out_h * p->out_w * c;
    for (int32_t b = 0; b < p->batches; b++) {
        for (int32_t l = 0; l < g.lines; l++) {
            const int8_t *src = input + b * in_size + (size_t)l * g.in_line;
            int8_t *dst = output + b * out_size + (size_t)l * g.out_line;
            for (int32_t c0 = 0; c0 < c; c0 += 4) {
                const int32_t n = c - c0 < 4 ? c - c0 : 4;
                fill_planes(src + c0, n, &g, p->input_offset, rows, planes);
                const int32_t *pc = p->packed + 4 + (size_t)c0 * per;
#if KWS_M4_DSP
                if (use_asm) {
                    const int32_t args[8] = {(int32_t)plane32, (int32_t)pc, (int32_t)(dst + c0), g.out_step,
                                             g.len_out >> 1, g.len_out & 1, n, 4 * rows};
                    line_group5_asm(args);
                    continue;
                }
#endif
                for (int32_t j = 0; j < n; j++, pc += per) {
                    line_channel(p, plane32 + j * rows, pc, jn, g.len_out, g.out_step, dst + c0 + j);
                }
            }
        }
    }
}
