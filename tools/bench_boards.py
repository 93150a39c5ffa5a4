#!/usr/bin/env python3
"""Builds every Cortex-M board's images and rewrites the `boards` section of BENCHMARKS.md.

    .venv/bin/python tools/bench_boards.py [--shared ../shared] [--model models/jarvis] [--out BENCHMARKS.md]

Per board in the registry (toolchain/kws/boards.py) that has a flash/RAM budget, builds:
- selftest;
- model_run with the MLPerf Tiny DS-CNN reference model compiled by `kws compile --target cortex-m4`
  (from ../shared/models/reference);
- bench (the MLPerf Tiny DUT, performance mode) with the same DS-CNN, where firmware/apps/bench exists;
- wake with --model's compiled model, frontend tables and detector constants (models/jarvis), if present.
Reports each image's sections (arm-none-eabi-size -A) and the fraction of the part's flash and RAM it
uses: flash = .text (code + read-only data) + .ARM.exidx + .data's initial values; RAM = .data + .bss
+ the stack the linker script reserves. Images a board cannot build are listed with the reason.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "toolchain"))
sys.path.insert(0, str(REPO / "tools"))

from benchmarks_md import write_section  # noqa: E402
from kws import boards, cli  # noqa: E402
from kws.bench import qemu  # noqa: E402
from kws.errors import KwsError  # noqa: E402

DSCNN = "mlperf_tiny_kws_ref_model.tflite"


def sections(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", out, re.MULTILINE)}


def images(board: str, build: Path, dscnn_dir: Path | None, dscnn_tflite: Path | None,
           model: Path | None) -> list[tuple[str, Path | str]]:
    """(label, image or the reason it does not build) for each image of `board`."""
    jobs = [("selftest", dict(app="selftest"))]
    if dscnn_dir is not None:
        jobs.append(("model_run + DS-CNN", dict(app="model_run", extra_srcs=[dscnn_dir / "model.c"],
                                                extra_inc=[dscnn_dir])))
    if dscnn_tflite is not None and (qemu.FIRMWARE_DIR / "apps" / "bench").is_dir():
        jobs.append(("bench + DS-CNN", dict(app="bench", make_vars={"MODEL": str(dscnn_tflite)})))
    if model is not None:
        jobs.append((f"wake + {model.name}", dict(app="wake", make_vars={"MODEL": str(model)})))
    out = []
    for label, kw in jobs:
        app = kw.pop("app")
        try:
            out.append((label, qemu.build(board, app, build_dir=build / label.split()[0], **kw)))
        except KwsError as exc:
            out.append((label, _why(board, app, build / label.split()[0], kw) or str(exc)))
        print(f"{board} {label}: {out[-1][1]}", flush=True)
    return out


def _why(board: str, app: str, build: Path, kw: dict) -> str | None:
    """The first undefined symbol of a failed link, said plainly (qemu.build reports the last line)."""
    args = ["make", "--no-print-directory", "-C", str(qemu.FIRMWARE_DIR), f"BOARD={board}", f"APP={app}",
            f"BUILD_DIR={build}", "EXTRA_SRCS=" + " ".join(str(p) for p in kw.get("extra_srcs", ())),
            "EXTRA_INC=" + " ".join(str(p) for p in kw.get("extra_inc", ()))]
    args += [f"{k}={v}" for k, v in kw.get("make_vars", {}).items()]
    log = subprocess.run(args, capture_output=True, text=True)
    m = re.search(r"undefined reference to `(\w+)'", log.stderr)
    if m and m.group(1).startswith("kws_semihost_"):
        return f"{app} reads its inputs through semihosting ({m.group(1)}), which {board} does not provide"
    return f"link error: undefined {m.group(1)}" if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--model", default=str(REPO / "models" / "jarvis"), help="model folder for the wake image")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    args = ap.parse_args()
    model = Path(args.model).resolve()
    model = model if (model / "model_int8.tflite").is_file() else None
    dscnn = Path(args.shared) / "models" / "reference" / DSCNN

    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-bench-boards-") as tmp:
        tmp_path = Path(tmp)
        dscnn_dir = None
        if dscnn.is_file():
            dscnn_dir = tmp_path / "dscnn"
            _kws_compile(dscnn, dscnn_dir)
        for name, info in boards.BOARDS.items():
            if info.flash_bytes is None or info.cpu == "host":
                continue
            for label, image in images(name, tmp_path / name, dscnn_dir, dscnn if dscnn_dir else None, model):
                if isinstance(image, str):
                    rows.append(f"| {name} | {label} | — | — | — | — | does not build: {image} |")
                    continue
                s = sections(image)
                text = s.get(".text", 0) + s.get(".ARM.exidx", 0)
                data, bss, stack = s.get(".data", 0), s.get(".bss", 0), s.get(".stack", 0)
                flash_used, ram_used = text + data, data + bss + stack
                rows.append(f"| {name} | {label} | {text:,} | {data:,} | {bss:,} | {stack:,} | "
                            f"{flash_used:,} B = {100 * flash_used / info.flash_bytes:.1f} % of "
                            f"{info.flash_bytes // 1024:,} KiB flash; {ram_used:,} B = "
                            f"{100 * ram_used / info.ram_bytes:.1f} % of {info.ram_bytes // 1024:,} KiB RAM |")
    lines = [
        "## Boards: image sizes against each part's flash and RAM",
        "",
        "Every Cortex-M board's linker script fails the link (ASSERT, message `kws budget: ...`) when an",
        "image exceeds the part's flash or RAM; these are the margins. text = code + read-only data",
        "(+ .ARM.exidx); flash used = text + data; RAM used = data + bss + the stack the linker reserves",
        "(32 KiB on nucleo_l4r5zi, 64 KiB on qemu_mps2_an386, 8 KiB in the template). Built with",
        "arm-none-eabi-gcc -O2; model_run and bench (the MLPerf Tiny DUT) use the MLPerf Tiny DS-CNN",
        f"compiled for cortex-m4; wake uses {'models/' + model.name if model else '(no model folder found)'}.",
        "nucleo_l4r5zi images are builds only: no board is attached here, so none of this has run on hardware.",
        "",
        "| board | image | text | data | bss | stack | use |",
        "|---|---|---:|---:|---:|---:|---|",
        *rows,
    ]
    write_section(Path(args.out), "boards", "tools/bench_boards.py", "\n".join(lines))
    print("\n".join(rows))
    return 0


def _kws_compile(model: Path, out: Path) -> None:
    if cli.main(["compile", str(model), "--out", str(out), "--target", "cortex-m4", "--quiet"]) != 0:
        raise KwsError(f"kws compile {model} failed")


if __name__ == "__main__":
    sys.exit(main())
