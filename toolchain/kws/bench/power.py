"""Datasheet power models: energy per inference *estimated* from device time, when no monitor is attached.

`kws bench --power-model BOARD` calls estimate(board, seconds_per_inference). The model is the simplest
one a datasheet supports: during inference the MCU draws its typical run-mode current per MHz at the
board's clock, from the supply voltage the monitor would give it,

    P_run  [W] = V_supply * (run_ua_per_mhz * f_MHz + board_overhead_ua) * 1e-6
    E_inf  [J] = P_run * t_inference

and an always-on wake-word device that is busy a fraction d of the time (the wake app's duty cycle)
averages P = d * P_run + (1 - d) * P_idle, with P_idle from the idle mode's datasheet current.

The numbers live in power_models.toml beside this file, one table per board, each with its source;
every result says `"estimated": True` and carries the formula, the inputs and the sources, so a
report can never mistake it for a measurement. Instruction-count device time (QEMU) assumes one
instruction per cycle (DESIGN.md decision 5); the caller passes whatever seconds it has and says which.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from kws.errors import KwsError

MODELS_FILE = Path(__file__).with_name("power_models.toml")
_REQUIRED = ("part", "supply_v", "clock_hz", "run_ua_per_mhz", "run_source", "idle_mode")


@functools.lru_cache(maxsize=None)
def _load(path: str) -> dict[str, dict]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise KwsError(f"{path}: cannot read the power models: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise KwsError(f"{path}: not valid TOML: {e}") from None
    for name, m in data.items():
        missing = [k for k in _REQUIRED if k not in m]
        if missing:
            raise KwsError(f"{path}: power model {name!r} lacks {', '.join(missing)}")
        if m["idle_mode"] not in ("sleep", "stop2"):
            raise KwsError(f"{path}: power model {name!r}: idle_mode must be 'sleep' or 'stop2'")
    return data


def boards(path: Path = MODELS_FILE) -> list[str]:
    """Boards that have a power model."""
    return sorted(_load(str(path)))


def model(board: str, path: Path = MODELS_FILE) -> dict:
    """The power model table of `board`; KwsError naming the boards that have one when it has none."""
    data = _load(str(path))
    if board not in data:
        raise KwsError(f"no power model for board {board!r}; boards with one: {', '.join(sorted(data)) or 'none'}")
    return dict(data[board])


def run_power_w(board: str, path: Path = MODELS_FILE) -> float:
    """Supply power while the core runs (W): V * (µA/MHz * MHz + overhead µA)."""
    m = model(board, path)
    amps = (m["run_ua_per_mhz"] * m["clock_hz"] / 1e6 + m.get("board_overhead_ua", 0.0)) * 1e-6
    return m["supply_v"] * amps


def idle_power_w(board: str, path: Path = MODELS_FILE) -> float:
    """Supply power in the model's idle mode (W)."""
    m = model(board, path)
    if m["idle_mode"] == "sleep":
        if "sleep_ua_per_mhz" not in m:
            raise KwsError(f"power model {board!r}: idle_mode 'sleep' needs sleep_ua_per_mhz")
        ua = m["sleep_ua_per_mhz"] * m["clock_hz"] / 1e6
    else:
        if "stop2_ua" not in m:
            raise KwsError(f"power model {board!r}: idle_mode 'stop2' needs stop2_ua")
        ua = m["stop2_ua"]
    return m["supply_v"] * (ua + m.get("board_overhead_ua", 0.0)) * 1e-6


def estimate(board: str, seconds_per_inference: float, *, path: Path = MODELS_FILE) -> dict:
    """Estimated energy of one inference of `seconds_per_inference` device time on `board`.

    Returns {"uj_per_inference": float, "estimated": True, "model": {...}} where model holds the
    formula, every input with its unit, the derived run power and the datasheet sources. Raises
    KwsError for an unknown board or a time that is not a positive finite number.
    """
    t = float(seconds_per_inference)
    if not (t > 0 and t < float("inf")):
        raise KwsError(f"seconds per inference must be a positive number, got {seconds_per_inference!r}")
    m = model(board, path)
    p_w = run_power_w(board, path)
    return {
        "uj_per_inference": p_w * t * 1e6,
        "estimated": True,
        "model": {
            "board": board,
            "part": m["part"],
            "formula": "uJ = V_supply * (run_ua_per_mhz * f_MHz + board_overhead_ua) * 1e-6 * t_s * 1e6",
            "supply_v": m["supply_v"],
            "clock_mhz": m["clock_hz"] / 1e6,
            "run_ua_per_mhz": m["run_ua_per_mhz"],
            "board_overhead_ua": m.get("board_overhead_ua", 0.0),
            "seconds_per_inference": t,
            "run_power_mw": p_w * 1e3,
            "conditions": m.get("run_conditions", ""),
            "source": m["run_source"],
            "source_verified": bool(m.get("run_verified", False)),
        },
    }


def estimate_from_instructions(board: str, instructions_per_inference: float, *,
                               path: Path = MODELS_FILE) -> dict:
    """estimate() for an instruction count (QEMU): device time = instructions / the board's clock, i.e.
    one instruction per cycle (DESIGN.md decision 5). Adds "latency_ms" and says the assumption."""
    n = float(instructions_per_inference)
    if not (n > 0 and n < float("inf")):
        raise KwsError(f"instructions per inference must be a positive number, got {instructions_per_inference!r}")
    m = model(board, path)
    seconds = n / m["clock_hz"]
    out = estimate(board, seconds, path=path)
    out["latency_ms"] = seconds * 1e3
    out["model"]["instructions_per_inference"] = n
    out["model"]["assumption"] = f"one instruction per cycle at {m['clock_hz'] / 1e6:g} MHz (instruction count from QEMU)"
    return out


def always_on_power(board: str, duty_cycle: float, *, path: Path = MODELS_FILE) -> float:
    """Average supply power (mW) of an always-on device busy `duty_cycle` (0..1) of the time:
    duty * P_run + (1 - duty) * P_idle, P_idle in the model's idle mode. An estimate, like estimate()."""
    d = float(duty_cycle)
    if not 0.0 <= d <= 1.0:
        raise KwsError(f"duty cycle must be within 0..1, got {duty_cycle!r}")
    return (d * run_power_w(board, path) + (1.0 - d) * idle_power_w(board, path)) * 1e3


def sanity_check(board: str, *, path: Path = MODELS_FILE) -> list[dict]:
    """The model beside the board's published MLPerf Tiny figures (mlperf_reference in the data file):
    for each, the published implied average power (energy / latency), the model's run power, and the
    model's energy for the published latency with its ratio to the published energy."""
    m = model(board, path)
    p_mw = run_power_w(board, path) * 1e3
    out = []
    for ref in m.get("mlperf_reference", []):
        implied_mw = ref["uj_per_inference"] / ref["latency_ms"]   # µJ / ms = mW
        model_uj = estimate(board, ref["latency_ms"] / 1e3, path=path)["uj_per_inference"]
        out.append({"system": ref["system"], "latency_ms": ref["latency_ms"],
                    "published_uj": ref["uj_per_inference"], "published_mw": implied_mw,
                    "model_mw": p_mw, "model_uj": model_uj, "ratio": model_uj / ref["uj_per_inference"]})
    return out
