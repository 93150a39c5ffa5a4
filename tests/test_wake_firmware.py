"""The `wake` app (C frontend -> compiled model -> integer detector, as firmware) makes exactly the
detections, with the same timestamps and scores, as `kws eval`'s streaming simulation of the same model
on the same audio: on the host board and on Cortex-M4 under QEMU."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kws.compile import firmware
from kws.data import audio
from kws.evaluate import detector, streaming
from kws.train.augment import to_int16
from test_train_pipeline import make_dataset, tiny_config

HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None


@pytest.fixture(scope="module")
def model_and_stream(tmp_path_factory):
    from kws.train import pipeline

    base = tmp_path_factory.mktemp("wake")
    data = make_dataset(base / "data")
    out = pipeline.train(tiny_config(data, base / "models" / "tiny"), work_root=base / "work")
    clips = sorted(data.glob("*/*.wav"))
    np.random.default_rng(0).shuffle(clips)
    pcm = to_int16(np.concatenate([audio.load(c) for c in clips[:80]]))
    return {"model": out, "pcm": pcm, "base": base}


def expected_events(model_dir, pcm) -> list[tuple[str, int, int]]:
    """What kws eval's streaming simulation decides: (label, score = window mean, t_ms)."""
    model_bytes, dep = streaming.load_deployment(model_dir)
    scores, times = streaming.score_audio(pcm, streaming.Int8Model(model_bytes), dep)
    idx = detector.detect(scores, detector.DetectorParams(dep.threshold, dep.window, dep.refractory))
    label = dep.classes[dep.positive_class]
    padded = np.concatenate([np.zeros(dep.window - 1, np.int64), scores.astype(np.int64)])
    events = []
    for i in idx:
        window_sum = int(padded[i: i + dep.window].sum())
        events.append((label, window_sum // dep.window, int(round(times[i]))))
    return events, len(scores)


def _check(run: firmware.WakeRun, model_dir, pcm) -> None:
    want, invocations = expected_events(model_dir, pcm)
    assert run.invocations == invocations
    assert run.events == want
    # Meaningful only if some windows detect and most do not.
    assert 0 < len(want) < invocations / 2
    assert run.frontend_ticks > 0 and run.model_ticks > 0


def test_wake_app_on_host_matches_streaming_simulation(model_and_stream, tmp_path):
    m = model_and_stream
    exe = firmware.build_wake(m["model"], board="host", build_dir=tmp_path / "build")
    _check(firmware.run_wake_host(exe, m["pcm"]), m["model"], m["pcm"])


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup`)")
def test_wake_app_on_cortex_m4_qemu_matches_streaming_simulation(model_and_stream, tmp_path):
    m = model_and_stream
    elf = firmware.build_wake(m["model"], board="qemu_mps2_an386", build_dir=tmp_path / "build")
    run = firmware.run_wake_qemu(elf, m["pcm"])
    _check(run, m["model"], m["pcm"])
    assert run.ticks_hz == 25_000_000


def test_wake_build_refuses_a_folder_without_a_model(tmp_path):
    from kws.errors import KwsError

    with pytest.raises(KwsError, match="not a model folder"):
        firmware.build_wake(tmp_path, board="host", build_dir=tmp_path / "b")


def test_firmware_makefile_builds_a_model_folder(model_and_stream, tmp_path):
    """make -C firmware BOARD=host MODEL=<folder> generates the sources itself and builds the wake app."""
    import os
    import subprocess

    m = model_and_stream
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    fw = firmware.REPO / "firmware"
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(fw), "BOARD=host", f"MODEL={m['model']}",
                           f"BUILD_DIR={tmp_path}"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    exe = tmp_path / "host" / "wake"
    _check(firmware.run_wake_host(exe, m["pcm"]), m["model"], m["pcm"])
    bad = subprocess.run(["make", "--no-print-directory", "-C", str(fw), "BOARD=host", f"MODEL={tmp_path / 'none'}",
                          f"BUILD_DIR={tmp_path}"], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "not a model folder" in bad.stderr
