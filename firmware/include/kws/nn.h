// Int8 neural-network kernels: what `kws compile` emits calls to.
//
// Arithmetic follows the TFLite int8 quantization specification exactly, so that outputs are
// bit-identical to the tflite-micro reference kernels: int8 activations (asymmetric, zero point z),
// int8 weights (symmetric, per output channel for convolutions), int32 biases, int32 accumulators,
// requantization by a Q0.31 multiplier and a power-of-two shift with TFLite's double rounding
// (saturating rounding doubling high multiply, then rounding right shift).
//
// Conventions for every kernel here:
// - Activations are NHWC (batch, height, width, channels), C order; filters of CONV_2D are OHWI,
//   of DEPTHWISE_CONV_2D 1HWC, of FULLY_CONNECTED [out, in]. All pointers are owned by the caller;
//   kernels read inputs and weights during the call only and write only their output (and scratch).
// - Offsets are added before multiplying: input_offset = -input_zero_point, output_offset =
//   output_zero_point. act_min/act_max clamp the output (fused RELU/RELU6 or the int8 range).
// - multiplier/shift: per output channel arrays (or one value) from QuantizeMultiplier; shift > 0
//   means a left shift.
// - Kernels with a scratch buffer have a *_buffer_size() companion giving its size in bytes for the
//   build's kernel set (portable C: 0). Scratch must be 4-byte aligned. Nothing here allocates.
// - Params structs are const data emitted by the compiler; every count is > 0.
// The portable reference implementations live in firmware/src/nn/; firmware/kernels/<arch>/ files of
// the same name replace them on that architecture with identical results.

#ifndef KWS_NN_H
#define KWS_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// CONV_2D and DEPTHWISE_CONV_2D. Input [batches, in_h, in_w, in_c], output [batches, out_h, out_w,
// out_c]; padding is implicit: pixels outside the input are skipped (they equal the zero point).
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t depth_multiplier;       // depthwise only: out_c = in_c * depth_multiplier
    int32_t input_offset;           // -input zero point
    int32_t output_offset;          // output zero point
    int32_t act_min, act_max;       // output clamp, within [-128, 127]
    const int32_t *multiplier;      // [out_c] Q0.31
    const int32_t *shift;           // [out_c]
    // Optional: weights and requantization data repacked by `kws compile` for one architecture's
    // optimized kernels (layout private to firmware/kernels/<arch>/). NULL (and ignored by the portable
    // kernels) otherwise; filter, bias, multiplier and shift are always given as well.
    const int32_t *packed;
} kws_nn_conv_params;

// filter: int8 [out_c, k_h, k_w, in_c]; bias: int32 [out_c] or NULL.
void kws_nn_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                      const int32_t *bias, int8_t *output, void *scratch);
size_t kws_nn_conv2d_s8_buffer_size(const kws_nn_conv_params *p);

// filter: int8 [1, k_h, k_w, out_c]; bias: int32 [out_c] or NULL.
void kws_nn_depthwise_conv2d_s8(const kws_nn_conv_params *p, const int8_t *input, const int8_t *filter,
                                const int32_t *bias, int8_t *output, void *scratch);
size_t kws_nn_depthwise_conv2d_s8_buffer_size(const kws_nn_conv_params *p);

// FULLY_CONNECTED. Input [batches, in_depth], filter int8 [out_depth, in_depth], bias int32
// [out_depth] or NULL, output [batches, out_depth]. per_channel: multiplier/shift have out_depth
// entries, else one.
typedef struct {
    int32_t batches, in_depth, out_depth;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
    int32_t per_channel;
    const int32_t *multiplier;
    const int32_t *shift;
} kws_nn_fc_params;

void kws_nn_fully_connected_s8(const kws_nn_fc_params *p, const int8_t *input, const int8_t *filter,
                               const int32_t *bias, int8_t *output, void *scratch);
size_t kws_nn_fully_connected_s8_buffer_size(const kws_nn_fc_params *p);

// AVERAGE_POOL_2D / MAX_POOL_2D over NHWC; input and output share scale and zero point. Average:
// sum over the window's in-bounds pixels divided by their count, rounded half away from zero.
typedef struct {
    int32_t batches, in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} kws_nn_pool_params;

void kws_nn_avgpool_s8(const kws_nn_pool_params *p, const int8_t *input, int8_t *output);
void kws_nn_maxpool_s8(const kws_nn_pool_params *p, const int8_t *input, int8_t *output);

// SOFTMAX, int8 in and int8 out (output scale 1/256, zero point -128), over the last dimension.
// exp_table[d] for d = 0..255 is exp(-d * beta * input_scale) in Q0.31 as TFLite computes it for an
// input difference of -d from the row maximum; differences below -diff_limit give 0 (output -128).
typedef struct {
    int32_t rows, depth;
    int32_t diff_limit;             // largest d with a non-zero contribution (<= 255)
    const int32_t *exp_table;       // [256] Q0.31
} kws_nn_softmax_params;

void kws_nn_softmax_s8(const kws_nn_softmax_params *p, const int8_t *input, int8_t *output);

// Any element-wise int8 -> int8 function (LOGISTIC, TANH, requantizing QUANTIZE, ...):
// output[i] = table[input[i] + 128]. count elements. In-place (input == output) is allowed.
void kws_nn_lut_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t count);

// ADD and MUL of two int8 tensors with broadcasting. The output has shape out[4] (dimensions padded
// at the front with 1); in1_strides/in2_strides give each input's element stride per output
// dimension (0 where the input is broadcast).
typedef struct {
    int32_t out_shape[4];
    int32_t in1_strides[4], in2_strides[4];
    int32_t in1_offset, in2_offset, output_offset;
    int32_t left_shift;                       // ADD: 20
    int32_t in1_multiplier, in1_shift;        // ADD only
    int32_t in2_multiplier, in2_shift;        // ADD only
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
} kws_nn_binary_params;

void kws_nn_add_s8(const kws_nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
void kws_nn_mul_s8(const kws_nn_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);

// MEAN of int8 over a block: the input is viewed as [outer, reduce, inner] and reduced over the
// middle dimension; output [outer, inner]. out = clamp(MBQM(sum - count * in_zp, m, s) + out_zp)
// where m and s include 1/count, folded in as tflite-micro's QuantizedMeanOrSum does (always, even
// when input and output quantization are the same).
typedef struct {
    int32_t outer, reduce, inner;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
} kws_nn_mean_params;

void kws_nn_mean_s8(const kws_nn_mean_params *p, const int8_t *input, int8_t *output);

// Block copy with strides (in elements of elem_bytes = 1, 2 or 4): for every index (a, b, c, d) below
// count[], dst[a*dst_stride[0] + ... + d*dst_stride[3]] = src[a*src_stride[0] + ...]. src and dst
// already point at the first element. Implements RESHAPE, CONCATENATION, STRIDED_SLICE, SPLIT(_V),
// PAD (after kws_nn_fill) and TRANSPOSE. Source and destination must not overlap.
typedef struct {
    int32_t elem_bytes;
    int32_t count[4];
    int32_t src_stride[4];
    int32_t dst_stride[4];
} kws_nn_copy_params;

void kws_nn_copy(const kws_nn_copy_params *p, const void *src, void *dst);

// Sets count bytes of dst to value (PAD's constant).
void kws_nn_fill_s8(int8_t *dst, int8_t value, int32_t count);

// QUANTIZE float32 -> int8: out = clamp(round(x / scale) + zero_point), round half away from zero.
void kws_nn_quantize_f32_s8(const float *input, int8_t *output, int32_t count, float scale, int32_t zero_point);
// DEQUANTIZE int8 -> float32: out = scale * (x - zero_point).
void kws_nn_dequantize_s8_f32(const int8_t *input, float *output, int32_t count, float scale, int32_t zero_point);

#ifdef __cplusplus
}
#endif

#endif  // KWS_NN_H
