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
    fixed = keras.models.clone_model(model, input_tensors=keras.Input(batch_shape=(1, *model.input_shape[1:])))
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
