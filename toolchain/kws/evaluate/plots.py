"""DET curve (miss rate against false accepts per hour) as a PNG, one line per labelled sweep."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kws.errors import KwsError
from kws.evaluate.scoring import REPORT_TARGETS_FAPH, operating_point
from kws.fileio import atomic_path


def det_curve_png(sweeps: dict[str, dict], out_path: str | os.PathLike, *, title: str,
                  targets_faph: tuple[float, ...] = REPORT_TARGETS_FAPH, overwrite: bool = False) -> Path:
    """Draw FRR (%) against FAPH for each `sweep` result in `sweeps` (label -> result) and write a PNG.

    The x axis is symmetric-log so that 0 false accepts per hour is shown; the operating points at
    `targets_faph` are marked. The PNG is written to a temporary name beside `out_path` and renamed
    into place; an existing `out_path` is replaced only with overwrite=True. Returns the path.
    """
    if not isinstance(sweeps, dict) or not sweeps:
        raise KwsError("sweeps: expected a non-empty dict of label -> sweep result")
    # Explicit Agg canvas: no pyplot, no global backend switch, safe in headless runs and threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    positive_faph = [float(t) for t in targets_faph if t > 0]
    markers = ("o", "s", "^", "D", "v")
    for i, (label, result) in enumerate(sweeps.items()):
        for key in ("faph", "frr"):
            if key not in result:
                raise KwsError(f"sweeps[{label!r}]: missing {key}; pass dicts returned by sweep()")
        x = np.asarray(result["faph"], dtype=np.float64)
        y = 100.0 * np.asarray(result["frr"], dtype=np.float64)
        positive_faph.extend(x[x > 0].tolist())
        line, = ax.plot(x, y, "-", linewidth=1.5, label=str(label))
        for j, target in enumerate(targets_faph):
            op = operating_point(result, target)
            if op is None:
                continue
            ax.plot([op["faph"]], [100.0 * op["frr"]], markers[j % len(markers)], color=line.get_color(),
                    markersize=7, markeredgecolor="black", clip_on=False)
            ax.annotate(f"{target:g}/h: {100.0 * op['frr']:.1f}% (t={op['threshold']})",
                        (op["faph"], 100.0 * op["frr"]), textcoords="offset points",
                        xytext=(6, -12 - 10 * (i * len(targets_faph) + j)), fontsize=7, color=line.get_color())
    for target in targets_faph:
        ax.axvline(float(target), color="grey", linestyle=":", linewidth=1)
    linthresh = float(np.clip(min(positive_faph) if positive_faph else 0.1, 1e-3, 0.5))
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlim(left=-0.3 * linthresh)
    ax.set_ylim(-3.0, 103.0)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false reject rate (%)")
    ax.set_title(str(title))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out = Path(out_path)
    with atomic_path(out, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png")
    return out
