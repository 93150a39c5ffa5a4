"""The 12-class Speech Commands recipe (configs/speech_commands_12.toml) on a tiny stand-in archive in
the published layout, taken in by `kws data fetch --archive` exactly as a user's real copy would be."""

from __future__ import annotations

import dataclasses
import json
import tarfile

import numpy as np
import pytest
import soundfile

from conftest import REPO, speechlike

pytest.importorskip("tensorflow")

from kws import config  # noqa: E402

MLPERF_ORDER = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"]
EXTRA_WORDS = ["bed", "cat"]          # Speech Commands words outside the ten: they become _unknown_


def make_standin(root):
    rng = np.random.default_rng(5)
    speakers = [f"{i:08x}" for i in rng.integers(0, 2**32, size=12)]
    val, test = speakers[:2], speakers[2:4]
    for w, word in enumerate(MLPERF_ORDER[:10] + EXTRA_WORDS):
        (root / word).mkdir(parents=True)
        for s, spk in enumerate(speakers):
            x = speechlike(1.0, seed=1000 * w + s)
            soundfile.write(str(root / word / f"{spk}_nohash_0.wav"), x, 16000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    for k in range(2):
        soundfile.write(str(root / "_background_noise_" / f"noise{k}.wav"),
                        rng.uniform(-0.2, 0.2, 16000 * 5).astype(np.float32), 16000, subtype="PCM_16")
    words = MLPERF_ORDER[:10] + EXTRA_WORDS
    (root / "validation_list.txt").write_text("".join(f"{w}/{s}_nohash_0.wav\n" for w in words for s in val))
    (root / "testing_list.txt").write_text("".join(f"{w}/{s}_nohash_0.wav\n" for w in words for s in test))
    return root


def test_speech_commands_recipe_on_a_standin(tmp_path):
    from kws.cli import main
    from kws.train import pipeline, quantize

    tree = make_standin(tmp_path / "tree")
    archive = tmp_path / "standin.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tree, arcname=".")
    sc = tmp_path / "sc2"
    assert main(["data", "fetch", "speech_commands_v2", "--archive", str(archive), "--out", str(sc)]) == 0

    cfg = config.load_train_config(REPO / "configs" / "speech_commands_12.toml")
    assert not cfg.is_wake_word and cfg.model.arch == "ds_cnn" and cfg.frontend == "mlperf_kws01"
    cfg = dataclasses.replace(
        cfg, out=str(tmp_path / "model"), commands=dataclasses.replace(cfg.commands, dataset=str(sc)),
        data=dataclasses.replace(cfg.data, min_clips_per_class=5),
        model=dataclasses.replace(cfg.model, filters=8, blocks=1),
        train=dataclasses.replace(cfg.train, epochs=1, batch_size=32))
    out = pipeline.train(config.check_train_config(cfg), work_root=tmp_path / "work")

    m = json.loads((out / "metrics.json").read_text())
    assert m["classes"] == MLPERF_ORDER
    # Splits are the manifest's (official lists, then the speaker-hash rule); other words are _unknown_.
    from kws.data import manifest

    rows = [r for r in manifest.read(sc / "manifest.csv") if r.label != "_background_noise_"]
    for split in ("train", "validation", "test"):
        want = {c: 0 for c in MLPERF_ORDER}
        for r in rows:
            if r.split == split:
                want[r.label if r.label in MLPERF_ORDER else "_unknown_"] += 1
        got = dict(m["data"][split])
        assert got.pop("_silence_") > 0 and want.pop("_silence_") == 0      # cut from _background_noise_
        assert got == want, split
    assert m["data"]["validation"]["yes"] >= 2 and m["data"]["test"]["yes"] >= 2
    tfl = (out / "model_int8.tflite").read_bytes()
    scale, zp = quantize.input_quantization(tfl)
    assert zp == 83 and scale == pytest.approx(0.5847029, rel=1e-5)      # MLPerf's own input quantization
    assert m["model"]["input_shape"] == [1, 49, 10, 1]
    assert set(quantize.tflite_ops(tfl)) <= {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED",
                                             "SOFTMAX", "RESHAPE"}
    assert m["test_clips"]["int8"]["n"] == sum(m["data"]["test"].values())
    assert not (out / "thresholds.json").exists()       # a classifier, not a wake-word detector
    assert "Accuracy is on one fixed window" in (out / "MODEL_CARD.md").read_text()
