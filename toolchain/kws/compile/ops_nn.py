"""Lowerings of the arithmetic operators: convolutions, fully connected, pooling, softmax, logistic, mean.

Every multiplier is computed as the tflite-micro kernels compute it in their Prepare step (same
float/double operations in the same order), so the generated code is bit-exact with them.
"""

from __future__ import annotations

import numpy as np

from kws.compile import fixedpoint as fx
from kws.compile.lower import Ctx, Lowered, activation_range, compute_padding, lowering, round_half_away
from kws.compile.ir import Op
from kws.compile.ops_tensor import _contig_strides, copy_call

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


def _conv_common(ctx: Ctx, op: Op, depthwise: bool) -> tuple[dict, int, int, int, int, tuple]:
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
    return fields, macs, ic, oc, kh * kw, (m, s)


# --- cortex-m4: data repacked for firmware/kernels/cortex_m4 (see the layouts in those files) ----------
_M4_PACK_CONV = 0x4D344331      # "M4C1"
_M4_PACK_DW3X3 = 0x4D344431     # "M4D1"
_M4_PACK_DWSIMD = 0x4D344432    # "M4D2"
_M4_PACK_DWLINE = 0x4D344433    # "M4D3"
_M4_RQ_FAST, _M4_RQ_GENERIC = 1, 2


def _i32(values) -> np.ndarray:
    """int64 values -> the int32 words with the same low 32 bits."""
    return (np.asarray(values, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def _m4_halves(lo, hi) -> np.ndarray:
    """Two int16 arrays -> int32 words holding them as (low, high) halves."""
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    return _i32((lo & 0xFFFF) | ((hi & 0xFFFF) << 16))


def _m4_requant(mult, shift, out_zp: int, bias2: np.ndarray, acc2_bound: np.ndarray):
    """(mode, m[], word3[], word4[]) of the cortex-m4 requantization, or None when the doubled
    accumulator could overflow (the portable kernel is used then). Fast mode: every shift < 0 and
    c = 2^(e-1) + z 2^e small (kernels/cortex_m4/nn_m4.h); generic mode: (m, shift) as given."""
    if np.any(acc2_bound >= (1 << 31)) or np.any(np.abs(bias2) >= (1 << 31)):
        return None
    m = np.asarray(mult, np.int64)
    s = np.asarray(shift, np.int64)
    if np.all(s <= -1) and np.all(s >= -30) and np.all(m > 0):
        e = -s
        c = (np.int64(1) << (e - 1)) + np.int64(out_zp) * (np.int64(1) << e)
        if np.all(np.abs(c) < (1 << 30)):
            return _M4_RQ_FAST, m, c, e
    return _M4_RQ_GENERIC, m, s, np.zeros_like(s)


def _m4_bias2_bound(ctx: Ctx, op: Op, w2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Doubled bias per output channel and a bound on |2 acc| (|x + input_offset| <= 255)."""
    oc = w2d.shape[0]
    bias = np.zeros(oc, np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias = np.asarray(ctx.t(op.inputs[2]).data, np.int64).reshape(oc)
    bound = 2 * (np.abs(bias) + 255 * np.abs(w2d.astype(np.int64)).sum(axis=1))
    return 2 * bias, bound


def _m4_pack_conv(ctx: Ctx, op: Op, quant, w: np.ndarray) -> str | None:
    """The im2col GEMM layout of kernels/cortex_m4/conv2d_s8.c for filter w [out_c, k_h, k_w, in_c]."""
    w = np.asarray(w, np.int64)
    oc = w.shape[0]
    w2d = w.reshape(oc, -1)
    k = w2d.shape[1]
    k4 = (k + 3) // 4 * 4
    groups = (oc + 3) // 4
    bias2, bound = _m4_bias2_bound(ctx, op, w2d)
    rq = _m4_requant(quant[0], quant[1], int(quant[2]), bias2, bound)
    if rq is None:
        return None
    mode, m, r3, r4 = rq
    pad = groups * 4 - oc
    wp = np.zeros((groups * 4, k4), np.int64)
    wp[:oc, :k] = 2 * w2d
    # Patch values 4j..4j+3 sit in column words 2j (values 4j, 4j+2) and 2j+1 (4j+1, 4j+3).
    wp = wp.reshape(groups * 4, k4 // 4, 4)[:, :, [0, 2, 1, 3]].reshape(groups * 4, k4 // 2, 2)
    words = _m4_halves(wp[..., 0], wp[..., 1])                         # [groups*4, k4/2]
    words = words.reshape(groups, 4, k4 // 2).transpose(0, 2, 1).reshape(groups, -1)
    b2 = np.tile(_i32(np.pad(bias2, (0, pad)).reshape(groups, 4)), (1, 2))   # once per pixel
    rqw = np.stack([np.pad(np.asarray(v, np.int64), (0, pad)) for v in (m, r3, r4)], axis=1)  # [groups*4, 3]
    rqw = _i32(rqw.reshape(groups, 12))
    body = np.concatenate([b2, words, rqw], axis=1).ravel()
    head = _i32([_M4_PACK_CONV, mode, k4, groups])
    return ctx.array("m4pack", np.concatenate([head, body]), "int32_t")


def _m4_dw_layout(fields: dict) -> str | None:
    """Which cortex-m4 depthwise kernel a layer can use: 'conv' (one input channel: a CONV_2D with
    out_c = depth_multiplier), 'plane' (3x3, stride 1, no dilation), 'line' (K x 1 or 1 x K with
    K >= 2, stride 1, no dilation along the window), 'simd' (multiplier 1, channels in fours, any
    window) or None (portable loops)."""
    f = fields
    if f["in_c"] == 1:
        return "conv"
    if f["depth_multiplier"] != 1:
        return None
    if (f["k_h"] == 3 and f["k_w"] == 3 and f["stride_h"] == 1 and f["stride_w"] == 1
            and f["dilation_h"] == 1 and f["dilation_w"] == 1):
        return "plane"
    if _m4_dw_line(f) is not None:
        return "line"
    if f["in_c"] % 4 == 0:
        return "simd"
    return None


def _m4_dw_plane(fields: dict) -> tuple[int, int]:
    """(rows, cols) of the int16 channel plane of the 3x3 depthwise kernel (stored column by column):
    the output, rows rounded up to pairs, plus the 3x3 border."""
    oh, ow = fields["out_h"], fields["out_w"]
    return oh + (oh & 1) + 2, ow + 2


def _m4_dw_line(fields: dict) -> tuple[int, int] | None:
    """(K, R) of the line depthwise kernel (kernels/cortex_m4/depthwise_line_s8.c): window length K and
    words R per int16 channel plane, or None when the layer does not qualify (mirrors line_geom)."""
    f = fields
    if f["stride_h"] != 1 or f["stride_w"] != 1:
        return None
    if f["k_w"] == 1 and f["k_h"] >= 2:
        k, out_len = f["k_h"], f["out_h"]
        if f["dilation_h"] != 1 or f["out_w"] != f["in_w"] or f["pad_left"] != 0:
            return None
    elif f["k_h"] == 1 and f["k_w"] >= 2:
        k, out_len = f["k_w"], f["out_w"]
        if f["dilation_w"] != 1 or f["out_h"] != f["in_h"] or f["pad_top"] != 0:
            return None
    else:
        return None
    return k, (out_len + 1) // 2 + k // 2


def _m4_pack_dw(ctx: Ctx, op: Op, fields: dict, quant) -> str | None:
    """DEPTHWISE_CONV_2D: the layouts of kernels/cortex_m4/depthwise_conv2d_s8.c (or conv2d_s8.c)."""
    f = fields
    layout = _m4_dw_layout(f)
    if layout is None:
        return None
    w = np.asarray(ctx.t(op.inputs[1]).data, np.int64).reshape(f["k_h"], f["k_w"], -1)   # [ky, kx, c]
    oc = w.shape[2]
    if layout == "conv":
        return _m4_pack_conv(ctx, op, quant, w.transpose(2, 0, 1)[..., None])
    taps = f["k_h"] * f["k_w"]
    bias2, bound = _m4_bias2_bound(ctx, op, w.reshape(taps, oc).T)
    rq = _m4_requant(quant[0], quant[1], int(quant[2]), bias2, bound)
    if rq is None or rq[0] != _M4_RQ_FAST:
        return None
    _, m, c, e = rq
    w2 = 2 * w
    if layout == "plane":
        per = np.stack([_m4_halves(w2[0, 0], w2[1, 0]), _m4_halves(w2[0, 1], w2[1, 1]),
                        _m4_halves(w2[0, 2], w2[1, 2]), _m4_halves(w2[2, 0], w2[2, 1]),
                        _m4_halves(w2[2, 2], np.zeros(oc)), _i32(bias2), _i32(m), _i32(c), _i32(e)], axis=1)
        ph, pw = _m4_dw_plane(f)
        head = _i32([_M4_PACK_DW3X3, _M4_RQ_FAST, ph, pw])
        return ctx.array("m4pack", np.concatenate([head, per.ravel()]), "int32_t")
    if layout == "line":
        # per channel: E_i = (w[2i], w[2i+1]), O_i = (w[2i-1], w[2i]) for i < J = K/2 + 1 (zero outside
        # the window), bias2, m, c, e.
        k, rows = _m4_dw_line(f)
        jn = k // 2 + 1
        wl = np.zeros((2 * jn + 1, oc), np.int64)           # wl[t + 1] = doubled tap t, 0 elsewhere
        wl[1:k + 1] = w2.reshape(k, oc)
        ev = [_m4_halves(wl[2 * i + 1], wl[2 * i + 2]) for i in range(jn)]
        od = [_m4_halves(wl[2 * i], wl[2 * i + 1]) for i in range(jn)]
        per = np.stack(ev + od + [_i32(bias2), _i32(m), _i32(c), _i32(e)], axis=1)
        head = _i32([_M4_PACK_DWLINE, _M4_RQ_FAST, k, rows])
        return ctx.array("m4pack", np.concatenate([head, per.ravel()]), "int32_t")
    # simd: per group of four channels c0..c3: bias2[4]; per tap, the words (w c0, w c2) and (w c1, w c3);
    # then (m, c, e) per channel.
    groups = oc // 4
    wt = w2.reshape(taps, groups, 4).transpose(1, 0, 2)                   # [group, tap, 4]
    ww = np.stack([_m4_halves(wt[..., 0], wt[..., 2]), _m4_halves(wt[..., 1], wt[..., 3])], axis=2)
    rqw = np.stack([m, c, e], axis=1).reshape(groups, 12)
    body = np.concatenate([_i32(bias2.reshape(groups, 4)), ww.reshape(groups, -1), _i32(rqw)], axis=1)
    head = _i32([_M4_PACK_DWSIMD, _M4_RQ_FAST, taps, groups])
    return ctx.array("m4pack", np.concatenate([head, body.ravel()]), "int32_t")


def conv_scratch_bytes(target: str, kind: str, fields: dict) -> int:
    """Scratch the target's kernel needs (mirrors the *_buffer_size() functions of that kernel set)."""
    if target != "cortex-m4" or not fields.get("packed"):
        return 0
    if kind == "depthwise":
        layout = _m4_dw_layout(fields)
        if layout == "plane":
            ph, pw = _m4_dw_plane(fields)
            return (2 * ph * pw + 3) // 4 * 4
        if layout == "line":
            return 16 * _m4_dw_line(fields)[1]
        if layout != "conv":
            return 0
    if kind in ("conv", "depthwise"):
        # im2col of two output pixels as int16, the patch rounded up to a multiple of 4 values.
        k4 = (fields["k_h"] * fields["k_w"] * fields["in_c"] + 3) // 4 * 4
        return 4 * k4
    return 0


def _bias(ctx: Ctx, op: Op) -> str:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return ctx.weights(op.inputs[2])
    return "NULL"


@lowering("CONV_2D")
def conv2d(ctx: Ctx, op: Op) -> Lowered:
    fields, macs, _, _, _, (m, s) = _conv_common(ctx, op, depthwise=False)
    if ctx.target == "cortex-m4":
        packed = _m4_pack_conv(ctx, op, (m, s, fields["output_offset"]), ctx.t(op.inputs[1]).data)
        if packed is not None:
            fields["packed"] = packed
    p = ctx.params("kws_nn_conv_params", fields)
    call = (f"kws_nn_conv2d_s8({p}, {ctx.ptr(op.inputs[0])}, {ctx.weights(op.inputs[1])}, {_bias(ctx, op)}, "
            f"{ctx.ptr(op.outputs[0])}, {{SCRATCH}});")
    return Lowered(call, macs=macs, scratch_bytes=conv_scratch_bytes(ctx.target, "conv", fields),
                   kernel="conv2d_s8")


@lowering("DEPTHWISE_CONV_2D")
def depthwise_conv2d(ctx: Ctx, op: Op) -> Lowered:
    fields, macs, _, _, _, (m, s) = _conv_common(ctx, op, depthwise=True)
    if ctx.target == "cortex-m4":
        packed = _m4_pack_dw(ctx, op, fields, (m, s, fields["output_offset"]))
        if packed is not None:
            fields["packed"] = packed
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


def relu_table(kind: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int,
               alpha: float = 0.0) -> list[int]:
    """RELU, RELU6 or LEAKY_RELU int8 -> int8 for every input value, as tflite-micro computes them.
    RELU: requantize by in/out scale, clamp below at the output zero point. RELU6: clamp between the
    input's zero point and 6.0 in the input's quantization (no requantization: the output's
    quantization is not used). LEAKY_RELU: requantize by in/out scale (x >= 0) or by
    in_scale * alpha / out_scale (x < 0), the scale products in float."""
    x = np.arange(-128, 128, dtype=np.int64) - in_zp
    if kind == "RELU":
        m, s = fx.quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
        out = np.clip(out_zp + fx.multiply_by_quantized_multiplier(x, m, s), max(-128, out_zp), 127)
    elif kind == "RELU6":
        six = round_half_away(float(np.float32(6.0) / np.float32(in_scale))) + in_zp
        out = np.clip(x + in_zp, in_zp, min(max(six, -128), 127))
    else:
        fs, fa, fo = np.float32(in_scale), np.float32(alpha), np.float32(out_scale)
        ma, sa = fx.quantize_multiplier(float(np.float32(fs * fa) / fo))
        mi, si = fx.quantize_multiplier(float(fs / fo))
        pos = fx.multiply_by_quantized_multiplier(x, mi, si)
        neg = fx.multiply_by_quantized_multiplier(x, ma, sa)
        out = np.clip(out_zp + np.where(x >= 0, pos, neg), -128, 127)
    return [int(v) for v in out]


@lowering("RELU", "RELU6", "LEAKY_RELU")
def relu(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    xs, xz = ctx.per_tensor(x, "input")
    ys, yz = ctx.per_tensor(y, "output")
    table = relu_table(op.kind, xs, xz, ys, yz, float(op.options.get("alpha", 0.0)))
    lut = ctx.array("lut", table, "int8_t")
    return Lowered(f"kws_nn_lut_s8({lut}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {x.size});",
                   inplace=[(op.inputs[0], op.outputs[0])], kernel="lut_s8")


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """MEAN's requantization as tflite-micro's QuantizedMeanOrSum: QuantizeMultiplier(in/out scale),
    then 1/count folded into it by integer division after a left shift of floor(log2(count)), at most
    32 and at most 31 + shift (so that the final shift stays >= -31)."""
    m, s = fx.quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
    k = min(count.bit_length() - 1, 32, 31 + s)
    return (m << k) // count, s - k


@lowering("MEAN")
def mean(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    axes_t = ctx.t(op.inputs[1])
    if axes_t.data is None:
        raise ctx.fail("the reduction axes must be constant")
    nd = len(x.shape)
    given_axes = [int(a) for a in np.asarray(axes_t.data).ravel()]
    if any(not -nd <= a < nd for a in given_axes):
        raise ctx.fail(f"reduction axes {given_axes} are out of range for a rank-{nd} input")
    axes = {a % nd for a in given_axes}
    reduce = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if y.size * reduce != x.size:
        raise ctx.fail(f"output has {y.size} elements, expected {x.size // reduce}")
    # Dimensions of size 1 do not matter; if the reduced ones are then adjacent, the input is a
    # [outer, reduce, inner] block. Otherwise a strided copy into scratch first moves the kept
    # dimensions to the front (integer sums do not depend on the order).
    big = [d for d in range(nd) if x.shape[d] != 1]
    at = [i for i, d in enumerate(big) if d in axes]
    src, scratch, pre = ctx.ptr(op.inputs[0]), 0, ""
    if not at or at == list(range(at[0], at[-1] + 1)):
        first = big[at[0]] if at else nd
        outer = int(np.prod(x.shape[:first], dtype=np.int64))
        inner = x.size // (outer * reduce)
    else:
        keep = [d for d in big if d not in axes]
        perm = keep + [d for d in big if d in axes]
        counts = [x.shape[d] for d in perm]
        cs = _contig_strides(x.shape)
        pre = copy_call(ctx, 1, counts, [cs[d] for d in perm], _contig_strides(counts), src, "{SCRATCH}") + "\n"
        src, scratch = "(const int8_t *){SCRATCH}", x.size
        outer, inner = x.size // reduce, 1
    xs, xz = ctx.per_tensor(x, "input")
    ys, yz = ctx.per_tensor(y, "output")
    # tflite-micro requantizes even when input and output quantization are the same.
    m, s = mean_multiplier(xs, ys, reduce)
    p = ctx.params("kws_nn_mean_params", dict(outer=outer, reduce=reduce, inner=inner, input_zero_point=xz,
                                              output_zero_point=yz, multiplier=m, shift=s))
    return Lowered(f"{pre}kws_nn_mean_s8({p}, {src}, {ctx.ptr(op.outputs[0])});",
                   macs=x.size, scratch_bytes=scratch, kernel="mean_s8")
