"""An RFC 2217 server in a thread, in front of a local serial device (e.g. the pty of QEMU's UART).

pyserial's serial.rfc2217.PortManager does the Telnet / RFC 2217 part: `filter()` takes the bytes a
client sent, answers its option negotiation and COM-port subnegotiations (baud rate, data size, parity,
stop bits, flow control, DTR/RTS, purge) by applying them to the serial object it was given, and yields
the payload; `escape()` doubles IAC in what goes back. The two byte loops are ours:
socket -> filter -> device, and device -> escape -> socket.

A pty has no modem lines (TIOCMGET/TIOCMBIS fail with ENOTTY), so the device is opened as PtySerial:
the modem inputs read as a null-modem cable's (CTS, DSR, CD on), DTR/RTS are remembered, and every line
setting that reached termios is recorded in `applied`.

    with Rfc2217Bridge("/dev/pts/5") as bridge:
        ...  # rfc2217://127.0.0.1:{bridge.port}
    assert not bridge.errors

One client at a time; clients may come and go (each gets its own PortManager). Thread exceptions and
PortManager's error/warning log lines are collected in `errors` instead of being lost.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading

import serial
from serial import rfc2217


class PtySerial(serial.Serial):
    """serial.Serial for a device without modem-control lines (a pty)."""

    def __init__(self, *args, **kwargs):
        self.applied: list[tuple[int, int, str, float]] = []   # (baud, bytesize, parity, stopbits)
        self.lines = {"dtr": None, "rts": None}
        super().__init__(*args, **kwargs)

    def _reconfigure_port(self, force_update=False):
        super()._reconfigure_port(force_update)
        self.applied.append((self._baudrate, self._bytesize, self._parity, self._stopbits))

    def _modem_ioctl(self, name: str, real, value):
        try:
            real()
        except OSError as e:
            if e.errno not in (errno.ENOTTY, errno.EINVAL):
                raise
        self.lines[name] = value

    def _update_dtr_state(self):
        self._modem_ioctl("dtr", super()._update_dtr_state, self._dtr_state)

    def _update_rts_state(self):
        self._modem_ioctl("rts", super()._update_rts_state, self._rts_state)

    # a null-modem cable's view: the other side is there and ready, no ring
    @property
    def cts(self):
        return True

    @property
    def dsr(self):
        return True

    @property
    def cd(self):
        return True

    @property
    def ri(self):
        return False


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record):
        self.sink.append(f"PortManager {record.levelname}: {record.getMessage()}")


class _Connection:
    """What PortManager writes to: a socket, thread-safe (both loops and the filter write to it)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class Rfc2217Bridge:
    """Serves rfc2217://127.0.0.1:<port> for the serial device `device` until close()."""

    def __init__(self, device: str, *, baud: int = 9600, poll_s: float = 0.02):
        self.device = device
        self.poll_s = poll_s
        self.errors: list[str] = []
        self.clients = 0
        # per client, every (baud, bytesize, parity, stopbits) PortManager applied to the device
        self.settings: list[list[tuple[int, int, str, float]]] = []
        self.serial = PtySerial(device, baud, timeout=poll_s)
        self.serial.applied.clear()   # only what clients asked for from here on
        self.serial.lines = {"dtr": None, "rts": None}
        self._stop = threading.Event()
        self._ended = threading.Condition()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._srv.settimeout(poll_s * 5)
        self.port = self._srv.getsockname()[1]
        self.log = logging.getLogger(f"rfc2217_bridge.{self.port}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.log.addHandler(_Collect(self.errors))
        self._thread = threading.Thread(target=self._serve, name=f"rfc2217 bridge :{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"rfc2217://127.0.0.1:{self.port}"

    def wait_sessions(self, n: int, timeout_s: float = 5.0) -> bool:
        """Waits until n client sessions have ended (their settings recorded); False on timeout."""
        with self._ended:
            return self._ended.wait_for(lambda: len(self.settings) >= n, timeout=timeout_s)

    # --- the server ------------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    sock, _ = self._srv.accept()
                except socket.timeout:
                    continue
                with sock:
                    self.clients += 1
                    self._session(sock)
        except Exception as e:  # noqa: BLE001 - reported through self.errors
            if not self._stop.is_set():
                self.errors.append(f"server: {type(e).__name__}: {e}")

    def _session(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.poll_s)
        conn = _Connection(sock)
        manager = rfc2217.PortManager(self.serial, conn, logger=self.log)
        gone = threading.Event()
        to_net = threading.Thread(target=self._device_to_net, args=(manager, conn, gone), daemon=True)
        to_net.start()
        try:
            while not self._stop.is_set() and not gone.is_set():
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                payload = b"".join(manager.filter(data))
                if payload:
                    self.serial.write(payload)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"net->device: {type(e).__name__}: {e}")
        finally:
            gone.set()
            to_net.join(timeout=2)
            self.settings.append(list(self.serial.applied))
            self.serial.applied.clear()
            with self._ended:
                self._ended.notify_all()

    def _device_to_net(self, manager, conn: _Connection, gone: threading.Event) -> None:
        try:
            while not gone.is_set() and not self._stop.is_set():
                data = self.serial.read(max(self.serial.in_waiting, 1))
                if data:
                    conn.write(b"".join(manager.escape(data)))
                manager.check_modem_lines()
        except OSError:
            pass   # the client went away
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"device->net: {type(e).__name__}: {e}")
        finally:
            gone.set()

    # --- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        try:
            self._srv.close()
        finally:
            self._thread.join(timeout=5)
            self.serial.close()
            for h in list(self.log.handlers):
                self.log.removeHandler(h)

    def __enter__(self) -> "Rfc2217Bridge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
