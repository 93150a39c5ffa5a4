"""Property tests of `kws compile` one operator at a time: small int8 models made by TensorFlow's
converter (tests/opmodels.py) with shapes, kernel options and quantization drawn by hypothesis run
bit-identically in the generated C (host engine; test_compile_ops_qemu.py runs a subset as
Cortex-M4 firmware under QEMU) and in the tflite-micro interpreter, output and every intermediate
tensor (DESIGN.md decisions 3 and 4). Each comparison also checks that the outputs vary over the
inputs.

Quantization varies through the representative range lo..hi of the float input (it sets the input's
scale and zero point and, through the data, every other tensor's). Examples are derandomized:
every run tests the same models.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, currently_in_test_context, example, given, note, seed, settings
from hypothesis import strategies as st

import opmodels
from kws.compile import codegen, ir, sim
from kws.compile.ir import CompileError

N_INPUTS = 24


# KWS_OPTEST_SCALE=k multiplies every example count (a deeper search, off CI); KWS_OPTEST_SEED=s
# draws other examples than CI's (derandomized by default, so every run tests the same models).
SCALE = float(os.environ.get("KWS_OPTEST_SCALE", "1"))
SEED = os.environ.get("KWS_OPTEST_SEED")


COMPARED = [0]   # examples compared so far (run_and_compare counts them)


def props(n: int):
    """Hypothesis settings for n examples, and a check that at least half of them were compared:
    degenerate models (constant outputs) are rejected, but must not crowd out the real tests."""
    count = max(1, round(n * SCALE))
    common = dict(max_examples=count, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)

    def decorate(fn):
        if SEED is None:
            test = settings(derandomize=True, **common)(fn)
        else:
            test = seed(int(SEED))(settings(**common)(fn))

        @functools.wraps(test)
        def run(*args, **kwargs):
            before = COMPARED[0]
            test(*args, **kwargs)
            done = COMPARED[0] - before
            assert done >= (count + 1) // 2, f"only {done} of {count} examples compared (the rest degenerate)"
        return run
    return decorate


# --- strategies --------------------------------------------------------------------------------------
def _r(v: float) -> float:
    return round(float(v), 3)


@st.composite
def rep_range(draw) -> dict:
    """The representative range of the float input (input scale ~ span / 255): sometimes all positive
    (zero point -128), sometimes wide."""
    span = draw(st.one_of(st.floats(0.05, 8.0), st.floats(8.0, 80.0)))
    lo = draw(st.floats(-4.0, 1.0)) * max(1.0, span / 8)
    return {"lo": _r(lo), "hi": _r(lo + span), "seed": draw(st.integers(0, 10_000))}


def log_uniform(lo: float, hi: float):
    return st.floats(np.log10(lo), np.log10(hi)).map(lambda e: float(f"{10 ** e:.3g}"))


acts = st.sampled_from(opmodels.ACTS)
paddings = st.sampled_from(["SAME", "VALID"])


def _span(draw, k: int, d: int, padding: str, lo: int = 1, hi: int = 10) -> int:
    eff = (k - 1) * d + 1
    return draw(st.integers(max(lo, eff) if padding == "VALID" else lo, max(hi, eff)))


@st.composite
def conv_specs(draw) -> dict:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilated = sh == sw == 1 and draw(st.booleans())
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    padding = draw(paddings)
    return {"h": _span(draw, kh, dh, padding), "w": _span(draw, kw, dw, padding),
            "cin": draw(st.integers(1, 9)), "cout": draw(st.integers(1, 9)), "kh": kh, "kw": kw,
            "stride": [sh, sw], "dilation": [dh, dw], "padding": padding, "act": draw(acts),
            "bias": draw(st.booleans()), "w_std": draw(log_uniform(0.01, 3.0)),
            "per_channel": draw(st.booleans()), **draw(rep_range())}


@st.composite
def depthwise_specs(draw) -> dict:
    k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    d = 1 if s > 1 else draw(st.integers(1, 3))
    padding = draw(paddings)
    return {"h": _span(draw, k[0], d, padding), "w": _span(draw, k[1], d, padding),
            "c": draw(st.integers(1, 9)), "mult": draw(st.integers(1, 3)), "kh": k[0], "kw": k[1],
            "stride": s, "dilation": d, "padding": padding, "act": draw(acts), "bias": draw(st.booleans()),
            "w_std": draw(log_uniform(0.01, 3.0)), "per_channel": draw(st.booleans()), **draw(rep_range())}


@st.composite
def fc_specs(draw) -> dict:
    lead = draw(st.sampled_from([[], [], [3], [2, 3]]))
    return {"lead": lead, "din": draw(st.integers(2, 40)), "dout": draw(st.integers(1, 20)),
            "act": draw(acts), "bias": draw(st.booleans()), "w_std": draw(log_uniform(0.01, 3.0)),
            "per_channel": draw(st.booleans()), "flatten": bool(lead) and draw(st.booleans()),
            **draw(rep_range())}


@st.composite
def pool_specs(draw, kind: str) -> dict:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(paddings)
    return {"kind": kind, "h": _span(draw, kh, 1, padding),
            "w": _span(draw, kw, 1, padding), "c": draw(st.integers(1, 6)), "kh": kh, "kw": kw,
            "sh": draw(st.integers(1, 3)), "sw": draw(st.integers(1, 3)), "padding": padding,
            "act": draw(acts), **draw(rep_range())}


def _shape(draw, rank_lo: int = 1, rank_hi: int = 3, dim_hi: int = 6) -> list[int]:
    return draw(st.lists(st.integers(1, dim_hi), min_size=rank_lo, max_size=rank_hi))


# --- running and comparing ---------------------------------------------------------------------------
def inputs_for(g: ir.Graph, spec: dict, n: int = N_INPUTS) -> np.ndarray:
    """n inputs over the whole representative range (int8: every code; float: the range widened by
    20 %, plus values halfway between two quantization steps to test rounding)."""
    t = g.t(g.inputs[0])
    r = np.random.default_rng(spec["seed"] + 1)
    shape = (n, *t.shape)
    if t.dtype == "int8":
        return r.integers(-128, 128, size=shape, dtype=np.int8)
    lo, hi = spec["lo"], spec["hi"]
    pad = 0.2 * (hi - lo)
    x = r.uniform(lo - pad, hi + pad, size=shape).astype(np.float32)
    q = next(op for op in g.ops if op.kind == "QUANTIZE" and op.inputs[0] == g.inputs[0])
    scale, zp = g.t(q.outputs[0]).qparams()
    ties = ((r.integers(-128, 127, size=shape) - zp) + 0.5) * scale
    half = r.random(size=shape) < 0.3
    return np.where(half, ties, x).astype(np.float32)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def compare(ref: sim.SimResult, got: sim.SimResult, g: ir.Graph, engine: str) -> None:
    assert set(got.trace) == set(ref.trace), f"{engine}: traced tensors differ"
    for (op, t), want in sorted(ref.trace.items()):
        have = got.trace[(op, t)]
        if not _same(want, have):
            bad = np.argwhere(want != have)
            i = tuple(bad[0]) if len(bad) else ()
            raise AssertionError(
                f"{engine}: op {op} ({g.ops[op].kind}) output tensor {t} {list(g.t(t).shape)}: "
                f"{len(bad)} of {want.size} elements differ; first at {list(i)}: "
                f"tflm {want[i] if i else want!r}, {engine} {have[i] if i else have!r}")
    assert _same(ref.outputs, got.outputs), f"{engine}: outputs differ"


def varies(y: np.ndarray, min_values: int = 3) -> bool:
    """Outputs are not one constant: distinct per-input outputs and several distinct values."""
    flat = y.reshape(len(y), -1)
    return (len({row.tobytes() for row in flat}) >= 2
            and len(np.unique(flat)) >= min(min_values, flat.size))


def _require(condition: bool) -> None:
    assert condition, "degenerate example: a constant output or a tensor calibrated to a constant"


def run_and_compare(kind: str, spec: dict, *, ops: tuple[str, ...], engines=("host",), min_values: int = 3,
                    n: int = N_INPUTS) -> dict:
    """Build the model, run it in tflite-micro and in `engines` with traces, compare every tensor.
    Under hypothesis, a degenerate model (constant output, a tensor calibrated to a constant) is
    rejected with assume() and another one drawn; for a fixed example it fails the test."""
    drawn = currently_in_test_context()
    check = assume if drawn else _require
    if drawn:
        note(f"{kind} {spec}")
    path = opmodels.build(kind, spec)
    g = ir.load(path)
    kinds = [op.kind for op in g.ops]
    if drawn:
        note(f"ops: {kinds}")
    for k in ops:
        assert k in kinds, f"the converter made {kinds}, expected {k}"
    # A tensor calibrated to a constant gets a scale near 0 (e.g. 1e-8): tflite-micro aborts the
    # process on the multipliers that follow from it.
    check(all(t.scale is None or t.is_const or float(np.min(t.scale)) > 1e-6 for t in g.tensors))
    x = inputs_for(g, spec, n)
    ref = sim.run_tflm(path, x, trace=True, graph=g)
    # A model whose output is constant (e.g. RELU after all-negative weights) proves nothing.
    check(varies(ref.outputs, min_values))
    for engine in engines:
        got = sim.run(engine, path, x, trace=True)
        compare(ref, got, g, engine)
    COMPARED[0] += 1
    if os.environ.get("KWS_OPTEST_LOG"):   # a record of what was compared, for coverage reports
        with open(os.environ["KWS_OPTEST_LOG"], "a") as f:
            f.write(json.dumps({"kind": kind, "spec": spec, "ops": kinds, "engines": list(engines)}) + "\n")
    return {"graph": g, "ref": ref}


# --- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED ---------------------------------------------------
@props(16)
@given(spec=conv_specs())
def test_conv2d(spec):
    run_and_compare("conv2d", spec, ops=("CONV_2D",))


@props(14)
@given(spec=depthwise_specs())
def test_depthwise_conv2d(spec):
    run_and_compare("depthwise_conv2d", spec, ops=("DEPTHWISE_CONV_2D",))


@props(12)
@given(spec=fc_specs())
def test_fully_connected(spec):
    res = run_and_compare("fully_connected", spec, ops=("FULLY_CONNECTED",))
    g = res["graph"]
    fc = next(op for op in g.ops if op.kind == "FULLY_CONNECTED")
    assert g.t(fc.inputs[1]).per_channel == (spec["per_channel"] and spec["dout"] > 1)


# --- pooling -----------------------------------------------------------------------------------------
@props(8)
@given(spec=pool_specs("avg"))
@example(spec={"kind": "avg", "h": 7, "w": 5, "c": 3, "kh": 7, "kw": 5, "sh": 1, "sw": 1, "padding": "VALID",
               "act": "none", "lo": -2.0, "hi": 3.0, "seed": 7})   # a global average pool
@example(spec={"kind": "avg", "h": 5, "w": 6, "c": 2, "kh": 4, "kw": 3, "sh": 2, "sw": 2, "padding": "SAME",
               "act": "relu6", "lo": -1.0, "hi": 7.0, "seed": 8})   # windows cut by the border
def test_avg_pool2d(spec):
    run_and_compare("pool2d", spec, ops=("AVERAGE_POOL_2D",))


@props(6)
@given(spec=pool_specs("max"))
def test_max_pool2d(spec):
    run_and_compare("pool2d", spec, ops=("MAX_POOL_2D",))


# --- SOFTMAX, LOGISTIC -------------------------------------------------------------------------------
@st.composite
def softmax_specs(draw) -> dict:
    shape = draw(st.sampled_from([[2], [5], [12], [40], [130], [3, 7], [2, 2, 6]]))
    beta = draw(st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.125, 3.7]))
    return {"shape": shape, "beta": beta, **draw(rep_range())}


@props(10)
@given(spec=softmax_specs())
def test_softmax(spec):
    res = run_and_compare("softmax", spec, ops=("SOFTMAX",))
    sm = next(op for op in res["graph"].ops if op.kind == "SOFTMAX")
    assert sm.options["beta"] == pytest.approx(spec["beta"])


@props(6)
@given(spec=st.builds(lambda shape, r: {"shape": shape, **r},
                      st.sampled_from([[1], [7], [3, 5], [2, 3, 4]]), rep_range()))
def test_logistic(spec):
    run_and_compare("logistic", spec, ops=("LOGISTIC",))


@props(10)
@given(spec=st.builds(lambda kind, alpha, shape, after, r: {"kind": kind, "alpha": alpha, "shape": shape,
                                                             "after": after, **r},
                      st.sampled_from(["relu", "relu6", "leaky_relu"]), st.sampled_from([0.01, 0.2, 0.5, 1.5]),
                      st.sampled_from([[6], [3, 5], [2, 3, 4]]), st.sampled_from(["", "concat"]), rep_range()))
@example(spec={"kind": "relu6", "alpha": 0.2, "shape": [3, 5], "after": "", "lo": -2.0, "hi": 9.0, "seed": 4})
@example(spec={"kind": "relu6", "alpha": 0.2, "shape": [6], "after": "concat", "lo": -1.0, "hi": 3.0, "seed": 5})
def test_relu(spec):
    run_and_compare("activation", spec, ops=(spec["kind"].upper(),), min_values=2)


# --- ADD, MUL ----------------------------------------------------------------------------------------
@st.composite
def binary_specs(draw, op: str) -> dict:
    shape = _shape(draw, 1, 4, 4)
    how = draw(st.sampled_from(["const", "const", "split", "self"] if op == "add" else ["const", "const", "split"]))
    other = []
    if how == "const":
        # a shape that broadcasts against the input's: right-aligned, each dimension 1 or equal
        keep = draw(st.integers(0, len(shape)))
        other = [d if draw(st.booleans()) else 1 for d in shape[len(shape) - keep:]]
    return {"op": op, "shape": shape, "how": how, "other_shape": other, "swap": draw(st.booleans()),
            "c_mean": _r(draw(st.floats(-2.0, 2.0))), "c_std": draw(log_uniform(0.01, 30.0)),
            "act": draw(acts), **draw(rep_range())}


@props(10)
@given(spec=binary_specs("add"))
def test_add(spec):
    run_and_compare("binary", spec, ops=("ADD",))


@props(10)
@given(spec=binary_specs("mul"))
def test_mul(spec):
    run_and_compare("binary", spec, ops=("MUL",))


# --- MEAN --------------------------------------------------------------------------------------------
@st.composite
def mean_specs(draw) -> dict:
    shape = draw(st.sampled_from([[4, 5, 3], [3, 3, 8], [6, 4], [2, 5, 7], [9, 1, 2], [8]]))
    rank = len(shape) + 1
    axes = draw(st.sampled_from([[1, 2], [1, 2], [2, 1], [1], [-1], [2], [1, 3], [1, 2, 3]]))
    axes = [a for a in axes if -rank <= a < rank] or [1]
    return {"shape": shape, "axes": axes, "keepdims": draw(st.booleans()), "same_quant": draw(st.booleans()),
            **draw(rep_range())}


@props(10)
@given(spec=mean_specs())
@example(spec={"shape": [4, 5, 3], "axes": [1, 3], "keepdims": False, "same_quant": False, "lo": -1.0, "hi": 2.0,
               "seed": 1})
@example(spec={"shape": [25, 5, 16], "axes": [1, 2], "keepdims": True, "same_quant": False, "lo": 0.0, "hi": 6.0,
               "seed": 2})
@example(spec={"shape": [3, 4, 2], "axes": [0, 2], "keepdims": True, "same_quant": True, "lo": -3.0, "hi": 1.0,
               "seed": 3})
def test_mean(spec):
    run_and_compare("mean", spec, ops=("MEAN",), min_values=2)


# --- data movement: CONCATENATION, STRIDED_SLICE, SPLIT, SPLIT_V, PAD, PADV2, RESHAPE ----------------
@st.composite
def concat_specs(draw) -> dict:
    shape = _shape(draw, 1, 3, 5)
    rank = len(shape) + 1
    parts = draw(st.lists(st.sampled_from(["x", "mul", "const", "sigmoid"]), min_size=2, max_size=4))
    if "x" not in parts and "mul" not in parts:
        parts.append("x")
    return {"shape": shape, "axis": draw(st.integers(-rank, rank - 1)), "parts": parts,
            "c_mean": _r(draw(st.floats(0.25, 3.0))), **draw(rep_range())}


@props(8)
@given(spec=concat_specs())
def test_concatenation(spec):
    run_and_compare("concatenation", spec, ops=("CONCATENATION",))


def _slice_len(n: int, b, e, s: int) -> int:
    return len(range(n)[slice(b, e, s)])


@st.composite
def slice_specs(draw) -> dict:
    shape = _shape(draw, 1, 3, 7)
    full = [1, *shape]
    begin, end, strides, bm, em, sm = [0], [1], [1], 0, 0, 0
    for d, n in enumerate(shape, start=1):
        s = draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
        b, e = draw(st.integers(-n - 1, n + 1)), draw(st.integers(-n - 1, n + 1))
        mb, me = draw(st.booleans()), draw(st.booleans())
        bm |= mb << d
        em |= me << d
        if draw(st.integers(0, 4)) == 0:   # shrink this axis: begin must name an element
            b, mb = draw(st.integers(-n, n - 1)), False
            bm &= ~(1 << d)
            sm |= 1 << d
            s, e = 1, b + 1
        begin.append(b), end.append(e), strides.append(s)
    sizes = [1] + [1 if sm >> d & 1 else
                   _slice_len(full[d], None if bm >> d & 1 else begin[d], None if em >> d & 1 else end[d], strides[d])
                   for d in range(1, len(full))]
    assume(all(sizes) and int(np.prod(sizes)) > 1)
    return {"shape": shape, "begin": begin, "end": end, "strides": strides, "begin_mask": bm, "end_mask": em,
            "shrink_mask": sm, **draw(rep_range())}


@props(14)
@given(spec=slice_specs())
@example(spec={"shape": [5, 4], "begin": [0, -1, 1], "end": [1, -6, 3], "strides": [1, -2, 1], "begin_mask": 0,
               "end_mask": 0, "shrink_mask": 0, "lo": -1.0, "hi": 1.0, "seed": 5})
@example(spec={"shape": [3, 4, 5], "begin": [0, 1, 0, 2], "end": [1, 2, 4, 0], "strides": [1, 1, 1, -1],
               "begin_mask": 4, "end_mask": 8, "shrink_mask": 2, "lo": -1.0, "hi": 1.0, "seed": 6})
def test_strided_slice(spec):
    run_and_compare("strided_slice", spec, ops=(), min_values=2)


@st.composite
def split_specs(draw) -> dict:
    shape = _shape(draw, 1, 3, 6)
    axis = draw(st.integers(1, len(shape)))
    n = shape[axis - 1]
    if draw(st.booleans()):
        k = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
        sizes = k
    else:
        cuts = sorted(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=3, unique=True)))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, n]) if b > a]
        if len(sizes) > 1 and draw(st.booleans()):
            sizes[draw(st.integers(0, len(sizes) - 1))] = -1
    if draw(st.booleans()):
        axis -= len(shape) + 1   # the same axis, counted from the end
    return {"shape": shape, "axis": axis, "sizes": sizes, **draw(rep_range())}


@props(8)
@given(spec=split_specs())
def test_split(spec):
    parts = spec["sizes"] if isinstance(spec["sizes"], int) else len(spec["sizes"])
    kind = "SPLIT" if isinstance(spec["sizes"], int) else "SPLIT_V"
    run_and_compare("split", spec, ops=(kind,) if parts > 1 else (), min_values=2)


@st.composite
def pad_specs(draw) -> dict:
    shape = _shape(draw, 1, 3, 5)
    batch_pad = int(draw(st.integers(0, 5)) == 0)   # sometimes after the batch too: output batch 2
    pads = [[0, batch_pad]] + [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in shape]
    if not any(map(any, pads)):
        pads[-1][1] = 1
    value = draw(st.sampled_from([None, None, 0.5, -1.0, 3.0]))
    return {"shape": shape, "paddings": pads, "value": value, **draw(rep_range())}


@props(8)
@given(spec=pad_specs())
def test_pad(spec):
    run_and_compare("pad", spec, ops=("PAD" if spec["value"] is None else "PADV2",), min_values=2)


@props(4)
@given(spec=st.builds(lambda shape_to, then, r: {"shape": shape_to[0], "to": shape_to[1], "then": then, **r},
                      st.sampled_from([([12], [3, 4]), ([2, 3, 4], [24]), ([4, 6], [2, 2, 6]), ([5, 1], [5])]),
                      st.sampled_from(["", "logistic"]), rep_range()))
def test_reshape(spec):
    run_and_compare("reshape", spec, ops=("RESHAPE",))


@props(6)
@given(spec=st.builds(lambda shape, perm, r: {"shape": shape, "perm": perm, **r},
                      st.sampled_from([[2, 3, 4], [4, 2, 5], [3, 4, 2]]), st.permutations([0, 1, 2]), rep_range()))
def test_transpose(spec):
    assume(spec["perm"] != [0, 1, 2])
    run_and_compare("transpose", spec, ops=("TRANSPOSE",), min_values=2)


# --- QUANTIZE, DEQUANTIZE ----------------------------------------------------------------------------
@st.composite
def quantize_specs(draw, float_in: bool, float_out: bool) -> dict:
    op = draw(st.sampled_from(["maxpool", "add", "concat_sigmoid"]))
    shape = draw(st.sampled_from([[4, 4, 3], [2, 5, 1]])) if op == "maxpool" else _shape(draw, 1, 3, 5)
    return {"shape": shape, "op": op, "float_in": float_in, "float_out": float_out, **draw(rep_range())}


@pytest.mark.parametrize("float_in, float_out", [(False, False), (True, False), (False, True), (True, True)])
@props(3)
@given(data=st.data())
def test_quantize_dequantize(float_in, float_out, data):
    spec = data.draw(quantize_specs(float_in, float_out), label="spec")
    if not (float_in or float_out):
        spec["op"] = "concat_sigmoid"   # the int8 -> int8 QUANTIZE
    ops = (("QUANTIZE",) if spec["float_in"] or spec["op"] == "concat_sigmoid" else ()) + \
          (("DEQUANTIZE",) if spec["float_out"] else ())
    run_and_compare("quantize", spec, ops=ops)


# --- a few ops together ------------------------------------------------------------------------------
@st.composite
def chain_specs(draw) -> dict:
    return {"h": draw(st.integers(4, 12)), "w": draw(st.integers(3, 8)), "c": draw(st.integers(2, 9)),
            "k": draw(st.integers(1, 4)), "stride": draw(st.integers(1, 2)), "residual": draw(st.booleans()),
            "pool": draw(st.sampled_from(["avg", "mean"])), "classes": draw(st.integers(2, 6)),
            "w_std": _r(draw(st.floats(0.2, 1.5))), **draw(rep_range())}


@props(4)
@given(spec=chain_specs())
def test_chain(spec):
    run_and_compare("chain", spec, ops=("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"))


# --- many ops in one model -------------------------------------------------------------------------
MIXED_A = ("QUANTIZE", "PADV2", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SPLIT_V", "STRIDED_SLICE", "ADD", "MUL",
           "LOGISTIC", "MEAN", "SOFTMAX", "CONCATENATION", "DEQUANTIZE")
MIXED_B = ("RESHAPE", "SPLIT", "PAD", "MUL", "MEAN", "ADD", "CONCATENATION")
_R = {"lo": -1.5, "hi": 2.5, "seed": 3}
MIXED_CASES = [
    ("mixed", {"variant": "a", "shape": [6, 5, 4], "c_mean": 0.7, **_R}, MIXED_A),
    ("mixed", {"variant": "a", "shape": [9, 7, 3], "c_mean": -1.3, "lo": 0.0, "hi": 5.0, "seed": 4}, MIXED_A),
    ("mixed", {"variant": "b", "shape": [4, 3, 5], "c_mean": 0.7, **_R}, MIXED_B),
    ("mixed", {"variant": "b", "shape": [6, 2, 3], "c_mean": -2.0, "lo": -3.0, "hi": -1.0, "seed": 5}, MIXED_B),
]
@pytest.mark.parametrize("kind, spec, ops", MIXED_CASES)
def test_mixed(kind, spec, ops):
    """Many small ops in one model: every intermediate compared."""
    run_and_compare(kind, spec, ops=ops, min_values=2)


# --- what both tflite-micro and kws compile refuse -----------------------------------------------------
def _requantized_output(raw: bytes, scale: float, zero_point: int) -> bytes:
    def edit(model, s):
        g = model.subgraphs[0]
        q = g.tensors[g.outputs[0]].quantization
        q.scale, q.zeroPoint = [scale], [zero_point]
    return opmodels.patch(raw, edit)


@pytest.mark.parametrize("kind, spec, message", [
    ("softmax", {"shape": [5], "beta": 1.0}, "softmax output must have scale 1/256 and zero point -128"),
    ("logistic", {"shape": [5]}, "logistic output must have scale 1/256 and zero point -128"),
])
def test_rejected_like_tflm(kind, spec, message, tmp_path):
    """An int8 SOFTMAX / LOGISTIC whose output is not quantized as 1/256, -128: tflite-micro refuses it
    when it prepares the op, and kws compile refuses it with a message naming the op and the cause."""
    spec = {**spec, "lo": -2.0, "hi": 2.0, "seed": 1}
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_requantized_output(opmodels.build(kind, spec).read_bytes(), 1.0 / 128, 0))
    x = np.zeros((1, *ir.load(bad).t(ir.load(bad).inputs[0]).shape), np.int8)
    with pytest.raises(RuntimeError):
        sim.run_tflm(bad, x)
    with pytest.raises(CompileError, match=rf"op 0 \({kind.upper()}\): .*{message}"):
        codegen.compile_model(bad, target="host")


@pytest.mark.parametrize("kind", ["tanh", "sub", "reduce_max", "hard_swish"])
def test_unsupported_op_is_named(kind):
    """Operators tflite-micro runs but kws compile does not lower: the error names the op's index
    and kind (these are the known gaps)."""
    path = opmodels.build("other", {"kind": kind, "shape": [4, 5], "lo": -2.0, "hi": 3.0, "seed": 1})
    g = ir.load(path)
    sim.run_tflm(path, np.zeros((1, *g.t(g.inputs[0]).shape), np.int8))
    with pytest.raises(CompileError, match=rf"op 0 \({kind.upper()}\): operator {kind.upper()} is not supported"):
        codegen.compile_model(path, target="host")
