// FULLY_CONNECTED, int8: the portable reference (see kws/nn.h).
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"

size_t kws_nn_fully_connected_s8_buffer_size(const kws_nn_fc_params *p) {
    (void)p;
    return 0;
}

void kws_nn_fully_connected_s8(const kws_nn_fc_params *p, const int8_t *input, const int8_t *filter,
                               const int32_t *bias, int8_t *output, void *scratch) {
    (void)scratch;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + (size_t)b * p->in_depth;
        for (int32_t o = 0; o < p->out_depth; o++) {
            const int8_t *f = filter + (size_t)o * p->in_depth;
            int32_t acc = 0;
            for (int32_t i = 0; i < p->in_depth; i++) {
                acc += (in[i] + p->input_offset) * (f[i] + p->filter_offset);
            }
            if (bias) {
                acc += bias[o];
            }
            const int32_t c = p->per_channel ? o : 0;
            acc = kws_nn_requantize(acc, p->multiplier[c], p->shift[c]) + p->output_offset;
            *output++ = (int8_t)kws_nn_clamp(acc, p->act_min, p->act_max);
        }
    }
}
