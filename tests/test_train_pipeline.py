"""kws train and kws eval end to end on a tiny generated data set (no TTS, a few seconds of training):
artifacts, the int8 model's input quantization, exact resumption, refusal to overwrite, corrupt
checkpoints, disk full, a mirrored strategy over two logical CPUs, and the eval report."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import speechlike

pytest.importorskip("tensorflow")

from kws import config  # noqa: E402
from kws.data import audio, manifest  # noqa: E402
from kws.errors import KwsError  # noqa: E402

WORD = "tiny word"
SR = 16000


def _word_clip(rng: np.random.Generator) -> np.ndarray:
    """The 'wake word': a rising then falling whistle-like chirp pair, varied in speed and pitch."""
    dur = rng.uniform(0.45, 0.6)
    t = np.arange(int(dur * SR)) / SR
    f0 = rng.uniform(500, 700)
    f = np.where(t < dur / 2, f0 + 1500 * t / dur, f0 + 1500 * (1 - t / dur))
    x = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.hanning(len(t))
    lead = np.zeros(int(rng.uniform(0.1, 0.3) * SR))
    return np.concatenate([lead, 0.4 * x, lead]).astype(np.float32)


def make_dataset(root: Path, *, n_word: int = 70, n_unknown: int = 70, n_silence: int = 40, seed: int = 0) -> Path:
    """root/<label>/*.wav plus a manifest with fixed splits (70 % / 15 % / 15 %)."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, n in (("tiny_word", n_word), ("_unknown_", n_unknown), ("_silence_", n_silence)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            if label == "tiny_word":
                x = _word_clip(rng)
            elif label == "_unknown_":
                x = speechlike(rng.uniform(0.6, 1.2), seed=int(rng.integers(1 << 30)))
            else:
                x = (rng.standard_normal(SR) * rng.uniform(0.001, 0.05)).astype(np.float32)
            rel = f"{label}/{i:04d}.wav"
            audio.write_wav(root / rel, x)
            split = "train" if i < 0.7 * n else ("validation" if i < 0.85 * n else "test")
            rows.append(manifest.Row(path=rel, label=label, speaker=f"s{i}", split=split, source="test:generated",
                                     duration_s=len(x) / SR, sample_rate_hz=SR, sha256=audio.sha256_file(root / rel)))
    manifest.write(root / config.MANIFEST_NAME, rows)
    return root


def tiny_config(data: Path, out: Path, **train) -> config.TrainConfig:
    cfg = config.TrainConfig(word=WORD, out=str(out),
                             data=config.DataConfig(synth_count=0, dirs=(str(data),)),
                             model=config.ModelConfig(filters=8, blocks=1),
                             train=config.FitConfig(epochs=2, batch_size=32, **train),
                             detector=config.DetectorConfig(calibration_minutes=0.5, windows=(1, 2), refractory_ms=(500.0,)))
    return config.check_train_config(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kws.train import pipeline

    base = tmp_path_factory.mktemp("train")
    data = make_dataset(base / "data")
    cfg = tiny_config(data, base / "models" / "tiny")
    out = pipeline.train(cfg, work_root=base / "work")
    return {"base": base, "data": data, "cfg": cfg, "out": out, "work": next((base / "work").iterdir())}


def test_model_folder_has_every_artifact(trained):
    out = trained["out"]
    for name in ("model.keras", "model_int8.tflite", "thresholds.json", "metrics.json", "MODEL_CARD.md", "config.json",
                 "plots/training_curves.png", "plots/confusion_matrix.png", "plots/det_curve.png"):
        assert (out / name).is_file(), name
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert not list(out.parent.glob(".*tmp*")), "staging folder left behind"
    m = json.loads((out / "metrics.json").read_text())
    assert m["classes"] == ["tiny_word", "_silence_", "_unknown_"]
    assert m["train"]["epochs"] == 2
    t = m["test_clips"]
    assert t["int8"]["n"] == t["float"]["n"] > 0
    assert 0 <= t["int8"]["ci95"][0] <= t["int8"]["top1"] <= t["int8"]["ci95"][1] <= 1
    card = (out / "MODEL_CARD.md").read_text()
    assert "int8 (tflite-micro)" in card and "## Limits" in card and f"{m['model']['parameters']:,}" in card


def test_int8_model_reads_frontend_codes_unchanged(trained):
    from kws.train import quantize

    tfl = (trained["out"] / "model_int8.tflite").read_bytes()
    preset = config.frontend_preset("ww_logmel40")
    scale, zp = quantize.input_quantization(tfl)
    assert zp == preset.out_zero_point and scale == pytest.approx(preset.out_scale, rel=1e-5)
    ops = set(quantize.tflite_ops(tfl))
    assert ops <= {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"}, ops


def test_thresholds_json_describes_the_deployed_detector(trained):
    from kws.evaluate import streaming

    _, dep = streaming.load_deployment(trained["out"])
    stride = config.ModelConfig().stride_hops
    assert dep.preset == "ww_logmel40" and dep.window_frames == 49 and dep.stride_hops == stride
    # the tiny config's 500 ms refractory period in invocations of stride x 20 ms
    assert 0 <= dep.threshold <= 255 and dep.window in (1, 2) and dep.refractory == math.ceil(500 / (20 * stride))
    doc = json.loads((trained["out"] / "thresholds.json").read_text())
    assert doc["target_faph"] == 0.5 and doc["calibration"]["negative_hours"] > 0


def test_streaming_windows_equal_training_windows():
    """The frames the deployed stream feeds the model at an invocation are the features of exactly
    that stretch of audio, as training computes them."""
    from kws import features
    from kws.evaluate import streaming

    rng = np.random.default_rng(3)
    pcm = (rng.standard_normal(SR * 3) * 2000).astype(np.int16)
    p = config.frontend_preset("ww_logmel40")
    feats = features.stream(pcm, preset=p.name)
    js = streaming.invocation_frames(len(feats), 49, 4)
    assert len(js) > 5 and np.all(np.diff(js) == 4)
    n = 48 * p.hop_samples + p.window_samples
    for j in js[::3]:
        start = (j + 1 - 49) * p.hop_samples
        np.testing.assert_array_equal(feats[j - 48: j + 1], features.compute(pcm[start: start + n], preset=p.name))
    assert len({feats[j - 48: j + 1].tobytes() for j in js}) == len(js)


def test_rerun_with_the_same_inputs_does_nothing(trained, capsys):
    from kws.train import pipeline

    before = (trained["out"] / "model_int8.tflite").stat().st_mtime_ns
    pipeline.train(trained["cfg"], work_root=trained["base"] / "work")
    assert "nothing to do" in capsys.readouterr().out
    assert (trained["out"] / "model_int8.tflite").stat().st_mtime_ns == before


def test_another_model_never_overwrites_an_existing_one(trained):
    from kws.train import pipeline

    cfg = dataclasses.replace(trained["cfg"], train=dataclasses.replace(trained["cfg"].train, seed=99))
    snapshot = {p.name: p.read_bytes() for p in trained["out"].iterdir() if p.is_file()}
    with pytest.raises(KwsError, match="--force"):
        pipeline.train(cfg, work_root=trained["base"] / "work")
    assert {p.name: p.read_bytes() for p in trained["out"].iterdir() if p.is_file()} == snapshot


def test_interrupted_run_resumes_to_the_same_weights(trained, tmp_path, capsys):
    """Drop the last checkpoint (as if killed during epoch 2): the rerun resumes from epoch 1 and ends
    with the very same int8 model as the uninterrupted run."""
    from kws.train import pipeline

    work = tmp_path / "work"
    shutil.copytree(trained["work"].parent, work)
    run = next(work.iterdir())
    (run / "checkpoints" / "epoch-002.keras").unlink()
    out = tmp_path / "resumed"
    pipeline.train(dataclasses.replace(trained["cfg"], out=str(out)), work_root=work)
    assert "resuming from" in capsys.readouterr().out
    assert (out / "model_int8.tflite").read_bytes() == (trained["out"] / "model_int8.tflite").read_bytes()
    assert len(json.loads((run / "history.json").read_text())) == 2


def test_corrupt_checkpoint_is_named(trained, tmp_path):
    from kws.train import pipeline

    work = tmp_path / "work"
    shutil.copytree(trained["work"].parent, work)
    run = next(work.iterdir())
    (run / "checkpoints" / "epoch-002.keras").write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(KwsError, match=r"epoch-002\.keras: corrupt or unreadable checkpoint"):
        pipeline.train(dataclasses.replace(trained["cfg"], out=str(tmp_path / "m")), work_root=work)
    assert not (tmp_path / "m").exists()


def _toml(cfg: config.TrainConfig, path: Path) -> Path:
    path.write_text(textwrap.dedent(f"""\
        [wake_word]
        word = "{cfg.word}"
        [output]
        dir = "{cfg.out}"
        [data]
        synth_count = 0
        dirs = ["{cfg.data.dirs[0]}"]
        [model]
        filters = 8
        blocks = 1
        [train]
        epochs = 2
        batch_size = 32
        [detector]
        calibration_minutes = 0.5
        windows = [1, 2]
        refractory_ms = [500.0]
        """))
    return path


def _kws(args: list[str], cwd: Path, preamble: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    code = f"import sys\n{preamble}\nfrom kws.cli import main\nsys.exit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_disk_full_mid_run_is_a_clean_error(trained, tmp_path):
    """A file-size limit makes every write past 40 kB fail (EFBIG, like ENOSPC): the first checkpoint
    cannot be written; the error names the cause, and no model folder appears."""
    out = tmp_path / "m"
    cfg = _toml(dataclasses.replace(trained["cfg"], out=str(out)), tmp_path / "c.toml")
    pre = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
           "resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))")
    r = _kws(["train", "--config", str(cfg)], tmp_path, pre)
    err = [line for line in r.stderr.splitlines() if line.startswith("kws:")]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(err) == 1 and "no space left" in err[0], err
    assert not out.exists()


def test_mirrored_strategy_on_two_logical_cpus(trained, tmp_path):
    out = tmp_path / "m"
    cfg = _toml(dataclasses.replace(trained["cfg"], out=str(out)), tmp_path / "c.toml")
    r = _kws(["train", "--config", str(cfg), "--strategy", "mirrored", "--cpu-devices", "2", "--epochs", "1"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "strategy mirrored (2 replica(s))" in r.stdout
    assert (out / "model_int8.tflite").is_file()


def test_eval_reports_frr_at_faph_with_intervals(trained, tmp_path):
    from kws.cli import main

    data = trained["data"]
    pos = tmp_path / "pos"
    neg = tmp_path / "neg"
    for d, label in ((pos, "tiny_word"), (neg, "_unknown_")):
        d.mkdir()
        for f in sorted((data / label).glob("*.wav"))[-12:]:
            shutil.copy(f, d / f.name)
    js = tmp_path / "eval.json"
    assert main(["eval", str(trained["out"]), "--positives", str(pos), "--negatives", str(neg),
                 "--noise", str(data / "_silence_"), "--json", str(js), "--quiet"]) == 0
    r = json.loads(js.read_text())
    assert r["positives"] == 12
    hours = (sum(audio.info(f)[0] for f in neg.glob("*.wav")) + sum(audio.info(f)[0] for f in (data / "_silence_").glob("*.wav"))) / SR / 3600
    assert r["negative_hours"] == pytest.approx(hours, rel=1e-6)
    for key in ("0.5", "1.0"):
        e = r["frr_at_faph"][key]
        assert 0 <= e["ci95"][0] <= e["frr"] <= e["ci95"][1] <= 1
        assert e["threshold"] is None or 0 <= e["threshold"] <= 255
    assert js.with_suffix(".det.png").read_bytes()[:4] == b"\x89PNG"
    # The sweep must move: FRR goes from 0 at threshold 0 to 1 at a threshold above every score.
    assert r["sweep"]["frr"][0] < 1.0 and max(r["sweep"]["false_accepts"]) > min(r["sweep"]["false_accepts"])


def test_eval_bad_inputs_are_one_line(trained, tmp_path, capsys):
    from kws.cli import main

    assert main(["eval", str(tmp_path), "--positives", str(tmp_path)]) == 2
    assert "no model_int8.tflite" in capsys.readouterr().err
    assert main(["eval", str(trained["out"]), "--positives", str(tmp_path / "nope")]) == 2
    assert "nope: no such file or folder" in capsys.readouterr().err


def test_finetune_starts_from_the_given_model(trained, tmp_path):
    from kws.train import pipeline

    cfg = dataclasses.replace(trained["cfg"], out=str(tmp_path / "ft"),
                              train=dataclasses.replace(trained["cfg"].train, finetune_epochs=1))
    out = pipeline.train(cfg, finetune_from=trained["out"], work_root=tmp_path / "work")
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["finetune_from"] == str(trained["out"]) and m["train"]["epochs"] == 1
    import keras

    a = [w.numpy() for w in keras.models.load_model(trained["out"] / "model.keras").trainable_weights]
    b = [w.numpy() for w in keras.models.load_model(out / "model.keras").trainable_weights]
    kernel_a, kernel_b = a[0], b[0]      # the first convolution: moved a little, not re-initialised
    assert 0 < np.abs(kernel_a - kernel_b).max() < 0.2 * np.abs(kernel_a).max()
    other = tmp_path / "other_model"
    shutil.copytree(trained["out"], other)
    meta = json.loads((other / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**meta, "classes": ["other_word", "_silence_", "_unknown_"]}))
    with pytest.raises(KwsError, match="its classes"):
        pipeline.train(dataclasses.replace(cfg, out=str(tmp_path / "ft2")), finetune_from=other, work_root=tmp_path / "work")
    with pytest.raises(KwsError, match="no model.keras"):
        pipeline.train(cfg, finetune_from=tmp_path, work_root=tmp_path / "work")


def test_too_few_clips_and_missing_split_are_named(tmp_path):
    from kws.train import pipeline

    data = make_dataset(tmp_path / "few", n_word=10, n_unknown=40, n_silence=30)
    with pytest.raises(KwsError, match="class 'tiny_word' has 7 training clips, fewer than data.min_clips_per_class = 20"):
        pipeline.train(tiny_config(data, tmp_path / "m"), work_root=tmp_path / "w")
    rows = manifest.read(data / config.MANIFEST_NAME)
    for r in rows:
        r.split = "train" if r.split == "validation" else r.split
    (data / config.MANIFEST_NAME).unlink()
    manifest.write(data / config.MANIFEST_NAME, rows)
    with pytest.raises(KwsError, match="dataset has no 'validation' clips"):
        pipeline.train(tiny_config(data, tmp_path / "m"), work_root=tmp_path / "w")
    assert not (tmp_path / "m").exists()


def test_multiworker_strategy_runs_as_a_single_worker_without_tf_config(trained, tmp_path):
    out = tmp_path / "m"
    cfg = _toml(dataclasses.replace(trained["cfg"], out=str(out)), tmp_path / "c.toml")
    r = _kws(["train", "--config", str(cfg), "--strategy", "multiworker", "--epochs", "1"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "strategy multiworker (1 replica(s))" in r.stdout and (out / "model_int8.tflite").is_file()
