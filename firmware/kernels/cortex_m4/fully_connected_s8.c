// FULLY_CONNECTED, int8, for Cortex-M4 (DSP extension). Same results as src/nn/fully_connected_s8.c.
//
// Two outputs at a time: each word of four inputs is widened once with SXTAB16 (adding input_offset)
// into lanes (x0, x2) and (x1, x3); each output's four weights likewise (adding filter_offset), then
// two SMLAD per output. Inputs past a multiple of four: scalar. Requantization as the reference.
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn_m4.h"

size_t kws_nn_fully_connected_s8_buffer_size(const kws_nn_fc_params *p) {
    (void)p;
    return 0;
}

static int8_t fc_out(const kws_nn_fc_params *p, int32_t acc, const int32_t *bias, int32_t o) {
    if (bias) {
        acc += bias[o];
    }
    const int32_t c = p->per_channel ? o : 0;
    acc = kws_nn_requantize(acc, p->multiplier[c], p->shift[c]) + p->output_offset;
    return (int8_t)kws_nn_clamp(acc, p->act_min, p->act_max);
}

void kws_nn_fully_connected_s8(const kws_nn_fc_params *p, const int8_t *input, const int8_t *filter,
                               const int32_t *bias, int8_t *output, void *scratch) {
    (void)scratch;
    const int32_t n = p->in_depth, n4 = n & ~3;
    const int32_t in_off = p->input_offset, f_off = p->filter_offset;
    const int32_t in_off2 = (int32_t)(((uint32_t)in_off & 0xffffu) * 0x10001u);
    const int32_t f_off2 = (int32_t)(((uint32_t)f_off & 0xffffu) * 0x10001u);
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + (size_t)b * n;
        int32_t o = 0;
        for (; o + 2 <= p->out_depth; o += 2) {
            const int8_t *f0 = filter + (size_t)o * n, *f1 = f0 + n;
            int32_t a0 = 0, a1 = 0;
            for (int32_t i = 0; i < n4; i += 4) {
                const int32_t x = m4_ld32(in + i), w0 = m4_ld32(f0 + i), w1 = m4_ld32(f1 + i);
                const int32_t xe = m4_sxtab16(in_off2, x), xo = m4_sxtab16_ror8(in_off2, x);
                a0 = m4_smlad(xe, m4_sxtab16(f_off2, w0), a0);
                a0 = m4_smlad(xo, m4_sxtab16_ror8(f_off2, w0), a0);
                a1 = m4_smlad(xe, m4_sxtab16(f_off2, w1), a1);
                a1 = m4_smlad(xo, m4_sxtab16_ror8(f_off2, w1), a1);
            }
            for (int32_t i = n4; i < n; i++) {
                a0 += (in[i] + in_off) * (f0[i] + f_off);
                a1 += (in[i] + in_off) * (f1[i] + f_off);
            }
            *output++ = fc_out(p, a0, bias, o);
            *output++ = fc_out(p, a1, bias, o + 1);
        }
        if (o < p->out_depth) {
            const int8_t *f0 = filter + (size_t)o * n;
            int32_t a0 = 0;
            for (int32_t i = 0; i < n4; i += 4) {
                const int32_t x = m4_ld32(in + i), w0 = m4_ld32(f0 + i);
                a0 = m4_smlad(m4_sxtab16(in_off2, x), m4_sxtab16(f_off2, w0), a0);
                a0 = m4_smlad(m4_sxtab16_ror8(in_off2, x), m4_sxtab16_ror8(f_off2, w0), a0);
            }
            for (int32_t i = n4; i < n; i++) {
                a0 += (in[i] + in_off) * (f0[i] + f_off);
            }
            *output++ = fc_out(p, a0, bias, o);
        }
    }
}
