#!/usr/bin/env python3
"""Measures `kws compile` and rewrites the `compile` section of BENCHMARKS.md.

    .venv/bin/python tools/bench_compile.py [--shared ../shared] [--n 1000] [--out BENCHMARKS.md]

All on this machine, in one run:
- bit-exactness of the generated C against the tflite-micro interpreter on the three reference models
  of ../shared/models/reference, N varied real-speech inputs each, output and every intermediate tensor,
  built for x86 (host) and for Cortex-M4 under qemu-system-arm -M mps2-an386;
- the MLPerf Tiny DS-CNN on Cortex-M4 under QEMU -icount: instructions per inference (median), per
  op, per MAC; arena, state, weights and image flash;
- compile time of that model (median of 5).
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
from kws.compile import codegen, reference_inputs, sim  # noqa: E402

# MLPerf Tiny v1.0 inference results, keyword spotting, NUCLEO-L4R5ZI (Cortex-M4F at 120 MHz):
# the TFLM reference submission and the fastest published one (figures as quoted in issue 5/7).
PUBLISHED = [("TFLM reference (MLPerf Tiny)", 181.9), ("best published stack (MLPerf Tiny)", 43.2)]
BOARD_MHZ = 120


def bit_exact_rows(shared: Path, n: int) -> tuple[list[str], dict]:
    clips = reference_inputs.real_clips(shared / "data" / "real", n)
    rows, dscnn = [], {}
    for key, fname in reference_inputs.MODELS.items():
        model = shared / "models" / "reference" / fname
        x = reference_inputs.inputs_for(key, clips)
        t0 = time.perf_counter()
        ref = sim.run_tflm(model, x, trace=True)
        t_tflm = time.perf_counter() - t0
        distinct = len({o.tobytes() for o in ref.outputs.reshape(n, -1)})
        values = sum(v.size for v in ref.trace.values())
        for engine in ("host", "qemu"):
            t0 = time.perf_counter()
            got = sim.run(engine, model, x, trace=True)
            secs = time.perf_counter() - t0
            bad = sum(int(np.count_nonzero(ref.trace[k] != got.trace[k])) for k in ref.trace)
            bad_out = int(np.count_nonzero(ref.outputs != got.outputs))
            rows.append(f"| {fname} | {engine} | {n:,} | {len(ref.trace)} | {values:,} | {bad + bad_out} | "
                        f"{distinct} | {secs:.1f} s (tflm {t_tflm:.1f} s) |")
            print(rows[-1], flush=True)
            if key == "dscnn" and engine == "qemu":
                dscnn = got.stats
    return rows, dscnn


def profile_dscnn(shared: Path, n: int) -> tuple[dict, codegen.Compiled]:
    model = shared / "models" / "reference" / reference_inputs.MODELS["dscnn"]
    clips = reference_inputs.real_clips(shared / "data" / "real", n)
    x = reference_inputs.inputs_for("dscnn", clips)
    c = codegen.compile_model(model, target="cortex-m4")
    plain = sim.run_qemu(model, x, compiled=c)            # timing without profiling hooks
    prof = sim.run_qemu(model, x, compiled=c, profile=True)
    stats = dict(plain.stats)
    stats["instructions_per_op"] = prof.stats["instructions_per_op"]
    return stats, c


def compile_seconds(model: Path) -> float:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        codegen.compile_model(model, target="cortex-m4")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def op_tests() -> tuple[list[str], str]:
    """Run the property-based single-op tests (models made by TensorFlow, compared with tflite-micro on
    every tensor) with a log of what they compared; summarise per operator."""
    import collections
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "ops.jsonl"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_compile_ops.py", "tests/test_compile_ops_qemu.py"],
                              cwd=REPO, capture_output=True, text=True,
                              env={**__import__("os").environ, "KWS_OPTEST_LOG": str(log)})
        secs = time.perf_counter() - t0
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    tail = (proc.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
    models = collections.Counter()
    engines: dict[str, set] = collections.defaultdict(set)
    for r in records:
        for kind in sorted(set(r["ops"])):
            models[kind] += 1
            engines[kind].update(r["engines"])
    rows = [f"| {kind} | {n} | {', '.join(sorted(engines[kind]))} |" for kind, n in sorted(models.items())]
    summary = (f"pytest: {tail} ({secs / 60:.1f} min); {len(records)} models compared "
               f"({sum('qemu' in r['engines'] for r in records)} also on QEMU)")
    return rows, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--n", type=int, default=1000, help="inputs per model for the bit-exactness table")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    ap.add_argument("--skip-op-tests", action="store_true", help="leave out the single-op property tests")
    args = ap.parse_args()
    shared = Path(args.shared)

    rows, _ = bit_exact_rows(shared, args.n)
    op_rows, op_summary = ([], "") if args.skip_op_tests else op_tests()
    stats, c = profile_dscnn(shared, 20)
    secs = compile_seconds(shared / "models" / "reference" / reference_inputs.MODELS["dscnn"])
    instr = stats["instructions_per_inference"]
    per_op = stats["instructions_per_op"]
    layer_rows = []
    for layer, ins in zip(c.layers, per_op):
        per_mac = f"{ins / layer.macs:.2f}" if layer.macs else "–"
        layer_rows.append(f"| {layer.index} | {layer.kind} | {layer.kernel} | {list(layer.out_shape)} | "
                          f"{layer.macs:,} | {ins:,.0f} | {per_mac} |")
    budget = 4.0e6
    lines = [
        "## Model compiler (issue 5)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on this 2-core x86_64 machine. "
        "Rerun: `.venv/bin/python tools/bench_compile.py`.",
        "",
        "### Bit-exact with the tflite-micro interpreter",
        "",
        f"Each model runs on {args.n:,} inputs made from real Speech Commands clips with our C frontend "
        "(okay_nabu: one continuous stream, state carried over). Compared: the output and every op's output "
        "tensor of every inference (`kws sim --engine tflm` vs `host` = generated C on x86, `qemu` = generated C "
        "in Cortex-M4 firmware under qemu-system-arm). Distinct outputs shows the comparison is not of constants.",
        "",
        "| model | engine | inputs | tensors per inference | values compared | values differing | distinct outputs | run time |",
        "|---|---|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        *([
            "",
            "Randomized single-op and small multi-op models, made with TensorFlow's converter (full-integer "
            "quantization) across shapes, strides, paddings, dilations, activations and quantization parameters "
            "drawn by `hypothesis` (derandomized: the same models every run; `KWS_OPTEST_SCALE`/`KWS_OPTEST_SEED` "
            "search deeper), 24 inputs each over the whole int8 range, every tensor compared with tflite-micro "
            "(`tests/test_compile_ops*.py`). Models count once per operator they contain; a model with a "
            "constant output is redrawn, not counted. " + op_summary + ".",
            "",
            "| operator | models compared | engines |",
            "|---|---:|---|",
            *op_rows,
        ] if op_rows else []),
        "",
        "### MLPerf Tiny DS-CNN on Cortex-M4 (QEMU `-icount`)",
        "",
        f"Median of {stats['inferences']} inferences of the generated C in `firmware/apps/model_run` for "
        "`qemu_mps2_an386`, counted in guest **instructions** under `-icount shift=6` (not cycles: a latency "
        f"at {BOARD_MHZ} MHz below assumes one instruction per cycle, which flatters loads and stores).",
        "",
        "| instructions / inference | goal | instructions / MAC | arena | state | weights + tables | image flash (text + data) | compile time (median of 5) | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {instr:,.0f} | ≤ {budget:,.0f} | {instr / c.macs:.2f} | {stats['arena_bytes']:,} B (goal ≤ 16,500) | "
        f"{stats['state_bytes']} B | {stats['weights_bytes']:,} B | {stats['flash_bytes']:,} B | {secs:.2f} s | ≤ 5 s |",
        "",
        f"Implied latency at {BOARD_MHZ} MHz and 1 instruction/cycle: {instr / BOARD_MHZ / 1e3:.1f} ms. "
        "Published MLPerf Tiny latencies on the NUCLEO-L4R5ZI for comparison (measured cycles on the real "
        "board, so not like for like): " + "; ".join(f"{name}: {ms} ms" for name, ms in PUBLISHED) + ".",
        "",
        "Per op (instructions from the profile build, whose hooks add a few instructions per op):",
        "",
        "| # | op | kernel | output | MACs | instructions | per MAC |",
        "|---:|---|---|---|---:|---:|---:|",
        *layer_rows,
    ]
    write_section(Path(args.out), "compile", "tools/bench_compile.py", "\n".join(lines))
    print(f"DS-CNN: {instr:,.0f} instructions/inference, arena {stats['arena_bytes']} B, compile {secs:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
