"""`kws bench --mode perf`: MLPerf Tiny performance mode.

For each of 5 inputs: load it, a short calibration `infer 1 W` gives one inference's device time, then
`infer N W` with N chosen so the timed window (the m-lap-us- difference) lasts >= min_window_s of device
time (MLPerf Tiny: 10 s); a window that still comes out short is rerun with a larger N. Throughput of a
window = N / window; the result is the median over the inputs; latency = 1 / throughput.

Under QEMU the device clock is instruction time (DESIGN.md decision 5): with -icount shift=S one guest
instruction is 2^S ns, so a window of T microseconds is T * 1000 / 2^S instructions; the report gives
instructions per inference and says that its times are instruction time, not a board's clock.
"""

from __future__ import annotations

import math
import statistics
import time

from kws.bench.dut import Dut, DutFatal


def plan_n(one_inference_us: float, min_window_s: float, margin: float = 1.05) -> int:
    """The N whose window lasts at least min_window_s given one inference's device time."""
    per = max(one_inference_us, 1.0)
    return max(1, math.ceil(min_window_s * 1e6 * margin / per))


def measure(dut: Dut, inputs: list[bytes], *, min_window_s: float = 10.0, warmups: int = 2,
            icount_shift: int | None = None, progress=None, partial: dict | None = None) -> dict:
    """Runs MLPerf Tiny's performance mode over `inputs`; returns the perf section of the report.

    partial: a dict filled as windows complete (so a caller can save them if a fatal fault stops us).
    icount_shift: set under QEMU (device time = instruction time).
    """
    windows = partial.setdefault("windows", []) if partial is not None else []
    for k, data in enumerate(inputs):
        what = f"perf input {k + 1}/{len(inputs)}"
        cal = dut.run_input(data, 1, warmups, what=what + " (calibration)")
        one_us = cal.elapsed_us
        if one_us is None:
            raise DutFatal(f"{what}: the device printed no m-lap-us- timestamps around the timed runs "
                           "(is it built in energy mode? use --mode energy)")
        n = plan_n(one_us, min_window_s)
        for _attempt in range(3):
            t0 = time.monotonic()
            inf = dut.run_input(data, n, warmups, expected_s=wall_estimate(one_us * n, icount_shift), what=what)
            window_us = inf.elapsed_us
            if window_us is None or window_us <= 0:
                raise DutFatal(f"{what}: no usable m-lap-us- pair in the reply ({inf.laps_us})")
            if window_us >= min_window_s * 1e6:
                break
            n = plan_n(window_us / n, min_window_s, margin=1.2)  # the calibration was optimistic
        else:
            raise DutFatal(f"{what}: the timed window stayed under {min_window_s:g} s of device time")
        w = {"input": k, "n": n, "warmups": warmups, "window_us": window_us,
             "throughput_ips": n / (window_us / 1e6), "wall_s": round(time.monotonic() - t0, 3)}
        if icount_shift is not None:
            w["instructions_per_inference"] = window_us * 1000 / (1 << icount_shift) / n
        windows.append(w)
        if progress is not None:
            progress(k + 1, len(inputs))
    return summarize(windows, icount_shift=icount_shift, min_window_s=min_window_s)


def wall_estimate(device_us: float, icount_shift: int | None) -> float:
    """A generous guess of the host seconds a window of device_us takes (for the reply timeout): a real
    board runs in real time; QEMU runs roughly 20-300 M guest instructions per host second."""
    if icount_shift is None:
        return device_us / 1e6
    instructions = device_us * 1000 / (1 << icount_shift)
    return instructions / 20e6


def summarize(windows: list[dict], *, icount_shift: int | None, min_window_s: float) -> dict:
    out: dict = {"windows": windows, "min_window_s": min_window_s}
    if not windows:
        return out
    tput = statistics.median(w["throughput_ips"] for w in windows)
    out.update(throughput_ips=tput, latency_ms=1000.0 / tput)
    if icount_shift is not None:
        ipi = statistics.median(w["instructions_per_inference"] for w in windows)
        out.update(
            instructions_per_inference=ipi, icount_shift=icount_shift,
            device_clock=f"QEMU instruction time: -icount shift={icount_shift}, one instruction = "
                         f"{1 << icount_shift} ns, so throughput and latency are in instruction time, "
                         "not a board's clock",
            latency_ms_at_mhz={str(f): ipi / (f * 1e3) for f in (25, 80, 120)},
            latency_note="latency at F MHz assumes one instruction per cycle (an estimate, not a measurement)")
    else:
        out["device_clock"] = "the device's own timer (m-lap-us- timestamps)"
    return out
