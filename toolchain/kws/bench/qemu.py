"""Cortex-M4 firmware under QEMU: build it with the firmware Makefile, run it, count instructions.

The simulator is `qemu-system-arm -M mps2-an386` (Arm MPS2 + AN386: Cortex-M4F). QEMU has no cycle
counter, so timing runs with a fixed `-icount shift=N` (DESIGN.md decision 5): every guest instruction
then takes exactly 2^N ns of virtual time and the board's 25 MHz CMSDK Timer0 (board_ticks) advances
exactly 2^N / 40 ticks per instruction, whatever the host's speed. We report *instructions*; a latency
at F MHz derived from them assumes one instruction per cycle.

Default shift, DEFAULT_ICOUNT_SHIFT = 6: 1.6 ticks per instruction, so one tick (0.625 instruction)
resolves single instructions, and the 32-bit tick counter wraps only after 2^32 / 1.6 = 2.68e9
instructions (shift 5 would make a tick 1.25 instructions; shift 7 halves the range to 1.34e9).
Measured with the selftest app: a busy loop of 2,000,001 instructions plus 8 of timing overhead, counted
from the disassembly, reads 3,200,014 ticks = 2,000,008.75 instructions, identically on every run.

Idle: with `sleep=off` (the default here) a guest waiting in WFI costs no virtual time beyond the next
timer deadline, but QEMU keeps most of a host core busy until the interrupt arrives (measured: a 3 s
wait for UART input used 2.5 s of CPU). `idle_sleep=True` (`sleep=on`) idles cheaply, but virtual time
then follows the host clock while the guest sleeps. Intervals without a WFI are exact either way.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from kws.errors import KwsError

FIRMWARE_DIR = Path(__file__).resolve().parents[3] / "firmware"
QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
TIMER_HZ = 25_000_000          # CMSDK Timer0 on the AN386: board_ticks_hz() of the qemu board
DEFAULT_ICOUNT_SHIFT = 6       # see the module docstring
_NS_PER_TICK = 1_000_000_000 // TIMER_HZ  # 40


@dataclass(frozen=True)
class QemuResult:
    """One finished QEMU run.

    exit_code: the firmware's board_exit() status (SYS_EXIT_EXTENDED; QEMU passes status & 0xff).
    uart: everything UART0 printed, decoded as UTF-8 (undecodable bytes replaced).
    wall_s: host wall-clock seconds from start to exit.
    stderr: what QEMU itself printed (warnings, semihosting console errors).
    """

    exit_code: int
    uart: str
    wall_s: float
    stderr: str = ""


def ticks_to_instructions(ticks: int, icount_shift: int) -> float:
    """Guest instructions in an interval of `ticks` board_ticks under `-icount shift=icount_shift`.

    One instruction is 2^shift ns of virtual time and one 25 MHz tick is 40 ns, so
    instructions = ticks * 40 / 2^shift (exact to within one tick: the counter is read at tick edges).
    """
    if icount_shift < 0 or icount_shift > 10:
        raise KwsError(f"icount shift {icount_shift}: QEMU accepts 0..10")
    return ticks * _NS_PER_TICK / (1 << icount_shift)


def qemu_command(elf: Path, *, icount_shift: int = DEFAULT_ICOUNT_SHIFT, semihosting: bool = True,
                 idle_sleep: bool = False, extra_args: Sequence[str] = ()) -> list[str]:
    """The qemu-system-arm argument list run() uses: UART0 on stdio, no monitor, fixed icount."""
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise KwsError(f"{QEMU} not found on PATH: install it (make setup, or apt-get install qemu-system-arm)")
    if icount_shift < 0 or icount_shift > 10:
        raise KwsError(f"icount shift {icount_shift}: QEMU accepts 0..10")
    cmd = [qemu, "-M", MACHINE, "-nographic", "-monitor", "none", "-serial", "stdio",
           "-icount", f"shift={icount_shift},align=off,sleep={'on' if idle_sleep else 'off'}",
           "-kernel", str(Path(elf).resolve())]
    if semihosting:
        cmd += ["-semihosting-config", "enable=on,target=native"]
    return cmd + list(extra_args)


@contextlib.contextmanager
def _process(cmd: list[str], cwd: Path | None) -> Iterator[subprocess.Popen]:
    """Start `cmd` in its own process group; kill the whole group on the way out, whatever happens."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.communicate(timeout=5)  # reap it and close the pipes
        if proc.poll() is None:  # still not gone: nothing more we can do but not leave a zombie
            proc.kill()
            proc.wait()


def run(elf: Path, *, icount_shift: int = DEFAULT_ICOUNT_SHIFT, timeout_s: float = 60,
        cwd: Path | None = None, semihosting: bool = True, extra_args: Sequence[str] = (),
        uart_input: bytes = b"", idle_sleep: bool = False, on_start=None) -> QemuResult:
    """Run a firmware image on the mps2-an386 model until it exits; QEMU is always killed afterwards.

    elf: an image built for BOARD=qemu_mps2_an386. cwd: QEMU's working directory, where the
    firmware's semihosting file names are resolved (default: the current one). semihosting=False
    for firmware that never calls it (board_exit() needs it: such a run ends by timeout).
    uart_input: bytes sent to UART0 (then end of input). idle_sleep: see the module docstring.
    extra_args: appended to the QEMU command. on_start: called with QEMU's pid once it runs (e.g. to
    watch its progress from a thread; it must not block). exit_code is negative (-signal) if QEMU itself died,
    e.g. -6 after a CPU lockup (a fault inside a fault handler).
    Raises KwsError (one line) when qemu-system-arm is missing, the ELF is missing, or the run
    does not end within timeout_s.
    """
    elf = Path(elf)
    if not elf.is_file():
        raise KwsError(f"{elf}: firmware image not found (build it with kws.bench.qemu.build)")
    if cwd is not None and not Path(cwd).is_dir():
        raise KwsError(f"{cwd}: working directory for QEMU does not exist")
    cmd = qemu_command(elf, icount_shift=icount_shift, semihosting=semihosting, idle_sleep=idle_sleep,
                       extra_args=extra_args)
    start = time.monotonic()
    with _process(cmd, Path(cwd) if cwd is not None else None) as proc:
        if on_start is not None:
            on_start(proc.pid)
        try:
            out, err = proc.communicate(input=uart_input, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            tail = out.decode("utf-8", "replace").strip().splitlines()[-1:] if out else []
            said = f"; last UART line: {tail[0]!r}" if tail else "; no UART output"
            raise KwsError(f"{elf.name}: QEMU did not exit within {timeout_s:g} s{said}") from None
    wall_s = time.monotonic() - start
    return QemuResult(exit_code=proc.returncode, uart=out.decode("utf-8", "replace"), wall_s=wall_s,
                      stderr=err.decode("utf-8", "replace"))


def run_ok(elf: Path, *, cwd: Path, timeout_s: float, icount_shift: int = DEFAULT_ICOUNT_SHIFT,
           on_start=None) -> QemuResult:
    """run() for apps that report failure through their exit status: raises KwsError with the image
    name, the status and the app's last UART line unless it exited with 0."""
    res = run(elf, cwd=cwd, timeout_s=timeout_s, icount_shift=icount_shift, on_start=on_start)
    if res.exit_code != 0:
        last = (res.uart.strip().splitlines() or ["no output"])[-1]
        raise KwsError(f"{Path(elf).name} under QEMU exited with {res.exit_code}: {last}")
    return res


def _last_error_line(text: str) -> str:
    """The line of a make/compiler log that best says what failed."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # make's own "make[N]: *** [target] Error 1" lines only say that something failed.
    lines = [ln for ln in lines if not re.match(r"make(\[\d+\])?: \*\*\* \[", ln)] or lines
    # nor does the linker driver's "collect2: error: ld returned 1 exit status": the linker's line does
    lines = [ln for ln in lines if not ln.startswith("collect2:")] or lines
    for marker in ("error:", "undefined reference", "multiple definition", "No such file", "***", "Error"):
        hits = [ln for ln in lines if marker in ln and not ln.startswith("make: ***")]
        if hits:
            return hits[-1]
    return lines[-1] if lines else "unknown error"


def build(board: str, app: str, *, extra_srcs: Sequence[str | os.PathLike] = (),
          extra_cflags: Sequence[str] = (), extra_inc: Sequence[str | os.PathLike] = (),
          build_dir: str | os.PathLike | None = None, firmware_dir: str | os.PathLike | None = None,
          make_vars: dict[str, str] | None = None) -> Path:
    """Build firmware/apps/<app> for firmware/boards/<board> with the firmware Makefile; return the image.

    extra_srcs / extra_inc: more C files / include folders. extra_cflags: one flag per item (quoted
    for the shell, so -DNAME="text" defines a string). build_dir: output root (default firmware/build);
    the image is <build_dir>/<board>/<app>.elf (host board: no suffix). make_vars: more NAME=value
    Makefile variables (e.g. KERNELS_DIR, APP_DIR). Raises KwsError with the failing line of the log.
    """
    make = shutil.which("make")
    if make is None:
        raise KwsError("make not found on PATH: the firmware build needs GNU Make")
    fw = Path(firmware_dir) if firmware_dir is not None else FIRMWARE_DIR
    if not (fw / "Makefile").is_file():
        raise KwsError(f"{fw}: no firmware Makefile (a source checkout is needed to build firmware)")
    variables = {
        "BOARD": board,
        "APP": app,
        "EXTRA_SRCS": " ".join(str(Path(s).resolve()) for s in extra_srcs),
        "EXTRA_INC": " ".join(str(Path(s).resolve()) for s in extra_inc),
        "EXTRA_CFLAGS": " ".join(shlex.quote(f) for f in extra_cflags),
        "MODEL": "",  # not from the environment: `make sim MODEL=...` exports it to its recipes
    }
    if build_dir is not None:
        variables["BUILD_DIR"] = str(Path(build_dir).resolve())
    variables.update(make_vars or {})
    args = [make, "--no-print-directory", "-C", str(fw)] + [f"{k}={v}" for k, v in variables.items()]
    # Run make on its own, not as a sub-make of a caller's `make` (MAKEFLAGS would change its output).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(args + ["all"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        line = _last_error_line(proc.stderr + "\n" + proc.stdout)
        raise KwsError(f"firmware build {board}/{app} failed: {line}")
    where = subprocess.run(args + ["path"], capture_output=True, text=True, env=env)
    image = Path(where.stdout.strip())
    if where.returncode != 0 or not image.is_file():
        raise KwsError(f"firmware build {board}/{app}: make reported no image ({where.stdout.strip()!r})")
    return image


# --- interactive UART (the bench app's DUT protocol) ----------------------------------------------
@dataclass(frozen=True)
class DutInference:
    """One `infer N W` of the bench app: laps_us = the m-lap-us- values (perf mode: start, end; energy
    mode: none), results = the m-results-[...] values as printed (strings), lines = every reply line."""

    laps_us: list[int]
    results: list[str]
    lines: list[str]


class UartSession:
    """A running firmware image whose UART is talked to interactively, line by line.

    Made by uart_session() (QEMU: UART0 on a TCP socket, DESIGN.md decision 7) or process_session()
    (a host-board program: its stdin/stdout). Every wait has a timeout; the process is killed on close()
    / leaving the `with` block, whatever happened.
    """

    def __init__(self, proc: subprocess.Popen, name: str):
        self._proc = proc
        self._buf = b""
        self.name = name
        self.received = b""     # everything read so far (for error messages and tests)

    # transport: subclasses implement these two
    def _send(self, data: bytes) -> None:
        raise NotImplementedError

    def _recv(self, timeout_s: float) -> bytes:
        """Some bytes, or b"" when nothing arrived within timeout_s; raises KwsError at end of stream."""
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        self._send(data)

    def read_line(self, timeout_s: float) -> str:
        """The next line without its CR/LF (decoded as UTF-8, undecodable bytes replaced)."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.received.decode("utf-8", "replace").strip().splitlines()[-1:]
                raise KwsError(f"{self.name}: no complete UART line within {timeout_s:g} s "
                               f"(last line: {tail[0] if tail else 'none'!r})")
            chunk = self._recv(min(left, 0.5))
            self._buf += chunk
            self.received += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_until(self, last: str, timeout_s: float, count: int = 1) -> list[str]:
        """Lines up to and including the count-th line equal to `last`."""
        deadline = time.monotonic() + timeout_s
        lines, seen = [], 0
        while seen < count:
            ln = self.read_line(max(deadline - time.monotonic(), 0.001))
            lines.append(ln)
            seen += ln == last
        return lines

    def command(self, cmd: str | bytes, *, timeout_s: float = 60, end: str = "m-ready") -> list[str]:
        """Sends cmd + '%' and returns the reply lines up to and including `end`."""
        data = cmd.encode() if isinstance(cmd, str) else cmd
        self._send(data + b"%")
        return self.read_until(end, timeout_s)

    def commands(self, cmds: Sequence[str], *, timeout_s: float = 60, end: str = "m-ready") -> list[list[str]]:
        """Sends several commands at once (the UART holds input back while the DUT is busy, so nothing
        is lost) and returns each one's reply lines."""
        self._send(b"".join(c.encode() + b"%" for c in cmds))
        deadline = time.monotonic() + timeout_s
        return [self.read_until(end, max(deadline - time.monotonic(), 0.001)) for _ in cmds]

    # The MLPerf Tiny DUT protocol (firmware/include/kws/bench.h) over this UART.
    def dut_load(self, data: bytes, *, chunk: int = 62, timeout_s: float = 60) -> None:
        """db load N, then db <hex> in chunks of `chunk` bytes; raises KwsError unless m-load-done."""
        cmds = [f"db load {len(data)}"] + [f"db {data[i:i + chunk].hex()}" for i in range(0, len(data), chunk)]
        replies = self.commands(cmds, timeout_s=timeout_s)
        errors = [ln for r in replies for ln in r if ln.startswith("e-")]
        if errors or "m-load-done" not in replies[-1]:
            raise KwsError(f"{self.name}: loading {len(data)} bytes failed: {errors[:1] or replies[-1]}")

    def dut_infer(self, n: int = 1, warmups: int = 0, *, timeout_s: float = 600) -> DutInference:
        """infer n warmups; returns the lap timestamps (perf mode), the results line's values and the lines."""
        lines = self.command(f"infer {n} {warmups}", timeout_s=timeout_s)
        errors = [ln for ln in lines if ln.startswith("e-")]
        if errors:
            raise KwsError(f"{self.name}: infer {n} {warmups}: {errors[0]}")
        laps = [int(ln[len("m-lap-us-"):]) for ln in lines if ln.startswith("m-lap-us-")]
        res = [ln for ln in lines if ln.startswith("m-results-[")]
        if len(res) != 1 or "m-infer-done" not in lines:
            raise KwsError(f"{self.name}: infer {n} {warmups}: no results line in {lines}")
        return DutInference(laps, res[0][len("m-results-["):-1].split(","), lines)

    def dut_results_raw(self, *, timeout_s: float = 60) -> list[int]:
        """results raw: the int8 output values of the last inference."""
        lines = self.command("results raw", timeout_s=timeout_s)
        raw = [ln for ln in lines if ln.startswith("m-results-raw-[")]
        if len(raw) != 1:
            raise KwsError(f"{self.name}: results raw: {lines}")
        return [int(v) for v in raw[0][len("m-results-raw-["):-1].split(",")]

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.communicate(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "UartSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _TcpSession(UartSession):
    def __init__(self, proc: subprocess.Popen, name: str, sock):
        super().__init__(proc, name)
        self._sock = sock

    def _send(self, data: bytes) -> None:
        self._sock.settimeout(30)
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise KwsError(f"{self.name}: cannot send to the UART socket: {e}") from None

    def _recv(self, timeout_s: float) -> bytes:
        import socket

        self._sock.settimeout(max(timeout_s, 0.001))
        try:
            data = self._sock.recv(65536)
        except socket.timeout:
            return b""
        except OSError as e:
            raise KwsError(f"{self.name}: UART socket failed: {e}") from None
        if not data:
            raise KwsError(f"{self.name}: QEMU closed the UART (exit status {self._proc.poll()})")
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        super().close()


class _PipeSession(UartSession):
    def __init__(self, proc: subprocess.Popen, name: str):
        super().__init__(proc, name)
        os.set_blocking(proc.stdout.fileno(), False)

    def _send(self, data: bytes) -> None:
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise KwsError(f"{self.name}: cannot write to its stdin: {e}") from None

    def _recv(self, timeout_s: float) -> bytes:
        import select

        ready, _, _ = select.select([self._proc.stdout], [], [], max(timeout_s, 0.001))
        if not ready:
            return b""
        data = self._proc.stdout.read(65536)
        if data is None:
            return b""
        if not data:
            raise KwsError(f"{self.name}: the program closed its stdout (exit status {self._proc.poll()})")
        return data


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uart_session(elf: Path, *, icount_shift: int = DEFAULT_ICOUNT_SHIFT, semihosting: bool = True,
                 connect_timeout_s: float = 20, cwd: Path | None = None) -> UartSession:
    """Starts elf under QEMU with UART0 on `-serial tcp:127.0.0.1:P,server=on,wait=on,nodelay=on`
    (the guest starts only once we are connected; TCP_NODELAY on our side too) and returns the session.
    Use it as a context manager: QEMU is killed on the way out. Raises KwsError when QEMU is missing,
    exits early, or does not accept the connection within connect_timeout_s.
    """
    import socket

    elf = Path(elf)
    if not elf.is_file():
        raise KwsError(f"{elf}: firmware image not found")
    last_err = "unknown"
    for _attempt in range(3):  # the free port may be taken between our probe and QEMU's bind
        port = _free_port()
        cmd = qemu_command(elf, icount_shift=icount_shift, semihosting=semihosting)
        i = cmd.index("stdio")
        cmd[i] = f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        session = None
        try:
            deadline = time.monotonic() + connect_timeout_s
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                except OSError:
                    time.sleep(0.05)
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                session = _TcpSession(proc, elf.name, sock)
                return session
            if proc.poll() is not None:
                with contextlib.suppress(Exception):
                    last_err = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()[-1]
            else:
                last_err = f"no connection within {connect_timeout_s:g} s"
        finally:
            if session is None:
                UartSession(proc, elf.name).close()
    raise KwsError(f"{elf.name}: could not start QEMU with a TCP UART: {last_err}")


def process_session(exe: Path, *, cwd: Path | None = None) -> UartSession:
    """Starts a host-board program (its UART is stdin/stdout) and returns the session (kill on close)."""
    exe = Path(exe)
    if not exe.is_file():
        raise KwsError(f"{exe}: program not found")
    proc = subprocess.Popen([str(exe.resolve())], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return _PipeSession(proc, exe.name)
