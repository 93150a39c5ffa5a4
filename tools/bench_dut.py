#!/usr/bin/env python3
"""Measures the bench app (the MLPerf Tiny DUT, firmware/src/bench.c) and rewrites the `bench-dut`
section of BENCHMARKS.md.

    .venv/bin/python tools/bench_dut.py [--shared ../shared] [--n 200] [--fuzz-seconds 60] [--out BENCHMARKS.md]

All on this machine, in one run:
- the MLPerf Tiny DS-CNN reference model (kws_ref_model.tflite) built into the bench app with
  `make -C firmware MODEL=<.tflite>`, driven over the DUT protocol exactly as the runner does (db load,
  db <hex>, infer N W, results), on Cortex-M4 under qemu-system-arm -M mps2-an386 (UART over TCP) and on
  the host board (stdin/stdout): every int8 output compared with the tflite-micro interpreter;
- instructions per inference from the m-lap-us- timestamps of `infer 10 2` (-icount shift=6: one
  instruction = 64 ns of virtual time), beside model_run's count for kws_model_invoke() alone;
- image flash and static RAM of the bench app;
- libFuzzer + ASan + UBSan on the command parser for --fuzz-seconds: executions, coverage, crashes,
  and gcov's line coverage of bench.c over the seeds plus the corpus the run grew.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "toolchain"))
sys.path.insert(0, str(REPO / "tools"))

from benchmarks_md import write_section  # noqa: E402
from kws.bench import qemu  # noqa: E402
from kws.compile import reference_inputs, sim  # noqa: E402

MODEL_NAME = "mlperf_tiny_kws_ref_model.tflite"
BUILD = REPO / "build" / "firmware" / "bench-dut"


def compare(board: str, image: Path, x: np.ndarray, ref: np.ndarray) -> dict:
    session = qemu.uart_session(image) if board == "qemu_mps2_an386" else qemu.process_session(image)
    got = []
    t0 = time.perf_counter()
    with session as s:
        s.read_until("m-ready", 30)
        for i in range(len(x)):
            s.dut_load(x[i].tobytes())
            s.dut_infer(1, 0)
            got.append(s.dut_results_raw())
    secs = time.perf_counter() - t0
    got = np.array(got, dtype=np.int64)
    return {"differ": int(np.count_nonzero(got != ref.astype(np.int64))), "values": int(ref.size), "secs": secs}


def lap_instructions(image: Path, x: np.ndarray, n: int = 10) -> list[float]:
    ns_per_instr = 2 ** qemu.DEFAULT_ICOUNT_SHIFT
    out = []
    with qemu.uart_session(image) as s:
        s.read_until("m-ready", 30)
        for i in range(len(x)):
            s.dut_load(x[i].tobytes())
            inf = s.dut_infer(n, 2)
            out.append((inf.laps_us[1] - inf.laps_us[0]) * 1000 / ns_per_instr / n)
    return out


def fuzz(seconds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kws-fuzz-") as tmp:
        args = ["make", "--no-print-directory", "-C", str(REPO / "firmware" / "fuzz"), f"OUT={tmp}"]
        t0 = time.perf_counter()
        run = subprocess.run(args + [f"SECONDS={seconds}", "run"], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        log = run.stderr
        crashes = [p.name for p in Path(tmp).iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
        runs = int(re.search(r"stat::number_of_executed_units: (\d+)", log).group(1))
        last = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", log)[-1]
        corpus = len(list((Path(tmp) / "corpus").iterdir()))
        cov = subprocess.run(args + ["coverage"], capture_output=True, text=True)
        m = re.search(r"Lines executed:([\d.]+)% of (\d+)", cov.stdout)
        seeds = len(list((REPO / "firmware" / "fuzz" / "corpus" / "bench").iterdir()))
        return {"rc": run.returncode, "runs": runs, "wall": wall, "edges": int(last[0]), "features": int(last[1]),
                "corpus": corpus, "seeds": seeds, "crashes": crashes,
                "lines": f"{m.group(1)} % of {m.group(2)} lines" if m else "n/a"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--n", type=int, default=200, help="real inputs compared with tflite-micro")
    ap.add_argument("--fuzz-seconds", type=int, default=60)
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    shared = Path(args.shared)
    model = shared / "models" / "reference" / MODEL_NAME

    clips = reference_inputs.real_clips(shared / "data" / "real", args.n)
    x = reference_inputs.inputs_for("dscnn", clips)
    ref = sim.run_tflm(model, x).outputs.reshape(args.n, -1)
    distinct = len({r.tobytes() for r in ref})

    images = {b: qemu.build(b, "bench", build_dir=BUILD, make_vars={"MODEL": str(model)})
              for b in ("qemu_mps2_an386", "host")}
    rows, differ = [], 0
    for board, image in images.items():
        r = compare(board, image, x, ref)
        rows.append(f"| {board} | {args.n} | {r['values']:,} | {r['differ']} | {distinct} | {r['secs']:.1f} s |")
        print(rows[-1], flush=True)
        differ += r["differ"]
        if r["differ"]:
            print(f"bench_dut: {board}: {r['differ']} values differ from tflite-micro", file=sys.stderr)

    laps = lap_instructions(images["qemu_mps2_an386"], x[:5])
    alone = sim.run_qemu(model, x[:5]).stats["instructions_per_inference"]
    ipi = statistics.median(laps)
    sizes = sim.elf_sizes(images["qemu_mps2_an386"])
    stack = 64 * 1024  # STARTUP_STACK_BYTES of boards/qemu_mps2_an386/linker.ld, inside bss
    print(f"instructions per inference {ipi:,.0f} (model alone {alone:,.0f}); sizes {sizes}", flush=True)

    fz = fuzz(args.fuzz_seconds)
    print(f"fuzz: {fz}", flush=True)

    lines = [
        "## MLPerf Tiny DUT: the bench app",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, Python {platform.python_version()}. "
        f"Rerun: `.venv/bin/python tools/bench_dut.py` (about {args.n // 100 + 2} min).",
        "",
        f"The MLPerf Tiny DS-CNN reference model ({MODEL_NAME}) built into the bench app by "
        "`make -C firmware BOARD=<board> MODEL=<.tflite>` and driven over the DUT protocol as the runner "
        "does (`db load 490`, `db <hex>` in 62-byte chunks, `infer 1 0`, then `results raw` for the exact int8 "
        f"values); {args.n} inputs = MLPerf KWS features (our C frontend, mlperf_kws01) of the first {args.n} "
        "real Speech Commands v2 test clips; reference: the tflite-micro Python interpreter.",
        "",
        "| board | inputs | output values | values differing from tflite-micro | distinct outputs | time |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- Instructions per inference from the lap timestamps (`infer 10 2`, m-lap-us- difference / 10, "
        f"-icount shift=6 so 1 instruction = 64 ns; median of 5 inputs): **{ipi:,.0f}** "
        f"(per input: {', '.join(f'{v:,.0f}' for v in laps)}). The model alone (model_run, ticks around "
        f"kws_model_invoke()): {alone:,.0f}; the DUT adds {ipi - alone:,.0f} per run (input copy, tick read). "
        f"At 120 MHz and one instruction per cycle that is {ipi / 120e6 * 1e3:.1f} ms (an assumption, not a measurement).",
        f"- Image (Cortex-M4, -O2): flash {sizes['text'] + sizes['data']:,} B (text {sizes['text']:,} + data "
        f"{sizes['data']:,}); static RAM {sizes['data'] + sizes['bss'] - stack:,} B (data + bss without the "
        f"{stack // 1024} KiB stack reserve of the QEMU board's linker script).",
        f"- Fuzzing the command parser (firmware/fuzz, libFuzzer + ASan + UBSan, stub model, protocol "
        f"invariants checked on every input): {fz['runs']:,} executions in {fz['wall']:.0f} s "
        f"(`make -C firmware/fuzz run SECONDS={args.fuzz_seconds}`, one core), {fz['edges']} edges / "
        f"{fz['features']} features covered, corpus grown from {fz['seeds']} seeds to {fz['corpus']} inputs; "
        f"**crashes: {len(fz['crashes'])}** (exit status {fz['rc']}). Line coverage of bench.c over seeds + "
        f"corpus (gcov): {fz['lines']}.",
    ]
    write_section(Path(args.out), "bench-dut", "tools/bench_dut.py", "\n".join(lines))
    print(f"wrote the bench-dut section of {args.out}")
    return 1 if differ or fz["crashes"] or fz["rc"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
