"""Firmware infrastructure: the Makefile, the host/qemu/template boards, semihosting and QEMU timing.

Builds go to temporary folders (BUILD_DIR), never into the checkout. QEMU tests are marked `qemu`;
everything skips with a reason when its tool (cc, arm-none-eabi-gcc, qemu-system-arm) is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kws.bench import qemu
from kws.errors import KwsError

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
SPIN_ITERATIONS = 1_000_000  # the selftest's default SELFTEST_SPIN_ITERATIONS


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (make setup installs it)")
    return path


def _need_host_cc() -> None:
    _need("make")
    if not (os.environ.get("CC") or shutil.which("cc")):
        pytest.skip("no host C compiler (cc)")


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fw-build")


@pytest.fixture(scope="module")
def qemu_selftest(build_root) -> Path:
    _need("make")
    _need("arm-none-eabi-gcc")
    return qemu.build("qemu_mps2_an386", "selftest", build_dir=build_root)


@pytest.fixture(scope="module")
def qemu_tool() -> str:
    return _need("qemu-system-arm")


def _qemu_processes_running(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions `marker` (a unique ELF path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and b"qemu-system-arm" in cmdline:
            pids.append(int(entry.name))
    return pids


def _spin_ticks(uart: str) -> dict[int, int]:
    return {int(n): int(t) for n, t in re.findall(r"^spin (\d+) ticks (\d+)$", uart, flags=re.M)}


# ---------------------------------------------------------------------------------------------
# Disassembly: the instruction count of the timed region, derived from the image itself.

_FUNC = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")


def _disassemble(elf: Path) -> dict[str, list[tuple[int, str, str]]]:
    text = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)],
                          capture_output=True, text=True, check=True).stdout
    funcs: dict[str, list[tuple[int, str, str]]] = {}
    current = None
    for line in text.splitlines():
        m = _FUNC.match(line)
        if m:
            current = funcs.setdefault(m.group(2), [])
            continue
        m = _INSN.match(line)
        if m and current is not None and not m.group(2).startswith("."):
            current.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return funcs


def _is_return(mnemonic: str, operands: str) -> bool:
    return (mnemonic.startswith("bx") and operands.startswith("lr")) or (
        mnemonic.startswith(("pop", "ldm")) and "pc" in operands)


def _is_branch(mnemonic: str) -> bool:
    return mnemonic.startswith(("b", "cb")) and not mnemonic.startswith(("bl", "bx", "bic", "bfi", "bfc"))


def _until_return(insns):
    for i, (_, mnem, ops) in enumerate(insns):
        if _is_return(mnem, ops):
            return insns[: i + 1]
    raise AssertionError("function without a return")


def _timed_instructions(elf: Path, iterations: int) -> int:
    """Instructions between the two timer reads around selftest_spin(iterations).

    The first board_ticks() call runs from its timer load to its return, the second from its entry to
    the load: together, one whole board_ticks(). Between them: the call site and selftest_spin.
    """
    funcs = _disassemble(elf)
    spin = _until_return(funcs["selftest_spin"])
    back = [(i, ins) for i, ins in enumerate(spin)
            if _is_branch(ins[1]) and int(ins[2].split()[0], 16) <= ins[0]]
    assert len(back) == 1, f"expected one loop in selftest_spin: {spin}"
    end, (_, _, ops) = back[0]
    target = int(ops.split()[0], 16)
    start = next(i for i, ins in enumerate(spin) if ins[0] == target)
    body = end - start + 1
    spin_count = start + iterations * body + (len(spin) - end - 1)

    ticks = _until_return(funcs["board_ticks"])
    assert not any(_is_branch(m) for _, m, _ in ticks), "board_ticks must be straight-line code"

    caller = funcs["selftest_time_spin"]
    calls = [i for i, (_, m, ops) in enumerate(caller) if m.startswith("bl") and "<board_ticks>" in ops]
    assert len(calls) == 2, caller
    between = caller[calls[0] + 1: calls[1] + 1]  # up to and including the second call
    assert not any(_is_branch(m) for _, m, _ in between)
    return spin_count + len(between) + len(ticks)


# ---------------------------------------------------------------------------------------------
# Makefile and boards


def test_host_selftest_builds_and_runs(build_root):
    _need_host_cc()
    exe = qemu.build("host", "selftest", build_dir=build_root)
    assert exe == build_root / "host" / "selftest"
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.startswith("kws selftest on host\n")
    ticks = _spin_ticks(proc.stdout)
    assert set(ticks) == {SPIN_ITERATIONS, 2 * SPIN_ITERATIONS}
    assert "ticks_hz 1000000" in proc.stdout
    assert "reversed" not in proc.stdout and "no input" not in proc.stdout  # no semihosting on the host
    assert proc.stdout.endswith("done\n")
    # semihost.c (Arm-only, #error elsewhere) is left out for a board without the feature.
    objects = {p.name for p in (build_root / "host" / "obj" / "selftest").rglob("*.o")}
    assert "board_default.c.o" in objects and "semihost.c.o" not in objects


def test_template_board_compiles(build_root):
    _need("make")
    _need("arm-none-eabi-gcc")
    elf = qemu.build("template", "selftest", build_dir=build_root)
    assert elf == build_root / "template" / "selftest.elf"
    header = elf.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 40  # EM_ARM
    objects = {p.name for p in (build_root / "template" / "obj" / "selftest").rglob("*.o")}
    assert "semihost.c.o" not in objects  # the template declares no features


def test_unknown_board_is_refused_with_the_list(tmp_path):
    _need("make")
    with pytest.raises(KwsError) as err:
        qemu.build("no_such_board", "selftest", build_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "no_such_board" in message
    for board in ("host", "qemu_mps2_an386", "template"):
        assert board in message
    proc = subprocess.run(["make", "-C", str(FIRMWARE), f"BUILD_DIR={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode != 0 and "BOARD is not set; known boards: host" in proc.stderr
    listing = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "boards"], capture_output=True, text=True)
    assert listing.stdout.split() == sorted(p.parent.name for p in (FIRMWARE / "boards").glob("*/board.mk"))
    assert not list(tmp_path.iterdir())  # nothing was built


def test_compile_error_is_one_line_naming_the_file(tmp_path):
    _need_host_cc()
    bad = tmp_path / "broken.c"
    bad.write_text("int broken = undeclared_name;\n")
    with pytest.raises(KwsError) as err:
        qemu.build("host", "selftest", extra_srcs=[bad], build_dir=tmp_path / "b")
    message = str(err.value)
    assert "\n" not in message and "broken.c" in message and "undeclared_name" in message


def test_kernels_override_replaces_and_adds(tmp_path):
    """kernels/<arch>/X.c replaces src/X.c; other kernels/<arch>/ files are added (host arch = host)."""
    _need_host_cc()
    app = tmp_path / "probe"
    app.mkdir()
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "probe.h").write_text("int probe_value(void);\n")
    (app / "main.c").write_text(
        '#include <stdio.h>\n#include "kws/print.h"\n#include "probe.h"\n'
        "int main(void) {\n"
        '    kws_print("hello\\n");\n'
        '    printf("probe %d\\n", probe_value());\n'
        "    return 0;\n}\n")
    extra = tmp_path / "extra_probe.c"
    extra.write_text('#include "probe.h"\nint probe_value(void) { return 1; }\n')
    kernels = tmp_path / "kernels" / "host"
    kernels.mkdir(parents=True)
    (kernels / "print.c").write_text(
        '#include <stdio.h>\n#include "kws/print.h"\n'
        'void kws_print(const char *s) { printf("override %s", s); }\n'
        "void kws_print_u64(const char *label, uint64_t v) { (void)label; (void)v; }\n"
        "int kws_print_error(const char *app, const char *why) { (void)app; (void)why; return 1; }\n")
    (kernels / "probe.c").write_text('#include "probe.h"\nint probe_value(void) { return 2; }\n')

    plain = qemu.build("host", "probe", extra_srcs=[extra], extra_inc=[inc], build_dir=tmp_path / "b1",
                       make_vars={"APP_DIR": str(app)})
    override = qemu.build("host", "probe", extra_inc=[inc], build_dir=tmp_path / "b2",
                          make_vars={"APP_DIR": str(app), "KERNELS_DIR": str(tmp_path / "kernels")})
    out_plain = subprocess.run([str(plain)], capture_output=True, text=True, timeout=10).stdout
    out_override = subprocess.run([str(override)], capture_output=True, text=True, timeout=10).stdout
    assert out_plain == "hello\nprobe 1\n"                # src/print.c, the extra source's probe_value
    assert out_override == "override hello\nprobe 2\n"   # replaced by kernels/host/print.c, probe.c added


def test_changed_flags_rebuild(tmp_path):
    _need_host_cc()
    exe = qemu.build("host", "selftest", build_dir=tmp_path)
    first = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30).stdout
    exe = qemu.build("host", "selftest", build_dir=tmp_path, extra_cflags=["-DSELFTEST_SPIN_ITERATIONS=7u"])
    second = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30).stdout
    assert set(_spin_ticks(first)) == {SPIN_ITERATIONS, 2 * SPIN_ITERATIONS}
    assert set(_spin_ticks(second)) == {7, 14}


# ---------------------------------------------------------------------------------------------
# QEMU


def test_ticks_to_instructions_relation():
    # shift N: one instruction = 2^N ns; one 25 MHz tick = 40 ns.
    assert qemu.ticks_to_instructions(8, 6) == 5.0          # 1.6 ticks per instruction
    assert qemu.ticks_to_instructions(1, 0) == 40.0         # 1/40 tick per instruction
    assert qemu.ticks_to_instructions(32, 7) == 10.0
    assert qemu.ticks_to_instructions(2**32 - 1, qemu.DEFAULT_ICOUNT_SHIFT) > 2.6e9  # no wrap below that
    assert qemu.ticks_to_instructions(1, qemu.DEFAULT_ICOUNT_SHIFT) <= 1.0          # resolution
    with pytest.raises(KwsError):
        qemu.ticks_to_instructions(1, 11)


@pytest.mark.qemu
def test_selftest_under_qemu(qemu_selftest, qemu_tool, tmp_path):
    data = os.urandom(5000)  # more than the app's 512-byte block, and not a multiple of it
    (tmp_path / "selftest_in.bin").write_bytes(data)
    result = qemu.run(qemu_selftest, cwd=tmp_path, timeout_s=30)
    assert result.exit_code == 3, result
    lines = result.uart.splitlines()
    assert lines[0] == "kws selftest on qemu_mps2_an386"
    assert "ticks_hz 25000000" in lines
    assert "reversed 5000 bytes" in lines and lines[-1] == "done"
    out = (tmp_path / "selftest_out.bin").read_bytes()
    assert out == data[::-1] and out != data


@pytest.mark.qemu
def test_instruction_count_matches_disassembly_and_repeats(qemu_selftest, qemu_tool, tmp_path):
    _need("arm-none-eabi-objdump")
    shift = qemu.DEFAULT_ICOUNT_SHIFT
    runs = [_spin_ticks(qemu.run(qemu_selftest, cwd=tmp_path, timeout_s=30).uart) for _ in range(2)]
    assert runs[0] == runs[1]  # virtual time does not depend on the host
    assert set(runs[0]) == {SPIN_ITERATIONS, 2 * SPIN_ITERATIONS}
    for iterations, ticks in runs[0].items():
        expected = _timed_instructions(qemu_selftest, iterations)
        measured = qemu.ticks_to_instructions(ticks, shift)
        # Exact up to the timer's granularity: one tick = 0.625 instruction at shift 6.
        assert abs(measured - expected) < 1.0, (iterations, ticks, measured, expected)
    # A different shift changes the ticks but not the instruction count.
    other = _spin_ticks(qemu.run(qemu_selftest, cwd=tmp_path, icount_shift=8, timeout_s=30).uart)
    assert other[SPIN_ITERATIONS] != runs[0][SPIN_ITERATIONS]
    assert abs(qemu.ticks_to_instructions(other[SPIN_ITERATIONS], 8)
               - _timed_instructions(qemu_selftest, SPIN_ITERATIONS)) < 1.0


@pytest.mark.qemu
def test_missing_input_file_is_reported_not_fatal(qemu_selftest, qemu_tool, tmp_path):
    result = qemu.run(qemu_selftest, cwd=tmp_path, timeout_s=30)
    assert result.exit_code == 3
    assert "no input selftest_in.bin" in result.uart.splitlines()
    assert not (tmp_path / "selftest_out.bin").exists()


@pytest.mark.qemu
def test_uart_input_idle_wakeup_and_string_defines(build_root, qemu_tool, tmp_path):
    _need("arm-none-eabi-gcc")
    elf = qemu.build("qemu_mps2_an386", "selftest", build_dir=build_root / "echo",
                     extra_cflags=["-DSELFTEST_ECHO", '-DSELFTEST_INPUT="my input.bin"'])
    (tmp_path / "my input.bin").write_bytes(b"abc")
    result = qemu.run(elf, cwd=tmp_path, uart_input=b"hello kws\n", timeout_s=30)
    assert result.exit_code == 3, result
    assert "reversed 3 bytes" in result.uart
    assert (tmp_path / "selftest_out.bin").read_bytes() == b"cba"
    assert "echo hello kws" in result.uart.splitlines()


@pytest.mark.qemu
def test_fault_reports_and_exits(build_root, qemu_tool, tmp_path):
    _need("arm-none-eabi-gcc")
    app = tmp_path / "fault"
    app.mkdir()
    (app / "main.c").write_text(
        '#include "kws/board.h"\nint main(void) {\n    board_init();\n'
        "    return (int)*(volatile uint32_t *)0x30000000u;  // unmapped: a bus fault\n}\n")
    elf = qemu.build("qemu_mps2_an386", "fault", build_dir=build_root, make_vars={"APP_DIR": str(app)})
    result = qemu.run(elf, cwd=tmp_path, timeout_s=30)
    assert result.uart == "kws: unhandled exception 3\n"  # HardFault
    assert result.exit_code == 128 + 3


@pytest.mark.qemu
def test_timeout_kills_qemu(build_root, qemu_tool, tmp_path):
    _need("arm-none-eabi-gcc")
    app = tmp_path / "forever"
    app.mkdir()
    (app / "main.c").write_text(
        '#include "kws/board.h"\nint main(void) {\n    board_init();\n'
        '    board_uart_write((const uint8_t *)"waiting\\n", 8);\n    for (;;) {\n    }\n}\n')
    elf = qemu.build("qemu_mps2_an386", "forever", build_dir=build_root, make_vars={"APP_DIR": str(app)})
    with pytest.raises(KwsError, match=r"did not exit within 1\.5 s; last UART line: 'waiting'"):
        qemu.run(elf, cwd=tmp_path, timeout_s=1.5)
    assert _qemu_processes_running(str(elf)) == []


def test_run_errors_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(KwsError, match="firmware image not found"):
        qemu.run(tmp_path / "missing.elf")
    fake = tmp_path / "x.elf"
    fake.write_bytes(b"\x7fELF")
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(KwsError, match="qemu-system-arm not found"):
        qemu.run(fake)
    with pytest.raises(KwsError, match="make not found"):
        qemu.build("host", "selftest", build_dir=tmp_path)
