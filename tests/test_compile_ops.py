"""Property tests of `kws compile` one operator at a time: small int8 models made by TensorFlow's
converter (tests/opmodels.py) with shapes, kernel options and quantization drawn by hypothesis run
bit-identically in the generated C (host engine; a fixed subset also as Cortex-M4 firmware under
QEMU) and in the tflite-micro interpreter, output and every intermediate tensor (DESIGN.md decisions
3 and 4). Each comparison also checks that the outputs vary over the inputs.

Quantization varies through the representative range lo..hi of the float input (it sets the input's
scale and zero point and, through the data, every other tensor's). Examples are derandomized:
every run tests the same models.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st

import opmodels
from kws.compile import codegen, ir, sim
from kws.compile.ir import CompileError

N_INPUTS = 24
TFLM_ARENA_BYTES = 1 << 20


@pytest.fixture(autouse=True, scope="module")
def _tflm_arena():
    """sim.run_tflm lets the interpreter size its arena as 10 x the .tflite's bytes, too small for
    these tiny models (TFLM fails to allocate tensors): give it 1 MiB while this module runs."""
    from tflite_micro.python.tflite_micro import runtime

    original = runtime.Interpreter.__dict__["from_file"]

    def from_file(cls, model_path, custom_op_registerers=None, arena_size=None, **kw):
        return original.__func__(cls, model_path, custom_op_registerers, arena_size or TFLM_ARENA_BYTES, **kw)

    runtime.Interpreter.from_file = classmethod(from_file)
    yield
    runtime.Interpreter.from_file = original


def props(n: int):
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


# --- strategies --------------------------------------------------------------------------------------
def _r(v: float) -> float:
    return round(float(v), 3)


@st.composite
def rep_range(draw) -> dict:
    """The representative range of the float input: sometimes all positive (zero point -128)."""
    lo = draw(st.floats(-4.0, 1.0, allow_nan=False))
    span = draw(st.floats(0.05, 8.0, allow_nan=False))
    return {"lo": _r(lo), "hi": _r(lo + span), "seed": draw(st.integers(0, 10_000))}


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
            "bias": draw(st.booleans()), "w_std": _r(draw(st.floats(0.02, 2.0))),
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
            "w_std": _r(draw(st.floats(0.02, 2.0))), "per_channel": draw(st.booleans()), **draw(rep_range())}


@st.composite
def fc_specs(draw) -> dict:
    lead = draw(st.sampled_from([[], [], [3], [2, 3]]))
    return {"lead": lead, "din": draw(st.integers(2, 40)), "dout": draw(st.integers(1, 20)),
            "act": draw(acts), "bias": draw(st.booleans()), "w_std": _r(draw(st.floats(0.02, 2.0))),
            "per_channel": draw(st.booleans()), "flatten": bool(lead) and draw(st.booleans()),
            **draw(rep_range())}


@st.composite
def pool_specs(draw) -> dict:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(paddings)
    return {"kind": draw(st.sampled_from(["avg", "max"])), "h": _span(draw, kh, 1, padding),
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


def run_and_compare(kind: str, spec: dict, *, ops: tuple[str, ...], engines=("host",), min_values: int = 3,
                    n: int = N_INPUTS) -> dict:
    note(f"{kind} {spec}")
    path = opmodels.build(kind, spec)
    g = ir.load(path)
    kinds = [op.kind for op in g.ops]
    note(f"ops: {kinds}")
    for k in ops:
        assert k in kinds, f"the converter made {kinds}, expected {k}"
    # A tensor calibrated to a constant gets a scale near 0 (e.g. 1e-8): tflite-micro aborts the
    # process on the multipliers that follow from it. Such models are degenerate: draw others.
    assume(all(t.scale is None or t.is_const or float(np.min(t.scale)) > 1e-6 for t in g.tensors))
    x = inputs_for(g, spec, n)
    ref = sim.run_tflm(path, x, trace=True, graph=g)
    # A model whose output is constant (e.g. RELU after all-negative weights) proves nothing: such
    # examples are rejected (hypothesis draws others and fails if it cannot find enough).
    assume(varies(ref.outputs, min_values))
    for engine in engines:
        got = sim.run(engine, path, x, trace=True)
        compare(ref, got, g, engine)
    return {"graph": g, "ref": ref}


# --- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED ---------------------------------------------------
@props(24)
@given(spec=conv_specs())
def test_conv2d(spec):
    run_and_compare("conv2d", spec, ops=("CONV_2D",))


@props(20)
@given(spec=depthwise_specs())
def test_depthwise_conv2d(spec):
    run_and_compare("depthwise_conv2d", spec, ops=("DEPTHWISE_CONV_2D",))


@props(20)
@given(spec=fc_specs())
def test_fully_connected(spec):
    res = run_and_compare("fully_connected", spec, ops=("FULLY_CONNECTED",))
    g = res["graph"]
    fc = next(op for op in g.ops if op.kind == "FULLY_CONNECTED")
    assert g.t(fc.inputs[1]).per_channel == (spec["per_channel"] and spec["dout"] > 1)


# --- pooling -----------------------------------------------------------------------------------------
@props(20)
@given(spec=pool_specs())
def test_pool2d(spec):
    run_and_compare("pool2d", spec, ops=("AVERAGE_POOL_2D" if spec["kind"] == "avg" else "MAX_POOL_2D",))


# --- SOFTMAX, LOGISTIC -------------------------------------------------------------------------------
@st.composite
def softmax_specs(draw) -> dict:
    shape = draw(st.sampled_from([[2], [5], [12], [40], [3, 7], [2, 2, 6]]))
    beta = draw(st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.125, 3.7]))
    return {"shape": shape, "beta": beta, **draw(rep_range())}


@props(14)
@given(spec=softmax_specs())
def test_softmax(spec):
    res = run_and_compare("softmax", spec, ops=("SOFTMAX",))
    sm = next(op for op in res["graph"].ops if op.kind == "SOFTMAX")
    assert sm.options["beta"] == pytest.approx(spec["beta"])


@props(8)
@given(spec=st.builds(lambda shape, r: {"shape": shape, **r},
                      st.sampled_from([[1], [7], [3, 5], [2, 3, 4]]), rep_range()))
def test_logistic(spec):
    run_and_compare("logistic", spec, ops=("LOGISTIC",))


# --- ADD, MUL ----------------------------------------------------------------------------------------
@st.composite
def binary_specs(draw, op: str) -> dict:
    shape = _shape(draw, 1, 3, 5)
    how = draw(st.sampled_from(["const", "const", "split", "self"] if op == "add" else ["const", "const", "split"]))
    other = []
    if how == "const":
        # a shape that broadcasts against the input's: right-aligned, each dimension 1 or equal
        keep = draw(st.integers(0, len(shape)))
        other = [d if draw(st.booleans()) else 1 for d in shape[len(shape) - keep:]]
    return {"op": op, "shape": shape, "how": how, "other_shape": other, "swap": draw(st.booleans()),
            "c_mean": _r(draw(st.floats(-2.0, 2.0))), "c_std": _r(draw(st.floats(0.05, 2.0))),
            "act": draw(acts), **draw(rep_range())}


@props(16)
@given(spec=binary_specs("add"))
def test_add(spec):
    run_and_compare("binary", spec, ops=("ADD",))


@props(16)
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


@props(16)
@given(spec=mean_specs())
@example(spec={"shape": [4, 5, 3], "axes": [1, 3], "keepdims": False, "same_quant": False, "lo": -1.0, "hi": 2.0,
               "seed": 1})
@example(spec={"shape": [25, 5, 16], "axes": [1, 2], "keepdims": True, "same_quant": False, "lo": 0.0, "hi": 6.0,
               "seed": 2})
@example(spec={"shape": [3, 4, 2], "axes": [0, 2], "keepdims": True, "same_quant": True, "lo": -3.0, "hi": 1.0,
               "seed": 3})
def test_mean(spec):
    run_and_compare("mean", spec, ops=("MEAN",), min_values=2)
