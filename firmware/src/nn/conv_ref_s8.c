// The generic CONV_2D and DEPTHWISE_CONV_2D loops (any shape, stride, dilation, padding, depth
// multiplier): the portable kernels call them, and optimized kernels call them for the shapes their
// fast paths do not cover. Bit-exact with tflite-micro (see kws/nn.h).
#include "kws/nn.h"
#include "nn/nn_fixedpoint.h"
#include "nn/nn_ref.h"

void kws_nn_conv2d_s8_ref(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, void *scratch) {
    (void)scratch;
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

void kws_nn_depthwise_conv2d_s8_ref(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                                const int32_t *bias, int8_t *output, void *scratch) {
    (void)scratch;
    const int32_t m = p->depth_multiplier;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + (size_t)b * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t oc = 0; oc < p->out_c; oc++) {
                    const int32_t ic = oc / m;
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
                            const int32_t v = in_b[((size_t)y * p->in_w + x) * p->in_c + ic] + p->input_offset;
                            acc += v * filter[((size_t)ky * p->k_w + kx) * p->out_c + oc];
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
