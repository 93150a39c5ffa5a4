// Generic reference loops shared by the portable and the optimized kernel sets (firmware/src/nn/conv_ref_s8.c).
#ifndef KWS_NN_REF_H
#define KWS_NN_REF_H

#include "kws/nn.h"

// Same contracts as kws_nn_conv2d_s8 / kws_nn_depthwise_conv2d_s8 (kws/nn.h); no scratch.
void kws_nn_conv2d_s8_ref(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                          const int32_t *bias, int8_t *output, void *scratch);
void kws_nn_depthwise_conv2d_s8_ref(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                                    const int32_t *bias, int8_t *output, void *scratch);

#endif  // KWS_NN_REF_H
