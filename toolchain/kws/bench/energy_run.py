"""`kws bench --mode energy --monitor ...`: MLPerf Tiny's energy mode, measured.

The monitor (energy.py: LPM01A or Joulescope) powers or sits in the supply of a DUT running the bench
app's energy build (9600 baud; `timestamp` and `infer N W` pulse the timestamp pin, which the monitor
records as edges). The host reaches the DUT through MLPerf Tiny's IO manager (iomanager.py) or, where
the user has isolated the UART another way, directly on a serial port (DirectDut).

The run:
1. the monitor is opened (LPM01A: configured and powering the DUT) and the DUT is polled until it
   answers `name`/`profile`, then checked to run the expected model;
2. calibration: `infer n 0` windows with growing n until one lasts >= CALIBRATION_S between its edges;
   its seconds per inference choose N = runs_for_window() so that each timed window lasts >= 10 s;
3. WINDOWS (5) inputs, each loaded and run as one window of `infer N W`; energy of a window = the
   trace's energy between its last two edges / N (energy.measure_window);
   a window that still comes out shorter than the minimum (the device sped up) is measured again
   with N chosen from it, up to SHORT_WINDOW_RETRIES times: no short window is ever accepted;
4. the result is the median µJ per inference (energy.summarize), "estimated": false, plus the latency
   and throughput the edges imply (the monitor's clock, not the DUT's).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

from kws.bench import energy
from kws.bench.dut import Dut, DutFatal, Identity
from kws.errors import KwsError

ENERGY_BAUD = 9600        # MLPerf Tiny energy mode: the DUT's UART
CALIBRATION_S = 1.0       # the calibration window's shortest duration
MAX_CALIBRATION_ROUNDS = 5
SHORT_WINDOW_RETRIES = 2  # a window under the minimum is measured again with a larger N


class DirectDut:
    """The energy-mode DUT on a serial port of its own (no IO manager), with the methods IoManager has."""

    def __init__(self, dut: Dut):
        self.dut = dut

    def dut_identify(self, *, expected_model: str = "") -> Identity:
        self.dut.expected_model = expected_model
        return self.dut.start(fresh_boot=False)

    def dut_load(self, data: bytes) -> None:
        self.dut.load(data)

    def dut_infer(self, n: int, warmups: int = 10, *, timeout_s: float = 600.0) -> list[str]:
        lines = self.dut.command(f"infer {n} {warmups}", timeout_s=timeout_s)
        if "m-infer-done" not in lines:
            raise KwsError(f"DUT: infer {n} {warmups} ended without m-infer-done: {lines[-3:]}")
        return lines


def parse_monitor(spec: str) -> tuple[str, str]:
    """--monitor lpm01a:URL | joulescope -> (kind, url); KwsError for anything else."""
    kind, _, url = spec.partition(":")
    kind = kind.lower()
    if kind == "lpm01a":
        if not url:
            raise KwsError("--monitor lpm01a needs the PowerShield's port: --monitor lpm01a:/dev/ttyACM0")
        return kind, url
    if kind == "joulescope":
        if url:
            raise KwsError(f"--monitor {spec}: a Joulescope is found by scanning; give --monitor joulescope")
        return kind, ""
    raise KwsError(f"--monitor {spec}: unknown monitor; use lpm01a:URL (ST X-NUCLEO-LPM01A) or joulescope")


def open_monitor(spec: str) -> energy.EnergyMonitor:
    kind, url = parse_monitor(spec)
    return energy.Lpm01a(url) if kind == "lpm01a" else energy.Joulescope()


def _identify(dut, *, expected_model: str, boot_timeout_s: float, log: Callable[[str], None]) -> Identity:
    """Polls the DUT until it answers (it was just powered on); a wrong model stops at once."""
    deadline = time.monotonic() + boot_timeout_s
    while True:
        try:
            return dut.dut_identify(expected_model=expected_model)
        except DutFatal as e:
            if "flashed with another model" in str(e) or time.monotonic() >= deadline:
                raise
            last = e
        except KwsError as e:
            if time.monotonic() >= deadline:
                raise KwsError(f"the DUT did not answer within {boot_timeout_s:g} s of power-on: {e}") from None
            last = e
        log(f"waiting for the DUT to boot ({last})")
        time.sleep(0.5)


def _infer_timeout(n: int, warmups: int, seconds_per_inference: float | None, base_s: float) -> float:
    if seconds_per_inference is None:
        return base_s
    return base_s + 3.0 * (n + warmups) * seconds_per_inference


def calibrate(monitor: energy.EnergyMonitor, dut, *, sample_rate_hz: int, timeout_s: float,
              log: Callable[[str], None]) -> dict:
    """Seconds per inference from the monitor's edges: `infer n 0` with n growing until the window
    between the edges lasts >= CALIBRATION_S."""
    n, rounds = 1, []
    for _ in range(MAX_CALIBRATION_ROUNDS):
        w = energy.measure_window(monitor, lambda: dut.dut_infer(n, 0, timeout_s=timeout_s),
                                  n_inferences=n, sample_rate_hz=sample_rate_hz, min_window_s=0.0)
        rounds.append({"n": n, "duration_s": w.duration_s})
        if w.duration_s >= CALIBRATION_S:
            spi = w.duration_s / n
            log(f"calibration: {n} inferences in {w.duration_s:.3f} s -> {spi * 1e3:.3f} ms per inference")
            return {"seconds_per_inference": spi, "rounds": rounds}
        # at least one sample period per window, so a window too short to resolve still grows n
        n = min(math.ceil(n * 1.5 * CALIBRATION_S / max(w.duration_s, 1.0 / sample_rate_hz)), 10_000_000)
    raise KwsError(f"calibration: {MAX_CALIBRATION_ROUNDS} windows never reached {CALIBRATION_S:g} s between "
                   f"the timestamp edges (last: {rounds[-1]}); is the timestamp pin wired to the monitor?")


def measure(*, monitor: energy.EnergyMonitor, dut, inputs: list[bytes], result: dict, voltage_v: float = 3.3,
            sample_rate_hz: int = 1000, min_window_s: float = energy.MIN_WINDOW_S, warmups: int = 10,
            windows: int = energy.WINDOWS, expected_model: str = "kws01", boot_timeout_s: float = 15.0,
            timeout_s: float = 60.0, log: Callable[[str], None] = print,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Runs the energy measurement; fills `result` as it goes (so a failure leaves the windows measured
    so far) and returns it. result["device"] is the DUT's identity."""
    if not inputs:
        raise KwsError("energy: no inputs")
    monitor.open(voltage_v=voltage_v)
    result.update({"estimated": False, "monitor": getattr(monitor, "name", "?"), "voltage_v": voltage_v,
                   "sample_rate_hz": sample_rate_hz, "min_window_s": min_window_s, "windows": []})
    ident = _identify(dut, expected_model=expected_model, boot_timeout_s=boot_timeout_s, log=log)
    result["device"] = {"name": ident.name, "profile": ident.profile, "model": ident.model}
    dut.dut_load(inputs[0])
    cal = calibrate(monitor, dut, sample_rate_hz=sample_rate_hz, timeout_s=max(timeout_s, 120.0), log=log)
    spi = cal["seconds_per_inference"]
    n = energy.runs_for_window(spi, min_window_s=min_window_s)
    result["calibration"] = cal
    result["n_per_window"] = n
    log(f"{windows} windows of {n} inferences (>= {min_window_s:g} s each)")
    measured: list[energy.EnergyWindow] = []
    for k in range(windows):
        dut.dut_load(inputs[k % len(inputs)])
        for attempt in range(SHORT_WINDOW_RETRIES + 1):
            limit = _infer_timeout(n, warmups, spi, timeout_s)
            w = energy.measure_window(monitor, lambda: dut.dut_infer(n, warmups, timeout_s=limit), n_inferences=n,
                                      sample_rate_hz=sample_rate_hz, min_window_s=0.0)
            if w.duration_s >= min_window_s:
                break
            # the device ran faster than calibrated: a longer window, never a short one accepted
            if attempt == SHORT_WINDOW_RETRIES:
                raise KwsError(f"energy window {k + 1} lasted {w.duration_s:.2f} s < {min_window_s:g} s after "
                               f"{SHORT_WINDOW_RETRIES} longer retries (N = {n}): the device's speed keeps changing")
            spi = w.duration_s / n
            n = energy.runs_for_window(spi, min_window_s=min_window_s)
            result["n_per_window"] = n
            log(f"window {k + 1} lasted {w.duration_s:.3f} s < {min_window_s:g} s: measuring it again with N = {n}")
        measured.append(w)
        result.update(_summary(measured))
        if progress:
            progress(k + 1, windows)
    return result


def _summary(measured: list[energy.EnergyWindow]) -> dict:
    s = energy.summarize(measured)
    for i, (rec, w) in enumerate(zip(s["windows"], measured)):
        rec["input"] = i + 1
        rec["latency_ms"] = w.duration_s / w.n_inferences * 1e3
    lat = statistics.median(w.duration_s / w.n_inferences for w in measured)
    s["latency_ms"] = lat * 1e3
    s["throughput_ips"] = 1.0 / lat
    s["clock"] = "the energy monitor's sample clock, between the DUT's timestamp edges"
    s["average_power_mw"] = statistics.median(w.average_power_mw for w in measured)
    return s


def partial_summary(result: dict) -> dict:
    """What an interrupted run leaves: the windows measured so far, marked incomplete."""
    out = dict(result)
    out["complete"] = False
    out.setdefault("estimated", False)
    if not out.get("windows"):
        out["uj_per_inference"] = None
    return out
