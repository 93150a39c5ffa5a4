"""MLPerf Tiny's IO manager: the relay between the host and an energy-mode DUT (`kws bench --mode energy
--io-manager URL`). The energy monitors are in energy.py, the run in energy_run.py."""

from __future__ import annotations

import time

from kws.bench.dut import Identity, parse_identity
from kws.bench.energy import _LineReader, _open_serial
from kws.errors import KwsError


class IoManager:
    """MLPerf Tiny's IO manager (an Arduino running EEMBC's io-manager firmware) relaying the energy-mode
    DUT's UART. Protocol, from MLCommons tiny benchmark/runner/io_manager.py: 115200 baud to the host,
    `%`-terminated commands, every reply ends in `m-ready`; `name` identifies it; `dut <command>` is
    acknowledged by the IO manager (its own lines up to m-ready), then the DUT's reply lines follow
    prefixed `[dut]: ` up to the DUT's own m-ready. The runner sends at most 26 data bytes per `db`
    command when it goes through the IO manager (device_under_test.py).
    """

    DB_CHUNK = 26

    def __init__(self, url: str, *, baudrate: int = 115_200, timeout_s: float = 5.0):
        self.url = url
        self.timeout_s = timeout_s
        self._io = _LineReader(_open_serial(url, baudrate, "IO manager"), f"IO manager on {url}")

    def _lines_until_ready(self, timeout_s: float, what: str, strip_dut: bool) -> list[str]:
        deadline = time.monotonic() + timeout_s
        lines = []
        while True:
            line = self._io.read_line(max(deadline - time.monotonic(), 0.0))
            if line is None:
                last = lines[-1] if lines else "none"
                raise KwsError(f"IO manager on {self.url}: no m-ready after {what!r} within {timeout_s:g} s "
                               f"(last line: {last!r})")
            line = line.strip()
            if strip_dut:
                if not line.startswith("[dut]: "):
                    continue  # the IO manager's own chatter between DUT lines
                line = line[len("[dut]: "):].strip()
            if line:
                lines.append(line)
            if line == "m-ready":
                return lines

    def command(self, cmd: str, *, timeout_s: float | None = None) -> list[str]:
        """An IO manager command (name, help, tm 0, ...); its lines up to and including m-ready."""
        self._io.write(cmd.encode("ascii") + b"%")
        return self._lines_until_ready(timeout_s or self.timeout_s, cmd, strip_dut=False)

    def name(self) -> str:
        lines = self.command("name")
        return next((ln for ln in lines if ln != "m-ready"), "")

    def dut_command(self, cmd: str, *, timeout_s: float | None = None) -> list[str]:
        """cmd passed through to the DUT; the DUT's lines (prefix removed) up to its m-ready.
        timeout_s bounds the DUT's part (infer N at 9600 baud can take minutes: pass enough)."""
        ack = self.command(f"dut {cmd}")
        errs = [ln for ln in ack if ln.startswith("e-")]
        if errs:
            raise KwsError(f"IO manager refused 'dut {cmd}': {errs[0]}")
        lines = self._lines_until_ready(timeout_s or self.timeout_s, f"dut {cmd}", strip_dut=True)
        errs = [ln for ln in lines if ln.startswith("e-")]
        if errs:
            raise KwsError(f"DUT (through the IO manager) answered {cmd!r} with {errs[0]}")
        return lines

    def dut_identify(self, *, expected_model: str = "") -> Identity:
        """The DUT's name and profile through the relay; KwsError when it runs another model."""
        return parse_identity(self.dut_command("name"), self.dut_command("profile"), expected_model=expected_model)

    def dut_load(self, data: bytes, *, timeout_s: float | None = None) -> None:
        self.dut_command(f"db load {len(data)}", timeout_s=timeout_s)
        last: list[str] = []
        for i in range(0, len(data), self.DB_CHUNK):
            last = self.dut_command(f"db {data[i:i + self.DB_CHUNK].hex()}", timeout_s=timeout_s)
        if "m-load-done" not in last:
            raise KwsError(f"DUT did not confirm loading {len(data)} bytes: {last}")

    def dut_infer(self, n: int, warmups: int = 10, *, timeout_s: float = 600.0) -> list[str]:
        """infer n warmups through the relay; the DUT's lines (energy mode: no lap lines)."""
        lines = self.dut_command(f"infer {n} {warmups}", timeout_s=timeout_s)
        if "m-infer-done" not in lines:
            raise KwsError(f"DUT: infer {n} {warmups} ended without m-infer-done: {lines[-3:]}")
        return lines

    def close(self) -> None:
        try:
            self._io.port.close()
        except Exception:
            pass

    def __enter__(self) -> "IoManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
