"""Plots of `kws bench` results (PNG, matplotlib's Agg backend; None when matplotlib is missing).

perf_png: each timed window (one per input) as latency and throughput bars, the median marked, the
device clock named (under QEMU: instruction time, not a board's clock).
stream_png: a timeline of a --mode stream run: positive utterances found / missed, the device's
detections (in a positive's hit window, in negative audio, elsewhere) against stream time, the
negative audio shaded, FRR and false accepts per hour with their 95 % intervals in a text box.

Each PNG is written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _clock(perf: dict) -> str:
    shift = perf.get("icount_shift")
    if shift is not None:
        return f"QEMU instruction time (-icount shift={shift}: 1 instruction = {1 << shift} ns)"
    return "the device's own timer"


def perf_png(perf: dict, path: Path, *, title: str) -> Path | None:
    """One PNG of a perf result (kws.bench.perf.measure / summarize): per input (= per timed window)
    latency (1/throughput) and throughput, with the medians marked. None when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return None
    windows = perf.get("windows") or []
    fig, (ax_lat, ax_tp) = plt.subplots(1, 2, figsize=(9.5, 4.2))
    clock = _clock(perf)
    if windows:
        inputs = [int(w["input"]) for w in windows]
        tput = [float(w["throughput_ips"]) for w in windows]
        lat_ms = [1000.0 / v for v in tput]
        med_tput = perf.get("throughput_ips") or statistics.median(tput)
        med_lat = 1000.0 / med_tput
        ax_lat.bar(inputs, lat_ms, color="tab:blue", alpha=0.8)
        ax_lat.axhline(med_lat, color="tab:red", ls="--", label=f"median {med_lat:.3f} ms")
        ax_tp.bar(inputs, tput, color="tab:green", alpha=0.8)
        ax_tp.axhline(med_tput, color="tab:red", ls="--", label=f"median {med_tput:.3f} inf/s")
        for x, y, w in zip(inputs, lat_ms, windows):
            note = f"N={w['n']}"
            if "instructions_per_inference" in w:
                note += f"\n{w['instructions_per_inference'] / 1e6:.3f} M instr"
            ax_lat.annotate(note, (x, y), ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                            textcoords="offset points")
        # bars of nearly equal height: zoom on the spread, but keep the axis honest about it
        for ax, vals in ((ax_lat, lat_ms), (ax_tp, tput)):
            lo, hi = min(vals), max(vals)
            pad = max((hi - lo) * 0.6, hi * 0.002)
            ax.set_ylim(max(0.0, lo - pad), hi + 2.5 * pad)
            ax.set_xticks(inputs)
            ax.legend(fontsize=8, loc="upper right")
    else:
        for ax in (ax_lat, ax_tp):
            ax.text(0.5, 0.5, "no complete window", ha="center", va="center", transform=ax.transAxes)
    unit = "instruction time" if perf.get("icount_shift") is not None else "device time"
    ax_lat.set_xlabel("input (one timed window each)")
    ax_lat.set_ylabel(f"latency = 1/throughput (ms of {unit})")
    ax_tp.set_xlabel("input (one timed window each)")
    ax_tp.set_ylabel(f"throughput (inferences / s of {unit})")
    fig.suptitle(f"{title}\nclock: {clock}", fontsize=9)
    fig.tight_layout()
    return _save(fig, plt, path)


def stream_png(stream: dict, path: Path, *, title: str) -> Path | None:
    """A timeline PNG of a --mode stream result (kws.bench.stream.run: its positives_ms, negatives_ms,
    events_ms, frr/faph and their 95 % intervals). None when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return None
    import numpy as np

    audio_s = float(stream.get("audio_s") or 0.0)
    minutes = audio_s > 300
    scale = 1 / 60000.0 if minutes else 1 / 1000.0
    pos = np.asarray(stream.get("positives_ms") or [], dtype=np.float64).reshape(-1, 3)
    neg = np.asarray(stream.get("negatives_ms") or [], dtype=np.float64).reshape(-1, 2)
    ev = np.asarray(stream.get("events_ms") or [], dtype=np.float64)
    tail_ms = float((stream.get("rules") or {}).get("hit_tail_ms", 0.0))

    # each detection: in a positive's hit window (true), in negative audio (false accept), or neither
    # (the quiet room around a positive clip: not scored)
    true_acc = np.zeros(len(ev), bool)
    for s, e, _ in pos:
        true_acc |= (ev >= s) & (ev <= e + tail_ms)
    false_acc = np.zeros(len(ev), bool)
    for lo, hi in neg:
        false_acc |= (ev >= lo) & (ev < hi)
    other = ~(true_acc | false_acc)

    fig, ax = plt.subplots(figsize=(11, 3.8))
    for i, (lo, hi) in enumerate(neg):
        ax.axvspan(lo * scale, hi * scale, color="0.88", zorder=0, label="negative audio" if i == 0 else None)
    hit = pos[:, 2] > 0 if len(pos) else np.zeros(0, bool)
    mid = (pos[:, 0] + pos[:, 1]) / 2 if len(pos) else np.zeros(0)
    ax.scatter(mid[hit] * scale, np.full(hit.sum(), 1.0), marker="o", s=18, color="tab:green",
               label=f"positive found ({int(hit.sum())})")
    ax.scatter(mid[~hit] * scale, np.full((~hit).sum(), 1.0), marker="x", s=30, color="tab:red",
               label=f"positive missed ({int((~hit).sum())})")
    for mask, color, marker, what in ((true_acc, "tab:green", "|", "detection in a hit window"),
                                      (false_acc, "tab:red", "|", "detection in negative audio"),
                                      (other, "0.4", "|", "detection elsewhere (not scored)")):
        ax.scatter(ev[mask] * scale, np.zeros(int(mask.sum())), marker=marker, s=160, color=color,
                   label=f"{what} ({int(mask.sum())})")
    ax.set_yticks([0, 1], ["detections", "positive\nutterances"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlim(0, audio_s * 1000 * scale if audio_s else None)
    ax.set_xlabel(f"stream time ({'min' if minutes else 's'}); clock: {stream.get('clock') or '?'}")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False)

    lines = []
    if stream.get("frr") is not None:
        lo, hi = stream.get("frr_ci95") or (float("nan"), float("nan"))
        lines.append(f"FRR {100 * stream['frr']:.1f} % (95 %: {100 * lo:.1f}-{100 * hi:.1f} %), "
                     f"{stream.get('misses')} missed of {stream.get('positives')}")
    if stream.get("faph") is not None:
        lo, hi = stream.get("faph_ci95") or (float("nan"), float("nan"))
        lines.append(f"FA/h {stream['faph']:.2f} (95 %: {lo:.2f}-{hi:.2f}), false accepts: "
                     f"{stream.get('false_accepts')} in {stream.get('negative_hours', 0.0):.2f} h (debounced)")
    ax.text(0.995, 0.97, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, plt, path)
