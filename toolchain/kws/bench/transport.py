"""Byte links to a device under test (DESIGN.md decision 7).

- `--port URL`: anything pyserial's serial_for_url opens (a device path, socket://host:port,
  rfc2217://host:port, loop://).
- `--board qemu_mps2_an386 --firmware ELF`: the harness starts QEMU itself with UART0 on a local TCP
  socket (kws.bench.qemu.uart_session) and kills it when the link closes, whatever happened (an
  exception, Ctrl-C, SIGTERM turned into KeyboardInterrupt by the CLI).
- `--board host --firmware EXE`: a host-board program over its stdin/stdout (killed on close).

A Link only moves bytes: send(data) and recv(timeout_s) -> bytes (b"" when nothing arrived in time).
Every wait is bounded. Errors are KwsError with one line.
"""

from __future__ import annotations

import time
from pathlib import Path

from kws.errors import KwsError

QEMU_BOARD = "qemu_mps2_an386"
HOST_BOARD = "host"
BOARDS = (QEMU_BOARD, HOST_BOARD)


class Link:
    """A bidirectional byte stream to a DUT. `kind` is "serial", "qemu" or "host"; `describe` is what
    the report's "transport" field says."""

    kind = "link"

    def __init__(self, describe: str):
        self.describe = describe

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self, timeout_s: float) -> bytes:
        """Some bytes, or b"" when nothing arrived within timeout_s. Raises KwsError when the link died."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialLink(Link):
    """pyserial's serial_for_url: device paths and every URL handler it ships."""

    kind = "serial"
    POLL_S = 0.02   # pyserial's read timeout; recv(timeout_s) waits in steps of it

    def __init__(self, url: str, *, baud: int = 115200, open_timeout_s: float = 3):
        super().__init__(f"{url} @ {baud} baud")
        try:
            import serial
        except ImportError:  # pragma: no cover - pyserial is a dependency
            raise KwsError("pyserial is not installed (pip install pyserial)") from None
        self._serial_mod = serial
        if not url:
            raise KwsError("--port: empty URL")
        try:
            # do_not_open + open() so a socket:// connect is bounded by our own timeout below.
            # rfc2217:// refuses any write_timeout (NotImplementedError on open); its writes are bounded
            # by its socket's own timeout instead.
            bounded = {} if url.startswith("rfc2217://") else {"write_timeout": open_timeout_s}
            self._ser = serial.serial_for_url(url, baudrate=baud, timeout=self.POLL_S, do_not_open=True,
                                              **bounded)
            deadline = time.monotonic() + open_timeout_s
            while True:
                try:
                    self._ser.open()
                    break
                except serial.SerialException:
                    # a socket:// peer that is still starting: retry until the deadline
                    if not url.startswith("socket://") or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        except (serial.SerialException, ValueError, OSError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise KwsError(f"--port {url}: cannot open it: {msg}") from None
        self.url = url
        if url.startswith("socket://"):
            import socket

            sock = getattr(self._ser, "_socket", None)
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass

    def send(self, data: bytes) -> None:
        try:
            self._ser.write(data)
            self._ser.flush()
        except (self._serial_mod.SerialException, OSError) as e:
            raise KwsError(f"{self.url}: write failed: {e}") from None

    def recv(self, timeout_s: float) -> bytes:
        # pyserial's read timeout stays POLL_S, set once at open: assigning Serial.timeout reconfigures
        # the port, and over rfc2217:// that is a round of baud rate, data size, parity, stop bits and
        # flow-control subnegotiations with the server (>= 50 ms, the remote UART re-set) per call.
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if timeout_s <= 0 and not self._ser.in_waiting:
                    return b""
                first = self._ser.read(1)   # waits at most POLL_S
                if first:
                    n = self._ser.in_waiting
                    return first + (self._ser.read(n) if n else b"")
                if time.monotonic() >= deadline:
                    return b""
        except (self._serial_mod.SerialException, OSError) as e:
            raise KwsError(f"{self.url}: read failed: {e}") from None

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001 - closing must never raise
            pass


class SessionLink(Link):
    """A kws.bench.qemu UartSession (QEMU over TCP, or a host program over pipes); closing kills it."""

    def __init__(self, session, kind: str, describe: str):
        super().__init__(describe)
        self.kind = kind
        self._session = session

    @property
    def pid(self) -> int:
        return self._session._proc.pid

    def send(self, data: bytes) -> None:
        self._session.send(data)

    def recv(self, timeout_s: float) -> bytes:
        return self._session._recv(max(timeout_s, 0.001))

    def close(self) -> None:
        self._session.close()


def open_link(*, port: str | None = None, board: str | None = None, firmware: str | Path | None = None,
              baud: int = 115200, icount_shift: int | None = None) -> Link:
    """The link the CLI options describe; raises KwsError (one line) when they are incomplete or wrong."""
    if port and board:
        raise KwsError("give either --port URL or --board BOARD --firmware FILE, not both")
    if port:
        return SerialLink(port, baud=baud)
    if not board:
        raise KwsError("no device: give --port URL (a serial device, socket://host:port, rfc2217://...) "
                       "or --board qemu_mps2_an386|host --firmware FILE")
    if board not in BOARDS:
        raise KwsError(f"--board {board}: the harness starts only {' or '.join(BOARDS)} itself "
                       "(a real board: flash it, then give --port)")
    if not firmware:
        raise KwsError(f"--board {board} needs --firmware FILE (the bench app built for it)")
    fw = Path(firmware)
    if not fw.is_file():
        raise KwsError(f"--firmware {fw}: no such file")
    from kws.bench import qemu

    if board == QEMU_BOARD:
        shift = qemu.DEFAULT_ICOUNT_SHIFT if icount_shift is None else icount_shift
        session = qemu.uart_session(fw, icount_shift=shift)
        link = SessionLink(session, "qemu", f"qemu-system-arm -M mps2-an386 -icount shift={shift}, UART0 over TCP")
        link.icount_shift = shift
        return link
    session = qemu.process_session(fw)
    return SessionLink(session, "host", f"host program {fw.name} over stdin/stdout")
