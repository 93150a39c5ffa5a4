"""Board ports, link-time budgets and `make flash`.

- every board in firmware/boards builds selftest; the board registry (kws.boards) agrees with each
  linker script's memory sizes; the template defines every board.h function;
- nucleo_l4r5zi images (selftest, model_run with the MLPerf Tiny DS-CNN, wake with models/jarvis) fit
  its 2 MiB flash / 640 KiB SRAM, and its vector table routes IRQ 70 to the LPUART1 handler;
- an image too big for a board's flash or RAM fails at link time with the "kws budget" message;
- the board's UART audio stream parser (board_stream.c, built for the host) frames blocks exactly;
- `make flash` prints its exact commands with DRY_RUN=1, fails with one line when no probe is
  attached or no flasher is installed, and programs + verifies in order with a (fake) probe.
No hardware is needed: probes are simulated by fake pyocd/openocd scripts on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from kws import boards, cli, flash
from kws.bench import qemu
from kws.errors import KwsError

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
BOARD_DIRS = sorted(p.parent.name for p in (FIRMWARE / "boards").glob("*/board.mk"))
ARM_BOARDS = [b for b in BOARD_DIRS if (FIRMWARE / "boards" / b / "linker.ld").is_file()]
DSCNN = SHARED / "models" / "reference" / "mlperf_tiny_kws_ref_model.tflite"
JARVIS = REPO / "models" / "jarvis"
NUCLEO = "nucleo_l4r5zi"
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("make") is not None
need_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc is not installed (make setup)")


def _size(elf: Path) -> dict[str, int]:
    """Section name -> bytes, from `arm-none-eabi-size -A`."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", out, re.MULTILINE)}


def _usage(elf: Path) -> tuple[int, int]:
    """(flash bytes, RAM bytes) of an image: code + read-only data + .data's initial values; data + bss + stack."""
    s = _size(elf)
    flash_bytes = s.get(".text", 0) + s.get(".ARM.exidx", 0) + s.get(".data", 0)
    ram_bytes = s.get(".data", 0) + s.get(".bss", 0) + s.get(".stack", 0)
    return flash_bytes, ram_bytes


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("boards-build")


_SELFTEST: dict[str, Path] = {}


def _selftest(board: str, build_root: Path) -> Path:
    """selftest built once per board for this module (each test still fails on its own board only)."""
    if board in ARM_BOARDS and not HAVE_ARM:
        pytest.skip("arm-none-eabi-gcc is not installed (make setup)")
    if board not in ARM_BOARDS and not shutil.which("cc"):
        pytest.skip("no host C compiler (cc)")
    if board not in _SELFTEST:
        _SELFTEST[board] = qemu.build(board, "selftest", build_dir=build_root)
    return _SELFTEST[board]


# --- every board ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("board", BOARD_DIRS)
def test_every_board_builds_selftest(board, build_root):
    image = _selftest(board, build_root)
    assert image.is_file() and image.stat().st_size > 0
    info = boards.get(board)
    if board in ARM_BOARDS:
        flash_bytes, ram_bytes = _usage(image)
        assert 0 < flash_bytes <= info.flash_bytes and 0 < ram_bytes <= info.ram_bytes


def test_registry_lists_every_board_folder_and_matches_linker_scripts():
    assert set(BOARD_DIRS) == set(boards.BOARDS), "firmware/boards and kws/boards.py disagree"
    for board in ARM_BOARDS:
        text = (FIRMWARE / "boards" / board / "linker.ld").read_text()
        regions = {m.group(1): (int(m.group(2), 16), int(m.group(3)) * {"K": 1024, "M": 1024 * 1024}[m.group(4)])
                   for m in re.finditer(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*0x([0-9A-Fa-f]+)\s*,"
                                        r"\s*LENGTH\s*=\s*(\d+)([KM])", text, re.MULTILINE)}
        code = regions.get("FLASH") or regions["CODE"]
        info = boards.get(board)
        assert code[1] == info.flash_bytes and regions["RAM"][1] == info.ram_bytes, board
        assert "ASSERT(" in text and "kws budget" in text, f"{board}: linker.ld has no budget check"
        if info.flashable:
            assert code[0] == info.flash_base
    with pytest.raises(KwsError, match="unknown board 'nope'.*nucleo_l4r5zi"):
        boards.get("nope")


def test_template_defines_every_board_function_with_a_comment():
    header = (FIRMWARE / "include" / "kws" / "board.h").read_text()
    names = re.findall(r"^(?:BOARD_NORETURN\s+)?[a-z_0-9]+\s*\**\s*(board_[a-z_0-9]+)\([^;{]*\);", header, re.MULTILINE)
    assert len(names) >= 11 and "board_timestamp_pulse" in names
    source = (FIRMWARE / "boards" / "template" / "board.c").read_text()
    for name in names:
        m = re.search(rf"^(//.*)\n[a-z_0-9 \*]*\b{name}\(", source, re.MULTILINE)
        assert m, f"template/board.c: {name} is missing or has no one-line comment above it"


# --- nucleo_l4r5zi ----------------------------------------------------------------------------------

@need_arm
@pytest.mark.slow
def test_nucleo_selftest_fits_and_routes_lpuart1_interrupt(build_root):
    elf = _selftest(NUCLEO, build_root)
    flash_bytes, ram_bytes = _usage(elf)
    assert flash_bytes < 64 * 1024 and ram_bytes < 64 * 1024
    syms = {}
    for line in subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    # The shared startup's table (96 external interrupts for the part's 95) sits at the flash base,
    # where the core boots from, and holds the LPUART1 handler at IRQ 70.
    table = syms["startup_vectors"]
    assert table == 0x0800_0000
    image = elf.with_suffix(".testbin")
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(image)], check=True)
    words = struct.unpack_from("<112I", image.read_bytes(), table - 0x0800_0000)
    assert words[0] == syms["__stack_top"] == 0x2000_0000 + 640 * 1024
    assert words[16 + 70] == syms["startup_irq70_handler"] | 1  # Thumb bit
    others = {w for i, w in enumerate(words[16:]) if i != 70}
    assert others == {syms["startup_default_handler"] | 1}
    assert words[1] == syms["startup_reset_handler"] | 1 and words[3] == syms["startup_hardfault_handler"] | 1


@need_arm
@pytest.mark.slow
def test_nucleo_model_run_with_dscnn_fits(build_root, tmp_path):
    if not DSCNN.is_file():
        pytest.skip(f"{DSCNN} is absent (reference models live in ../shared beside the checkout)")
    gen = tmp_path / "dscnn"
    assert cli.main(["compile", str(DSCNN), "--out", str(gen), "--target", "cortex-m4", "--quiet"]) == 0
    elf = qemu.build(NUCLEO, "model_run", extra_srcs=[gen / "model.c"], extra_inc=[gen], build_dir=build_root)
    flash_bytes, ram_bytes = _usage(elf)
    info = boards.get(NUCLEO)
    assert 84_600 < flash_bytes <= info.flash_bytes  # the DS-CNN's 84,600 bytes of weights are in
    assert 16_392 < ram_bytes <= info.ram_bytes      # and its 16,392-byte arena


@need_arm
@pytest.mark.slow
def test_nucleo_wake_with_jarvis_fits(build_root):
    if not (JARVIS / "model_int8.tflite").is_file():
        pytest.skip(f"{JARVIS} is absent (make train CONFIG=configs/jarvis.toml builds it)")
    elf = qemu.build(NUCLEO, "wake", build_dir=build_root, make_vars={"MODEL": str(JARVIS)})
    flash_bytes, ram_bytes = _usage(elf)
    info = boards.get(NUCLEO)
    assert 0 < flash_bytes <= info.flash_bytes and 0 < ram_bytes <= info.ram_bytes


@need_arm
@pytest.mark.slow
def test_nucleo_mlperf_dut_in_energy_mode_uses_the_board_timestamp_pin(build_root):
    """The bench app (MLPerf Tiny DUT) with the DS-CNN at 9600 baud, timestamps on Arduino D7."""
    if not (FIRMWARE / "apps" / "bench").is_dir():
        pytest.skip("firmware/apps/bench is absent")
    if not DSCNN.is_file():
        pytest.skip(f"{DSCNN} is absent (reference models live in ../shared beside the checkout)")
    elf = qemu.build(NUCLEO, "bench", build_dir=build_root / "energy", make_vars={"MODEL": str(DSCNN)},
                     extra_cflags=["-DKWS_BENCH_ENERGY=1", "-DKWS_UART_BAUD=9600"])
    flash_bytes, ram_bytes = _usage(elf)
    info = boards.get(NUCLEO)
    assert 84_600 < flash_bytes <= info.flash_bytes and 16_392 < ram_bytes <= info.ram_bytes
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    # The board's own pulse (a strong "T" symbol), not the weak do-nothing default ("W").
    assert re.search(r"^[0-9a-f]+ T board_timestamp_pulse$", nm, re.MULTILINE)


# --- link-time budgets ------------------------------------------------------------------------------

def _big_app(folder: Path) -> Path:
    """An app with one huge array: HUGE_FLASH bytes of constants or HUGE_RAM bytes of buffer."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.c").write_text(
        '#include <stdint.h>\n#include "kws/board.h"\n'
        "#ifdef HUGE_FLASH\nstatic const uint8_t huge[HUGE_FLASH] = {1};\n#else\nuint8_t huge[HUGE_RAM];\n#endif\n"
        "int main(void)\n{\n    board_init();\n"
        "#ifndef HUGE_FLASH\n    huge[board_ticks() % sizeof huge] ^= 1u;\n#endif\n"
        "    return huge[board_ticks() % sizeof huge];\n}\n")
    return folder


def _make_big(board: str, define: str, app_dir: Path, build_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "-C", str(FIRMWARE), f"BOARD={board}", "APP=big",
                           f"APP_DIR={app_dir}", f"BUILD_DIR={build_dir}", f"EXTRA_CFLAGS=-D{define}"],
                          capture_output=True, text=True, env=env)


@need_arm
@pytest.mark.slow
@pytest.mark.parametrize("board", ARM_BOARDS)
def test_oversized_image_fails_at_link_time_with_budget_message(board, tmp_path):
    info = boards.get(board)
    app = _big_app(tmp_path / "big")
    too_much_flash = _make_big(board, f"HUGE_FLASH={info.flash_bytes + 1}", app, tmp_path / "b1")
    assert too_much_flash.returncode != 0
    assert re.search(rf"kws budget: .*exceed the .*flash.* of {board}|kws budget: .*exceed the .*code.* of {board}",
                     too_much_flash.stderr), too_much_flash.stderr[-2000:]
    too_much_ram = _make_big(board, f"HUGE_RAM={info.ram_bytes}", app, tmp_path / "b2")
    assert too_much_ram.returncode != 0
    assert re.search(rf"kws budget: \.data \+ \.bss \+ stack exceed the .* of {board}", too_much_ram.stderr)
    assert not list((tmp_path / "b1").rglob("big.elf")) and not list((tmp_path / "b2").rglob("big.elf"))


@need_arm
@pytest.mark.slow
def test_nucleo_budget_is_not_too_strict(tmp_path):
    """Just under the budget links: 1.9 MiB of constants; 560 KiB of buffers (+ 32 KiB stack)."""
    app = _big_app(tmp_path / "big")
    for define in (f"HUGE_FLASH={1900 * 1024}", f"HUGE_RAM={560 * 1024}"):
        proc = _make_big(NUCLEO, define, app, tmp_path / define.split("=")[0])
        assert proc.returncode == 0, proc.stderr[-1500:]
        flash_bytes, ram_bytes = _usage(tmp_path / define.split("=")[0] / NUCLEO / "big.elf")
        assert flash_bytes > 1900 * 1024 if "FLASH" in define else ram_bytes > 560 * 1024


# --- make flash -------------------------------------------------------------------------------------

FAKE_PYOCD = """#!/bin/sh
echo "pyocd $*" >> "$FAKE_LOG"
case "$1" in
  list)
    if [ "$2" = "--targets" ]; then echo "  stm32l4r5zitx   STMicroelectronics   STM32L4R5ZITx   pack";
    elif [ "$FAKE_MODE" = noprobe ]; then echo "No available debug probes are connected";
    else echo "  #   Probe/Board   Unique ID   Target"; echo "  0   STM32 STLink   0670FF   stm32l4r5zitx"; fi ;;
  flash) echo "programmed" ;;
  cmd)
    for a; do last=$a; done; f=${last##* }
    if [ "$FAKE_MODE" = mismatch ]; then echo "Mismatched byte at 0x08000010"; else echo "All $(wc -c < "$f" | tr -d ' ') bytes match."; fi ;;
esac
"""

FAKE_OPENOCD = """#!/bin/sh
echo "openocd $*" >> "$FAKE_LOG"
if [ "$FAKE_MODE" = noprobe ]; then echo "Error: open failed" >&2; exit 1; fi
echo "** Verified OK **"
"""


def _fake_bin(tmp_path: Path, *tools: str) -> Path:
    folder = tmp_path / "fakebin"
    folder.mkdir(exist_ok=True)
    for tool in tools:
        path = folder / tool
        path.write_text({"pyocd": FAKE_PYOCD, "openocd": FAKE_OPENOCD}[tool])
        path.chmod(0o755)
    return folder


def _env(fake: Path, tmp_path: Path, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env.update(PATH=f"{fake}{os.pathsep}{env.get('PATH', '')}", FAKE_LOG=str(tmp_path / "calls.log"), FAKE_MODE=mode)
    return env


@need_arm
@pytest.mark.slow
def test_make_flash_dry_run_prints_the_exact_commands_and_runs_none(tmp_path):
    fake = _fake_bin(tmp_path, "pyocd")
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "flash", f"BOARD={NUCLEO}", "DRY_RUN=1"],
                          capture_output=True, text=True, env=_env(fake, tmp_path, "ok"))
    assert proc.returncode == 0, proc.stderr[-1500:]
    elf = FIRMWARE / "build" / NUCLEO / "selftest.elf"
    assert f"{fake}/pyocd flash -t stm32l4r5zitx {elf}" in proc.stdout
    assert f"{fake}/pyocd cmd -t stm32l4r5zitx -c 'compare 0x08000000 {elf.with_suffix('.bin')}'" in proc.stdout
    assert elf.is_file()  # built for real
    assert not (tmp_path / "calls.log").exists()  # the flasher never ran


def test_openocd_dry_run_and_fallback_when_pyocd_is_absent(tmp_path, capsys):
    fake = _fake_bin(tmp_path, "openocd")
    elf = tmp_path / "app.elf"
    elf.write_bytes(b"\x7fELF")
    assert flash.find_tool(search_path=str(fake)) == ("openocd", str(fake / "openocd"))
    p = flash.plan(boards.get(NUCLEO), elf, "openocd", str(fake / "openocd"))
    assert p.commands == [[str(fake / "openocd"), "-f", "interface/stlink.cfg", "-f", "target/stm32l4x.cfg",
                           "-c", f"program {elf} verify reset exit"]]
    old = os.environ["PATH"]
    os.environ["PATH"] = str(fake)
    try:
        rc = flash.main(["--board", NUCLEO, "--elf", str(elf), "--tool", "openocd", "--dry-run"])
    finally:
        os.environ["PATH"] = old
    assert rc == 0
    assert capsys.readouterr().out.strip() == (f"{fake}/openocd -f interface/stlink.cfg -f target/stm32l4x.cfg "
                                               f"-c 'program {elf} verify reset exit'")


@need_arm
@pytest.mark.slow
def test_make_flash_without_probe_fails_with_one_line(tmp_path):
    fake = _fake_bin(tmp_path, "pyocd")
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "flash", f"BOARD={NUCLEO}"],
                          capture_output=True, text=True, env=_env(fake, tmp_path, "noprobe"))
    assert proc.returncode != 0
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("kws flash:")]
    assert ours == ["kws flash: error: no debug probe attached (pyocd list found none): "
                    "connect the on-board ST-LINK/V2-1 (USB connector CN1)"]
    assert (tmp_path / "calls.log").read_text().splitlines() == ["pyocd list"]  # nothing was programmed


def test_openocd_without_probe_fails_with_one_line(tmp_path, capsys):
    fake = _fake_bin(tmp_path, "openocd")
    elf = tmp_path / "app.elf"
    elf.write_bytes(b"\x7fELF")
    os.environ["FAKE_LOG"], os.environ["FAKE_MODE"] = str(tmp_path / "calls.log"), "noprobe"
    old = os.environ["PATH"]
    os.environ["PATH"] = str(fake)
    try:
        rc = flash.main(["--board", NUCLEO, "--elf", str(elf), "--tool", "openocd"])
    finally:
        os.environ["PATH"] = old
        del os.environ["FAKE_LOG"], os.environ["FAKE_MODE"]
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == ["kws flash: error: no debug probe attached (openocd could not open the adapter): "
                               "connect the on-board ST-LINK/V2-1 (USB connector CN1)"]


def test_real_pyocd_without_probe_fails_with_one_line(tmp_path, capsys):
    """The real pyocd (pip install -e '.[flash]'), on a machine with no probe attached (CI)."""
    try:
        tool, exe = flash.find_tool("pyocd")
    except KwsError:
        pytest.skip("pyocd is not installed (pip install -e '.[flash]')")
    if "No available debug probes" not in subprocess.run([exe, "list"], capture_output=True, text=True).stdout:
        pytest.skip("a debug probe is attached here")
    elf = tmp_path / "app.elf"
    elf.write_bytes(b"\x7fELF")
    assert flash.main(["--board", NUCLEO, "--elf", str(elf), "--tool", "pyocd"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["kws flash: error: no debug probe attached (pyocd list found none): "
                   "connect the on-board ST-LINK/V2-1 (USB connector CN1)"]


def test_no_flasher_installed_and_unflashable_boards_fail_with_one_line(tmp_path, capsys):
    with pytest.raises(KwsError, match=r"^no flasher installed: install pyocd \(pip install -e '\.\[flash\]'\) or openocd$"):
        flash.find_tool(search_path=str(tmp_path))
    for board, cause in (("qemu_mps2_an386", "runs under QEMU"), ("template", "porting template"), ("nope", "unknown board")):
        assert flash.main(["--board", board, "--dry-run"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and cause in err[0] and board in err[0]


@need_arm
def test_flash_programs_then_verifies_and_catches_a_mismatch(tmp_path, monkeypatch, capsys):
    fake = _fake_bin(tmp_path, "pyocd")
    elf = tmp_path / "selftest.elf"
    # Any small valid ELF will do for objcopy: build the tiniest one with the cross compiler.
    src = tmp_path / "tiny.c"
    src.write_text("int x = 1;\nvoid _start(void) { for (;;) { } }\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-Wl,-Ttext=0x08000000",
                    str(src), "-o", str(elf)], check=True)
    for key, value in _env(fake, tmp_path, "ok").items():
        monkeypatch.setenv(key, value)
    p = flash.flash(board=NUCLEO, elf=elf)
    assert p.tool == "pyocd"
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["pyocd list", "pyocd list --targets", f"pyocd flash -t stm32l4r5zitx {elf}",
                     f"pyocd cmd -t stm32l4r5zitx -c compare 0x08000000 {elf.with_suffix('.bin')}"]
    assert elf.with_suffix(".bin").stat().st_size > 0
    assert "(verified)" in capsys.readouterr().out
    monkeypatch.setenv("FAKE_MODE", "mismatch")
    with pytest.raises(KwsError, match="verify failed: flash differs"):
        flash.flash(board=NUCLEO, elf=elf)


def test_python_entry_point_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "kws.flash", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--dry-run" in proc.stdout and "--board" in proc.stdout


# --- nucleo_l4r5zi's UART audio stream parser, built for the host --------------------------------------

STREAM_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "board_stream.h"
static void on_block(const int16_t *x, size_t n, void *user)
{
    ++*(int *)user;
    if (n == 0) { printf("end %d\n", x == NULL); return; }
    printf("block %zu", n);
    for (size_t i = 0; i < n; i++) printf(" %d", x[i]);
    printf("\n");
}
int main(int argc, char **argv)
{
    static board_stream s;
    int calls = 0;
    board_audio_config cfg = {16000u, (size_t)atoi(argv[1]), argc > 2 ? NULL : on_block, &calls};
    if (board_stream_start(&s, &cfg) != 0) { printf("rejected\n"); return 0; }
    int c;
    while ((c = getchar()) != EOF) board_stream_byte(&s, (uint8_t)c);
    int idle = s.state == BOARD_STREAM_IDLE;
    printf("idle %d stop %d calls %d\n", idle, board_stream_stop(&s), calls);
    return 0;
}
"""


@pytest.fixture(scope="module")
def stream_parser(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler (cc)")
    folder = tmp_path_factory.mktemp("stream")
    (folder / "main.c").write_text(STREAM_HARNESS)
    board_dir = FIRMWARE / "boards" / NUCLEO
    exe = folder / "stream"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{FIRMWARE / 'include'}", f"-I{board_dir}",
                    str(folder / "main.c"), str(board_dir / "board_stream.c"), "-o", str(exe)], check=True)
    return exe


def _feed(exe: Path, data: bytes, *args: str) -> list[str]:
    return subprocess.run([str(exe), *args], input=data, capture_output=True, check=True).stdout.decode().splitlines()


def test_uart_audio_stream_blocks_partial_last_block_and_end_call(stream_parser):
    samples = np.random.default_rng(0).integers(-32768, 32768, size=1000).astype("<i2")
    assert len(set(samples.tolist())) > 900  # varied samples, so a shifted or reordered stream shows
    # Stray bytes (including a false start "KW") before the magic, then a trailer after the stream.
    data = b"\x00junkKWKKWSA" + struct.pack("<I", len(samples)) + samples.tobytes() + b"trailer bytes"
    lines = _feed(stream_parser, data, "320")
    blocks = [[int(v) for v in ln.split()[2:]] for ln in lines if ln.startswith("block")]
    assert [len(b) for b in blocks] == [320, 320, 320, 40]
    assert sum(blocks, []) == samples.tolist()
    assert lines[len(blocks)] == "end 1"  # one end call, with samples == NULL
    assert lines[-1] == "idle 1 stop 0 calls 5"  # the trailer was ignored: nothing after the end call


def test_uart_audio_stream_endless_and_empty_and_rejected_configs(stream_parser):
    samples = np.arange(-700, 700, dtype="<i2")
    lines = _feed(stream_parser, b"KWSA" + struct.pack("<I", 0xFFFFFFFF) + samples.tobytes() + b"\x01", "512")
    blocks = [[int(v) for v in ln.split()[2:]] for ln in lines if ln.startswith("block")]
    assert blocks == [samples[:512].tolist(), samples[512:1024].tolist()]  # endless: only full blocks
    assert lines[-1] == "idle 0 stop 1 calls 2"  # still running (mid-sample byte pending) until stopped
    assert _feed(stream_parser, b"KWSA" + struct.pack("<I", 0), "320") == ["end 1", "idle 1 stop 0 calls 1"]
    assert _feed(stream_parser, b"", "0") == ["rejected"]
    assert _feed(stream_parser, b"", "1025") == ["rejected"]  # above BOARD_STREAM_MAX_BLOCK
    assert _feed(stream_parser, b"", "320", "no-callback") == ["rejected"]


# --- on a real NUCLEO-L4R5ZI (pytest --port /dev/ttyACM0; skipped otherwise) ----------------------

@pytest.mark.hw
def test_nucleo_selftest_on_hardware(request):
    """Flash selftest, read its report on the ST-LINK virtual COM port: 120 MHz DWT ticks, linear timing."""
    import serial

    port = request.config.getoption("--port")
    with serial.serial_for_url(port, baudrate=115200, timeout=0.2) as uart:
        uart.reset_input_buffer()
        flash.flash(board=NUCLEO, app="selftest")
        text, deadline = "", time.monotonic() + 15
        while "done" not in text and time.monotonic() < deadline:
            text += uart.read(256).decode(errors="replace")
    assert f"kws selftest on {NUCLEO}" in text and "done" in text, text
    assert "ticks_hz 120000000" in text
    spins = [(int(a), int(b)) for a, b in re.findall(r"spin (\d+) ticks (\d+)", text)]
    assert len(spins) == 2 and spins[1][0] == 2 * spins[0][0]
    assert spins[0][1] >= 2 * spins[0][0]  # at least one cycle per instruction, 2 per iteration
    assert abs(spins[1][1] / spins[0][1] - 2.0) < 0.02  # twice the work, twice the cycles
