"""`kws bench --port rfc2217://...` (DESIGN.md decision 7) against the bench app under QEMU.

QEMU runs the bench app with the MLPerf DS-CNN reference model, its UART0 on a pty
(tools/mlperf_runner_qemu.py); an RFC 2217 server in this process (tests/rfc2217_bridge.py, on pyserial's
PortManager) serves that pty on localhost; the real CLI, in its own process, connects with
`--port rfc2217://127.0.0.1:<port>`. Proves over RFC 2217:
- perf: a complete run, the DUT's identity, windows of device time, and an instruction count per
  inference (derived at QEMU's -icount shift) in the range the QEMU-board run measures;
- accuracy on real speech: predictions identical to tflite-micro, and not all the same class;
- the client's line settings (115200 8N1, no flow control, DTR/RTS) reached the pty through PortManager
  without errors, once per connection (not once per read).
QEMU is killed and the server closed whatever happens (a module fixture over two context managers).
"""

from __future__ import annotations

import json
import subprocess
import sys
import termios

import pytest

from conftest import REPO
from rfc2217_bridge import Rfc2217Bridge
from test_bench_interop import MODEL, _elf, needs_qemu, wrapper

BAUD = 115200
LINE = (BAUD, 8, "N", 1)   # what the CLI's pyserial rfc2217 client asks for


@pytest.fixture(scope="module")
def bridge():
    elf = _elf()   # skips without the reference model
    with wrapper.qemu_on_pty(elf) as q:
        # the bridge opens the pty at 9600 baud: seeing 115200 afterwards means the client set it
        with Rfc2217Bridge(q.path, baud=9600) as b:
            b.qemu = q
            yield b
    assert q.proc.poll() is not None


def _bench(bridge: Rfc2217Bridge, args: list[str], tmp_path) -> dict:
    out = tmp_path / "bench.json"
    sessions = len(bridge.settings)
    proc = subprocess.run([sys.executable, "-m", "kws.cli", "bench", "--no-progress", "--port", bridge.url,
                           "--baud", str(BAUD), "--json", str(out), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert bridge.wait_sessions(sessions + 1), "the RFC 2217 session did not end with the CLI"
    assert not bridge.errors, bridge.errors
    # the client's settings reached the pty: PortManager applied them, termios has them
    applied = bridge.settings[-1]
    assert applied and set(applied) == {LINE}, applied
    assert bridge.serial.baudrate == BAUD
    attrs = termios.tcgetattr(bridge.serial.fileno())
    assert attrs[4] == attrs[5] == termios.B115200
    assert bridge.serial.lines == {"dtr": True, "rts": True}
    assert not bridge.serial.xonxoff and not bridge.serial.rtscts
    # once per connection: a port reconfiguration per read would be hundreds (kws.bench.transport.SerialLink.recv)
    assert len(applied) < 20, len(applied)
    rep = json.loads(out.read_text())
    assert rep["complete"] is True and rep["transport"].startswith(bridge.url)
    assert rep["device"]["name"] == "kws" and rep["device"]["model"] == "kws01"
    assert rep["faults"]["retries"] == 0 and rep["faults"]["resets"] == 0
    return rep


@needs_qemu
@pytest.mark.qemu
def test_perf_over_rfc2217(bridge, tmp_path):
    rep = _bench(bridge, ["--mode", "perf", "--min-window-s", "0.5", "--inputs", "2"], tmp_path)
    p = rep["perf"]
    assert len(p["windows"]) == 2 and all(w["window_us"] >= 500_000 and w["n"] > 0 for w in p["windows"])
    assert p["throughput_ips"] > 0 and p["latency_ms"] > 0
    assert p["latency_ms"] == pytest.approx(1000 / p["throughput_ips"])
    # Over --port the harness cannot know the device is QEMU, so it reports the device's own clock; this
    # QEMU runs at -icount shift=DEFAULT (one instruction = 2^shift ns): the same instruction count per
    # inference as the QEMU-board run (test_bench_harness) must come out of the rfc2217 timestamps.
    from kws.bench import qemu

    assert "device's own timer" in p["device_clock"]
    instructions = p["latency_ms"] * 1e6 / (1 << qemu.DEFAULT_ICOUNT_SHIFT)
    assert 2.5e6 < instructions < 3.5e6, instructions


@needs_qemu
@pytest.mark.qemu
def test_accuracy_over_rfc2217_identical_to_tflite_micro(shared_real, bridge, tmp_path):
    rep = _bench(bridge, ["--mode", "accuracy", "--dataset", str(shared_real / "speech_commands_v2_test"),
                          "--limit", "12", "--compare-tflm", str(MODEL)], tmp_path)
    a = rep["accuracy"]
    assert a["n"] == 12 and a["dataset_format"] == "audio"
    assert a["tflm"]["n"] == 12
    assert a["tflm"]["predictions_differ"] == 0 and a["tflm"]["values_differ"] == 0
    predictions = [item[2] for item in a["items"]]
    assert len(predictions) == 12 and len(set(predictions)) > 1, predictions
    assert a["top1"] >= 0.8
