#!/usr/bin/env python3
"""Drive our firmware under QEMU with the MLCommons open-source runner (mlcommons/tiny, benchmark/runner).

The runner finds its devices only by USB IDs: DeviceManager.scan() lists
`serial.tools.list_ports.comports()`, keeps ports that have a USB vendor ID, and matches them against
the `usb: {VID: PID}` entries of its devices YAML (`-d`). A QEMU UART on a pty has no USB IDs, so this
wrapper
  1. starts qemu-system-arm -M mps2-an386 with the bench app and `-serial pty` (no socat: QEMU makes the
     pty itself and prints "char device redirected to /dev/pts/N"), under the fixed -icount of DESIGN.md
     decision 5, so the m-lap-us- timestamps are instruction time (one instruction = 2^shift ns);
  2. writes a devices YAML with one `type: dut` entry whose USB IDs are pid.codes' test IDs
     (0x1209:0x0001) and makes comports() also report the pty with those IDs (the runner's pyserial and
     ours are the same module, so patching it in this process is enough); pyusb's usb.core.find, which
     newer runners call for USB-only power monitors, is made to find nothing;
  3. runs the runner's main.py in this process (runpy, cwd = the runner's folder unless --cwd) with
     `-d <that YAML>` and every other argument passed through (-m p|a, -t tests.yaml, -s datasets, ...);
  4. kills QEMU (its whole process group) on the way out, whatever happened, Ctrl-C and SIGTERM included.

The runner talks to the pty as to a USB UART (serial.Serial(path, baud)); the DUT is our bench app, which
speaks the runner's protocol (firmware/include/kws/bench.h). Performance and accuracy modes only: energy
mode needs a real power monitor and IO manager (see docs/energy.md).

    .venv/bin/python tools/mlperf_runner_qemu.py --runner ../tiny/benchmark/runner \\
        --elf build/firmware/bench-dscnn/qemu_mps2_an386/bench.elf -- -m p -s /path/to/datasets

The runner's own requirements (pyyaml, numpy, scikit-learn, pyusb, ...) must be importable by the Python
that runs this wrapper. Without --runner: start QEMU on a pty, print the pty's path and keep it running
until Ctrl-C (for any other tool that wants a serial path).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "toolchain"))

from kws.bench import qemu  # noqa: E402
from kws.errors import KwsError  # noqa: E402

# pid.codes' VID and its PID for testing (https://pid.codes/1209/0001/): no real device uses them.
FAKE_VID = 0x1209
FAKE_PID = 0x0001
DUT_NAME = "kws_qemu"
_PTY_LINE = re.compile(rb"char device redirected to (\S+) \(label serial0\)")


@dataclass
class QemuPty:
    """A running QEMU whose UART0 is the pty `path`."""

    proc: subprocess.Popen
    path: str


def _swallow_banner(path: str, deadline: float) -> None:
    """Reads the DUT's reset banner (up to its m-ready) off the pty. On a board it is printed before
    anyone opens the USB UART and lost; on a pty it waits in the line buffer and the runner would take
    it for the reply to its first command and stay one reply behind from then on."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        seen = b""
        quiet_until = None
        while True:
            now = time.monotonic()
            if now > deadline:
                raise KwsError(f"no reset banner (m-ready) from the DUT on {path}: is the ELF the bench app?")
            if quiet_until is not None and now > quiet_until:
                return
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    seen += os.read(fd, 4096)
                if b"m-ready" in seen:
                    quiet_until = time.monotonic() + 0.3   # then 0.3 s of silence
    finally:
        os.close(fd)


def _drain(proc: subprocess.Popen) -> None:
    with contextlib.suppress(Exception):
        while os.read(proc.stdout.fileno(), 65536):
            pass


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL QEMU's process group and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            proc.stdout.close()


@contextlib.contextmanager
def qemu_on_pty(elf: Path, *, icount_shift: int = qemu.DEFAULT_ICOUNT_SHIFT,
                timeout_s: float = 20.0) -> Iterator[QemuPty]:
    """Starts elf under QEMU with UART0 on a new pty; yields its path; kills QEMU on the way out."""
    elf = Path(elf)
    if not elf.is_file():
        raise KwsError(f"{elf}: firmware image not found (build the bench app: make -C firmware "
                       f"BOARD=qemu_mps2_an386 MODEL=<model.tflite>)")
    cmd = qemu.qemu_command(elf, icount_shift=icount_shift, semihosting=True)
    cmd[cmd.index("stdio")] = "pty"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out = b""
        deadline = time.monotonic() + timeout_s
        path = None
        while path is None:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                said = out.decode("utf-8", "replace").strip().splitlines()[-1:] or ["nothing"]
                why = f"exited with {proc.returncode}" if proc.poll() is not None else f"no pty within {timeout_s:g} s"
                raise KwsError(f"{elf.name}: QEMU {why} (it said: {said[0]!r})")
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                out += chunk
                m = _PTY_LINE.search(out)
                if m:
                    path = m.group(1).decode()
        _swallow_banner(path, deadline)
        # keep draining QEMU's output (warnings, semihosting console) so it never blocks on a full pipe
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        yield QemuPty(proc, path)
    finally:
        kill(proc)


def devices_yaml() -> str:
    """The runner's device definitions: our DUT only, matched by the fake USB IDs."""
    return (f"- name: {DUT_NAME}\n"
            f"  type: dut\n"
            f"  usb:\n"
            f"    0x{FAKE_VID:04X}: 0x{FAKE_PID:04X}\n")


class _PtyPortInfo:
    """What the runner reads of a pyserial ListPortInfo: device, vid, pid, description (+ the rest)."""

    def __init__(self, device: str):
        self.device = device
        self.name = os.path.basename(device)
        self.vid = FAKE_VID
        self.pid = FAKE_PID
        self.description = "kws bench app under QEMU (pty)"
        self.hwid = f"USB VID:PID={FAKE_VID:04X}:{FAKE_PID:04X}"
        self.serial_number = None
        self.location = None
        self.manufacturer = "kws"
        self.product = "qemu_mps2_an386"
        self.interface = None

    def __getitem__(self, i):  # ListPortInfo is also a (device, description, hwid) sequence
        return (self.device, self.description, self.hwid)[i]

    def __iter__(self):
        return iter((self.device, self.description, self.hwid))


@contextlib.contextmanager
def runner_sees(pty_path: str) -> Iterator[None]:
    """While active, serial.tools.list_ports.comports() also lists pty_path with the fake USB IDs, and
    pyusb (if installed) finds no USB-only devices. Restores both on the way out."""
    from serial.tools import list_ports

    real = list_ports.comports

    def comports(include_links: bool = False):
        return [_PtyPortInfo(pty_path)] + list(real(include_links))

    list_ports.comports = comports
    usb_core, real_find = None, None
    try:
        import usb.core as usb_core  # type: ignore
        real_find = usb_core.find

        def find(*args, find_all=False, **kwargs):
            return iter(()) if find_all else None
        usb_core.find = find
    except Exception:
        usb_core = None
    try:
        yield
    finally:
        list_ports.comports = real
        if usb_core is not None:
            usb_core.find = real_find


def run_runner(runner_dir: Path, runner_args: list[str], pty_path: str, *, cwd: Path | None = None) -> int:
    """Runs the runner's main.py in this process against pty_path; returns its exit status."""
    runner_dir = Path(runner_dir).resolve()
    main = runner_dir / "main.py"
    if not main.is_file():
        raise KwsError(f"{runner_dir}: no main.py (pass mlcommons/tiny's benchmark/runner folder)")
    with tempfile.TemporaryDirectory(prefix="kws-runner-") as tmp:
        dev_file = Path(tmp) / "devices_kws_qemu.yaml"
        dev_file.write_text(devices_yaml())
        old = (list(sys.argv), list(sys.path), os.getcwd(), sys.stdout, sys.stderr)
        sys.argv = [str(main), "-d", str(dev_file)] + list(runner_args)
        sys.path.insert(0, str(runner_dir))
        os.chdir(cwd or runner_dir)
        try:
            with runner_sees(pty_path):
                runpy.run_path(str(main), run_name="__main__")
            return 0
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv, sys.path[:] = old[0], old[1]
            os.chdir(old[2])
            sys.stdout, sys.stderr = old[3], old[4]   # the runner redirects them into its log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Arguments after -- go to the runner's main.py.")
    ap.add_argument("--elf", required=True, type=Path, help="the bench app built for qemu_mps2_an386")
    ap.add_argument("--runner", type=Path, help="mlcommons/tiny's benchmark/runner folder")
    ap.add_argument("--cwd", type=Path, help="the runner's working directory (default: --runner)")
    ap.add_argument("--icount-shift", type=int, default=qemu.DEFAULT_ICOUNT_SHIFT)
    ap.add_argument("runner_args", nargs="*")
    args = ap.parse_args(argv)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        with qemu_on_pty(args.elf, icount_shift=args.icount_shift) as q:
            print(f"mlperf_runner_qemu: QEMU pid {q.proc.pid}, DUT UART on {q.path}", file=sys.stderr, flush=True)
            if args.runner is None:
                print(q.path, flush=True)
                while q.proc.poll() is None:
                    time.sleep(0.5)
                return 1
            return run_runner(args.runner, args.runner_args, q.path, cwd=args.cwd)
    except KwsError as e:
        print(f"mlperf_runner_qemu: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
