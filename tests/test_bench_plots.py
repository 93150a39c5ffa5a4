"""`kws bench` plots (perf per input, stream timeline), the stream timeline in the JSON, and the stream
progress: PNGs written atomically and different for different results; events / positives in the
stream JSON agreeing with FRR and FA/h; progress read from the app's audio descriptor, monotonic and
ending at the total on a host-board run."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kws.bench import plots, readpos, stream
from kws.evaluate import scoring

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", f"{path} is not a PNG"
    assert data[-8:-4] == b"IEND", f"{path} is truncated"
    return struct.unpack(">II", data[16:24])


def _perf(us_per_window: list[float], shift: int | None = 6) -> dict:
    from kws.bench import perf

    windows = []
    for k, us in enumerate(us_per_window):
        w = {"input": k, "n": 50, "warmups": 2, "window_us": us, "throughput_ips": 50 / (us / 1e6), "wall_s": 1.0}
        if shift is not None:
            w["instructions_per_inference"] = us * 1000 / (1 << shift) / 50
        windows.append(w)
    return perf.summarize(windows, icount_shift=shift, min_window_s=10.0)


def _segments() -> list[stream.Segment]:
    """Three positives (1 s quiet room, 1 s utterance, 1 s quiet room) then 60 s of negatives."""
    sr = stream.SAMPLE_RATE_HZ
    segs = []
    for i in range(3):
        start = i * 3 * sr
        segs.append(stream.Segment(f"pos{i}", "positive", start, 3 * sr, ((start + sr) / sr * 1000 + 0.4,
                                                                          (start + 2 * sr) / sr * 1000 - 0.3)))
    segs.append(stream.Segment("neg", "negative", 9 * sr, 60 * sr))
    return segs


def test_perf_png_is_a_png_and_shows_the_input(tmp_path):
    a = plots.perf_png(_perf([10.2e6, 10.3e6, 10.25e6, 10.4e6, 10.1e6]), tmp_path / "a.png", title="a")
    b = plots.perf_png(_perf([10.2e6, 12.3e6, 10.25e6, 10.4e6, 10.1e6]), tmp_path / "b.png", title="a")
    c = plots.perf_png(_perf([10.2e6, 10.3e6], shift=None), tmp_path / "sub" / "c.png", title="a")
    assert a == tmp_path / "a.png" and b and c
    for p in (a, b, c):
        w, h = _png_size(p)
        assert 600 < w < 2000 and 300 < h < 1500
        assert 10_000 < p.stat().st_size < 1_000_000
    assert a.read_bytes() != b.read_bytes() and a.read_bytes() != c.read_bytes()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.png", "b.png", "sub"]  # no .tmp left behind


def test_stream_png_is_a_png_and_shows_the_input(tmp_path):
    segs = _segments()
    r1 = stream.score([1500.0, 4600.0, 30000.0], segs) | {"audio_s": 69.0, "clock": "test"}
    r2 = stream.score([1500.0, 30000.0, 50000.0], segs) | {"audio_s": 69.0, "clock": "test"}
    a = plots.stream_png(r1, tmp_path / "a.png", title="s")
    b = plots.stream_png(r2, tmp_path / "b.png", title="s")
    for p in (a, b):
        w, h = _png_size(p)
        assert 800 < w < 2500 and 250 < h < 1500 and p.stat().st_size > 10_000
    assert a.read_bytes() != b.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_plots_without_matplotlib_return_none(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert plots.perf_png(_perf([1e7]), tmp_path / "p.png", title="x") is None
    assert plots.stream_png({"audio_s": 1.0}, tmp_path / "s.png", title="x") is None
    assert not list(tmp_path.iterdir())


def test_stream_score_timeline_agrees_with_frr_and_faph():
    segs = _segments()
    # pos0 found (in its utterance), pos1 found in the hit tail, pos2 missed (a detection in its quiet
    # room before the utterance counts for nothing); negatives: two detections within the debounce
    # window (one false accept) and one more later
    events = [1500.0, 5000.0 + scoring.HIT_TAIL_MS - 1, 6500.4, 20000.0, 20000.0 + scoring.DEBOUNCE_MS / 2, 40000.0]
    r = stream.score(events, segs)
    assert r["events_ms"] == sorted(round(t) for t in events)
    assert [p[2] for p in r["positives_ms"]] == [1, 1, 0]
    assert sum(1 - p[2] for p in r["positives_ms"]) == r["misses"] == 1 and r["frr"] == pytest.approx(1 / 3)
    assert [p[:2] for p in r["positives_ms"]] == [[1000, 2000], [4000, 5000], [7000, 8000]]
    assert r["negatives_ms"] == [[9000, 69000]]
    assert sum(hi - lo for lo, hi in r["negatives_ms"]) / 3.6e6 == pytest.approx(r["negative_hours"])
    assert r["false_accepts"] == 2 and r["faph"] == pytest.approx(2 / r["negative_hours"])
    assert json.loads(json.dumps(r)) == r


def test_read_position_follows_a_reading_child(tmp_path):
    """ReadWatch reports the bytes a child has read: exact, growing, never above the file."""
    f = tmp_path / "audio.raw"
    f.write_bytes(bytes(40_000))
    code = ("import sys, time\nf = open(sys.argv[1], 'rb', buffering=0)\n"
            "while f.read(4000):\n    time.sleep(0.05)\nf.close()\nprint('done', flush=True)\nsys.stdin.read()\n")
    seen: list[int] = []
    proc = subprocess.Popen([sys.executable, "-c", code, str(f)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with readpos.ReadWatch(f, total_bytes=40_000, report=seen.append, interval_s=0.02) as w:
            w.attach(proc.pid)
            assert proc.stdout.readline() == b"done\n"
            time.sleep(0.1)
            # the file is closed now: the child has no descriptor on it
            assert readpos.read_position(proc.pid, f) is None
    finally:
        proc.communicate(b"", timeout=10)
    assert seen and all(b > a for a, b in zip(seen, seen[1:]))
    assert all(v % 4000 == 0 and 0 < v <= 40_000 for v in seen)
    assert len(seen) >= 3, seen   # ~0.5 s of reading polled every 20 ms: intermediate positions
    assert readpos.read_position(2**22 + 7, f) is None  # no such process


# --- a host-board stream run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wake_host(tmp_path_factory):
    from kws.compile import firmware
    from kws.train import pipeline
    from test_train_pipeline import make_dataset, tiny_config

    base = tmp_path_factory.mktemp("plots")
    data = make_dataset(base / "data")
    model = pipeline.train(tiny_config(data, base / "models" / "tiny"), work_root=base / "work")
    exe = firmware.build_wake(model, board="host", build_dir=base / "build")
    return {"exe": exe, "pos": [str(data / "tiny_word")], "neg": [str(data / "_unknown_"), str(data / "_silence_")]}


def test_stream_progress_is_monotonic_and_ends_at_the_total(wake_host):
    calls: list[tuple[float, float]] = []
    res = stream.run(positives=wake_host["pos"], negatives=wake_host["neg"], noise=None, snr_db=None, port=None,
                     board="host", firmware=str(wake_host["exe"]), baud=115200, timeout_s=60,
                     log=lambda m: None, progress=lambda d, t: calls.append((d, t)))
    assert calls, "no progress at all"
    assert {t for _, t in calls} == {res["audio_s"]}
    done = [d for d, _ in calls]
    assert all(b >= a for a, b in zip(done, done[1:])) and min(done) >= 0
    assert done[-1] == res["audio_s"]
    # the run itself: its timeline agrees with its scores
    assert len(res["events_ms"]) == res["detections"] > 0
    assert sum(1 - p[2] for p in res["positives_ms"]) == res["misses"]
    assert len(res["positives_ms"]) == res["positives"] == 70
    in_neg = [[t for t in res["events_ms"] if lo <= t < hi] for lo, hi in res["negatives_ms"]]
    assert sum(scoring._debounced_count(ts) for ts in in_neg) == res["false_accepts"]


def test_bench_stream_cli_writes_the_plot_and_shows_progress(wake_host, tmp_path, capsys):
    from kws.cli import main as kws_main

    out = tmp_path / "run.json"
    rc = kws_main(["bench", "--mode", "stream", "--board", "host", "--firmware", str(wake_host["exe"]),
                   "--positives", wake_host["pos"][0], "--negatives", wake_host["neg"][0],
                   "--negatives", wake_host["neg"][1], "--json", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    rep = json.loads(out.read_text())
    st = rep["stream"]
    png = tmp_path / "run_stream.png"
    assert st["plot_png"] == str(png) and _png_size(png)[0] > 800
    total = math.ceil(st["audio_s"])
    assert f"stream (audio s): {total}/{total} (100 %)" in err   # not a tty: a line per 10 %
    assert f"timeline plot: {png}" in (tmp_path / "run.md").read_text()
    # the JSON keeps the timeline lists on one line each
    text = out.read_text()
    assert '"events_ms": [' in text and len(text.splitlines()) < 200 + len(st["positives_ms"])


def test_bench_perf_cli_writes_the_plot(tmp_path, capsys):
    from kws.cli import main as kws_main
    from test_bench_harness import FakeDut

    d = FakeDut(us_per_inference=2000)
    d.start()
    try:
        out = tmp_path / "perf.json"
        rc = kws_main(["bench", "--no-progress", "--mode", "perf", "--port", d.url, "--json", str(out),
                       "--min-window-s", "0.1", "--inputs", "3"])
    finally:
        d.stop.set()
        d.srv.close()
    assert rc == 0
    p = json.loads(out.read_text())["perf"]
    png = tmp_path / "perf_perf.png"
    assert p["plot_png"] == str(png) and _png_size(png)[0] > 600
    assert f"per-input plot: {png}" in (tmp_path / "perf.md").read_text()
    capsys.readouterr()
