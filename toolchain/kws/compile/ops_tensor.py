"""Lowerings of data-movement, element-wise and state operators.

RESHAPE and friends cost nothing (the output is a view of the input's memory). CONCATENATION,
STRIDED_SLICE, SPLIT, SPLIT_V and PAD become strided block copies (kws_nn_copy). QUANTIZE between int8
types and LOGISTIC become 256-entry tables. Resource variables (streaming state) live in a separate
static state buffer: {H<handle>} placeholders name a variable's storage.
"""

from __future__ import annotations

import numpy as np

from kws.compile import fixedpoint as fx
from kws.compile.ir import Op
from kws.compile.lower import Ctx, Lowered, activation_range, lowering


def _contig_strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed(list(shape)):
        strides.append(acc)
        acc *= int(d)
    return list(reversed(strides))


def copy_call(ctx: Ctx, elem_bytes: int, counts, src_strides, dst_strides, src: str, dst: str) -> str:
    """A kws_nn_copy call for a strided block (any rank; dimensions are merged down to 4)."""
    dims = [(int(c), int(s), int(d)) for c, s, d in zip(counts, src_strides, dst_strides) if int(c) != 1]
    if any(c == 0 for c, _, _ in dims):
        return ""
    merged: list[tuple[int, int, int]] = []
    for c, s, d in dims:
        if merged and merged[-1][1] == s * c and merged[-1][2] == d * c:
            pc = merged.pop()[0]
            merged.append((pc * c, s, d))
        else:
            merged.append((c, s, d))
    if len(merged) > 4:
        raise ctx.fail(f"a copy over {len(merged)} non-mergeable dimensions is not supported (at most 4)")
    while len(merged) < 4:
        merged.insert(0, (1, 0, 0))
    p = ctx.params("kws_nn_copy_params", dict(elem_bytes=elem_bytes, count=[m[0] for m in merged],
                                              src_stride=[m[1] for m in merged],
                                              dst_stride=[m[2] for m in merged]))
    return f"kws_nn_copy({p}, {src}, {dst});"


def _offset(ptr: str, elems: int) -> str:
    return ptr if elems == 0 else f"({ptr} + {elems})"


def _same_quant(ctx: Ctx, a, b, what: str) -> None:
    if a.dtype in ("int8", "uint8", "int16") and (a.scale is not None or b.scale is not None):
        if a.scale is None or b.scale is None or a.qparams() != b.qparams():
            raise ctx.fail(f"{what}: quantization differs from the output's (requantizing copies are not supported)")


@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def reshape(ctx: Ctx, op: Op) -> Lowered:
    x, y = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    if x.size != y.size or x.dtype != y.dtype:
        raise ctx.fail(f"reshape of {list(x.shape)} {x.dtype} to {list(y.shape)} {y.dtype} changes the data")
    if x.is_const:
        raise ctx.fail("reshape of a constant is not supported")
    return Lowered("", alias=(op.inputs[0], op.outputs[0]), kernel="view")


@lowering("CONCATENATION")
def concatenation(ctx: Ctx, op: Op) -> Lowered:
    y = ctx.t(op.outputs[0])
    nd = len(y.shape)
    axis = int(op.options.get("axis", 0))
    axis = axis + nd if axis < 0 else axis
    if not 0 <= axis < nd:
        raise ctx.fail(f"axis {op.options.get('axis')} is out of range for rank {nd}")
    if int(op.options.get("fusedActivationFunction", 0)) != 0:
        raise ctx.fail("a fused activation on CONCATENATION is not supported")
    esz = np.dtype(y.dtype).itemsize
    dst_strides = _contig_strides(y.shape)
    calls, at = [], 0
    for i in op.inputs:
        x = ctx.t(i)
        if x.dtype != y.dtype or len(x.shape) != nd:
            raise ctx.fail(f"input {i} is {list(x.shape)} {x.dtype}, output {list(y.shape)} {y.dtype}")
        _same_quant(ctx, x, y, f"input {i}")
        src = ctx.weights(i) if x.is_const else ctx.ptr(i)
        calls.append(copy_call(ctx, esz, x.shape, _contig_strides(x.shape), dst_strides, src,
                               _offset(ctx.ptr(op.outputs[0]), at * dst_strides[axis])))
        at += x.shape[axis]
    if at != y.shape[axis]:
        raise ctx.fail(f"inputs add up to {at} along axis {axis}, the output has {y.shape[axis]}")
    return Lowered("\n".join(c for c in calls if c), kernel="copy")


def _const_ints(ctx: Ctx, i: int, what: str) -> list[int]:
    t = ctx.t(i)
    if t.data is None:
        raise ctx.fail(f"{what} must be constant")
    return [int(v) for v in np.asarray(t.data).ravel()]


@lowering("STRIDED_SLICE")
def strided_slice(ctx: Ctx, op: Op) -> Lowered:
    x, y = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    o = op.options
    if int(o.get("ellipsisMask", 0)) or int(o.get("newAxisMask", 0)):
        raise ctx.fail("ellipsis and new-axis masks are not supported")
    begin = _const_ints(ctx, op.inputs[1], "begin")
    end = _const_ints(ctx, op.inputs[2], "end")
    strides = _const_ints(ctx, op.inputs[3], "strides") if len(op.inputs) > 3 else [1] * len(begin)
    nd = len(x.shape)
    if not (len(begin) == len(end) == len(strides) <= nd):
        raise ctx.fail("begin, end and strides must have one entry per sliced dimension")
    bm, em, sm = int(o.get("beginMask", 0)), int(o.get("endMask", 0)), int(o.get("shrinkAxisMask", 0))
    use_offset = bool(o.get("offset", False))
    starts, counts, steps = [], [], []
    for d in range(nd):
        dim = x.shape[d]
        if d >= len(begin):
            starts.append(0), counts.append(dim), steps.append(1)
            continue
        s = strides[d]
        if s == 0:
            raise ctx.fail("a stride of 0 is invalid")
        if bm >> d & 1:
            b = 0 if s > 0 else dim - 1
        else:
            b = begin[d] + (dim if begin[d] < 0 else 0)
            b = min(max(b, 0), dim) if s > 0 else min(max(b, -1), dim - 1)
        if sm >> d & 1:
            e, s = b + 1, 1
        elif em >> d & 1 and not use_offset:
            e = dim if s > 0 else -1
        else:
            e = end[d] + (b if use_offset else 0)
            if not use_offset:
                e += dim if e < 0 else 0
            e = min(max(e, 0), dim) if s > 0 else min(max(e, -1), dim - 1)
        n = max(0, -(-(e - b) // s)) if s > 0 else max(0, -(-(b - e) // -s))
        starts.append(b), counts.append(n), steps.append(s)
    if int(np.prod(counts, dtype=np.int64)) != y.size:
        raise ctx.fail(f"the slice has {int(np.prod(counts))} elements, the output {y.size}")
    _same_quant(ctx, x, y, "input")
    cs = _contig_strides(x.shape)
    start = sum(b * c for b, c in zip(starts, cs))
    src = ctx.weights(op.inputs[0]) if x.is_const else ctx.ptr(op.inputs[0])
    call = copy_call(ctx, np.dtype(x.dtype).itemsize, counts, [c * s for c, s in zip(cs, steps)],
                     _contig_strides(counts), _offset(src, start), ctx.ptr(op.outputs[0]))
    return Lowered(call, kernel="copy")


def _split(ctx: Ctx, op: Op, x_index: int, axis: int, sizes: list[int]) -> Lowered:
    x = ctx.t(x_index)
    nd = len(x.shape)
    axis = axis + nd if axis < 0 else axis
    if not 0 <= axis < nd:
        raise ctx.fail(f"axis {axis} is out of range for rank {nd}")
    if sum(sizes) != x.shape[axis] or len(sizes) != len(op.outputs):
        raise ctx.fail(f"split sizes {sizes} do not cover dimension {x.shape[axis]}")
    cs = _contig_strides(x.shape)
    calls, at = [], 0
    for out, n in zip(op.outputs, sizes):
        y = ctx.t(out)
        _same_quant(ctx, x, y, "input")
        shape = list(x.shape)
        shape[axis] = n
        calls.append(copy_call(ctx, np.dtype(x.dtype).itemsize, shape, cs, _contig_strides(shape),
                               _offset(ctx.ptr(x_index), at * cs[axis]), ctx.ptr(out)))
        at += n
    return Lowered("\n".join(c for c in calls if c), kernel="copy")


@lowering("SPLIT")
def split(ctx: Ctx, op: Op) -> Lowered:
    axis = _const_ints(ctx, op.inputs[0], "axis")[0]
    x = ctx.t(op.inputs[1])
    nd = len(x.shape)
    dim = x.shape[axis + nd if axis < 0 else axis]
    k = len(op.outputs)
    if dim % k:
        raise ctx.fail(f"dimension {dim} does not split into {k} equal parts")
    return _split(ctx, op, op.inputs[1], axis, [dim // k] * k)


@lowering("SPLIT_V")
def split_v(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.t(op.inputs[0])
    sizes = _const_ints(ctx, op.inputs[1], "size_splits")
    axis = _const_ints(ctx, op.inputs[2], "axis")[0]
    nd = len(x.shape)
    dim = x.shape[axis + nd if axis < 0 else axis]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = dim - (sum(sizes) + 1)
    return _split(ctx, op, op.inputs[0], axis, sizes)


@lowering("TRANSPOSE")
def transpose(ctx: Ctx, op: Op) -> Lowered:
    x, y = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    perm = _const_ints(ctx, op.inputs[1], "perm")
    nd = len(x.shape)
    if sorted(perm) != list(range(nd)):
        raise ctx.fail(f"perm {perm} is not a permutation of the input's {nd} dimensions")
    if list(y.shape) != [x.shape[d] for d in perm] or x.dtype != y.dtype:
        raise ctx.fail(f"output {list(y.shape)} {y.dtype} is not the input {list(x.shape)} {x.dtype} "
                       f"transposed by {perm}")
    _same_quant(ctx, x, y, "input")
    cs = _contig_strides(x.shape)
    src = ctx.weights(op.inputs[0]) if x.is_const else ctx.ptr(op.inputs[0])
    call = copy_call(ctx, np.dtype(x.dtype).itemsize, y.shape, [cs[d] for d in perm], _contig_strides(y.shape),
                     src, ctx.ptr(op.outputs[0]))
    return Lowered(call, kernel="copy")


@lowering("PAD", "PADV2")
def pad(ctx: Ctx, op: Op) -> Lowered:
    x, y = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    if x.dtype != "int8":
        raise ctx.fail(f"PAD of {x.dtype} is not supported (int8 only)")
    _same_quant(ctx, x, y, "input")
    pads = _const_ints(ctx, op.inputs[1], "paddings")
    nd = len(x.shape)
    if len(pads) != 2 * nd:
        raise ctx.fail(f"paddings must be [{nd}, 2]")
    before = pads[0::2]
    if any(p < 0 for p in pads):
        raise ctx.fail("negative paddings are not supported")
    if list(y.shape) != [d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x.shape)]:
        raise ctx.fail(f"output shape {list(y.shape)} does not match the paddings")
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = _const_ints(ctx, op.inputs[2], "constant_values")[0]
    else:
        value = y.qparams()[1]
    ds = _contig_strides(y.shape)
    start = sum(b * s for b, s in zip(before, ds))
    fill = f"kws_nn_fill_s8({ctx.ptr(op.outputs[0])}, {value}, {y.size});"
    call = copy_call(ctx, 1, x.shape, _contig_strides(x.shape), ds, ctx.ptr(op.inputs[0]),
                     _offset(ctx.ptr(op.outputs[0]), start))
    return Lowered(fill + ("\n" + call if call else ""), kernel="copy")


def requantize_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, in_dtype: str, out_dtype: str):
    """QUANTIZE between 8-bit types as TFLite's Requantize: MBQM(x - in_zp) + out_zp, clamped."""
    m, s = fx.quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
    lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
    x = np.arange(256, dtype=np.int64) - 128        # table index i holds the input byte (int8)(i - 128)
    if in_dtype == "uint8":
        x = x & 0xFF
    v = np.clip(fx.multiply_by_quantized_multiplier(x - in_zp, m, s) + out_zp, lo, hi)
    return [int(np.int8(np.uint8(b & 0xFF))) for b in v]


@lowering("QUANTIZE")
def quantize(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("float32", "int8", "uint8"), "input")
    y = ctx.expect(op.outputs[0], ("int8", "uint8"), "output")
    ys, yz = ctx.per_tensor(y, "output")
    if x.dtype == "float32":
        if y.dtype != "int8":
            raise ctx.fail("QUANTIZE float32 -> uint8 is not supported")
        return Lowered(f"kws_nn_quantize_f32_s8({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {x.size}, "
                       f"{np.float32(ys).item():.9g}f, {yz});", kernel="quantize")
    xs, xz = ctx.per_tensor(x, "input")
    lut = ctx.array("lut", requantize_table(xs, xz, ys, yz, x.dtype, y.dtype), "int8_t")
    return Lowered(f"kws_nn_lut_s8({lut}, (const int8_t *){ctx.ptr(op.inputs[0])}, (int8_t *){ctx.ptr(op.outputs[0])}, "
                   f"{x.size});", inplace=[(op.inputs[0], op.outputs[0])], kernel="lut_s8")


@lowering("DEQUANTIZE")
def dequantize(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.expect(op.inputs[0], ("int8",), "input")
    ctx.expect(op.outputs[0], ("float32",), "output")
    xs, xz = ctx.per_tensor(x, "input")
    return Lowered(f"kws_nn_dequantize_s8_f32({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {x.size}, "
                   f"{np.float32(xs).item():.9g}f, {xz});", kernel="dequantize")


def _broadcast(ctx: Ctx, a, b, y) -> tuple[list[int], list[int], list[int]]:
    """(out_shape[4], in1_strides[4], in2_strides[4]) of the binary kernels. Adjacent output dimensions
    where each input is either whole or broadcast in both merge into one, so any rank works while at
    most 4 such runs remain."""
    out = list(y.shape)
    n = len(out)
    if len(a.shape) > n or len(b.shape) > n:
        raise ctx.fail(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast to {list(y.shape)}")
    sa = [1] * (n - len(a.shape)) + list(a.shape)
    sb = [1] * (n - len(b.shape)) + list(b.shape)
    runs: list[list] = []       # [extent, a is whole, b is whole]
    for d in range(n):
        if any(s[d] not in (1, out[d]) for s in (sa, sb)):
            raise ctx.fail(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast to {list(y.shape)}")
        if out[d] == 1:
            continue
        flags = [sa[d] == out[d], sb[d] == out[d]]
        if runs and runs[-1][1:] == flags:
            runs[-1][0] *= out[d]
        else:
            runs.append([out[d], *flags])
    if len(runs) > 4:
        raise ctx.fail(f"broadcasting {list(a.shape)} with {list(b.shape)} needs {len(runs)} dimensions "
                       "that do not merge; at most 4 are supported")
    runs = [[1, False, False]] * (4 - len(runs)) + runs

    def strides(k: int) -> list[int]:
        res, acc = [], 1
        for r in reversed(runs):
            res.append(acc if r[k] else 0)
            acc *= r[0] if r[k] else 1
        return res[::-1]

    return [r[0] for r in runs], strides(1), strides(2)


@lowering("ADD", "MUL")
def binary(ctx: Ctx, op: Op) -> Lowered:
    a = ctx.expect(op.inputs[0], ("int8",), "input 1")
    b = ctx.expect(op.inputs[1], ("int8",), "input 2")
    y = ctx.expect(op.outputs[0], ("int8",), "output")
    out, s1, s2 = _broadcast(ctx, a, b, y)
    as_, az = ctx.per_tensor(a, "input 1")
    bs, bz = ctx.per_tensor(b, "input 2")
    ys, yz = ctx.per_tensor(y, "output")
    lo, hi = activation_range(ctx, int(op.options.get("fusedActivationFunction", 0)), y)
    f = dict(out_shape=out, in1_strides=s1, in2_strides=s2, in1_offset=-az, in2_offset=-bz, output_offset=yz,
             left_shift=0, in1_multiplier=0, in1_shift=0, in2_multiplier=0, in2_shift=0,
             out_multiplier=0, out_shift=0, act_min=lo, act_max=hi)
    if op.kind == "ADD":
        twice_max = 2.0 * float(np.float64(max(np.float32(as_), np.float32(bs))))
        f["left_shift"] = 20
        f["in1_multiplier"], f["in1_shift"] = fx.quantize_multiplier(float(np.float64(as_)) / twice_max)
        f["in2_multiplier"], f["in2_shift"] = fx.quantize_multiplier(float(np.float64(bs)) / twice_max)
        f["out_multiplier"], f["out_shift"] = fx.quantize_multiplier(twice_max / ((1 << 20) * float(np.float64(ys))))
        fn = "kws_nn_add_s8"
    else:
        f["out_multiplier"], f["out_shift"] = fx.quantize_multiplier(
            float(np.float64(as_) * np.float64(bs) / np.float64(ys)))
        fn = "kws_nn_mul_s8"
    p = ctx.params("kws_nn_binary_params", f)
    src = [ctx.weights(i) if ctx.t(i).is_const else ctx.ptr(i) for i in op.inputs[:2]]
    return Lowered(f"{fn}({p}, {src[0]}, {src[1]}, {ctx.ptr(op.outputs[0])});", macs=y.size,
                   kernel=fn[7:])


# --- resource variables (streaming state) ------------------------------------------------------------
@lowering("VAR_HANDLE", "CALL_ONCE")
def no_code(ctx: Ctx, op: Op) -> Lowered:
    return Lowered("", kernel="none")


@lowering("READ_VARIABLE")
def read_variable(ctx: Ctx, op: Op) -> Lowered:
    y = ctx.t(op.outputs[0])
    return Lowered(f"memcpy({ctx.ptr(op.outputs[0])}, {{H{op.inputs[0]}}}, {y.nbytes});", kernel="memcpy")


@lowering("ASSIGN_VARIABLE")
def assign_variable(ctx: Ctx, op: Op) -> Lowered:
    x = ctx.t(op.inputs[1])
    src = ctx.weights(op.inputs[1]) if x.is_const else ctx.ptr(op.inputs[1])
    return Lowered(f"memcpy({{H{op.inputs[0]}}}, {src}, {x.nbytes});", kernel="memcpy")
