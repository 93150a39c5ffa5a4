// CONV_2D, int8, per-channel: the portable reference (see kws/nn.h).
#include "kws/nn.h"
#include "nn/nn_ref.h"

size_t kws_nn_conv2d_s8_buffer_size(const kws_nn_conv_params *p) {
    (void)p;
    return 0;
}

void kws_nn_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, void *scratch) {
    kws_nn_conv2d_s8_ref(p, input, filter, bias, output, scratch);
}
