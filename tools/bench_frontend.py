#!/usr/bin/env python3
"""Measures the C frontend and rewrites the `frontend` section of BENCHMARKS.md.

    .venv/bin/python tools/bench_frontend.py [--shared ../shared] [--out BENCHMARKS.md]

All on this machine, in one run:
- parity of our int8 features (mlperf_kws01) with MLPerf Tiny's float pipeline on the 1,940 real
  Speech Commands v2 test clips (`x` of speech_commands_v2_test_kws01_features.npz);
- top-1 of the MLPerf Tiny reference model in the tflite-micro interpreter on our features vs on
  those float-pipeline features, with 95 % exact binomial intervals;
- the Cortex-M4 build under qemu-system-arm -M mps2-an386 -icount: bytes compared with the host
  library on every clip (streaming and whole-clip interfaces), instructions per 20 ms hop, memory;
- host library throughput (median of 3 runs); the log-mel preset against librosa.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "toolchain"))
sys.path.insert(0, str(REPO / "tools"))

from benchmarks_md import write_section  # noqa: E402
from kws import config, features  # noqa: E402
from kws.data import audio  # noqa: E402
from kws.features import device, reference  # noqa: E402

LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"]


def binom_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for k successes in n trials."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def top1(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=200_000)
    preds = []
    for row in x:
        interp.set_input(row.reshape(1, 49, 10, 1), 0)
        interp.invoke()
        preds.append(int(np.argmax(interp.get_output(0))))
        interp.reset()
    return np.array(preds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    shared = Path(args.shared)
    real = shared / "data" / "real"
    ref = np.load(real / "speech_commands_v2_test_kws01_features.npz")
    names = list(ref["names"])
    pcms = [audio.load_pcm16(real / "speech_commands_v2_test" / n) for n in names]
    clips = np.stack([np.pad(p[:16000], (0, 16000 - len(p[:16000]))) for p in pcms])
    lines = ["## Frontend (issue 3)\n",
             f"Measured {time.strftime('%Y-%m-%d')} on this machine in one run of `tools/bench_frontend.py`. "
             "Instruction counts are exact guest instructions under `qemu-system-arm -M mps2-an386 -icount "
             "shift=6` (DESIGN.md decision 5); a time at a clock rate assumes one instruction per cycle and is an "
             "estimate, not a measurement.\n"]

    # Host library: features of all clips, timed.
    times, ours = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        ours = np.stack([features.compute(p) for p in pcms])
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    d = ours.astype(int) - ref["x"]
    ad = np.abs(d)
    hist = np.bincount(ad.ravel(), minlength=4)
    lines.append("### Parity with MLPerf Tiny's float pipeline (1,940 real clips, 950,600 int8 values)\n")
    lines.append("| | value |\n|---|---:|")
    lines.append(f"| identical | {hist[0] / ad.size * 100:.3f} % |")
    lines.append(f"| within ±1 (goal ≥ 99 %) | {(ad <= 1).mean() * 100:.3f} % |")
    lines.append(f"| largest difference (goal ≤ 3) | {ad.max()} |")
    lines.append(f"| values off by 1 / 2 / 3+ | {hist[1]} / {hist[2]} / {int((ad >= 3).sum())} |")
    lines.append(f"| clips with every value identical | {int((ad.reshape(len(ad), -1).max(1) == 0).sum())} of {len(ad)} |\n")

    model = (shared / "models/reference/mlperf_tiny_kws_ref_model.tflite").read_bytes()
    y = ref["y"]
    p_ours, p_ref = top1(model, ours), top1(model, ref["x"])
    k_o, k_r, n = int((p_ours == y).sum()), int((p_ref == y).sum()), len(y)
    lo_o, hi_o = binom_ci(k_o, n)
    lo_r, hi_r = binom_ci(k_r, n)
    lines.append("### MLPerf Tiny reference model (tflite-micro interpreter) on these clips\n")
    lines.append("| features | top-1 | 95 % CI (exact binomial) |\n|---|---:|---|")
    lines.append(f"| ours (C frontend, `mlperf_kws01`) | {k_o / n * 100:.2f} % ({k_o}/{n}) | {lo_o * 100:.2f}–{hi_o * 100:.2f} % |")
    lines.append(f"| MLPerf's float pipeline (npz) | {k_r / n * 100:.2f} % ({k_r}/{n}) | {lo_r * 100:.2f}–{hi_r * 100:.2f} % |")
    lines.append(f"\nSame prediction on {int((p_ours == p_ref).sum())} of {n} clips. Goal: ≥ 92.0 %.\n")

    lines.append("### Cortex-M4 build (QEMU mps2-an386) against the host library\n")
    lines.append("| preset | clips | rows identical to host | instructions per hop: median / min / max | "
                 "derived time per hop at 80 MHz | state RAM | scratch RAM | table flash | code flash |")
    lines.append("|---|---:|---|---|---|---:|---:|---:|---:|")
    for preset in ("mlperf_kws01", "ww_logmel40"):
        elf = device.build_check(preset)
        t0 = time.perf_counter()
        run = device.run_check(clips, preset=preset, elf=elf, timeout_s=1800)
        dt = time.perf_counter() - t0
        host = ours if preset == "mlperf_kws01" else np.stack([features.compute(c, preset=preset) for c in clips])
        same = int(np.all(run.features == host, axis=(1, 2)).sum())
        ins = run.instructions_per_row
        mem = device.memory_report(elf)
        hop_ms = config.frontend_preset(preset).hop_samples / 16.0
        us = np.median(ins) / 80.0
        lines.append(f"| `{preset}` | {len(clips)} | {same} of {len(clips)} | {np.median(ins):,.0f} / {ins.min():,.0f} / "
                     f"{ins.max():,.0f} | {us:.0f} µs ({us / (hop_ms * 1000) * 100:.2f} % of a {hop_ms:.0f} ms hop) | "
                     f"{mem['state_ram_bytes']:,} B | {mem['scratch_ram_bytes']:,} B | {mem['table_flash_bytes']:,} B | "
                     f"{mem['code_flash_bytes']:,} B |")
        print(f"{preset}: qemu run {dt:.1f} s", file=sys.stderr)
    lines.append("\nEvery clip is also run through the streaming interface (`kws_frontend_push`, hop by hop) and the "
                 "whole-clip interface on the device; the app fails on any difference, so streaming output equals "
                 "whole-clip output on all of them. Goals: ≤ 40,000 instructions per hop for `mlperf_kws01` (issue 3); "
                 "≤ 25,000 for `ww_logmel40` (the always-on budget). State = `kws_frontend_t` "
                 "(sample history), scratch = FFT/magnitude buffers reusable between hops; flash counts the "
                 "generated tables and the frontend's functions.\n")

    ww = config.frontend_preset("ww_logmel40")
    errs = []
    for p in pcms[::97]:
        p = np.pad(p[:16000], (0, 16000 - len(p[:16000])))
        o = (features.compute(p, preset="ww_logmel40").astype(float) - ww.out_zero_point) * ww.out_scale
        errs.append(np.abs(o - reference.logmel_librosa(p, ww)).ravel())
    e = np.concatenate(errs)
    lines.append("### Host library and the log-mel preset\n")
    lines.append(f"- Host library (ctypes): {len(pcms)} clips in a median {med:.2f} s over 3 runs "
                 f"({len(pcms) / med:,.0f} clips/s, one thread).")
    lines.append(f"- `ww_logmel40` vs librosa (its own STFT and HTK mel filters, no normalization) on {len(errs)} real "
                 f"clips: mean |ln-mel difference| {e.mean():.3f}, 99th percentile {np.percentile(e, 99):.3f}, "
                 f"max {e.max():.3f} (int8 step 0.1; librosa draws its triangles in Hz, TensorFlow in mel).\n")
    lines.append("Where it falls short: the ±1 differences come from float32 rounding in the reference at "
                 "truncation boundaries (e.g. silent frames where TensorFlow's DCT gives 82.99999 for 83); "
                 "MLPerf's cast wraps values above 127 to negative numbers, which `mlperf_kws01` reproduces on "
                 "purpose (1 value in these clips) and our own presets saturate instead.\n")
    write_section(Path(args.out), "frontend", "tools/bench_frontend.py", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
