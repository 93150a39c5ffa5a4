"""The MLPerf Tiny DUT protocol, host side (DESIGN.md decision 6; firmware/include/kws/bench.h).

Commands end in '%'; every reply line ends in CR LF and every command's reply ends with `m-ready`;
errors are `e-[...]`. The DUT prints a banner at reset (`m-timestamp-mode-...`, `m-init-done`,
`m-ready`): seeing it in the middle of a run means the device reset and lost its loaded input.

Faults are exceptions (all KwsError, one line):
- DutReset: the reset banner appeared in a reply;
- DutTimeout: no complete reply within the timeout (silence, or a partial line that never ended);
- DutGarbage: a reply line that is neither m-... nor e-... (noise on the line, a broken line);
- DutRefused: the DUT answered e-[...];
- DutFatal: a fault that retrying cannot fix (the message says what to do).

Dut.run_input() is the unit that is retried: re-load the input, re-run the inference, bounded by
`retries`; between attempts the link is resynchronised (an empty command, read up to m-ready) and after
a reset the device is identified again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from kws.errors import KwsError

BANNER_LINES = ("m-init-done",)
BANNER_PREFIX = "m-timestamp-mode-"


class DutFault(KwsError):
    """A recoverable fault (retry may help)."""


class DutReset(DutFault):
    pass


class DutTimeout(DutFault):
    pass


class DutGarbage(DutFault):
    pass


class DutRefused(DutFault):
    pass


class DutFatal(KwsError):
    pass


@dataclass
class Identity:
    name: str
    profile: str
    model: str


@dataclass
class Inference:
    n: int
    warmups: int
    laps_us: list[int]
    results: list[float]
    raw: list[int] | None = None

    @property
    def elapsed_us(self) -> int | None:
        return self.laps_us[-1] - self.laps_us[0] if len(self.laps_us) >= 2 else None


@dataclass
class Stats:
    retries: int = 0
    resets: int = 0
    faults: list[str] = field(default_factory=list)



def parse_identity(name_lines: list[str], profile_lines: list[str], *, expected_model: str = "") -> Identity:
    """The identity in the replies to `name` and `profile`; DutFatal when it is missing or the model is
    not expected_model ('' accepts any)."""
    name = next((m.group(1) for ln in name_lines if (m := re.fullmatch(r"m-name-dut-\[(.*)\]", ln))), None)
    profile = next((m.group(1) for ln in profile_lines if (m := re.fullmatch(r"m-profile-\[(.*)\]", ln))), None)
    model = next((m.group(1) for ln in profile_lines if (m := re.fullmatch(r"m-model-\[(.*)\]", ln))), None)
    if name is None or profile is None or model is None:
        raise DutFatal(f"the device does not identify itself as an MLPerf Tiny DUT "
                       f"(name: {name_lines}, profile: {profile_lines})")
    if expected_model and model != expected_model:
        raise DutFatal(f"the device runs model {model!r} (m-model-[{model}]), not {expected_model!r}: "
                       f"it was flashed with another model (flash the {expected_model} build, or pass "
                       f"--model-id {model} if that is what you mean to measure)")
    return Identity(name, profile, model)

def _printable(line: str) -> bool:
    return all(32 <= ord(c) < 127 or c == "\t" for c in line)


class Dut:
    """The DUT client over a transport.Link.

    timeout_s: the wait for a command's reply (infer adds its expected device time); retries: how many
    times one input's load + infer is retried after a recoverable fault; chunk: data bytes per `db`
    command (the MLCommons runner sends small chunks; our firmware takes up to 62).
    log: called with one line per fault / retry (for the report and stderr).
    """

    def __init__(self, link, *, timeout_s: float = 20.0, retries: int = 3, chunk: int = 31,
                 expected_model: str = "kws01", log: Callable[[str], None] | None = None):
        if chunk < 1 or chunk > 62:
            raise KwsError(f"db chunk {chunk}: must be 1..62 bytes")
        self.link = link
        self.timeout_s = timeout_s
        self.retries = retries
        self.chunk = chunk
        self.expected_model = expected_model
        self.log = log or (lambda _msg: None)
        self.identity: Identity | None = None
        self.stats = Stats()
        self.has_raw: bool | None = None   # does `results raw` work (our firmware) or not (others)
        self._buf = b""
        self.transcript: list[str] = []    # the last lines read (for messages)

    # --- lines ------------------------------------------------------------------------------------
    def _read_line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                partial = self._buf.decode("utf-8", "replace").strip()
                what = f"a partial line {partial[:60]!r}" if partial else "nothing"
                raise DutTimeout(f"no complete reply line within {timeout_s:g} s (got {what})")
            self._buf += self.link.recv(min(left, 0.5))
        raw, self._buf = self._buf.split(b"\n", 1)
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        self.transcript = (self.transcript + [line])[-20:]
        return line

    def _drain(self, quiet_s: float = 0.05, max_s: float = 2.0) -> bytes:
        """Discards whatever arrives until the line has been quiet for quiet_s (at most max_s)."""
        got = self._buf
        self._buf = b""
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            chunk = self.link.recv(quiet_s)
            if not chunk:
                break
            got += chunk
        return got

    def command(self, cmd: str, *, timeout_s: float | None = None) -> list[str]:
        """Sends cmd + '%' and returns its reply lines up to m-ready (excluded). Raises DutReset,
        DutGarbage, DutRefused (e-[...]) or DutTimeout."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        # Whatever already arrived is not a reply to this command (e.g. a late m-ready after a resync).
        stray = self._buf
        self._buf = b""
        until = time.monotonic() + 1.0  # a device that never stops talking: bounded anyway
        while time.monotonic() < until and (chunk := self.link.recv(0.0)):
            stray += chunk
        if stray.strip():
            self.log(f"discarded unexpected bytes before {cmd!r}: {stray[:40]!r}")
        self.link.send(cmd.encode("ascii") + b"%")
        deadline = time.monotonic() + timeout_s
        lines: list[str] = []
        garbage: list[str] = []
        while True:
            try:
                line = self._read_line(max(deadline - time.monotonic(), 0.0))
            except DutTimeout as e:
                raise DutTimeout(f"{cmd!r}: {e}") from None
            s = line.strip()
            if s == "m-ready":
                break
            if s.startswith(BANNER_PREFIX) or s in BANNER_LINES:
                raise DutReset(f"{cmd!r}: the device reset (its banner line {s!r} appeared in the reply)")
            if not s:
                continue
            if not _printable(s) or not (s.startswith("m-") or s.startswith("e-")):
                garbage.append(s)
                continue
            lines.append(s)
        if garbage:
            raise DutGarbage(f"{cmd!r}: unexpected line {garbage[0][:60]!r} in the reply")
        errors = [ln for ln in lines if ln.startswith("e-")]
        if errors:
            raise DutRefused(f"{cmd!r}: the device answered {errors[0]}")
        return lines

    def resync(self, timeout_s: float | None = None) -> bool:
        """Brings the link back to a command boundary: drop what is buffered, send an empty command and
        read up to its m-ready (a partial command on the DUT's side is ended too). True on success;
        seeing a banner counts as success (identify() is then needed)."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        self._drain(quiet_s=0.05, max_s=1.0)
        try:
            self.link.send(b"%")
            deadline = time.monotonic() + timeout_s
            while True:
                line = self._read_line(max(deadline - time.monotonic(), 0.0)).strip()
                if line.endswith("m-ready"):
                    break
        except DutTimeout:
            return False
        self._drain(quiet_s=0.1, max_s=1.0)  # a second m-ready (banner + ours)
        return True

    # --- identity ---------------------------------------------------------------------------------
    def wait_banner(self, timeout_s: float) -> list[str]:
        """Reads the reset banner of a device we just started (QEMU, host program): up to m-ready."""
        lines = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._read_line(max(deadline - time.monotonic(), 0.0)).strip()
            except DutTimeout:
                raise DutFatal(f"the device printed no reset banner (m-init-done ... m-ready) within "
                               f"{timeout_s:g} s: is it the bench app?") from None
            lines.append(line)
            if line == "m-ready":
                return lines

    def identify(self) -> Identity:
        """name + profile; refuses a device flashed with another model."""
        try:
            name_lines = self.command("name")
            prof_lines = self.command("profile")
        except DutFault as e:
            raise DutFatal(f"identifying the device failed: {e}") from None
        self.identity = parse_identity(name_lines, prof_lines, expected_model=self.expected_model)
        return self.identity

    def start(self, *, fresh_boot: bool, banner_timeout_s: float = 30.0) -> Identity:
        """Gets to a known state and identifies the device. fresh_boot: we just started it (QEMU, host
        program), so its banner must arrive; otherwise a board that booted long ago may print nothing."""
        if fresh_boot:
            self.wait_banner(banner_timeout_s)
        elif not self.resync(min(self.timeout_s, 5.0)):
            raise DutFatal(f"the device does not answer (no m-ready to an empty command within "
                           f"{min(self.timeout_s, 5.0):g} s): check the port, the baud rate and that it runs the bench app")
        return self.identify()

    # --- data and inference -----------------------------------------------------------------------
    def load(self, data: bytes) -> None:
        lines = self.command(f"db load {len(data)}")
        if not any(f"{len(data)}" in ln for ln in lines):
            raise DutGarbage(f"'db load {len(data)}': unexpected reply {lines}")
        done = False
        for i in range(0, len(data), self.chunk):
            lines = self.command(f"db {data[i:i + self.chunk].hex()}")
            done = "m-load-done" in lines
        if not done:
            raise DutGarbage(f"loading {len(data)} bytes: no m-load-done after the last chunk")

    def infer(self, n: int, warmups: int, *, expected_s: float = 0.0) -> Inference:
        timeout = self.timeout_s + 3.0 * expected_s
        lines = self.command(f"infer {n} {warmups}", timeout_s=timeout)
        laps, results = [], None
        for ln in lines:
            if m := re.fullmatch(r"m-lap-us-(\d+)", ln):
                laps.append(int(m.group(1)))
            elif m := re.fullmatch(r"m-results-\[(.*)\]", ln):
                try:
                    results = [float(v) for v in m.group(1).split(",") if v.strip()]
                except ValueError:
                    raise DutGarbage(f"'infer {n} {warmups}': unreadable results line {ln[:60]!r}") from None
        if results is None or "m-infer-done" not in lines:
            raise DutGarbage(f"'infer {n} {warmups}': no m-infer-done / m-results-[...] in the reply")
        return Inference(n, warmups, laps, results)

    def results_raw(self) -> list[int] | None:
        """The int8 outputs (our firmware's `results raw`); None when the DUT does not have it."""
        if self.has_raw is False:
            return None
        try:
            lines = self.command("results raw")
        except DutRefused:
            self.has_raw = False
            return None
        for ln in lines:
            if m := re.fullmatch(r"m-results-raw-\[(.*)\]", ln):
                try:
                    self.has_raw = True
                    return [int(v) for v in m.group(1).split(",")]
                except ValueError:
                    raise DutGarbage(f"'results raw': unreadable line {ln[:60]!r}") from None
        raise DutGarbage(f"'results raw': no m-results-raw-[...] line in {lines}")

    def run_input(self, data: bytes, n: int = 1, warmups: int = 0, *, expected_s: float = 0.0,
                  raw: bool = False, what: str = "input") -> Inference:
        """Loads data and runs `infer n warmups` (and `results raw` when raw), retrying after
        recoverable faults; raises DutFatal once retries are exhausted or the device stays silent."""
        last = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                self.log(f"{what}: retry {attempt}/{self.retries} after: {last}")
            try:
                self.load(data)
                inf = self.infer(n, warmups, expected_s=expected_s)
                if raw:
                    inf.raw = self.results_raw()
                return inf
            except DutReset as e:
                last = e
                self.stats.resets += 1
                self.stats.faults.append(str(e))
                self._recover_after_reset()
            except DutTimeout as e:
                last = e
                self.stats.faults.append(str(e))
                if not self.resync():
                    raise DutFatal(f"{what}: the device stopped answering ({e}; no m-ready to an empty "
                                   f"command within {self.timeout_s:g} s either)") from None
                if self._banner_seen():
                    self.stats.resets += 1
                    self._recover_after_reset()
            except (DutGarbage, DutRefused) as e:
                last = e
                self.stats.faults.append(str(e))
                if not self.resync():
                    raise DutFatal(f"{what}: the device stopped answering after: {e}") from None
                if self._banner_seen():
                    self.stats.resets += 1
                    self._recover_after_reset()
        raise DutFatal(f"{what}: gave up after {self.retries} retries; last fault: {last}")

    def _banner_seen(self) -> bool:
        return any(ln.strip().startswith(BANNER_PREFIX) or ln.strip() in BANNER_LINES for ln in self.transcript[-6:])

    def _recover_after_reset(self) -> None:
        """After a reset the banner may still be arriving: read to a command boundary, identify again."""
        self.transcript = []
        if not self.resync():
            raise DutFatal("the device reset and then stopped answering")
        before = self.identity
        ident = self.identify()
        if before and (ident.name, ident.model) != (before.name, before.model):
            raise DutFatal(f"the device came back from a reset as {ident.name}/{ident.model}, "
                           f"not {before.name}/{before.model}")
