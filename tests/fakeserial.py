"""One loop for the tests' fake serial devices (socket:// servers on 127.0.0.1)."""

from __future__ import annotations

import socket
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
