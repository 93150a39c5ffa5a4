"""tools/mlperf_runner_qemu.py: the bench app under QEMU on a pty, as the MLCommons runner sees it.

Always (with QEMU and the reference model): QEMU starts on a pty, the DUT answers `name%` through it,
and QEMU is gone afterwards; the runner's discovery hook lists the pty with the devices YAML's USB IDs.
Marked `interop` (needs mlcommons/tiny's benchmark/runner: set KWS_MLPERF_RUNNER to that folder, with its
requirements installed): the runner's own DeviceManager finds the pty and its DUT class reads our name and
model; with KWS_MLPERF_DATASETS (the runner's datasets folder) also full performance and accuracy runs.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SHARED
from kws.bench import qemu

sys.path.insert(0, str(REPO / "tools"))
import mlperf_runner_qemu as wrapper  # noqa: E402

MODEL = SHARED / "models" / "reference" / "mlperf_tiny_kws_ref_model.tflite"
HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup`)")


@functools.lru_cache(maxsize=None)
def _elf() -> Path:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is absent (reference models live in ../shared beside the checkout)")
    return qemu.build("qemu_mps2_an386", "bench", build_dir=REPO / "build" / "firmware" / "bench-interop",
                      make_vars={"MODEL": str(MODEL)})


def _ask(path: str, cmd: bytes, timeout_s: float = 20) -> list[str]:
    import serial

    with serial.Serial(path, 115200, timeout=0.1) as port:
        port.write(cmd)
        buf, deadline = b"", time.monotonic() + timeout_s
        while b"m-ready" not in buf and time.monotonic() < deadline:
            buf += port.read(4096)
    return buf.decode("utf-8", "replace").split()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@needs_qemu
@pytest.mark.qemu
def test_qemu_on_pty_answers_name_and_is_killed():
    elf = _elf()
    with wrapper.qemu_on_pty(elf) as q:
        assert q.path.startswith("/dev/pts/")
        pid = q.proc.pid
        lines = _ask(q.path, b"name%")
        # exactly the reply: the reset banner was taken off the pty, as a board's is lost before the
        # runner opens its USB UART
        assert lines == ["m-name-dut-[kws]", "m-ready"], lines
    assert q.proc.poll() is not None and _gone(pid)


@needs_qemu
@pytest.mark.qemu
def test_qemu_on_pty_killed_when_the_body_fails():
    elf = _elf()
    with pytest.raises(RuntimeError):
        with wrapper.qemu_on_pty(elf) as q:
            pid = q.proc.pid
            raise RuntimeError("runner crashed")
    assert _gone(pid)


def test_missing_elf_is_one_line_error(tmp_path):
    from kws.errors import KwsError

    with pytest.raises(KwsError, match="firmware image not found"):
        with wrapper.qemu_on_pty(tmp_path / "none.elf"):
            pass


def test_discovery_hook_lists_the_pty_with_the_yaml_usb_ids():
    from serial.tools import list_ports

    real = list_ports.comports
    with wrapper.runner_sees("/dev/pts/99"):
        ports = [p for p in list_ports.comports(True) if p.vid]
        ours = [p for p in ports if p.device == "/dev/pts/99"]
        assert len(ours) == 1 and (ours[0].vid, ours[0].pid) == (wrapper.FAKE_VID, wrapper.FAKE_PID)
    assert list_ports.comports is real
    yaml = pytest.importorskip("yaml")
    defs = yaml.safe_load(wrapper.devices_yaml())
    assert defs == [{"name": "kws_qemu", "type": "dut", "usb": {wrapper.FAKE_VID: wrapper.FAKE_PID}}]


# --- with the MLCommons runner ----------------------------------------------------------------------
def _runner() -> Path:
    env = os.environ.get("KWS_MLPERF_RUNNER")
    candidates = [Path(env)] if env else [REPO.parent / "tiny" / "benchmark" / "runner"]
    for d in candidates:
        if (d / "main.py").is_file() and (d / "device_manager.py").is_file():
            return d
    pytest.skip("the MLCommons runner is not installed: set KWS_MLPERF_RUNNER to mlcommons/tiny's "
                "benchmark/runner folder (with its requirements importable)")


@pytest.mark.interop
@needs_qemu
def test_runner_discovers_and_identifies_our_dut():
    runner = _runner()
    elf = _elf()
    sys.path.insert(0, str(runner))
    try:
        try:
            import device_manager  # the runner's module
        except ImportError as e:
            pytest.skip(f"the MLCommons runner's requirements are not importable: {e}")
        import yaml

        defs = yaml.safe_load(wrapper.devices_yaml())
        with wrapper.qemu_on_pty(elf) as q, wrapper.runner_sees(q.path):
            params = list(inspect.signature(device_manager.DeviceManager).parameters)
            extra = {"desired_baud": None, "mode": "p"}
            manager = device_manager.DeviceManager(defs, *[extra[p] for p in params[1:] if p in extra])
            manager.scan()
            dut = manager.get("dut", {}).get("instance")
            assert dut is not None, "the runner did not pick up the pty"
            with dut:
                assert dut.get_name() == "kws"
                assert dut.get_model() == "kws01"
                # what the runner's performance / accuracy steps do: load one input, infer, read laps
                dut.load(bytes(range(256)) + bytes(234))          # 490 bytes: the KWS input
                lines = dut.infer(2, 1)
                laps = [int(ln[len("m-lap-us-"):]) for ln in lines if ln.startswith("m-lap-us-")]
                assert len(laps) == 2 and laps[1] > laps[0], lines
                assert any(ln.startswith("m-results-[") for ln in lines) and lines[-1] == "m-ready", lines
    finally:
        sys.path.remove(str(runner))


@pytest.mark.interop
@pytest.mark.slow
@needs_qemu
@pytest.mark.parametrize("mode", ["p", "a"])
def test_runner_full_run(mode, tmp_path):
    runner = _runner()
    datasets = os.environ.get("KWS_MLPERF_DATASETS")
    if not datasets:
        pytest.skip("set KWS_MLPERF_DATASETS to the runner's datasets folder for full runs")
    elf = _elf()
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "mlperf_runner_qemu.py"), "--elf", str(elf),
                           "--runner", str(runner), "--cwd", str(tmp_path), "--",
                           "-m", mode, "-s", datasets, "-t", str(runner / "tests.yaml")],
                          capture_output=True, text=True, timeout=3600)
    log = proc.stdout + proc.stderr + "".join(p.read_text() for p in tmp_path.rglob("log.txt"))
    assert proc.returncode == 0, log[-2000:]
    assert ("Throughput" in log) if mode == "p" else ("accuracy" in log.lower()), log[-2000:]
