"""`kws bench` (toolchain/kws/bench): perf and accuracy over the MLPerf Tiny DUT protocol.

- Against the bench app with the MLPerf DS-CNN reference model under QEMU: accuracy on real speech with
  predictions (and int8 outputs) identical to tflite-micro; perf windows in instruction time.
- Against a fake DUT (a thread serving socket:// on localhost) that misbehaves: garbage, a partial line,
  e-[...], silence, a reset banner mid-run, another model. Each ends with the expected retry, or with a
  one-line message and partial results saved with "complete": false.
- One-line errors for a missing transport, a bad URL, a missing firmware; no QEMU left behind after an
  exception or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED, SHARED_REAL
from fakeserial import serve_lines
from kws.cli import main

MODEL = SHARED / "models" / "reference" / "mlperf_tiny_kws_ref_model.tflite"
HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup`)")


# --- a fake DUT ------------------------------------------------------------------------------------
class FakeDut(threading.Thread):
    """Serves the DUT protocol on 127.0.0.1:<port> to one client. The model "classifies" an input as
    input[0] % 12. faults: {k: kind} applies `kind` to the k-th infer command (0-based):
    garbage, partial, error, reset, silence (nothing more, ever); kinds ending in '+' apply to every
    infer from k on."""

    BANNER = b"m-timestamp-mode-performance\r\nm-lap-us-0\r\nm-init-done\r\nm-ready\r\n"

    def __init__(self, *, model: str = "kws01", faults: dict[int, str] | None = None, us_per_inference: int = 1000):
        super().__init__(daemon=True)
        self.model = model
        self.faults = faults or {}
        self.us = us_per_inference
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.infers = 0
        self.silent = False
        self.clock = 0
        self.db, self.expect = b"", 0
        self.last = None
        self.stop = threading.Event()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _fault(self) -> str | None:
        k = self.infers
        if k in self.faults:
            return self.faults[k].rstrip("+")
        for start, kind in self.faults.items():
            if kind.endswith("+") and k >= start:
                return kind[:-1]
        return None

    def reply(self, cmd: str) -> bytes:
        ok = b"m-ready\r\n"
        parts = cmd.split()
        if not parts:
            return ok
        if parts[0] == "name":
            return b"m-name-dut-[fake]\r\n" + ok
        if parts[0] == "profile":
            return b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\n" + f"m-model-[{self.model}]\r\n".encode() + ok
        if parts[:2] == ["db", "load"]:
            self.expect, self.db = int(parts[2]), b""
            return f"m-[Expecting {self.expect} bytes]\r\n".encode() + ok
        if parts[0] == "db":
            self.db += bytes.fromhex(parts[1])
            return (b"m-load-done\r\n" if len(self.db) == self.expect else b"") + ok
        if parts[0] == "infer":
            fault = self._fault()
            self.infers += 1
            if fault == "silence":
                self.silent = True
                return b""
            if fault == "reset":
                self.db, self.expect, self.last = b"", 0, None
                return self.BANNER
            if fault == "error":
                return b"e-[infer: simulated fault]\r\n" + ok
            if fault == "partial":
                return b"m-lap-us-12"
            if len(self.db) != self.expect or not self.db:
                return b"e-[no input loaded]\r\n" + ok
            n, w = int(parts[1]), int(parts[2])
            cls = self.db[0] % 12
            self.last = [127 if i == cls else -128 for i in range(12)]
            t0 = self.clock + 500
            self.clock = t0 + n * self.us
            vals = ",".join("0.996" if i == cls else "0.000" for i in range(12))
            out = (f"m-warmup-start-{w}\r\nm-warmup-done\r\nm-infer-start-{n}\r\nm-lap-us-{t0}\r\n"
                   f"m-lap-us-{self.clock}\r\nm-infer-done\r\nm-results-[{vals}]\r\n").encode() + ok
            return (b"\x00\xfe#@! line noise\r\n" + out) if fault == "garbage" else out
        if parts == ["results", "raw"]:
            return f"m-results-raw-[{','.join(map(str, self.last))}]\r\n".encode() + ok
        return f"e-[Unknown command: {cmd}]\r\n".encode() + ok

    def run(self) -> None:
        conn, _ = self.srv.accept()
        serve_lines(conn, b"%", self._on_command, self.stop.is_set, poll_s=0.2)

    def _on_command(self, cmd: str, send) -> None:
        if self.silent:
            return
        out = self.reply(cmd)
        if out:
            send(out)


@pytest.fixture
def fake():
    duts = []

    def make(**kw) -> FakeDut:
        d = FakeDut(**kw)
        d.start()
        duts.append(d)
        return d

    yield make
    for d in duts:
        d.stop.set()
        d.srv.close()


@pytest.fixture
def bins(tmp_path) -> Path:
    """MLPerf's format: 24 .bin inputs (490 bytes) + y_labels.csv (file, classes, class); the fake DUT
    classifies input[0] % 12, so every label is right."""
    d = tmp_path / "kws01_bins"
    d.mkdir()
    rows = []
    for i in range(24):
        cls = i % 12
        data = np.full(490, i, np.uint8)
        data[0] = cls
        (d / f"tst_{i:06d}_{cls}.bin").write_bytes(data.tobytes())
        rows.append(f"tst_{i:06d}_{cls}.bin, 12, {cls}")
    (d / "y_labels.csv").write_text("\n".join(rows) + "\n")
    return d


def _bench(argv, capsys) -> tuple[int, list[str]]:
    rc = main(["bench", "--no-progress"] + argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("kws: error")]
    return rc, err


# --- fake DUT: the happy path and every fault ----------------------------------------------------------
def test_fake_accuracy_over_socket_url_with_mlperf_bins(fake, bins, tmp_path, capsys):
    d = fake()
    out = tmp_path / "acc.json"
    rc, err = _bench(["--mode", "accuracy", "--port", d.url, "--dataset", str(bins), "--json", str(out)], capsys)
    assert rc == 0 and not err
    rep = json.loads(out.read_text())
    assert rep["complete"] is True and rep["mode"] == "accuracy"
    assert rep["device"] == {"name": "fake", "profile": "ULPMark for tinyML Firmware V0.0.1", "model": "kws01"}
    a = rep["accuracy"]
    assert a["top1"] == 1.0 and a["n"] == 24 and a["dataset_format"] == "bin"
    assert all(c["n"] == 2 and c["accuracy"] == 1.0 for c in a["per_class"].values())
    assert a["auc"] == pytest.approx(1.0)
    assert np.trace(np.array(a["confusion"])) == 24
    assert Path(a["confusion_png"]).stat().st_size > 1000
    assert (tmp_path / "acc.md").read_text().startswith("# kws bench --mode accuracy")
    assert rep["faults"]["retries"] == 0


@pytest.mark.parametrize("kind", ["garbage", "partial", "error", "reset"])
def test_fake_recoverable_faults_are_retried(kind, fake, bins, tmp_path, capsys):
    d = fake(faults={5: kind})
    out = tmp_path / "acc.json"
    rc, err = _bench(["--mode", "accuracy", "--port", d.url, "--dataset", str(bins), "--json", str(out),
                      "--timeout-s", "1"], capsys)
    assert rc == 0 and not err, err
    rep = json.loads(out.read_text())
    assert rep["complete"] is True and rep["accuracy"]["top1"] == 1.0 and rep["accuracy"]["n"] == 24
    assert rep["faults"]["retries"] == 1, rep["faults"]
    assert rep["faults"]["resets"] == (1 if kind == "reset" else 0)


@pytest.mark.parametrize("faults,needle", [
    ({5: "silence"}, "stopped answering"),
    ({5: "error+"}, "gave up after 2 retries"),
    ({5: "reset+"}, "gave up after 2 retries"),
    ({5: "garbage+"}, "gave up after 2 retries"),
])
def test_fake_unrecoverable_faults_stop_with_partial_results(faults, needle, fake, bins, tmp_path, capsys):
    d = fake(faults=faults)
    out = tmp_path / "acc.json"
    rc, err = _bench(["--mode", "accuracy", "--port", d.url, "--dataset", str(bins), "--json", str(out),
                      "--timeout-s", "1", "--retries", "2"], capsys)
    assert rc == 2 and len(err) == 1 and needle in err[0] and "incomplete" in err[0], err
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and needle in rep["error"]
    a = rep["accuracy"]
    assert a["partial"] is True and a["done"] == 5 and a["n"] == 5 and a["of"] == 24
    assert (tmp_path / "acc.md").read_text().splitlines()[2].startswith("**INCOMPLETE")


def test_fake_perf_windows_and_median(fake, tmp_path, capsys):
    d = fake(us_per_inference=2000)
    out = tmp_path / "perf.json"
    rc, err = _bench(["--mode", "perf", "--port", d.url, "--json", str(out), "--min-window-s", "0.2"], capsys)
    assert rc == 0 and not err
    rep = json.loads(out.read_text())
    p = rep["perf"]
    assert rep["complete"] is True and len(p["windows"]) == 5
    assert all(w["window_us"] >= 200_000 for w in p["windows"])
    assert p["throughput_ips"] == pytest.approx(500.0) and p["latency_ms"] == pytest.approx(2.0)
    assert "instructions_per_inference" not in p   # not QEMU: the device's own clock


def test_fake_perf_silence_keeps_finished_windows(fake, tmp_path, capsys):
    # infers: per input one calibration + one window; the 3rd input's window never answers
    d = fake(faults={5: "silence"})
    out = tmp_path / "perf.json"
    rc, err = _bench(["--mode", "perf", "--port", d.url, "--json", str(out), "--min-window-s", "0.05",
                      "--timeout-s", "1"], capsys)
    assert rc == 2 and len(err) == 1 and "stopped answering" in err[0]
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and len(rep["perf"]["windows"]) == 2 and rep["perf"]["partial"] is True


def test_fake_with_another_model_is_refused(fake, bins, capsys):
    d = fake(model="vww01")
    rc, err = _bench(["--mode", "accuracy", "--port", d.url, "--dataset", str(bins)], capsys)
    assert rc == 2 and len(err) == 1 and "flashed with another model" in err[0] and "vww01" in err[0]
    d2 = fake(model="vww01")
    rc, err = _bench(["--mode", "perf", "--port", d2.url, "--model-id", "vww01", "--min-window-s", "0.01"], capsys)
    assert rc == 0 and not err


# --- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["--mode", "perf"], "no device: give --port URL"),
    (["--mode", "perf", "--port", "bogus://x"], "cannot open it"),
    (["--mode", "perf", "--port", "/dev/kws-no-such-tty"], "cannot open it"),
    (["--mode", "perf", "--board", "qemu_mps2_an386"], "needs --firmware"),
    (["--mode", "perf", "--board", "qemu_mps2_an386", "--firmware", "/nonexistent/bench.elf"], "no such file"),
    (["--mode", "accuracy", "--port", "loop://"], "needs --dataset"),
    (["--mode", "energy", "--port", "loop://"], "needs --monitor lpm01a:URL|joulescope"),
    (["--mode", "stream", "--port", "loop://"], "needs --positives"),
])
def test_cli_errors_are_one_line(argv, needle, capsys):
    rc, err = _bench(argv, capsys)
    assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_closed_socket_port_is_one_line(capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, err = _bench(["--mode", "perf", "--port", f"socket://127.0.0.1:{port}"], capsys)
    assert rc == 2 and len(err) == 1 and "cannot open it" in err[0]


def test_loop_url_without_a_dut_times_out_in_one_line(capsys):
    # loop:// echoes our commands back: not a DUT; every wait is bounded
    rc, err = _bench(["--mode", "perf", "--port", "loop://", "--timeout-s", "0.5"], capsys)
    assert rc == 2 and len(err) == 1


def test_mlperf_auc_definition():
    from kws.bench.accuracy import mlperf_auc

    y = np.repeat(np.arange(12), 10)
    perfect = np.eye(12)[y]
    assert mlperf_auc(perfect, y)[0] == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    assert 0.4 < mlperf_auc(rng.random((600, 12)), rng.integers(0, 12, 600))[0] < 0.6


def test_speech_commands_folder_mapping():
    from kws.bench.accuracy import LABELS, label_index

    assert [label_index(n) for n in ("down", "Yes", "_silence_", "bed", "_unknown_")] == [0, 9, 10, 11, 11]
    assert label_index("_background_noise_") is None
    assert LABELS[10:] == ["_silence_", "_unknown_"]


# --- QEMU and the MLPerf reference model ---------------------------------------------------------------
def _qemu_children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"qemu-system-arm" in cmd:
            out.append(int(p.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _image() -> Path:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is absent (reference models live in ../shared beside the checkout)")
    from kws.bench import qemu

    return qemu.build("qemu_mps2_an386", "bench", build_dir=REPO / "build" / "firmware" / "bench-dscnn",
                      make_vars={"MODEL": str(MODEL)})


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_qemu_accuracy_identical_to_tflite_micro(tmp_path, capsys):
    if not (SHARED_REAL / "speech_commands_v2_test").is_dir():
        pytest.skip(f"{SHARED_REAL} is absent")
    image = _image()
    out = tmp_path / "acc.json"
    rc, err = _bench(["--mode", "accuracy", "--board", "qemu_mps2_an386", "--firmware", str(image),
                      "--dataset", str(SHARED_REAL / "speech_commands_v2_test"), "--limit", "36",
                      "--compare-tflm", str(MODEL), "--json", str(out)], capsys)
    assert rc == 0 and not err, err
    rep = json.loads(out.read_text())
    a = rep["accuracy"]
    assert rep["complete"] is True and a["n"] == 36 and a["dataset_format"] == "audio"
    assert a["tflm"]["predictions_differ"] == 0 and a["tflm"]["values_differ"] == 0
    assert a["top1"] >= 0.8 and set(n for n, c in a["per_class"].items() if c["n"]) == set(a["labels"])
    assert rep["device"]["model"] == "kws01" and "icount shift=6" in rep["transport"]
    assert not _qemu_children(os.getpid())


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_qemu_perf_is_instruction_time(tmp_path, capsys):
    image = _image()
    out = tmp_path / "perf.json"
    rc, err = _bench(["--mode", "perf", "--board", "qemu_mps2_an386", "--firmware", str(image),
                      "--min-window-s", "0.4", "--json", str(out)], capsys)
    assert rc == 0 and not err, err
    p = json.loads(out.read_text())["perf"]
    assert len(p["windows"]) == 5 and all(w["window_us"] >= 400_000 for w in p["windows"])
    ipi = p["instructions_per_inference"]
    assert 2.5e6 < ipi < 3.5e6
    # latency = 1 / throughput, and in instruction time: 64 ns per instruction
    assert p["latency_ms"] == pytest.approx(1000 / p["throughput_ips"])
    assert p["latency_ms"] == pytest.approx(ipi * 64e-6, rel=2e-3)
    assert "instruction time" in p["device_clock"]
    assert not _qemu_children(os.getpid())


@pytest.mark.qemu
@needs_qemu
def test_qemu_energy_estimate_from_the_power_model(tmp_path, capsys):
    """--mode energy --power-model: the perf measurement's instructions at the board's clock times the
    datasheet run power, labelled an estimate."""
    from kws.bench import power

    image = _image()
    out = tmp_path / "energy.json"
    rc, err = _bench(["--mode", "energy", "--power-model", "nucleo_l4r5zi", "--board", "qemu_mps2_an386",
                      "--firmware", str(image), "--min-window-s", "0.2", "--inputs", "1", "--json", str(out)], capsys)
    assert rc == 0 and not err, err
    rep = json.loads(out.read_text())
    e, ipi = rep["energy"], rep["perf"]["instructions_per_inference"]
    assert e["estimated"] is True and rep["complete"] is True
    seconds = ipi / 120e6
    assert e["uj_per_inference"] == pytest.approx(power.run_power_w("nucleo_l4r5zi") * seconds * 1e6)
    assert e["latency_ms"] == pytest.approx(seconds * 1e3)
    assert not _qemu_children(os.getpid())


def test_energy_mode_needs_a_power_model_or_says_what_is_missing(capsys):
    rc, err = _bench(["--mode", "energy", "--board", "qemu_mps2_an386", "--firmware", "x.elf"], capsys)
    assert rc == 2 and len(err) == 1 and "--monitor" in err[0] and "--power-model" in err[0]
    rc, err = _bench(["--mode", "energy", "--power-model", "nope", "--port", "loop://"], capsys)
    assert rc == 2 and len(err) == 1 and "no power model" in err[0]


@pytest.mark.qemu
@needs_qemu
def test_qemu_is_killed_after_an_exception(capsys):
    image = _image()
    from kws.bench import transport

    with pytest.raises(RuntimeError):
        with transport.open_link(board="qemu_mps2_an386", firmware=image) as link:
            pid = link.pid
            assert _alive(pid)
            raise RuntimeError("boom")
    assert not _alive(pid)
    # and through the CLI: a refused model id stops the run; QEMU goes with it
    rc, err = _bench(["--mode", "perf", "--board", "qemu_mps2_an386", "--firmware", str(image),
                      "--model-id", "vww01"], capsys)
    assert rc == 2 and len(err) == 1 and "flashed with another model" in err[0]
    assert not _qemu_children(os.getpid())


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_qemu_is_killed_on_ctrl_c(tmp_path):
    image = _image()
    out = tmp_path / "perf.json"
    proc = subprocess.Popen([sys.executable, "-m", "kws.cli", "bench", "--mode", "perf", "--no-progress",
                             "--board", "qemu_mps2_an386", "--firmware", str(image), "--min-window-s", "600",
                             "--json", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # A shell's background job ignores SIGINT, and an ignored signal stays ignored
                            # across exec (Python then installs no KeyboardInterrupt handler): restore it.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    kids = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not kids:
            kids = _qemu_children(proc.pid)
            time.sleep(0.1)
        assert kids, "QEMU did not start"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for k in kids:  # never leave a QEMU behind, even when the test fails
            if _alive(k):
                os.kill(k, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    for k in kids:
        assert not _alive(k), f"QEMU {k} still running after Ctrl-C"
    rep = json.loads(out.read_text())
    assert rep["complete"] is False and "interrupted" in rep["error"]


def test_host_board_accuracy_identical_to_tflite_micro(tmp_path, capsys):
    """--board host: the bench app built for the host board, over its stdin/stdout."""
    if not (SHARED_REAL / "speech_commands_v2_test").is_dir() or not MODEL.is_file():
        pytest.skip("../shared (real speech, reference model) is absent")
    from kws.bench import qemu

    exe = qemu.build("host", "bench", build_dir=REPO / "build" / "firmware" / "bench-dscnn",
                     make_vars={"MODEL": str(MODEL)})
    out = tmp_path / "acc.json"
    rc, err = _bench(["--mode", "accuracy", "--board", "host", "--firmware", str(exe), "--dataset",
                      str(SHARED_REAL / "speech_commands_v2_test"), "--limit", "24", "--compare-tflm", str(MODEL),
                      "--json", str(out)], capsys)
    assert rc == 0 and not err, err
    rep = json.loads(out.read_text())
    assert rep["complete"] is True and rep["accuracy"]["n"] == 24 and "host program" in rep["transport"]
    assert rep["accuracy"]["tflm"]["predictions_differ"] == 0 and rep["accuracy"]["tflm"]["values_differ"] == 0
