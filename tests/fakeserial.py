"""One loop for the tests' fake serial devices (socket:// servers on 127.0.0.1)."""

from __future__ import annotations

import socket
import threading
from typing import Callable


def serve_lines(conn: socket.socket, sep: bytes, on_line: Callable[[str, Callable[[bytes], None]], None],
                stopped: Callable[[], bool], *, poll_s: float = 0.1) -> None:
    """Reads conn until it closes or stopped() is true; hands each received line (split at sep, decoded,
    stripped) to on_line(line, send). Closes conn on the way out."""
    conn.settimeout(poll_s)
    buf = b""
    with conn:
        while not stopped():
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while sep in buf:
                line, buf = buf.split(sep, 1)
                on_line(line.decode().strip(), conn.sendall)


class FakeDevice:
    """A TCP server on 127.0.0.1 that hands each received line (split at `sep`) to handler(line, send)."""

    def __init__(self, handler, sep: bytes):
        self.handler = handler
        self.sep = sep
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.url = f"socket://127.0.0.1:{self.srv.getsockname()[1]}"
        self.received: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.srv.settimeout(10)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        serve_lines(conn, self.sep, self._on_line, lambda: self._stop)

    def _on_line(self, text, send):
        self.received.append(text)
        self.handler(text, send)

    def close(self):
        self._stop = True
        self.srv.close()
        self.thread.join(5)
