"""Model architectures and int8 export (first step of the training issue): the DS-CNN matches the
MLPerf Tiny reference model's size and operators, and its int8 export runs in tflite-micro."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

from kws.train import models, quantize  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    """A DS-CNN fitted briefly to a learnable synthetic task: each class adds its own fixed +-1
    pattern across the coefficients to every frame (global pooling keeps such a texture)."""
    rng = np.random.default_rng(0)
    patterns = rng.choice([-2.0, 2.0], size=(12, 10)).astype(np.float32)
    y = rng.integers(0, 12, 800)
    x = rng.normal(0, 1, (800, 49, 10, 1)).astype(np.float32) + patterns[y][:, None, :, None]
    model = models.ds_cnn(seed=1, bn_momentum=0.9)  # few steps: let batch-norm statistics settle
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:600], y[:600], epochs=8, batch_size=32, verbose=0)
    return model, x, y


def test_ds_cnn_has_the_reference_size():
    model = models.ds_cnn()
    assert models.deployed_parameters(model) == 22_604          # MLPerf Tiny KWS reference: 22,604
    assert models.macs(model) == 2_656_768 - 64 * 12 + 64 * 12  # 2,656,768 MACs as the reference
    small = models.ds_cnn(filters=32, blocks=3)
    assert models.deployed_parameters(small) < models.deployed_parameters(model) / 3


def test_int8_export_runs_in_tflite_micro_and_agrees_with_keras(trained):
    from conftest import SHARED

    model, x, y = trained
    blob = quantize.to_int8_tflite(model, x[:200])
    ops = quantize.tflite_ops(blob)
    ref_path = SHARED / "models/reference/mlperf_tiny_kws_ref_model.tflite"
    if ref_path.is_file():
        ref_ops = quantize.tflite_ops(ref_path.read_bytes())
    else:  # what the reference model holds, for machines without ../shared
        ref_ops = ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 4 + ["AVERAGE_POOL_2D", "RESHAPE",
                                                                        "FULLY_CONNECTED", "SOFTMAX"]
    # The reference's operators (the converter folds its Flatten into FULLY_CONNECTED), batch 1:
    # no SHAPE / STRIDED_SLICE / PACK.
    assert set(ops) <= set(ref_ops) and ops[-1] == "SOFTMAX"
    assert [o for o in ops if "CONV" in o] == [o for o in ref_ops if "CONV" in o]
    interp = runtime.Interpreter.from_bytes(blob, arena_size=200_000)
    inp = interp.get_input_details(0)
    assert inp["dtype"] == np.int8 and tuple(inp["shape"]) == (1, 49, 10, 1)
    scale, zp = inp["quantization_parameters"]["scales"][0], inp["quantization_parameters"]["zero_points"][0]
    float_pred = np.argmax(model.predict(x[600:700], verbose=0), axis=1)
    int8_pred = []
    for row in x[600:700]:
        q = np.clip(np.round(row / scale + zp), -128, 127).astype(np.int8)
        interp.set_input(q[None], 0)
        interp.invoke()
        int8_pred.append(int(np.argmax(interp.get_output(0))))
        interp.reset()
    int8_pred = np.array(int8_pred)
    assert (float_pred == y[600:700]).mean() > 0.8               # the model learned the task (held-out)
    assert (int8_pred == float_pred).mean() >= 0.95              # int8 keeps its decisions
    assert len(set(int8_pred.tolist())) >= 8                     # outputs vary


def test_bad_representative_set(trained):
    from kws.errors import KwsError

    model, x, _ = trained
    with pytest.raises(KwsError, match="does not match the model input"):
        quantize.to_int8_tflite(model, x[:10, :40])
