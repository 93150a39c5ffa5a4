"""The frontend as built for a board: run the `frontend_check` firmware app over clips.

Used to prove the Cortex-M4 build gives the same bytes as the host library, and to count its
instructions per hop under QEMU -icount (DESIGN.md decision 5).
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kws import config
from kws.errors import KwsError
from kws.features import tables

REPO = Path(__file__).resolve().parents[3]


@dataclasses.dataclass
class DeviceRun:
    features: np.ndarray          # int8 [clips, rows, row_size]
    ticks_per_row: np.ndarray     # uint32 [clips, rows]: board ticks inside kws_frontend_push
    instructions_per_row: np.ndarray | None  # float64, QEMU only (ticks converted with the icount shift)
    uart: str
    elf: Path


def build_check(preset: str, *, board: str = "qemu_mps2_an386", build_dir: Path | None = None) -> Path:
    """Build frontend_check for `board` with the preset's generated tables; returns the image."""
    from kws.bench import qemu

    p = config.frontend_preset(preset)
    build_dir = Path(build_dir or REPO / "build" / "firmware" / f"frontend-{preset}")
    header, source = tables.write_c(tables.build(p), build_dir / "gen")
    return qemu.build(board, "frontend_check", extra_srcs=[source], extra_inc=[header.parent],
                      extra_cflags=["-include", str(header)], build_dir=build_dir)


def run_check(clips: np.ndarray, *, preset: str = "mlperf_kws01", elf: Path | None = None,
              timeout_s: float = 600.0) -> DeviceRun:
    """Run int16 [clips, clip_samples] through frontend_check under QEMU (mps2-an386)."""
    from kws.bench import qemu

    p = config.frontend_preset(preset)
    clips = np.ascontiguousarray(clips, dtype="<i2")
    if clips.ndim != 2 or (p.clip_samples and clips.shape[1] != p.clip_samples):
        raise KwsError(f"clips: expected int16 [N, {p.clip_samples or 'n'}], got {clips.shape}")
    elf = elf or build_check(preset)
    rows = p.frames_for(clips.shape[1])
    with tempfile.TemporaryDirectory(prefix="kws-frontend-check-") as tmp:
        work = Path(tmp)
        (work / "frontend_in.bin").write_bytes(clips.tobytes())
        res = qemu.run_ok(elf, cwd=work, timeout_s=timeout_s)
        feats = np.frombuffer((work / "frontend_out.bin").read_bytes(), np.int8)
        ticks = np.frombuffer((work / "frontend_ticks.bin").read_bytes(), "<u4")
    feats = feats.reshape(len(clips), rows, p.row_size)
    ticks = ticks.reshape(len(clips), rows)
    instr = np.array([qemu.ticks_to_instructions(int(t), qemu.DEFAULT_ICOUNT_SHIFT) for t in ticks.ravel()]
                     ).reshape(ticks.shape)
    return DeviceRun(features=feats, ticks_per_row=ticks, instructions_per_row=instr, uart=res.uart, elf=elf)


def memory_report(elf: Path) -> dict:
    """Bytes of the frontend in an ARM image: table flash (the generated const arrays and config,
    from the symbol sizes), code flash (.text of frontend.c and frontend_fft.c's objects), and the RAM
    of the app's one kws_frontend_t state and one scratch."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True)
    if out.returncode != 0:
        raise KwsError(f"{elf}: arm-none-eabi-nm failed ({out.stderr.strip()})")
    sizes = {parts[3]: int(parts[1], 16) for parts in map(str.split, out.stdout.splitlines()) if len(parts) == 4}
    table_names = ("window", "twiddle", "fft_twiddle", "digitrev", "mel_seg_start", "mel_pair_weights",
                   "out_matrix", "log2_table")
    tables_b = sum(sizes.get(f"kws_frontend_{n}", 0) for n in table_names) + sizes.get("kws_frontend_config", 0)
    code = 0
    for obj in elf.parent.rglob("frontend*.c.o"):
        sec = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], capture_output=True, text=True).stdout
        code += sum(int(p[1]) for p in map(str.split, sec.splitlines()) if len(p) >= 2 and p[0].startswith(".text"))
    return {"table_flash_bytes": tables_b, "code_flash_bytes": code,
            "state_ram_bytes": sizes.get("fe", 0), "scratch_ram_bytes": sizes.get("scratch", 0)}
