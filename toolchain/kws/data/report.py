"""The `kws data validate` report: the Report object, its JSON form, markdown and PNG histograms."""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

import numpy as np

from kws.data import checks
from kws.fileio import atomic_path, write_text

TOOL = "kws data validate"
FORMAT_VERSION = 1
EXAMPLES_PER_CHECK = 20
HISTOGRAMS = {  # file name -> (ClipResult attribute, axis label)
    "rms_dbfs.png": ("rms_dbfs", "RMS level (dBFS)"),
    "peak_dbfs.png": ("peak_dbfs", "peak level (dBFS)"),
    "duration_s.png": ("duration_s", "duration (s)"),
}
REPORT_FILES = ("report.md", "report.json", *HISTOGRAMS)


@dataclasses.dataclass
class Report:
    """What validate found and did. `statuses` maps each checked clip's path (as listed or found) to
    ok | warn:<reasons> | quarantined:<reason> | error:<reason> (an error left in place)."""

    root: Path
    settings: dict
    clips: list[checks.ClipResult] = dataclasses.field(default_factory=list)
    statuses: dict[str, str] = dataclasses.field(default_factory=dict)
    quarantined: list[dict] = dataclasses.field(default_factory=list)
    dataset_issues: list[dict] = dataclasses.field(default_factory=list)
    near_duplicates: list[dict] = dataclasses.field(default_factory=list)
    exact_duplicates: list[dict] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    previously_quarantined: int = 0
    manifest_written: str | None = None
    report_files: list[str] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0

    def dataset_issue(self, check: str, severity: str, message: str, **extra) -> None:
        self.dataset_issues.append({"check": check, "severity": severity, "message": message, **extra})

    @property
    def counts(self) -> dict:
        errors = sum(1 for c in self.clips if c.errors)
        warnings = sum(1 for c in self.clips if not c.errors and c.warnings)
        dataset_errors = sum(1 for i in self.dataset_issues if i["severity"] == checks.ERROR)
        return {
            "clips_checked": len(self.clips),
            "ok": len(self.clips) - errors - warnings,
            "warnings": warnings,
            "errors": errors,
            "quarantined": len(self.quarantined),
            "previously_quarantined": self.previously_quarantined,
            "dataset_errors": dataset_errors,
            "dataset_warnings": sum(1 for i in self.dataset_issues if i["severity"] == checks.WARNING),
            "near_duplicate_pairs": len(self.near_duplicates),
            "exact_duplicates": len(self.exact_duplicates),
            "errors_remaining": errors - len(self.quarantined) + dataset_errors,
        }

    @property
    def errors_remaining(self) -> int:
        """Clip errors not quarantined plus dataset-level errors (the CLI exits 1 when > 0)."""
        return self.counts["errors_remaining"]

    def summary_line(self) -> str:
        c = self.counts
        before = f", {c['previously_quarantined']} quarantined earlier" if c["previously_quarantined"] else ""
        return (f"{self.root}: {c['clips_checked']} clips checked: {c['ok']} ok, {c['warnings']} with warnings, "
                f"{c['errors']} with errors ({c['quarantined']} quarantined{before}); "
                f"{c['dataset_errors']} dataset-level errors; {c['errors_remaining']} errors remaining")

    def as_dict(self) -> dict:
        """The JSON report (plain types only)."""
        per_check = {r: {"description": d, "errors": 0, "warnings": 0, "examples": []}
                     for r, d in checks.REASONS.items()}
        labels: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        findings = []
        for clip in sorted(self.clips, key=lambda c: c.path):
            kind = "errors" if clip.errors else "warnings" if clip.warnings else "ok"
            labels[clip.label]["clips"] += 1
            labels[clip.label][kind] += 1
            for f in clip.findings:
                entry = per_check[f.reason]
                entry["errors" if f.severity == checks.ERROR else "warnings"] += 1
                if len(entry["examples"]) < EXAMPLES_PER_CHECK:
                    entry["examples"].append({"path": clip.path, "severity": f.severity, "detail": f.detail})
            if clip.findings:
                findings.append({"path": clip.path, "label": clip.label, "status": self.statuses.get(clip.path, ""),
                                 "findings": [dataclasses.asdict(f) for f in clip.findings]})
        decoded = [c for c in self.clips if c.sample_rate_hz]
        speech = [c for c in self.clips if c.speech is not None and c.label not in checks.NON_SPEECH_LABELS]
        return {
            "tool": TOOL,
            "format": FORMAT_VERSION,
            "root": str(self.root),
            "settings": self.settings,
            "summary": self.counts,
            "checks": per_check,
            "labels": {k: {n: int(v[n]) for n in ("clips", "ok", "warnings", "errors")}
                       for k, v in sorted(labels.items())},
            "sample_rates_hz": _tally(c.sample_rate_hz for c in decoded),
            "channels": _tally(c.channels for c in decoded),
            "duration_s": _stats([c.duration_s for c in decoded]),
            "rms_dbfs": _stats([c.rms_dbfs for c in self.clips]),
            "peak_dbfs": _stats([c.peak_dbfs for c in self.clips]),
            "speech_like": {"checked": len(speech), "speech_like": sum(1 for c in speech if c.speech["speech_like"])},
            "dataset_issues": self.dataset_issues,
            "near_duplicates": self.near_duplicates,
            "exact_duplicates": self.exact_duplicates,
            "quarantined": self.quarantined,
            "manifest_written": self.manifest_written,
            "notes": self.notes,
            "clips_with_findings": findings,
            "report_files": self.report_files,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _tally(values) -> dict[str, int]:
    return {str(k): v for k, v in sorted(collections.Counter(values).items())}


def _stats(values) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"count": 0, "min": None, "median": None, "max": None}
    return {"count": int(v.size), "min": round(float(v.min()), 4), "median": round(float(np.median(v)), 4),
            "max": round(float(v.max()), 4)}


def is_our_report(path: Path) -> bool:
    """True when `path` is a JSON report this command wrote (so it may be replaced)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")).get("tool") == TOOL
    except (OSError, ValueError, AttributeError):
        return False


# --- output ----------------------------------------------------------------------------------------

def write_outputs(rep: Report, *, report_dir: Path | None, json_out: Path | None) -> None:
    """report.md, report.json and the histograms in report_dir; the JSON also at json_out. Each file is
    written to a temporary name and renamed (validate checked beforehand that nothing foreign is replaced)."""
    if report_dir is not None:
        rep.report_files = [str(report_dir / n) for n in REPORT_FILES]
    data = rep.as_dict()
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    if report_dir is not None:
        write_text(report_dir / "report.json", text, overwrite=True)
        write_text(report_dir / "report.md", markdown(data), overwrite=True)
        for name, (attr, xlabel) in HISTOGRAMS.items():
            _histogram(report_dir / name, [getattr(c, attr) for c in rep.clips if c.sample_rate_hz], xlabel)
    if json_out is not None:
        write_text(json_out, text, overwrite=True)


def _histogram(path: Path, values: list, xlabel: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    v = np.array([x for x in values if x is not None], dtype=np.float64)
    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if v.size:
        ax.hist(v, bins=min(60, max(5, int(np.sqrt(v.size)))), color="#3b6ea5")
    else:
        ax.text(0.5, 0.5, "no decodable clips", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")
    ax.set_title(f"{xlabel}, {v.size} clips")
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")


def _cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def markdown(d: dict) -> str:
    """The human-readable report from the JSON dict."""
    s = d["summary"]
    out = [f"# Dataset validation: `{d['root']}`", "",
           "| clips checked | ok | with warnings | with errors | quarantined | dataset errors | errors remaining |",
           "|---:|---:|---:|---:|---:|---:|---:|",
           f"| {s['clips_checked']} | {s['ok']} | {s['warnings']} | {s['errors']} | {s['quarantined']} "
           f"| {s['dataset_errors']} | **{s['errors_remaining']}** |", ""]
    if s["previously_quarantined"]:
        out += [f"{s['previously_quarantined']} clips were quarantined by an earlier run and not checked again.", ""]
    out += ["## Checks", "", "| check | meaning | errors | warnings |", "|---|---|---:|---:|"]
    out += [f"| `{r}` | {c['description']} | {c['errors']} | {c['warnings']} |" for r, c in d["checks"].items()]
    out += ["", "## Dataset-level issues", ""]
    out += [f"- **{i['severity']}** `{i['check']}`: {_cell(i['message'])}" for i in d["dataset_issues"]] or ["none"]
    out += ["", "## Labels", "", "| label | clips | ok | with warnings | with errors |", "|---|---:|---:|---:|---:|"]
    out += [f"| {_cell(k)} | {v['clips']} | {v['ok']} | {v['warnings']} | {v['errors']} |"
            for k, v in d["labels"].items()]
    fmt = lambda t: ", ".join(f"{k}: {v}" for k, v in t.items()) or "none"  # noqa: E731
    out += ["", "## Format and levels", "",
            f"- sample rates (Hz: clips): {fmt(d['sample_rates_hz'])}",
            f"- channels (count: clips): {fmt(d['channels'])}"]
    for key, name in (("duration_s", "duration (s)"), ("rms_dbfs", "RMS level (dBFS)"),
                      ("peak_dbfs", "peak level (dBFS)")):
        st = d[key]
        out.append(f"- {name}: min {st['min']}, median {st['median']}, max {st['max']} ({st['count']} clips)")
    sp = d["speech_like"]
    out += [f"- speech-like loudest second: {sp['speech_like']} of {sp['checked']} clips of word labels", ""]
    out += ["## Offending files", "", f"The first {EXAMPLES_PER_CHECK} per check; all of them are in report.json.", ""]
    for r, c in d["checks"].items():
        if c["examples"]:
            out += [f"### `{r}` ({c['errors']} errors, {c['warnings']} warnings)", ""]
            out += [f"- {e['severity']}: `{_cell(e['path'])}`: {_cell(e['detail'])}" for e in c["examples"]]
            out.append("")
    out += ["## Near duplicates", ""]
    if d["near_duplicates"]:
        out += ["| clip | probably the same recording as | bit error rate |", "|---|---|---:|"]
        out += [f"| `{_cell(p['b'])}` | `{_cell(p['a'])}` | {p['bit_error_rate']:.3f} |" for p in d["near_duplicates"]]
    else:
        out.append("none")
    out += ["", "## Exact duplicates", ""]
    out += [f"- `{_cell(p['path'])}` = `{_cell(p['first'])}`" for p in d["exact_duplicates"]] or ["none"]
    out += ["", "## Quarantined", ""]
    out += [f"- `{_cell(q['from'])}` -> `{_cell(q['to'])}` ({q['reason']})" for q in d["quarantined"][:200]] or ["none"]
    if len(d["quarantined"]) > 200:
        out.append(f"- ... and {len(d['quarantined']) - 200} more (see report.json)")
    out += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in d["notes"]]
    out += ["", "## Histograms", ""] + [f"![{n}]({n})" for n in HISTOGRAMS]
    out += ["", "## Settings", "", "```", json.dumps(d["settings"], indent=1), "```",
            "", f"Checked in {d['elapsed_s']} s.", ""]
    return "\n".join(out)
