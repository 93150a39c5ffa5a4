"""Full-integer int8 post-training quantization with a representative set, at a fixed batch of 1
(a dynamic batch adds SHAPE/STRIDED_SLICE/PACK ops the device has no use for)."""

from __future__ import annotations

import numpy as np

from kws.errors import KwsError


def to_int8_tflite(model, representative: np.ndarray, *, max_samples: int = 500) -> bytes:
    """keras.Model + float32 [N, *input_shape] representative inputs -> int8 .tflite bytes
    (int8 input and output, builtin int8 ops only, batch 1)."""
    import tensorflow as tf

    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim != len(model.input_shape) or rep.shape[1:] != tuple(model.input_shape[1:]):
        raise KwsError(f"representative set: shape {rep.shape} does not match the model input {model.input_shape}")
    if len(rep) == 0:
        raise KwsError("representative set is empty")

    import keras

    # The same layers and weights behind a batch-1 input, so the graph has static shapes.
    fixed = keras.models.clone_model(model, input_tensors=keras.Input(batch_shape=(1, *model.input_shape[1:]), name="features"))
    fixed.set_weights(model.get_weights())
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8

    def samples():
        for row in rep[:max_samples]:
            yield [row[None, ...]]

    converter.representative_dataset = samples
    return converter.convert()


def tflite_ops(model_bytes: bytes) -> list[str]:
    """Builtin operator names of a .tflite flatbuffer, in execution order (schema from tflite-micro)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sg = m.subgraphs[0]
    return [names[max(m.operatorCodes[op.opcodeIndex].builtinCode, m.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
            for op in sg.operators]


def with_extremes(q: np.ndarray) -> np.ndarray:
    """int8 feature windows [n, frames, bins] plus one copy of the first holding -128 and 127, so the
    calibrated input range is the whole int8 range: then the model's input quantization is the
    frontend's own (scale, zero point) and the device feeds frontend codes to the model unchanged."""
    extra = q[:1].copy()
    extra[0, 0, 0], extra[0, -1, -1] = -128, 127
    return np.concatenate([q, extra])


def input_quantization(model_bytes: bytes) -> tuple[float, int]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    sg = m.subgraphs[0]
    t = sg.tensors[sg.inputs[0]]
    return float(t.quantization.scale[0]), int(t.quantization.zeroPoint[0])


def check_input_matches(model_bytes: bytes, preset) -> None:
    """The int8 model must read the frontend's codes as they are (same scale and zero point)."""
    scale, zp = input_quantization(model_bytes)
    if zp != preset.out_zero_point or abs(scale - preset.out_scale) > 1e-5 * preset.out_scale:
        raise KwsError(f"int8 model input quantization (scale {scale}, zero point {zp}) differs from frontend "
                       f"preset {preset.name} ({preset.out_scale}, {preset.out_zero_point})")


def activation_peak_bytes(model_bytes: bytes) -> int:
    """The largest sum of one operator's non-constant input and output tensor sizes: the RAM a
    sequential int8 graph needs at least for activations (a lower bound on any arena)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    sg = m.subgraphs[0]
    itemsize = {schema.TensorType.INT8: 1, schema.TensorType.UINT8: 1, schema.TensorType.INT16: 2,
                schema.TensorType.INT32: 4, schema.TensorType.FLOAT32: 4}

    def size(i: int) -> int:
        t = sg.tensors[i]
        if m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data):
            return 0            # weights live in flash
        return int(np.prod(t.shape)) * itemsize.get(t.type, 4)

    return max((sum(size(i) for i in list(op.inputs) + list(op.outputs) if i >= 0) for op in sg.operators), default=0)
