"""Lowerings of the arithmetic operators: convolutions, fully connected, pooling, softmax, logistic, mean.

Every multiplier is computed as the tflite-micro kernels compute it in their Prepare step (same
float/double operations in the same order), so the generated code is bit-exact with them.
"""

from __future__ import annotations

import numpy as np

from kws.compile import fixedpoint as fx
from kws.compile.lower import Ctx, Lowered, activation_range, compute_padding, lowering
from kws.compile.ir import Op

_ACT = "fusedActivationFunction"


def _per_channel_multipliers(ctx: Ctx, in_scale: float, w_scales: np.ndarray, out_scale: float, n: int):
    if len(w_scales) not in (1, n):
        raise ctx.fail(f"weights have {len(w_scales)} scales for {n} output channels")
    mult, shift = [], []
    for c in range(n):
        ws = float(w_scales[c if len(w_scales) > 1 else 0])
        # double(input_scale) * double(filter_scale) / double(output_scale), as PopulateConvolutionQuantizationParams.
        m, s = fx.quantize_multiplier(float(np.float64(in_scale) * np.float64(ws) / np.float64(out_scale)))
        mult.append(m)
        shift.append(s)
    return mult, shift


def _conv_common(ctx: Ctx, op: Op, depthwise: bool) -> tuple[dict, int, int, int, int]:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    w = ctx.expect(op.inputs[1], ("int8",), "filter")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    if w.data is None:
        raise ctx.fail("the filter must be constant")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = ctx.expect(op.inputs[2], ("int32",), "bias")
        if b.data is None:
            raise ctx.fail("the bias must be constant")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise ctx.fail("input, filter and output must be 4-D (NHWC)")
    if w.zero_point is not None and np.any(w.zero_point != 0):
        raise ctx.fail("filter zero points must be 0 (symmetric int8 weights)")
    o = op.options
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    if depthwise:
        _, kh, kw, fc = w.shape
        mult = int(o.get("depthMultiplier", 1)) or 1
        if fc != oc or ic * mult != oc:
            raise ctx.fail(f"depthwise shapes disagree: input channels {ic} x multiplier {mult} != output {oc} (filter {fc})")
        mult = oc // ic
    else:
        fo, kh, kw, fi = w.shape
        mult = 1
        if fo != oc:
            raise ctx.fail(f"filter has {fo} output channels, output has {oc}")
        if fi != ic:
            raise ctx.fail(f"filter expects {fi} input channels, input has {ic} (grouped convolution is not supported)")
    sh, sw = int(o.get("strideH", 1)), int(o.get("strideW", 1))
    dh, dw = int(o.get("dilationHFactor", 1) or 1), int(o.get("dilationWFactor", 1) or 1)
    pad = int(o.get("padding", 0))
    pt = compute_padding(ih, kh, sh, dh, pad, oh, ctx, "height")
    pl = compute_padding(iw, kw, sw, dw, pad, ow, ctx, "width")
    xs, xz = ctx.per_tensor(x, "input")
    ys, yz = ctx.per_tensor(y, "output")
    m, s = _per_channel_multipliers(ctx, xs, w.scale, ys, oc)
    lo, hi = activation_range(ctx, int(o.get(_ACT, 0)), y)
    fields = dict(batches=n, in_h=ih, in_w=iw, in_c=ic, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
                  stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl,
                  depth_multiplier=mult, input_offset=-xz, output_offset=yz, act_min=lo, act_max=hi,
                  multiplier=ctx.array("mult", m, "int32_t"), shift=ctx.array("shift", s, "int32_t"))
    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)
    return fields, macs, ic, oc, kh * kw


def conv_scratch_bytes(target: str, kind: str, fields: dict) -> int:
    """Scratch the target's kernel needs (mirrors the *_buffer_size() functions of that kernel set)."""
    if target != "cortex-m4":
        return 0
    if kind == "conv":
        # im2col of two output pixels as int16: 2 * k_h * k_w * in_c halfwords.
        return 2 * 2 * fields["k_h"] * fields["k_w"] * fields["in_c"]
    if kind == "depthwise":
        return 0
    if kind == "fc":
        return 0
    return 0


def _bias(ctx: Ctx, op: Op) -> str:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return ctx.weights(op.inputs[2])
    return "NULL"


@lowering("CONV_2D")
def conv2d(ctx: Ctx, op: Op) -> Lowered:
    fields, macs, *_ = _conv_common(ctx, op, depthwise=False)
    p = ctx.params("kws_nn_conv_params", fields)
    call = (f"kws_nn_conv2d_s8({p}, {ctx.ptr(op.inputs[0])}, {ctx.weights(op.inputs[1])}, {_bias(ctx, op)}, "
            f"{ctx.ptr(op.outputs[0])}, {{SCRATCH}});")
    return Lowered(call, macs=macs, scratch_bytes=conv_scratch_bytes(ctx.target, "conv", fields),
                   kernel="conv2d_s8")


@lowering("DEPTHWISE_CONV_2D")
def depthwise_conv2d(ctx: Ctx, op: Op) -> Lowered:
    fields, macs, *_ = _conv_common(ctx, op, depthwise=True)
    p = ctx.params("kws_nn_conv_params", fields)
    call = (f"kws_nn_depthwise_conv2d_s8({p}, {ctx.ptr(op.inputs[0])}, {ctx.weights(op.inputs[1])}, "
            f"{_bias(ctx, op)}, {ctx.ptr(op.outputs[0])}, {{SCRATCH}});")
    return Lowered(call, macs=macs, scratch_bytes=conv_scratch_bytes(ctx.target, "depthwise", fields),
                   kernel="depthwise_conv2d_s8")


@lowering("FULLY_CONNECTED")
def fully_connected(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    w = ctx.expect(op.inputs[1], ("int8",), "weights")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    if w.data is None:
        raise ctx.fail("the weights must be constant")
    if len(w.shape) != 2:
        raise ctx.fail(f"weights must be 2-D [out, in], got {list(w.shape)}")
    if int(op.options.get("weightsFormat", 0)) != 0:
        raise ctx.fail("shuffled weights format is not supported")
    out_d, in_d = w.shape
    if x.size % in_d:
        raise ctx.fail(f"input of {x.size} elements is not a whole number of rows of {in_d}")
    batches = x.size // in_d
    if y.size != batches * out_d:
        raise ctx.fail(f"output has {y.size} elements, expected {batches} x {out_d}")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        ctx.expect(op.inputs[2], ("int32",), "bias")
    xs, xz = ctx.per_tensor(x, "input")
    ys, yz = ctx.per_tensor(y, "output")
    wz = int(w.zero_point[0]) if w.zero_point is not None else 0
    if w.per_channel:
        if np.any(w.zero_point != 0):
            raise ctx.fail("per-channel weights must have zero points 0")
        m, s = _per_channel_multipliers(ctx, xs, w.scale, ys, out_d)
        wz = 0
    else:
        # GetQuantizedConvolutionMultipler: the scale product is taken in float, then divided in double.
        prod = np.float32(np.float32(xs) * np.float32(w.scale[0]))
        mm, ss = fx.quantize_multiplier(float(np.float64(prod) / np.float64(ys)))
        m, s = [mm], [ss]
    lo, hi = activation_range(ctx, int(op.options.get(_ACT, 0)), y)
    fields = dict(batches=batches, in_depth=in_d, out_depth=out_d, input_offset=-xz, filter_offset=-wz,
                  output_offset=yz, act_min=lo, act_max=hi, per_channel=int(w.per_channel),
                  multiplier=ctx.array("mult", m, "int32_t"), shift=ctx.array("shift", s, "int32_t"))
    p = ctx.params("kws_nn_fc_params", fields)
    call = (f"kws_nn_fully_connected_s8({p}, {ctx.ptr(op.inputs[0])}, {ctx.weights(op.inputs[1])}, "
            f"{_bias(ctx, op)}, {ctx.ptr(op.outputs[0])}, {{SCRATCH}});")
    return Lowered(call, macs=batches * in_d * out_d, scratch_bytes=conv_scratch_bytes(ctx.target, "fc", fields),
                   kernel="fully_connected_s8")


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def pool(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise ctx.fail("input and output must be 4-D (NHWC)")
    if x.qparams() != y.qparams():
        raise ctx.fail("input and output quantization differ (tflite-micro requires them equal)")
    o = op.options
    n, ih, iw, c = x.shape
    _, oh, ow, oc = y.shape
    if oc != c:
        raise ctx.fail(f"output has {oc} channels, input {c}")
    kh, kw = int(o.get("filterHeight", 1)), int(o.get("filterWidth", 1))
    sh, sw = int(o.get("strideH", 1)), int(o.get("strideW", 1))
    pad = int(o.get("padding", 0))
    pt = compute_padding(ih, kh, sh, 1, pad, oh, ctx, "height")
    pl = compute_padding(iw, kw, sw, 1, pad, ow, ctx, "width")
    lo, hi = activation_range(ctx, int(o.get(_ACT, 0)), y)
    p = ctx.params("kws_nn_pool_params", dict(batches=n, in_h=ih, in_w=iw, channels=c, out_h=oh, out_w=ow,
                                              k_h=kh, k_w=kw, stride_h=sh, stride_w=sw, pad_top=pt,
                                              pad_left=pl, act_min=lo, act_max=hi))
    fn = "kws_nn_avgpool_s8" if op.kind == "AVERAGE_POOL_2D" else "kws_nn_maxpool_s8"
    return Lowered(f"{fn}({p}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
                   macs=n * oh * ow * c * kh * kw, kernel=fn[7:])


def softmax_table(beta: float, input_scale: float) -> tuple[list[int], int]:
    """exp(-d * beta * scale) for d = 0..255 in Q0.31 as TFLite's int8 softmax computes it, and the
    largest d that still contributes (from diff_min)."""
    real = min(float(np.float64(beta) * np.float64(input_scale) * (1 << 26)), float((1 << 31) - 1))
    mult, left_shift = fx.quantize_multiplier(real)
    diff_min = -fx.calculate_input_radius(5, left_shift)
    d = np.arange(256, dtype=np.int64)
    diff = -d
    ok = diff >= diff_min
    rescaled = fx.srdhm(fx._wrap32(diff * (1 << left_shift)), mult)
    table = np.where(ok, fx.exp_on_negative_values(rescaled, 5), 0)
    limit = int(min(255, -diff_min))
    return [int(v) for v in table], limit


@lowering("SOFTMAX")
def softmax(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    ys, yz = y.qparams()
    if yz != -128 or abs(ys - 1.0 / 256) > 1e-8 * 256:
        raise ctx.fail(f"int8 softmax output must have scale 1/256 and zero point -128, got {ys:g} and {yz}")
    xs, _ = ctx.per_tensor(x, "input")
    table, limit = softmax_table(float(np.float32(op.options.get("beta", 1.0))), xs)
    depth = x.shape[-1] if x.shape else 1
    p = ctx.params("kws_nn_softmax_params", dict(rows=x.size // depth, depth=depth, diff_limit=limit,
                                                 exp_table=ctx.array("exp", table, "int32_t")))
    return Lowered(f"kws_nn_softmax_s8({p}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
                   inplace=[(op.inputs[0], op.outputs[0])] if False else [], kernel="softmax_s8")


def logistic_table(input_scale: float, input_zero_point: int) -> list[int]:
    """LOGISTIC int8 -> int8 (output scale 1/256, zero point -128) for every input value, as TFLite's
    integer reference computes it: input rescaled to Q4.27, fixed-point logistic, rounded to Q8.23."""
    real = float(np.float64(input_scale) * np.float64(1 << 27))
    mult, left_shift = fx.quantize_multiplier(real)
    radius = fx.calculate_input_radius(4, left_shift, 31)
    x = np.arange(-128, 128, dtype=np.int64) - input_zero_point
    q4 = fx.multiply_by_quantized_multiplier(x, mult, left_shift)
    q0 = fx.logistic(fx._wrap32(q4), 4)
    out = np.clip(fx.rdbpot(q0, 31 - 8) - 128, -128, 127)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return [int(v) for v in out]


@lowering("LOGISTIC")
def logistic(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    ys, yz = y.qparams()
    if yz != -128 or abs(ys - 1.0 / 256) > 1e-8 * 256:
        raise ctx.fail(f"int8 logistic output must have scale 1/256 and zero point -128, got {ys:g} and {yz}")
    xs, xz = ctx.per_tensor(x, "input")
    lut = ctx.array("lut", logistic_table(xs, xz), "int8_t")
    return Lowered(f"kws_nn_lut_s8({lut}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {x.size});",
                   inplace=[(op.inputs[0], op.outputs[0])], kernel="lut_s8")


@lowering("MEAN")
def mean(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    axes_t = ctx.t(op.inputs[1])
    if axes_t.data is None:
        raise ctx.fail("the reduction axes must be constant")
    nd = len(x.shape)
    axes = sorted({int(a) % nd for a in np.asarray(axes_t.data).ravel()})
    if not axes or axes != list(range(axes[0], axes[-1] + 1)):
        raise ctx.fail(f"reduction over axes {axes} is not supported (they must be contiguous)")
    outer = int(np.prod(x.shape[:axes[0]], dtype=np.int64))
    reduce = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    inner = int(np.prod(x.shape[axes[-1] + 1:], dtype=np.int64))
    xs, xz = ctx.per_tensor(x, "input")
    ys, yz = ctx.per_tensor(y, "output")
    same = (xs == ys and xz == yz)
    m, s = fx.quantize_multiplier(float(np.float64(xs) / np.float64(ys) / reduce)) if not same else (0, 0)
    p = ctx.params("kws_nn_mean_params", dict(outer=outer, reduce=reduce, inner=inner, input_zero_point=xz,
                                              output_zero_point=yz, requantize=int(not same),
                                              multiplier=m, shift=s))
    return Lowered(f"kws_nn_mean_s8({p}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
                   macs=x.size, kernel="mean_s8")
