#!/usr/bin/env python3
"""Measures `make train` and wake-word quality on real speech; rewrites the `train` section of BENCHMARKS.md.

    .venv/bin/python tools/bench_train.py [--shared ../shared] [--out BENCHMARKS.md] [--skip-make-train]

What it measures, all on this machine in one run:
- `make train`'s job (`kws train --config configs/default.toml`) from nothing: run in an empty
  temporary folder, so synthesis, validation, training, quantization and calibration all happen.
  Wall time and the peak resident memory of the largest process.
- "jarvis" trained on synthetic speech only (configs/jarvis.toml), then streamed through the
  deployed path by `kws eval` on real speech: the Picovoice recordings of "jarvis" as positives, the
  other real folders as negatives (Speech Commands test clips, FSDD digits, "view glass"), and the
  Speech Commands background noise. 50 of the 384 real "jarvis" clips (chosen by a hash of the file
  name) are held apart for fine-tuning and never evaluated; both models are evaluated on the other 334.
- The same model after `kws train --finetune-from` with those 50 real clips.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from benchmarks_md import write_section  # noqa: E402

KWS = [str(REPO / ".venv" / "bin" / "kws")]
FINETUNE_CLIPS = 50


def run(cmd: list[str], *, cwd: Path, log: Path) -> tuple[float, int]:
    """Run a command; returns (wall seconds, peak RSS in MiB of the largest process it waited for)."""
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"})
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{' '.join(cmd)} failed ({code}); log {log}:\n{tail}")
    return wall, int(usage.ru_maxrss / 1024)


def split_real(jarvis: Path, tmp: Path) -> tuple[Path, Path, int]:
    """Symlinks (the audio is read in place): tmp/ft/jarvis/<50 clips> and tmp/eval_pos/<the rest>."""
    files = sorted(jarvis.glob("*.flac"), key=lambda f: hashlib.sha1(f.name.encode()).hexdigest())
    ft, ev = tmp / "ft" / "jarvis", tmp / "eval_pos"
    ft.mkdir(parents=True)
    ev.mkdir()
    for i, f in enumerate(files):
        (ft if i < FINETUNE_CLIPS else ev).joinpath(f.name).symlink_to(f.resolve())
    return ft.parent, ev, len(files) - FINETUNE_CLIPS


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def row(name: str, r: dict) -> str:
    cells = []
    for k in ("1.0", "0.5"):
        e = r["frr_at_faph"][k]
        if e["threshold"] is None:
            cells.append("not reached")
        else:
            cells.append(f"{pct(e['frr'])} ({pct(e['ci95'][0])}–{pct(e['ci95'][1])}), thr {e['threshold']}, "
                         f"{e['false_accepts']} FA")
    ev = r["evaluation"]
    shipped = (f"{pct(ev['frr'])} ({pct(ev['frr_ci95'][0])}–{pct(ev['frr_ci95'][1])}); {ev['false_accepts']} FA = "
               f"{ev['faph']:.2f}/h ({ev['faph_ci95'][0]:.2f}–{ev['faph_ci95'][1]:.2f})")
    return f"| {name} | {cells[0]} | {cells[1]} | {shipped} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--skip-make-train", action="store_true", help="only the real-speech part")
    ap.add_argument("--ablations", action="store_true",
                    help="instead: train recipe variants of configs/jarvis.toml and write the train-ablations section")
    args = ap.parse_args()
    real = Path(args.shared) / "data" / "real"
    if args.ablations:
        return ablations(real, Path(args.out))
    lines = ["## Training and wake-word quality (issue 4)\n",
             f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, Python {platform.python_version()}, "
             f"{os.cpu_count()} cores, no GPU, no network. Single runs. Rerun: `.venv/bin/python tools/bench_train.py`.\n"]
    with tempfile.TemporaryDirectory(prefix="kws-bench-train-") as t:
        tmp = Path(t)
        if not args.skip_make_train:
            fresh = tmp / "fresh"
            fresh.mkdir()
            wall, rss = run(KWS + ["train", "--config", str(REPO / "configs" / "default.toml"), "--out", "models/hey_nova"],
                            cwd=fresh, log=tmp / "make_train.log")
            m = json.loads((fresh / "models" / "hey_nova" / "metrics.json").read_text())
            th = json.loads((fresh / "models" / "hey_nova" / "thresholds.json").read_text())
            lines += ["### `make train` from nothing\n",
                      "`kws train --config configs/default.toml` (what `make train` runs) in an empty folder: "
                      "synthesis of the data set, validation, training, int8 quantization, calibration, report.\n",
                      "| wall time | goal | peak memory (largest process) | epochs | int8 top-1 on synthetic test clips | threshold / window / refractory |",
                      "|---:|---:|---:|---:|---|---|",
                      f"| {wall / 60:.1f} min | ≤ 20 min | {rss:,} MiB | {m['train']['epochs']} | "
                      f"{pct(m['test_clips']['int8']['top1'])} (float {pct(m['test_clips']['float']['top1'])}) | "
                      f"{th['threshold']} / {th['window']} / {th['refractory']} |", ""]
        if not real.is_dir():
            lines.append(f"{real} is absent: the real-speech part was not measured.\n")
        else:
            ft_dir, eval_pos, n_eval = split_real(real / "picovoice_wwb" / "jarvis", tmp)
            models = tmp / "models"
            w1, r1 = run(KWS + ["train", "--config", "configs/jarvis.toml", "--out", str(models / "jarvis")],
                         cwd=REPO, log=tmp / "jarvis.log")
            ft_cfg = tmp / "jarvis_ft.toml"
            ft_cfg.write_text((REPO / "configs" / "jarvis.toml").read_text().replace(
                "[data]\n", f"[data]\ndirs = [\"{ft_dir}\"]\ndirs_repeat = 16\nmin_clips_per_class = 1\n", 1))
            w2, r2 = run(KWS + ["train", "--config", str(ft_cfg), "--finetune-from", str(models / "jarvis"),
                                "--out", str(models / "jarvis_ft")], cwd=REPO, log=tmp / "jarvis_ft.log")
            neg = [real / "speech_commands_v2_test", real / "fsdd", real / "picovoice_wwb" / "view_glass"]
            results = {}
            for name in ("jarvis", "jarvis_ft"):
                js = tmp / f"{name}_eval.json"
                cmd = KWS + ["eval", str(models / name), "--positives", str(eval_pos), "--json", str(js), "--quiet"]
                for d in neg:
                    cmd += ["--negatives", str(d)]
                cmd += ["--noise", str(real / "background_noise")]
                run(cmd, cwd=REPO, log=tmp / f"{name}_eval.log")
                results[name] = json.loads(js.read_text())
            r = results["jarvis"]
            mj = json.loads((models / "jarvis" / "metrics.json").read_text())
            mf = json.loads((models / "jarvis_ft" / "metrics.json").read_text())
            lines += ["### \"jarvis\" from synthetic speech, measured on real speech\n",
                      f"Positives: {n_eval} real recordings of \"jarvis\" (Picovoice wake-word benchmark; the other "
                      f"{FINETUNE_CLIPS} are kept for fine-tuning). Negatives: "
                      f"{r['negative_hours']:.3f} h of real audio played as continuous streams: the Speech Commands "
                      "test clips, FSDD digits (8 kHz, resampled), the \"view glass\" recordings, and the background "
                      "noise recordings. Everything streams through the deployed path: the C frontend, the int8 model "
                      "in tflite-micro every "
                      f"{r['detector']['stride_hops']} hops, the integer detector with smoothing window "
                      f"{r['detector']['window']} and refractory {r['detector']['refractory_ms']:.0f} ms. Intervals are "
                      "95 %: exact binomial for FRR, exact Poisson for false accepts per hour. "
                      "FRR at a FAPH is the best threshold of the sweep on this same audio (as openWakeWord and "
                      "Picovoice report it); \"shipped\" is the threshold calibrated on synthetic validation "
                      "audio and written into `thresholds.json`, measured here without any tuning.\n",
                      "| model | FRR at 1 FA/h | FRR at 0.5 FA/h | shipped threshold: FRR; false accepts |",
                      "|---|---|---|---|",
                      row(f"synthetic only ({mj['train']['epochs']} epochs, {w1 / 60:.1f} min)", results["jarvis"]),
                      row(f"+ fine-tuned on {FINETUNE_CLIPS} real clips ({mf['train']['epochs']} epochs, {w2 / 60:.1f} min)",
                          results["jarvis_ft"]), "",
                      f"Goals: FRR ≤ 10 % at 1 FA/h first, then ≤ 5 % at 0.5 FA/h (openWakeWord's published level). "
                      f"With {r['negative_hours']:.2f} h of negatives, 1 FA/h allows "
                      f"{int(r['negative_hours'])} false accept(s) and 0.5 FA/h allows "
                      f"{int(r['negative_hours'] * 0.5)}; the FAPH intervals show how little that pins down.\n",
                      "| model | params | MACs/inference | int8 .tflite | float top-1 (synthetic test) | int8 top-1 | int8 = float |",
                      "|---|---:|---:|---:|---|---|---:|"]
            for name, m in (("jarvis", mj), ("jarvis_ft", mf)):
                t = m["test_clips"]
                lines.append(f"| {name} | {m['model']['parameters']:,} | {m['model']['macs']:,} | "
                             f"{m['model']['tflite_bytes']:,} B | {pct(t['float']['top1'])} | {pct(t['int8']['top1'])} | "
                             f"{pct(t['int8_agrees_with_float'])} |")
            lines.append(f"\nPeak memory of training: {max(r1, r2):,} MiB.\n")
    write_section(Path(args.out), "train", "tools/bench_train.py", "\n".join(lines))
    print("\n".join(lines))
    return 0


# Each variant changes one thing of configs/jarvis.toml (appended TOML sections).
ABLATIONS = [
    ("configs/jarvis.toml as it is", ""),
    ("smaller model: tc 32 filters x 3 blocks", "[model]\nfilters = 32\nblocks = 3\n"),
    ("no label smoothing", "[train]\nlabel_smoothing = 0.0\n"),
    ("context augmentation on (p = 0.5)", "[augment]\ncontext_prob = 0.5\n"),
]


def ablations(real: Path, out: Path) -> int:
    """Synthetic-only variants of the jarvis recipe, each evaluated like the main table (all 384 clips)."""
    if not real.is_dir():
        raise SystemExit(f"{real} is absent: nothing to measure")
    lines = ["## Training recipe variants (issue 4)\n",
             f"Measured {time.strftime('%Y-%m-%d')}; rerun: `.venv/bin/python tools/bench_train.py --ablations`. "
             "Each row trains configs/jarvis.toml with one change, on synthetic speech only, and evaluates it with "
             "`kws eval` on all 384 real \"jarvis\" clips against the same real negatives as above. One run each: "
             "differences of a few points are within run-to-run variation.\n",
             "| variant | MACs/inference | FRR at 1 FA/h | FRR at 0.5 FA/h | shipped threshold: FRR; false accepts |",
             "|---|---:|---|---|---|"]
    neg = [real / "speech_commands_v2_test", real / "fsdd", real / "picovoice_wwb" / "view_glass"]
    with tempfile.TemporaryDirectory(prefix="kws-bench-ablate-") as t:
        tmp = Path(t)
        for i, (name, extra) in enumerate(ABLATIONS):
            cfg = tmp / f"v{i}.toml"
            cfg.write_text((REPO / "configs" / "jarvis.toml").read_text() + "\n" + extra)
            model = tmp / f"m{i}"
            run(KWS + ["train", "--config", str(cfg), "--out", str(model)], cwd=REPO, log=tmp / f"v{i}.log")
            js = tmp / f"v{i}.json"
            cmd = KWS + ["eval", str(model), "--positives", str(real / "picovoice_wwb" / "jarvis"), "--json", str(js), "--quiet"]
            for d in neg:
                cmd += ["--negatives", str(d)]
            run(cmd + ["--noise", str(real / "background_noise")], cwd=REPO, log=tmp / f"v{i}_eval.log")
            m = json.loads((model / "metrics.json").read_text())
            r = row(name, json.loads(js.read_text()))
            cells = r.split(" | ")
            lines.append(" | ".join([cells[0], f"{m['model']['macs']:,}", *cells[1:]]))
            print(lines[-1], flush=True)
    write_section(out, "train-ablations", "tools/bench_train.py --ablations", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
