"""The `kws compile`, `kws sim` and `kws export` commands: argument parsing and dispatch only."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from kws.errors import KwsError


def _model_path(arg: str) -> Path:
    """A .tflite file, or a model folder holding model_int8.tflite."""
    p = Path(arg)
    if p.is_dir():
        q = p / "model_int8.tflite"
        if not q.is_file():
            raise KwsError(f"{p}: a folder without model_int8.tflite (give the .tflite file or a kws train model folder)")
        return q
    if not p.exists():
        raise KwsError(f"{p}: no such file")
    return p


def _bytes(text: str) -> int:
    t = text.strip().lower()
    mult = 1
    for suffix, m in (("kib", 1024), ("kb", 1000), ("k", 1024), ("mib", 1 << 20), ("mb", 10 ** 6), ("m", 1 << 20)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    try:
        v = int(float(t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count (e.g. 16384, 16k, 1m)") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def add_parsers(sub, add) -> None:
    c = add(sub, "compile", "compile an int8 .tflite model to C (weights, static memory plan, kernel calls)",
            """Compile an int8 TFLite model ahead of time to plain C: const weights, one kernel call per
            operator, every activation at an offset fixed at compile time in one arena whose size is a
            compile-time constant. Writes OUT/<name>.c, OUT/<name>.h, OUT/<name>.json and prints a per-layer
            table of MACs, RAM and flash. Outputs are bit-identical to the tflite-micro interpreter.""",
            ["kws compile models/hey_nova/model_int8.tflite --out build/nova_c",
             "kws compile ../shared/models/reference/mlperf_tiny_kws_ref_model.tflite --out build/kws01 "
             "--target cortex-m4 --max-ram 16.5k"])
    c.add_argument("model", help="int8 .tflite file (or a kws train model folder)")
    c.add_argument("--out", required=True, help="output folder (new, or a previous kws compile output)")
    c.add_argument("--target", choices=["host", "cortex-m4"], default="cortex-m4",
                   help="kernel set the memory plan is made for (scratch sizes differ); default cortex-m4")
    c.add_argument("--name", default="model", help="C name: kws_<name>_invoke(), <name>.c (default model)")
    c.add_argument("--max-ram", type=_bytes, default=None, metavar="BYTES",
                   help="fail if arena + state exceed this (e.g. 16384, 16k)")
    c.add_argument("--quiet", action="store_true", help="no per-layer table")

    s = add(sub, "sim", "run a model in a simulator: tflm (reference), host (x86 C), qemu (Cortex-M4)",
            """Run an int8 model on every input of X.npy ([N, *input_shape], the model's input dtype) in one
            of three simulators and write the N outputs to Y.npy. tflm is the tflite-micro interpreter (the
            golden reference); host builds the compiled C for x86; qemu builds it into Cortex-M4 firmware and
            runs it under qemu-system-arm -M mps2-an386 with -icount, counting instructions. Inputs run in
            order without a reset, so streaming state carries over.""",
            ["kws sim model_int8.tflite --inputs x.npy --out y_host.npy --engine host",
             "kws sim kws01.tflite --inputs x.npy --out y.npy --engine qemu --stats stats.json"])
    s.add_argument("model", help="int8 .tflite file (or a kws train model folder)")
    s.add_argument("--inputs", required=True, metavar="X.npy", help="inputs [N, *input_shape]")
    s.add_argument("--out", required=True, metavar="Y.npy", help="outputs [N, *output_shape] (replaced if present)")
    s.add_argument("--engine", choices=["tflm", "host", "qemu"], default="host")
    s.add_argument("--stats", default=None, metavar="OUT.json",
                   help="write measurements (qemu: instructions_per_inference, arena_bytes, flash_bytes)")

    e = add(sub, "export", "export a model for firmware: compiled C, an aligned .tflite C array, thresholds",
            """Everything a firmware project needs from a model folder: OUT/compiled/ (kws compile output for
            Cortex-M4), OUT/tflm/<name>_data.c/.h (the .tflite as a 16-byte aligned C array, for projects
            that run tflite-micro themselves) and OUT/kws_detector_config.h (the calibrated threshold,
            smoothing window and refractory period, when the folder has thresholds.json).""",
            ["kws export models/hey_nova --out build/export/hey_nova"])
    e.add_argument("model", help="a kws train model folder (or an int8 .tflite)")
    e.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    e.add_argument("--name", default="model", help="C name prefix (default model)")


def run_cli(args: argparse.Namespace) -> int:
    if args.command == "compile":
        from kws.compile import codegen
        c = codegen.compile_model(_model_path(args.model), target=args.target, name=args.name, max_ram=args.max_ram)
        out = codegen.write(c, args.out)
        if not args.quiet:
            print(codegen.layer_table(c))
        print(f"wrote {out}/{c.name}.c, {c.name}.h, {c.name}.json (arena {c.plan.arena_bytes} B, "
              f"state {c.plan.state_bytes} B, weights {c.weights_bytes} B)")
        return 0
    if args.command == "sim":
        return _sim(args)
    if args.command == "export":
        return export(args.model, args.out, name=args.name)
    raise AssertionError(args.command)


def _sim(args) -> int:
    import numpy as np

    from kws.compile import sim
    from kws.fileio import atomic_path

    model = _model_path(args.model)
    try:
        x = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise KwsError(f"{args.inputs}: cannot read as .npy ({e})") from None
    res = sim.run(args.engine, model, x)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise KwsError(f"{out}: the output must be a .npy file")
    with atomic_path(out, overwrite=True) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, res.outputs)
    print(f"wrote {out}: {list(res.outputs.shape)} {res.outputs.dtype} ({args.engine})")
    if args.stats:
        stats = dict(res.stats, engine=args.engine, model=str(model))
        sim.save_stats(stats, args.stats)
        if "instructions_per_inference" in stats:
            print(f"instructions per inference (median of {stats['inferences']}): "
                  f"{stats['instructions_per_inference']:,.0f}; arena {stats['arena_bytes']} B; "
                  f"flash {stats['flash_bytes']} B")
    return 0


def tflite_c_array(data: bytes, name: str, source_name: str, sha256: str) -> tuple[str, str]:
    guard = f"KWS_{name.upper()}_DATA_H"
    header = (f"// Generated by kws export from {source_name} (sha256 {sha256}). Do not edit.\n"
              f"#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n"
              f"#define {name.upper()}_DATA_LEN {len(data)}\n"
              f"// The .tflite flatbuffer, 16-byte aligned as tflite-micro requires.\n"
              f"extern const uint8_t {name}_data[{name.upper()}_DATA_LEN];\n\n#endif  // {guard}\n")
    rows = []
    for i in range(0, len(data), 16):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in data[i:i + 16]) + ",")
    source = (f"// Generated by kws export from {source_name} (sha256 {sha256}). Do not edit.\n"
              f'#include "{name}_data.h"\n\n'
              f"const uint8_t {name}_data[{name.upper()}_DATA_LEN] __attribute__((aligned(16))) = {{\n"
              + "\n".join(rows) + "\n};\n")
    return header, source


def export(model_arg: str, out: str, *, name: str = "model") -> int:
    import hashlib

    from kws.compile import codegen
    from kws.fileio import atomic_dir

    model = _model_path(model_arg)
    model_dir = model.parent if Path(model_arg).is_dir() else None
    c = codegen.compile_model(model, target="cortex-m4", name=name)
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with atomic_dir(out) as tmp:
        tmp = Path(tmp)
        codegen.write(c, tmp / "compiled")
        (tmp / "tflm").mkdir()
        h, src = tflite_c_array(data, name, model.name, sha)
        (tmp / "tflm" / f"{name}_data.h").write_text(h)
        (tmp / "tflm" / f"{name}_data.c").write_text(src)
        if model_dir is not None and (model_dir / "thresholds.json").is_file():
            from kws.evaluate import codegen as det_codegen
            (tmp / "kws_detector_config.h").write_text(det_codegen.detector_header(model_dir))
        if model_dir is not None and (model_dir / "MODEL_CARD.md").is_file():
            shutil.copyfile(model_dir / "MODEL_CARD.md", tmp / "MODEL_CARD.md")
    print(f"wrote {out}: compiled/{name}.c|.h (arena {c.plan.arena_bytes} B), tflm/{name}_data.c|.h "
          f"({len(data)} B)" + (", kws_detector_config.h" if model_dir and (model_dir / 'thresholds.json').is_file() else ""),
          file=sys.stdout)
    return 0
