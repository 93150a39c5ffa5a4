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
    assert run.overruns == 0 and run.hops == len(pcm) // HOP
    assert 0 < run.busy_ticks < run.total_ticks


HOP = 320


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
    # Real time in virtual time: one 20 ms block per 500,000 ticks, so the run lasts as long as the
    # audio (plus the final end-of-stream period and the last hop's processing).
    period = 25_000_000 * HOP // 16000
    assert run.hops * period <= run.total_ticks <= (run.hops + 3) * period
    assert run.busy_ticks >= run.frontend_ticks + run.model_ticks


@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup`)")
def test_wake_app_counts_overruns_when_the_core_is_too_slow(model_and_stream, tmp_path):
    """At -icount shift=10 (one instruction per 1.024 us: ~1 MIPS) a 20 ms block is ~19,500
    instructions, less than the frontend needs: blocks arrive while the FIFO is full. The app must drop
    and count them, keep going, and account for every block."""
    m = model_and_stream
    pcm = m["pcm"][: 16000 * 20]
    elf = firmware.build_wake(m["model"], board="qemu_mps2_an386", build_dir=tmp_path / "build")
    run = firmware.run_wake_qemu(elf, pcm, icount_shift=10)
    assert run.overruns > 0 and run.hops > 0
    assert run.hops + run.overruns == len(pcm) // HOP


def test_wake_app_keeps_the_preroll_for_the_host(model_and_stream, tmp_path):
    """preroll% returns the 1.5 s of audio that ended with the hop of the last detection, sample for
    sample; status% and bad commands answer in the protocol's framing."""
    import os
    import subprocess

    m = model_and_stream
    pcm = np.ascontiguousarray(m["pcm"], dtype="<i2")
    exe = firmware.build_wake(m["model"], board="host", build_dir=tmp_path / "build",
                              extra_cflags=("-DKWS_WAKE_LINGER=1",))
    (tmp_path / "a.raw").write_bytes(pcm.tobytes())
    proc = subprocess.Popen([str(exe)], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "KWS_AUDIO": str(tmp_path / "a.raw")})
    try:
        lines = []
        while not lines or not lines[-1].startswith("wake: hops"):  # the stream is done
            line = proc.stdout.readline().decode()
            assert line, "wake app ended early"
            lines.append(line.strip())
        out, _ = proc.communicate(b"status%preroll%" + b"x" * 40 + b"%nope%quit%", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    run = firmware.parse_wake_uart("\n".join(lines))
    assert run.events, "the stream must contain a detection"
    reply = out.decode().splitlines()
    assert reply[0] == f"m-status-hops-{run.hops}-overruns-0-detections-{len(run.events)}"
    assert reply[1] == "m-ready"
    head = reply[2].split("-")
    assert head[:2] == ["m", "preroll"]
    end, n = int(head[2]), int(head[3])
    assert n == 24000
    # The detection's hop ends at `end`; kws eval's t_ms for it lies within the last hop.
    assert 0 <= end - run.events[-1][2] * 16 < 2 * HOP
    body = "".join(reply[3: 3 + n // 32])
    got = np.frombuffer(bytes.fromhex(body), dtype="<i2")
    assert np.array_equal(got, pcm[end - n: end])
    assert got.std() > 0
    assert reply[3 + n // 32:] == ["m-ready", "e-[command too long]", "m-ready", "e-[unknown command]", "m-ready", "m-ready"]  # the last for quit%


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


def test_bench_stream_mode_scores_the_apps_own_detections(model_and_stream, tmp_path):
    """kws bench --mode stream plays one recording (positives padded with quiet room, negatives back to
    back) to the wake app and scores its detections with kws eval's rules; the detections must be the
    streaming simulation's on the same recording, and the scores what those detections imply."""
    import json

    from kws.bench import stream
    from kws.cli import main as kws_main

    m = model_and_stream
    data = m["base"] / "data"
    pos, neg = [str(data / "tiny_word")], [str(data / "_unknown_"), str(data / "_silence_")]
    exe = firmware.build_wake(m["model"], board="host", build_dir=tmp_path / "build")
    out = tmp_path / "stream.json"
    rc = kws_main(["bench", "--mode", "stream", "--board", "host", "--firmware", str(exe), "--positives", pos[0],
                   "--negatives", neg[0], "--negatives", neg[1], "--json", str(out), "--no-progress"])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["complete"] is True and rep["mode"] == "stream"
    st = rep["stream"]
    pcm, segments = stream.build_recording(positives=pos, negatives=neg)
    want, invocations = expected_events(m["model"], pcm)
    assert st["detections"] == len(want) and st["device"]["invocations"] == invocations
    assert st == {**st, **stream.score([t for _, _, t in want], segments)}
    assert st["positives"] == 70 and st["negative_hours"] > 0
    assert 0 < st["detections"] < invocations / 2   # a model that sometimes fires, not always
    assert 0 <= st["frr"] < 1


def test_bench_stream_mode_needs_a_device_and_audio(tmp_path):
    from kws.cli import main as kws_main

    assert kws_main(["bench", "--mode", "stream", "--positives", str(tmp_path)]) == 2
