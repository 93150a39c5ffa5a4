"""Tiny int8 .tflite models (one operator, or a few) made with TensorFlow, for the compiler's
property tests (tests/test_compile_ops.py).

Every builder takes a spec: a dict of plain Python values (shapes, kernel options, the representative
range lo..hi of the float input, a seed for weights and calibration data) and returns the path of a
full-integer quantized .tflite (int8 input and output unless the spec says float_in / float_out,
batch fixed at 1). Models are cached under build/test-cache/opmodels by a hash of the builder, the
spec and the TensorFlow version, so a rerun does not import TensorFlow at all. TensorFlow is imported
lazily, inside convert().

A few properties the TFLite converter never produces on its own (SOFTMAX with beta != 1, MEAN with
equal input and output quantization) are set afterwards by patch(), which edits the flatbuffer.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KWS_OPMODELS_CACHE", REPO / "build" / "test-cache" / "opmodels"))

ACTS = ("none", "relu", "relu6")
_BUILDERS: dict[str, Callable] = {}


def builder(fn):
    _BUILDERS[fn.__name__] = fn
    return fn


def build(kind: str, spec: dict) -> Path:
    """The .tflite of builder `kind` for `spec` (converted once, then read from the cache)."""
    import importlib.metadata as md

    try:
        tf_version = md.version("tensorflow-cpu")
    except md.PackageNotFoundError:
        tf_version = md.version("tensorflow")
    key = hashlib.sha256(json.dumps([kind, spec, tf_version, _VERSION], sort_keys=True).encode()).hexdigest()[:20]
    path = CACHE / f"{kind}-{key}.tflite"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        raw = _BUILDERS[kind](spec)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(raw)
        os.replace(tmp, path)
    return path


_VERSION = 1   # bump when a builder changes what it makes for the same spec


# --- conversion --------------------------------------------------------------------------------------
def _act(tf, y, act: str):
    if act == "relu":
        return tf.nn.relu(y)
    if act == "relu6":
        return tf.nn.relu6(y)
    return y


def convert(fn, input_shape, spec: dict, *, per_channel: bool = True, dense_per_channel: bool = True,
            n_rep: int = 32) -> bytes:
    """fn(x) over a float32 input [1, *input_shape] -> int8 .tflite bytes.

    The representative dataset draws uniformly from [spec['lo'], spec['hi']] (seeded by spec['seed']);
    spec['float_in'] / spec['float_out'] keep a float32 input / output (QUANTIZE / DEQUANTIZE ops).
    """
    import tensorflow as tf

    shape = [1, *input_shape]
    f = tf.function(fn)
    cf = f.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    cv = tf.lite.TFLiteConverter.from_concrete_functions([cf], f)
    cv.optimizations = [tf.lite.Optimize.DEFAULT]
    lo, hi = float(spec["lo"]), float(spec["hi"])

    def rep():
        r = np.random.default_rng(spec["seed"] + 7919)
        for _ in range(n_rep):
            yield [r.uniform(lo, hi, size=shape).astype(np.float32)]

    cv.representative_dataset = rep
    cv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    cv.inference_input_type = tf.float32 if spec.get("float_in") else tf.int8
    cv.inference_output_type = tf.float32 if spec.get("float_out") else tf.int8
    if not per_channel:
        cv._experimental_disable_per_channel = True
    if not dense_per_channel:
        cv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return cv.convert()


def patch(raw: bytes, edit: Callable) -> bytes:
    """Apply edit(model: ModelT) to a .tflite flatbuffer and return the re-serialised bytes."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    model = s.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    edit(model, s)
    b = flatbuffers.Builder(len(raw) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _rng(spec: dict) -> np.random.Generator:
    return np.random.default_rng(spec["seed"])


def _weights(r: np.random.Generator, shape, std: float) -> np.ndarray:
    return (r.standard_normal(shape) * std).astype(np.float32)


def _filter(r: np.random.Generator, shape, std: float) -> np.ndarray:
    """Weights whose last axis is the output channel; no channel is all negative (a RELU after it
    would give a constant 0)."""
    w = _weights(r, shape, std)
    flat = w.reshape(-1, shape[-1])
    flat[:, flat.max(axis=0) < 0] *= -1
    return flat.reshape(shape)


# --- builders ----------------------------------------------------------------------------------------
@builder
def conv2d(spec: dict) -> bytes:
    """spec: h, w, cin, cout, kh, kw, stride, dilation, padding ('SAME'/'VALID'), act, bias, w_std,
    per_channel."""
    import tensorflow as tf

    r = _rng(spec)
    w = _filter(r, (spec["kh"], spec["kw"], spec["cin"], spec["cout"]), spec["w_std"])
    b = _weights(r, (spec["cout"],), spec["w_std"] * 2)

    def fn(x):
        y = tf.nn.conv2d(x, w, strides=spec["stride"], padding=spec["padding"], dilations=spec["dilation"])
        if spec["bias"]:
            y = y + b
        return _act(tf, y, spec["act"])

    return convert(fn, (spec["h"], spec["w"], spec["cin"]), spec, per_channel=spec["per_channel"])


@builder
def depthwise_conv2d(spec: dict) -> bytes:
    """spec: h, w, c, mult, kh, kw, stride, dilation, padding, act, bias, w_std, per_channel."""
    import tensorflow as tf

    r = _rng(spec)
    w = _filter(r, (spec["kh"], spec["kw"], spec["c"] * spec["mult"]), spec["w_std"])
    w = w.reshape(spec["kh"], spec["kw"], spec["c"], spec["mult"])
    b = _weights(r, (spec["c"] * spec["mult"],), spec["w_std"] * 2)
    s, d = spec["stride"], spec["dilation"]

    def fn(x):
        y = tf.nn.depthwise_conv2d(x, w, strides=[1, s, s, 1], padding=spec["padding"], dilations=[d, d])
        if spec["bias"]:
            y = y + b
        return _act(tf, y, spec["act"])

    return convert(fn, (spec["h"], spec["w"], spec["c"]), spec, per_channel=spec["per_channel"])


@builder
def fully_connected(spec: dict) -> bytes:
    """spec: lead (the input's leading dims after the batch, e.g. [] or [2, 3]), din, dout, act, bias,
    w_std, per_channel, flatten (reshape a rank-4 input to [1, -1] first)."""
    import tensorflow as tf

    r = _rng(spec)
    lead = list(spec["lead"])
    din = spec["din"] * (int(np.prod(lead)) if spec["flatten"] else 1)
    w = _filter(r, (din, spec["dout"]), spec["w_std"])
    b = _weights(r, (spec["dout"],), spec["w_std"] * 2)

    def fn(x):
        if spec["flatten"]:
            y = tf.matmul(tf.reshape(x, [1, -1]), w)
        elif lead:
            y = tf.tensordot(x, w, 1)
        else:
            y = tf.matmul(x, w)
        if spec["bias"]:
            y = y + b
        return _act(tf, y, spec["act"])

    return convert(fn, (*lead, spec["din"]), spec, dense_per_channel=spec["per_channel"])


@builder
def pool2d(spec: dict) -> bytes:
    """spec: kind ('avg'/'max'), h, w, c, kh, kw, sh, sw, padding, act."""
    import tensorflow as tf

    op = tf.nn.avg_pool2d if spec["kind"] == "avg" else tf.nn.max_pool2d

    def fn(x):
        y = op(x, ksize=[spec["kh"], spec["kw"]], strides=[spec["sh"], spec["sw"]], padding=spec["padding"])
        return _act(tf, y, spec["act"])

    return convert(fn, (spec["h"], spec["w"], spec["c"]), spec)


@builder
def softmax(spec: dict) -> bytes:
    """spec: shape (without the batch), beta (patched into the op; the converter always writes 1)."""
    import tensorflow as tf

    raw = convert(lambda x: tf.nn.softmax(x), tuple(spec["shape"]), spec)
    if spec["beta"] == 1.0:
        return raw

    def edit(model, s):
        for op in model.subgraphs[0].operators:
            if isinstance(op.builtinOptions, s.SoftmaxOptionsT):
                op.builtinOptions.beta = float(spec["beta"])
    return patch(raw, edit)


@builder
def logistic(spec: dict) -> bytes:
    """spec: shape."""
    import tensorflow as tf

    return convert(lambda x: tf.sigmoid(x), tuple(spec["shape"]), spec)


@builder
def activation(spec: dict) -> bytes:
    """A stand-alone RELU, RELU6 or LEAKY_RELU (not fused: on the input, or after a concatenation).
    spec: kind ('relu'/'relu6'/'leaky_relu'), alpha, shape, after ('' or 'concat')."""
    import tensorflow as tf

    f = {"relu": tf.nn.relu, "relu6": tf.nn.relu6,
         "leaky_relu": lambda v: tf.nn.leaky_relu(v, alpha=spec["alpha"])}[spec["kind"]]

    def fn(x):
        return f(tf.concat([x, x * np.float32(1.7)], axis=-1) if spec["after"] == "concat" else x)

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def binary(spec: dict) -> bytes:
    """ADD or MUL. spec: op ('add'/'mul'), shape, how ('const': x op constant of shape other_shape;
    'split': the input's two halves along the last axis, the second scaled by a constant first;
    'self': x op x), other_shape, c_std, act."""
    import tensorflow as tf

    r = _rng(spec)
    shape = list(spec["shape"])
    how = spec["how"]
    other = _weights(r, [1, *spec["other_shape"]] if spec["other_shape"] else [], spec["c_std"]) + spec["c_mean"]
    f = tf.add if spec["op"] == "add" else tf.multiply

    def fn(x):
        if how == "const":
            a, b = x, tf.constant(other)
            if spec.get("swap"):
                a, b = b, a
        elif how == "split":
            a, b = tf.split(x, 2, axis=-1)
            b = b * np.float32(spec["c_mean"])
        else:
            a, b = x, x
        return _act(tf, f(a, b), spec["act"])

    in_shape = shape[:-1] + [shape[-1] * 2] if how == "split" else shape
    return convert(fn, tuple(in_shape), spec)


@builder
def mean(spec: dict) -> bytes:
    """spec: shape, axes, keepdims, same_quant (patch the output's quantization to the input's)."""
    import tensorflow as tf

    raw = convert(lambda x: tf.reduce_mean(x, axis=spec["axes"], keepdims=spec["keepdims"]),
                  tuple(spec["shape"]), spec)
    if not spec["same_quant"]:
        return raw

    def edit(model, s):
        g = model.subgraphs[0]
        for op in g.operators:
            if model.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.MEAN:
                qi, qo = g.tensors[op.inputs[0]].quantization, g.tensors[op.outputs[0]].quantization
                qo.scale, qo.zeroPoint = list(qi.scale), list(qi.zeroPoint)
    return patch(raw, edit)


@builder
def concatenation(spec: dict) -> bytes:
    """spec: shape, axis, parts: list of 'x' (the input), 'mul' (input times c_mean), 'const'
    (a constant of the input's shape), 'sigmoid' (forces a requantizing QUANTIZE of the others)."""
    import tensorflow as tf

    r = _rng(spec)
    consts = [_weights(r, [1, *spec["shape"]], 1.0) for _ in spec["parts"]]

    def fn(x):
        parts = []
        for p, c in zip(spec["parts"], consts):
            parts.append({"x": lambda: x, "mul": lambda: x * np.float32(spec["c_mean"]),
                          "const": lambda: tf.constant(c), "sigmoid": lambda: tf.sigmoid(x)}[p]())
        return tf.concat(parts, axis=spec["axis"])

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def strided_slice(spec: dict) -> bytes:
    """spec: shape, begin, end, strides, begin_mask, end_mask, shrink_mask (over all dims incl. batch)."""
    import tensorflow as tf

    def fn(x):
        return tf.strided_slice(x, spec["begin"], spec["end"], spec["strides"], begin_mask=spec["begin_mask"],
                                end_mask=spec["end_mask"], shrink_axis_mask=spec["shrink_mask"])

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def split(spec: dict) -> bytes:
    """spec: shape, axis, sizes (an int: SPLIT into equal parts; a list, may hold one -1: SPLIT_V);
    the parts are concatenated back in reverse order along the same axis."""
    import tensorflow as tf

    def fn(x):
        parts = tf.split(x, spec["sizes"], axis=spec["axis"])
        return tf.concat(parts[::-1], axis=spec["axis"])

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def pad(spec: dict) -> bytes:
    """spec: shape, paddings ([rank + 1][2], the batch's first), value (None: PAD with 0, else PADV2)."""
    import tensorflow as tf

    def fn(x):
        return tf.pad(x, spec["paddings"], constant_values=spec["value"] or 0.0)

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def reshape(spec: dict) -> bytes:
    """spec: shape, to (the new shape without the batch), then: '' or an op after it ('logistic')."""
    import tensorflow as tf

    def fn(x):
        y = tf.reshape(x, [1, *spec["to"]])
        return tf.sigmoid(y) if spec["then"] == "logistic" else y

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def transpose(spec: dict) -> bytes:
    """spec: shape, perm (over the dimensions after the batch, which stays first)."""
    import tensorflow as tf

    return convert(lambda x: tf.transpose(x, [0, *[p + 1 for p in spec["perm"]]]), tuple(spec["shape"]), spec)


@builder
def other(spec: dict) -> bytes:
    """One op kws compile does not lower (tflite-micro does). spec: kind ('tanh', 'sub', 'reduce_max',
    'hard_swish'), shape."""
    import tensorflow as tf

    fn = {"tanh": tf.tanh, "sub": lambda x: x - np.float32(1.5) * tf.ones_like(x),
          "reduce_max": lambda x: tf.reduce_max(x, axis=[1]), "hard_swish": lambda x: x * tf.nn.relu6(x + 3) / 6}
    return convert(fn[spec["kind"]], tuple(spec["shape"]), spec)


@builder
def quantize(spec: dict) -> bytes:
    """Float input (QUANTIZE float32 -> int8) and/or float output (DEQUANTIZE), around an op
    ('maxpool' keeps the quantization; 'add' adds a constant; 'concat_sigmoid' adds an int8 -> int8
    QUANTIZE). spec: shape, op, float_in, float_out."""
    import tensorflow as tf

    r = _rng(spec)
    c = _weights(r, [1, *spec["shape"]], 1.0)

    def fn(x):
        if spec["op"] == "maxpool":
            return tf.nn.max_pool2d(x, ksize=2, strides=1, padding="SAME")
        if spec["op"] == "add":
            return x + c
        return tf.concat([tf.sigmoid(x), x], axis=-1)

    return convert(fn, tuple(spec["shape"]), spec)


@builder
def chain(spec: dict) -> bytes:
    """A small DS-CNN-like chain: conv -> depthwise -> pointwise conv (+ residual add) -> pool or mean ->
    fully connected -> softmax. spec: h, w, c, k, stride, residual, pool ('avg'/'mean'), classes,
    w_std."""
    import tensorflow as tf

    r = _rng(spec)
    c = spec["c"]
    w1 = _weights(r, (spec["k"], spec["k"], 1, c), spec["w_std"])
    w2 = _weights(r, (3, 3, c, 1), spec["w_std"])
    w3 = _weights(r, (1, 1, c, c), spec["w_std"])
    b = [_weights(r, (c,), 0.5) for _ in range(3)]
    wf = _weights(r, (c, spec["classes"]), spec["w_std"])

    def fn(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w1, strides=spec["stride"], padding="SAME") + b[0])
        z = tf.nn.relu(tf.nn.depthwise_conv2d(y, w2, strides=[1, 1, 1, 1], padding="SAME") + b[1])
        z = tf.nn.relu(tf.nn.conv2d(z, w3, strides=1, padding="SAME") + b[2])
        if spec["residual"]:
            z = z + y
        if spec["pool"] == "avg":
            z = tf.reshape(tf.nn.avg_pool2d(z, ksize=[z.shape[1], z.shape[2]], strides=1, padding="VALID"), [1, c])
        else:
            z = tf.reduce_mean(z, axis=[1, 2])
        return tf.nn.softmax(tf.matmul(z, wf))

    return convert(fn, (spec["h"], spec["w"], 1), spec)


@builder
def mixed(spec: dict) -> bytes:
    """Many small ops in one model (one QEMU image tests them all). spec: variant 'a' (float input and
    output: QUANTIZE, PADV2, AVERAGE_POOL_2D, MAX_POOL_2D, SPLIT_V, STRIDED_SLICE, ADD, LOGISTIC, MUL,
    MEAN over axes 1 and 3, SOFTMAX, CONCATENATION, DEQUANTIZE) or 'b' (int8: RESHAPE, SPLIT, PAD,
    MEAN over axes 1 and 2, ADD and MUL with broadcast constants, CONCATENATION), shape, c_mean."""
    import tensorflow as tf

    r = _rng(spec)
    c = np.float32(spec["c_mean"])

    def fn_a(x):
        y = tf.pad(x, [[0, 0], [1, 0], [0, 2], [0, 0]], constant_values=0.5)
        y = tf.nn.avg_pool2d(y, ksize=[3, 2], strides=[2, 1], padding="SAME")
        y = tf.nn.max_pool2d(y, ksize=[2, 3], strides=[1, 2], padding="VALID")
        a, b = tf.split(y, [1, -1], axis=-1)
        y = a + b[:, ::-1, :, 1:]
        y = y * tf.sigmoid(y * c)
        m = tf.reduce_mean(y, axis=[1, 3])
        return tf.concat([m, tf.nn.softmax(m)], axis=-1)

    k = _weights(r, [1, 1, spec["shape"][-1]], 1.0)

    def fn_b(x):
        h, w, ch = spec["shape"]
        y = tf.reshape(x, [1, h * w, ch])
        p, q = tf.split(y, 2, axis=1)
        p = tf.pad(p, [[0, 0], [2, 1], [0, 0]])
        q = tf.reduce_mean(tf.reshape(q, [1, h // 2, w, ch]), axis=[1, 2], keepdims=False)
        return tf.concat([tf.reshape(p * k, [1, -1]), tf.reshape(q + c, [1, -1])], axis=-1)

    fn = fn_a if spec["variant"] == "a" else fn_b
    return convert(fn, tuple(spec["shape"]), {**spec, "float_in": spec["variant"] == "a",
                                              "float_out": spec["variant"] == "a"})
