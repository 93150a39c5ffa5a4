"""How far a child process has read a file, from outside it: the `pos:` line of /proc/<pid>/fdinfo/<fd>
for the descriptor it holds open on that file (Linux). The wake app reads its audio file front to back
(the host board with fread, the QEMU board through semihosting, which QEMU serves with read() on a host
descriptor), so that position is the audio the device has been given so far. Polling it from a thread
costs the child nothing and cannot change what it computes.

Where it cannot be known (no /proc, the file not open yet or already closed) nothing is reported: never
a guess.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable


def read_position(pid: int, path: str | os.PathLike) -> int | None:
    """The file offset of the first descriptor of process pid open on path, or None if there is none."""
    want = os.path.realpath(path)
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}") != want:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = f.read()
            if os.readlink(f"{fd_dir}/{fd}") != want:  # closed and reused while we read
                continue
        except OSError:
            continue
        for line in info.splitlines():
            if line.startswith("pos:"):
                return int(line.split()[1])
    return None


class ReadWatch:
    """Reports, from a thread, the bytes of `path` that process pid has read: report(bytes_read), only
    when the figure grows (monotonic), never above total_bytes. Use as a context manager around the
    child's run; attach(pid) once the child exists."""

    def __init__(self, path: str | os.PathLike, *, total_bytes: int, report: Callable[[int], None],
                 interval_s: float = 0.2):
        self.path = Path(path)
        self.total_bytes = int(total_bytes)
        self.report = report
        self.interval_s = interval_s
        self.best = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, pid: int) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, args=(pid,), name="kws-readpos", daemon=True)
            self._thread.start()

    def _poll(self, pid: int) -> None:
        while not self._stop.wait(self.interval_s):
            pos = read_position(pid, self.path)
            if pos is not None and min(pos, self.total_bytes) > self.best:
                self.best = min(pos, self.total_bytes)
                self.report(self.best)

    def __enter__(self) -> ReadWatch:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
