"""The results of `kws bench`: JSON (the record) and a markdown summary (for people).

A run that stopped early is still written, with "complete": false and the reason in "error"; the
markdown then starts with a line saying the figures are partial.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from pathlib import Path


def new(mode: str, transport: str) -> dict:
    return {"mode": mode, "complete": False, "transport": transport, "device": None,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None}


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def markdown(rep: dict) -> str:
    dev = rep.get("device") or {}
    lines = [f"# kws bench --mode {rep['mode']}", ""]
    if not rep.get("complete"):
        lines += [f"**INCOMPLETE: these are partial results.** Stopped by: {rep.get('error', 'unknown')}", ""]
    lines += [f"- device: {dev.get('name', '?')} ({dev.get('profile', '?')}), model {dev.get('model', '?')}",
              f"- transport: {rep.get('transport')}",
              f"- started {rep.get('started')}, finished {rep.get('finished')}"]
    faults = rep.get("faults") or {}
    if faults.get("retries") or faults.get("resets"):
        lines.append(f"- faults: {faults.get('retries', 0)} retries, {faults.get('resets', 0)} resets "
                     f"(first: {(faults.get('log') or ['?'])[0]})")
    p = rep.get("perf")
    if p:
        lines += ["", "## Performance (MLPerf Tiny rules: windows >= "
                  f"{p.get('min_window_s')} s of device time, median over {len(p.get('windows', []))} inputs)", ""]
        lines += ["| input | N | window (device s) | throughput (inf/s) |" +
                  (" instructions / inference |" if "icount_shift" in p else ""),
                  "|---:|---:|---:|---:|" + ("---:|" if "icount_shift" in p else "")]
        for w in p.get("windows", []):
            lines.append(f"| {w['input']} | {w['n']} | {w['window_us'] / 1e6:.3f} | {w['throughput_ips']:.3f} |" +
                         (f" {w['instructions_per_inference']:,.0f} |" if "instructions_per_inference" in w else ""))
        lines += ["", f"- throughput (median): **{_fmt(p.get('throughput_ips'), 3)} inferences/s**; "
                      f"latency = 1/throughput: **{_fmt(p.get('latency_ms'), 2)} ms**",
                  f"- device clock: {p.get('device_clock')}"]
        if "instructions_per_inference" in p:
            lat = p["latency_ms_at_mhz"]
            lines.append(f"- instructions per inference: **{p['instructions_per_inference']:,.0f}**; "
                         + ", ".join(f"{v:.1f} ms at {f} MHz" for f, v in lat.items())
                         + f" ({p['latency_note']})")
        if p.get("plot_png"):
            lines.append(f"- per-input plot: {p['plot_png']}")
    a = rep.get("accuracy")
    if a:
        lines += ["", "## Accuracy", "",
                  f"- top-1: **{_fmt(100 * a['top1'] if a.get('top1') is not None else None, 2)} %** "
                  f"({a.get('correct')}/{a.get('n')}); AUC (MLPerf runner definition): {_fmt(a.get('auc'), 4)}",
                  f"- dataset: {a.get('dataset')} ({a.get('dataset_format')})"]
        if "tflm" in a:
            t = a["tflm"]
            lines.append(f"- tflite-micro on the same features: top-1 {_fmt(100 * t['top1'], 2)} %; "
                         f"predictions differing from the device: **{t['predictions_differ']}** of {t['n']}"
                         + (f"; int8 output values differing: {t['values_differ']}" if t.get("values_differ") is not None else ""))
        if a.get("confusion_png"):
            lines.append(f"- confusion matrix: {a['confusion_png']}")
        lines += ["", "| class | n | correct | accuracy |", "|---|---:|---:|---:|"]
        for name, c in a.get("per_class", {}).items():
            acc = _fmt(100 * c["accuracy"], 1) + " %" if c["accuracy"] is not None else "n/a"
            lines.append(f"| {name} | {c['n']} | {c['correct']} | {acc} |")
    e = rep.get("energy")
    if e and e.get("estimated") is False:
        lines += ["", f"## Energy (measured: {e.get('monitor', '?')} at {e.get('voltage_v')} V, "
                  f"{e.get('sample_rate_hz')} Hz; MLPerf Tiny energy mode, median of "
                  f"{len(e.get('windows') or [])} windows >= {e.get('min_window_s')} s)", ""]
        lines += ["| input | N | window (s) | energy (mJ) | µJ / inference | average power (mW) | latency (ms) |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for w in e.get("windows") or []:
            lines.append(f"| {w.get('input', '?')} | {w['n']} | {w['duration_s']:.3f} | {w['energy_j'] * 1e3:.3f} | "
                         f"{w['uj_per_inference']:.2f} | {w['average_power_mw']:.3f} | {w.get('latency_ms', 0):.3f} |")
        lines += ["", f"- **{_fmt(e.get('uj_per_inference'), 1)} µJ per inference** (median), measured; latency "
                      f"{_fmt(e.get('latency_ms'), 3)} ms ({e.get('clock', '')})"]
        if e.get("power_model_estimate"):
            pm = e["power_model_estimate"]
            lines.append(f"- the {pm['board']} power model at this latency: {_fmt(pm['uj_per_inference'], 1)} µJ "
                         "(an estimate, for comparison)")
    elif e:
        m = e.get("model", {})
        lines += ["", "## Energy (estimate)", "",
                  f"- **{_fmt(e.get('uj_per_inference'), 1)} µJ per inference, estimated** with the "
                  f"{e.get('board')} power model: {m.get('formula', '?')}"
                  + (f"; {m['assumption']}" if m.get("assumption") else ""),
                  f"- source: {m.get('source', '?')}" + ("" if m.get("source_verified", True) else " (not verified)")]
    st = rep.get("stream")
    if st:
        lo, hi = st["frr_ci95"]
        flo, fhi = st["faph_ci95"]
        dev = st.get("device") or {}
        lines += ["", "## Wake-word stream", "",
                  f"- audio: {st['audio_s'] / 60:.1f} min; {st['positives']} positive clips, "
                  f"{st['negative_hours']:.2f} h of negatives; clock: {st['clock']}",
                  f"- FRR: **{100 * st['frr']:.1f} %** ({100 * lo:.1f}–{100 * hi:.1f} %, 95 %), "
                  f"{st['misses']} missed of {st['positives']}",
                  f"- false accepts: **{st['faph']:.2f} per hour** ({flo:.2f}–{fhi:.2f}), {st['false_accepts']} "
                  f"(debounced over {st['rules']['debounce_ms']:.0f} ms)",
                  f"- device: {dev.get('hops', '?')} hops, {dev.get('invocations', '?')} model invocations, "
                  f"{dev.get('overruns', '?')} overruns"]
        if st.get("plot_png"):
            lines.append(f"- timeline plot: {st['plot_png']}")
    return "\n".join(lines) + "\n"


def write(rep: dict, json_path: str | os.PathLike | None, md_path: str | os.PathLike | None) -> None:
    """Writes the JSON (atomically) and the markdown; prints the markdown when md_path is None."""
    rep["finished"] = rep.get("finished") or time.strftime("%Y-%m-%dT%H:%M:%S%z")
    md = markdown(rep)
    if json_path:
        p = Path(json_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(_one_line_number_lists(json.dumps(rep, indent=1, default=_json_default)) + "\n")
        tmp.replace(p)
    if md_path:
        p = Path(md_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(md)
        tmp.replace(p)
    else:
        sys.stdout.write(md)


# a list json.dumps(indent=1) spread over lines (a newline right after "[": never inside a string, where
# json.dumps escapes newlines) holding only numbers, true, false, null
_NUMBER_LIST = re.compile(r"\[\n[-+0-9.eEnulltrfas,\s]*\]")


def _one_line_number_lists(text: str) -> str:
    """JSON with every list of plain numbers (and true/false/null) on one line: indent=1 would give each
    number of a timeline its own line. Only whitespace between tokens changes."""
    return _NUMBER_LIST.sub(lambda m: " ".join(m.group().split()).replace("[ ", "[").replace(" ]", "]"), text)


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
