"""`make flash`: build a firmware image for a board and program it through the board's debug probe.

    python -m kws.flash --board nucleo_l4r5zi [--app selftest] [--model models/jarvis] [--dry-run]
                        [--tool pyocd|openocd] [--probe UNIQUE_ID] [--elf IMAGE]

Steps: look the board up in the registry (kws.boards), build APP (default: wake with --model, else
selftest) with the firmware Makefile, pick a flasher, make sure a probe is attached, program, verify.

- pyocd (pip install -e '.[flash]'), preferred:
      pyocd flash -t <target> <image.elf>
      pyocd cmd -t <target> -c "compare <flash base> <image.bin>"   (must answer "All N bytes match.")
  The image.bin is `arm-none-eabi-objcopy -O binary` of the ELF: the exact bytes from the flash base.
  Some targets need a device pack first (nucleo_l4r5zi: `pyocd pack install stm32l4r5zitx`).
- openocd, when pyocd is not installed:
      openocd -f interface/stlink.cfg -f target/stm32l4x.cfg -c "program <image.elf> verify reset exit"
- --dry-run prints the exact commands and runs none of them (the image is still built).

Errors are one line naming the cause: unknown or unflashable board, no flasher installed, no probe
attached (pyocd list finds none / openocd cannot open the adapter), missing pyocd target, a failed
program or verify step.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kws import boards
from kws.errors import KwsError

TOOLS = ("pyocd", "openocd")
OBJCOPY = "arm-none-eabi-objcopy"

# openocd's messages when it cannot reach an adapter (0.11/0.12 hla and dap drivers).
_OPENOCD_NO_PROBE = re.compile(
    r"open failed|unable to open|no device found|not found.*(st-?link|adapter)|"
    r"(st-?link|adapter).*not found|couldn't open|libusb_open\(\) failed|no matching", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    """What `flash` will run: tool name, the commands in order, and the files they use."""

    tool: str
    executable: str
    elf: Path
    commands: list[list[str]]


def default_app(model: str | os.PathLike | None) -> str:
    return "wake" if model else "selftest"


def find_tool(tool: str | None = None, *, search_path: str | None = None) -> tuple[str, str]:
    """(tool, executable) of the first flasher found: `tool` only when given, else pyocd then openocd.

    search_path: folders to look in (os.pathsep-separated); default PATH plus the folder of this
    Python (a venv's bin/, where `pip install -e '.[flash]'` puts pyocd).
    """
    if search_path is None:
        search_path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), str(Path(sys.executable).parent)) if p)
    wanted = (tool,) if tool else TOOLS
    for name in wanted:
        if name not in TOOLS:
            raise KwsError(f"--tool {name!r}: unknown flasher; use one of {', '.join(TOOLS)}")
        exe = shutil.which(name, path=search_path)
        if exe:
            return name, exe
    if tool:
        raise KwsError(f"--tool {tool}: {tool} is not installed (not on PATH)")
    raise KwsError("no flasher installed: install pyocd (pip install -e '.[flash]') or openocd")


def plan(board: boards.Board, elf: Path, tool: str, executable: str, *, probe: str | None = None) -> Plan:
    """The commands that program and verify `elf` on `board` with `tool` (nothing is run)."""
    elf = Path(elf)
    if tool == "pyocd":
        if not board.pyocd_target:
            raise KwsError(f"board {board.name}: no pyocd target in the board registry (kws/boards.py)")
        sel = ["-t", board.pyocd_target] + (["-u", probe] if probe else [])
        image_bin = elf.with_suffix(".bin")
        return Plan(tool, executable, elf, [
            [OBJCOPY, "-O", "binary", str(elf), str(image_bin)],
            [executable, "flash", *sel, str(elf)],
            [executable, "cmd", *sel, "-c", f"compare {board.flash_base:#010x} {image_bin}"],
        ])
    if not board.openocd_args:
        raise KwsError(f"board {board.name}: no openocd configuration in the board registry (kws/boards.py)")
    extra = ["-c", f"adapter serial {probe}"] if probe else []
    return Plan(tool, executable, elf, [
        [executable, *board.openocd_args, *extra, "-c", f"program {elf} verify reset exit"],
    ])


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"error|fail|critical", ln, re.IGNORECASE)]
    return (errors or lines or ["no output"])[-1]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def check_probe(board: boards.Board, p: Plan) -> None:
    """pyocd: a probe must be listed and the target known. (openocd is checked by its own run.)"""
    if p.tool != "pyocd":
        return
    listed = _run([p.executable, "list"])
    out = listed.stdout + listed.stderr
    if listed.returncode != 0:
        raise KwsError(f"pyocd list failed: {_last_line(out)}")
    if "No available debug probes" in out or not re.search(r"^\s*\d+\s+\S", listed.stdout, re.MULTILINE):
        raise KwsError(f"no debug probe attached (pyocd list found none): connect {board.probe or 'the probe'}")
    targets = _run([p.executable, "list", "--targets"])
    if not re.search(rf"^\s*{re.escape(board.pyocd_target or '')}\s", targets.stdout, re.MULTILINE):
        hint = f"; install its device pack once: {board.pyocd_pack_hint}" if board.pyocd_pack_hint else ""
        raise KwsError(f"pyocd does not know target {board.pyocd_target}{hint}")


def execute(board: boards.Board, p: Plan) -> None:
    check_probe(board, p)
    for cmd in p.commands:
        proc = _run(cmd)
        out = proc.stdout + "\n" + proc.stderr
        name = Path(cmd[0]).name
        if p.tool == "openocd" and name == "openocd" and proc.returncode != 0:
            if _OPENOCD_NO_PROBE.search(out):
                raise KwsError(f"no debug probe attached (openocd could not open the adapter): "
                               f"connect {board.probe or 'the probe'}")
            raise KwsError(f"openocd failed: {_last_line(out)}")
        if proc.returncode != 0:
            raise KwsError(f"{name} {cmd[1] if len(cmd) > 1 else ''} failed: {_last_line(out)}")
        if p.tool == "pyocd" and len(cmd) > 1 and cmd[1] == "cmd":
            size = Path(cmd[-1].split()[-1]).stat().st_size
            if f"All {size} bytes match" not in out:
                raise KwsError(f"verify failed: flash differs from {cmd[-1].split()[-1]} ({_last_line(out)})")


def build_image(board: str, app: str, model: str | os.PathLike | None) -> Path:
    from kws.bench import qemu  # the firmware Makefile driver (not QEMU-specific)

    variables = {"MODEL": str(Path(model).resolve())} if model else {}
    if model and not Path(model).exists():
        raise KwsError(f"--model {model}: no such folder")
    return qemu.build(board, app, make_vars=variables)


def flash(*, board: str, app: str | None = None, model: str | os.PathLike | None = None,
          elf: str | os.PathLike | None = None, tool: str | None = None, probe: str | None = None,
          dry_run: bool = False, out=None) -> Plan:
    """Build (unless `elf` is given), then program and verify; with dry_run only print the commands."""
    out = out if out is not None else sys.stdout
    info = boards.get(board)
    if not info.flashable:
        raise KwsError(f"BOARD={board} cannot be flashed: {info.not_flashable} "
                       f"(boards that can: {', '.join(boards.flashable())})")
    name, exe = find_tool(tool)
    image = Path(elf) if elf else build_image(board, app or default_app(model), model)
    if not image.is_file():
        raise KwsError(f"--elf {image}: no such file")
    p = plan(info, image, name, exe, probe=probe)
    if dry_run:
        for cmd in p.commands:
            print(shlex.join(cmd), file=out)
        return p
    execute(info, p)
    print(f"flashed {image} to {board} with {name} (verified)", file=out)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.flash", description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", required=True, help=f"one of: {', '.join(boards.flashable())}")
    ap.add_argument("--app", help="firmware/apps/<app> (default: wake with --model, else selftest)")
    ap.add_argument("--model", help="model folder to build in (kws train output)")
    ap.add_argument("--elf", help="flash this image instead of building one")
    ap.add_argument("--tool", choices=TOOLS, help="flasher (default: pyocd if installed, else openocd)")
    ap.add_argument("--probe", help="debug probe unique ID / serial, when several are attached")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    args = ap.parse_args(argv)
    try:
        flash(board=args.board, app=args.app, model=args.model, elf=args.elf, tool=args.tool,
              probe=args.probe, dry_run=args.dry_run)
    except KwsError as exc:
        print(f"kws flash: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
