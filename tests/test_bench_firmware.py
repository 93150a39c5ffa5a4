"""The bench app (MLPerf Tiny DUT protocol, firmware/src/bench.c) with the MLPerf Tiny DS-CNN reference
model: bit-identical results to the tflite-micro interpreter on real speech, on Cortex-M4 under QEMU
(UART over TCP) and on the host board (stdin/stdout); lap timestamps = instruction time; every bad input
gets e-[...] and the DUT keeps answering; energy mode; the parser fuzzed under ASan/UBSan."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED, SHARED_REAL
from kws.bench import qemu
from kws.compile import firmware, reference_inputs, sim

MODEL = SHARED / "models" / "reference" / "mlperf_tiny_kws_ref_model.tflite"
N_INPUTS = 24
HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
HAVE_CLANG = shutil.which("clang") is not None
BUILD = REPO / "build" / "firmware"
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup`)")


def _model() -> Path:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} is absent (reference models live in ../shared beside the checkout)")
    return MODEL


@functools.lru_cache(maxsize=None)
def _inputs() -> np.ndarray:
    """[N, 1, 49, 10, 1] int8: MLPerf KWS features of real speech (our C frontend, mlperf_kws01)."""
    if not (SHARED_REAL / "speech_commands_v2_test").is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (real speech lives in ../shared beside the checkout)")
    clips = reference_inputs.real_clips(SHARED_REAL, N_INPUTS)
    return reference_inputs.inputs_for("dscnn", clips)


@functools.lru_cache(maxsize=None)
def _golden() -> np.ndarray:
    """[N, 12] int8: the tflite-micro interpreter's outputs."""
    return sim.run_tflm(_model(), _inputs()).outputs.reshape(N_INPUTS, -1)


@functools.lru_cache(maxsize=None)
def _build(board: str, energy: bool = False) -> tuple[Path, Path]:
    """The bench app for board with MODEL=<the .tflite> (through the firmware Makefile); returns
    (image, generated model.h)."""
    root = BUILD / f"bench-dscnn{'-energy' if energy else ''}"
    flags = ["-DKWS_BENCH_ENERGY=1", "-DKWS_UART_BAUD=9600"] if energy else []
    image = qemu.build(board, "bench", build_dir=root, extra_cflags=flags, make_vars={"MODEL": str(_model())})
    return image, root / board / "gen" / "model.h"


def _quant(model_h: Path) -> tuple[np.float32, int]:
    text = model_h.read_text()
    scale = re.search(r"#define KWS_MODEL_OUTPUT0_SCALE (\S+?)f?\n", text).group(1)
    zp = re.search(r"#define KWS_MODEL_OUTPUT0_ZERO_POINT (-?\d+)", text).group(1)
    return np.float32(float(scale)), int(zp)


def _format(q: int, scale: np.float32, zp: int) -> str:
    """What the DUT prints for one int8 output: (q - zp) * scale in float32, truncated to 3 decimals."""
    v = np.float32(q - zp) * scale
    sign = "-" if v < 0 else ""
    t = int(np.float32(abs(v)) * np.float32(1000))
    return f"{sign}{t // 1000}.{t % 1000:03d}"


def _session(board: str, image: Path) -> qemu.UartSession:
    return qemu.uart_session(image) if board == "qemu_mps2_an386" else qemu.process_session(image)


def _check_bit_exact(board: str) -> None:
    image, model_h = _build(board)
    x, ref = _inputs(), _golden()
    scale, zp = _quant(model_h)
    # The printed text identifies the int8 value: the 256 strings are distinct.
    texts = {q: _format(q, scale, zp) for q in range(-128, 128)}
    assert len(set(texts.values())) == 256
    got_raw, got_text = [], []
    with _session(board, image) as s:
        banner = s.read_until("m-ready", 30)
        assert banner[0] == "m-timestamp-mode-performance" and "m-init-done" in banner
        assert s.command("name") == ["m-name-dut-[kws]", "m-ready"]
        assert s.command("profile")[1:] == ["m-model-[kws01]", "m-ready"]
        for i in range(N_INPUTS):
            s.dut_load(x[i].tobytes())
            inf = s.dut_infer(1, 0)
            got_text.append(inf.results)
            got_raw.append(s.dut_results_raw())
            assert s.command("results") == [f"m-results-[{','.join(inf.results)}]", "m-ready"]
    got_raw = np.array(got_raw)
    assert got_raw.shape == ref.shape
    diff = int(np.count_nonzero(got_raw != ref))
    assert diff == 0, f"{board}: {diff} output values differ from tflite-micro"
    assert got_text == [[texts[int(q)] for q in row] for row in ref]
    # The comparison means something only if the outputs vary.
    distinct = len({r.tobytes() for r in ref})
    assert distinct >= 5, f"only {distinct} distinct outputs over {N_INPUTS} real inputs"
    assert len(np.unique(ref)) >= 10


BAD = [
    # (what, bytes sent before '%', expected text inside e-[...])
    ("over-long command", b"db " + b"00" * 200, "command too long"),
    ("db load over the buffer", b"db load 491", "over the buffer"),
    ("db load of a huge number", b"db load 99999999999999999999", "is over"),
    ("db load 0", b"db load 0", "must be > 0"),
    ("db load without N", b"db load", "needs the number"),
    ("db load non-numeric", b"db load 4x", "not a number"),
    ("invalid hex", b"db 00zz", "invalid hex digit 'z'"),
    ("odd number of hex digits", b"db 001", "odd number"),
    ("NUL byte", b"na\x00me", "outside printable ASCII"),
    ("non-ASCII bytes", "näme".encode(), "outside printable ASCII"),
    ("unknown command", b"launch", "Unknown command: launch"),
    ("infer N=0", b"infer 0 0", "must be > 0"),
    ("infer non-numeric N", b"infer many", "not a number"),
    ("infer non-numeric W", b"infer 1 -3", "not a number"),
    ("infer too many arguments", b"infer 1 2 3", "too many arguments"),
    ("results with a bad argument", b"results cooked", "only argument is raw"),
]


def _check_bad_inputs(board: str) -> None:
    image, _ = _build(board)
    x = _inputs()[0].tobytes()
    with _session(board, image) as s:
        s.read_until("m-ready", 30)
        # Before any load: infer and results refuse, db data refuses.
        for cmd, needle in (("infer 1 0", "no input loaded"), ("results", "no inference"),
                            ("db 0011", "no db load")):
            lines = s.command(cmd)
            assert len(lines) == 2 and lines[0].startswith("e-[") and needle in lines[0], (cmd, lines)
        for what, cmd, needle in BAD:
            lines = s.command(cmd)
            assert len(lines) == 2 and lines[1] == "m-ready", (what, lines)
            assert lines[0].startswith("e-[") and lines[0].endswith("]") and needle in lines[0], (what, lines)
            assert s.command("name") == ["m-name-dut-[kws]", "m-ready"], what
        # An incomplete load refuses infer; more data than announced is refused whole.
        assert s.command("db load 490") == ["m-[Expecting 490 bytes]", "m-ready"]
        assert s.command(f"db {x[:62].hex()}") == ["m-ready"]
        lines = s.command("infer 1 0")
        assert "input incomplete: 62 of 490" in lines[0]
        # More data than announced: refused whole, nothing appended.
        assert s.command("db load 4")[0] == "m-[Expecting 4 bytes]"
        assert s.command("db 0011223344")[0] == "e-[db: 5 bytes given, 4 more expected]"
        assert s.command("db 00112233") == ["m-load-done", "m-ready"]
        assert s.command("db print") == ["m-buffer-00-11-22-33", "m-ready"]
        s.dut_load(x)  # a fresh load still works after every error above
        lines = s.command(f"db {x[:4].hex()}")
        assert lines[0] == "e-[db: 4 bytes given, 0 more expected]", lines
        # A smaller load is accepted but infer refuses the size.
        s.dut_load(x[:100])
        assert "100 bytes loaded, the model takes 490" in s.command("infer")[0]
        # And the DUT still computes the right answer.
        s.dut_load(x)
        s.dut_infer(1, 0)
        assert s.dut_results_raw() == [int(v) for v in _golden()[0]]
        assert s.command("name") == ["m-name-dut-[kws]", "m-ready"]


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_qemu_results_bit_identical_to_tflite_micro():
    _check_bit_exact("qemu_mps2_an386")


@pytest.mark.slow
def test_host_results_bit_identical_to_tflite_micro():
    _check_bit_exact("host")


@pytest.mark.qemu
@needs_qemu
def test_qemu_bad_inputs_get_errors_and_dut_keeps_answering():
    _check_bad_inputs("qemu_mps2_an386")


def test_host_bad_inputs_get_errors_and_dut_keeps_answering():
    _check_bad_inputs("host")


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_qemu_lap_timestamps_are_instruction_time():
    """m-lap-us- under -icount shift=6: one instruction = 64 ns of virtual time. The lap difference of
    `infer N 0` is N inferences (+ the input copy and a tick read each), so it must equal N times what
    the model_run app measures for one kws_model_invoke() of the same input."""
    image, _ = _build("qemu_mps2_an386")
    x = _inputs()[:1]
    per_inf = sim.run_qemu(_model(), x).stats["instructions_per_inference"]
    ns_per_instr = 2 ** qemu.DEFAULT_ICOUNT_SHIFT
    with qemu.uart_session(image) as s:
        s.read_until("m-ready", 30)
        s.dut_load(x[0].tobytes())
        measured = {}
        for n in (1, 4):
            inf = s.dut_infer(n, 2)
            assert len(inf.laps_us) == 2 and inf.laps_us[1] > inf.laps_us[0]
            measured[n] = (inf.laps_us[1] - inf.laps_us[0]) * 1000 / ns_per_instr
        t = [int(s.command("timestamp")[0][len("m-lap-us-"):]) for _ in range(3)]
        assert t == sorted(t)
    for n, instr in measured.items():
        # Each timed run adds the copy of the 490 input bytes and a tick read (measured: ~340
        # instructions); the first lap line's printing adds ~500 once; 1 us = 15.6 instructions.
        extra = instr - n * per_inf
        assert 0 <= extra <= 600 * n + 1000, (n, instr, per_inf)
    assert per_inf > 1_000_000


@pytest.mark.slow
@pytest.mark.qemu
@needs_qemu
def test_qemu_energy_mode_prints_no_timestamps():
    image, _ = _build("qemu_mps2_an386", energy=True)
    x = _inputs()[:2]
    with qemu.uart_session(image) as s:
        banner = s.read_until("m-ready", 30)
        assert banner == ["m-timestamp-mode-energy", "m-init-done", "m-ready"]
        assert s.command("timestamp") == ["m-ready"]
        for i in range(2):
            s.dut_load(x[i].tobytes())
            inf = s.dut_infer(3, 1)
            assert inf.laps_us == []
            assert inf.lines == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-3", "m-infer-done",
                                 f"m-results-[{','.join(inf.results)}]", "m-ready"]
            assert s.dut_results_raw() == [int(v) for v in _golden()[i]]


def test_make_model_tflite_defaults_to_bench_and_generates_only_the_model(tmp_path):
    model = _model()
    make = ["make", "--no-print-directory", "-C", str(REPO / "firmware"), "BOARD=host", f"MODEL={model}",
            f"BUILD_DIR={tmp_path}", "path"]
    out = subprocess.run(make, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "host" / "bench")
    assert sorted(p.name for p in (tmp_path / "host" / "gen").iterdir()) == ["model.c", "model.h"]
    # Regenerating an unchanged model leaves the files alone (no needless rebuilds).
    before = (tmp_path / "host" / "gen" / "model.c").stat().st_mtime_ns
    files = firmware.generate(model, tmp_path / "host" / "gen", target="host")
    assert files["model_c"].stat().st_mtime_ns == before and "frontend_c" not in files
    bad = subprocess.run(make[:-2] + [f"MODEL={tmp_path / 'missing.tflite'}", f"BUILD_DIR={tmp_path}", "path"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "missing.tflite" in bad.stderr


# --- fuzzing ------------------------------------------------------------------------------------
FUZZ = REPO / "firmware" / "fuzz"
needs_clang = pytest.mark.skipif(not HAVE_CLANG, reason="clang not installed (make setup installs it)")


def _fuzz_make(tmp: Path, *goals: str, timeout_s: float, **vars_: str) -> subprocess.CompletedProcess:
    args = ["make", "--no-print-directory", "-C", str(FUZZ), f"OUT={tmp}"] + [f"{k}={v}" for k, v in vars_.items()]
    return subprocess.run(args + list(goals), capture_output=True, text=True, timeout=timeout_s)


@needs_clang
def test_fuzz_corpus_replays_clean_under_asan_ubsan(tmp_path):
    seeds = sorted((FUZZ / "corpus" / "bench").iterdir())
    assert len(seeds) >= 10
    res = _fuzz_make(tmp_path, "replay", timeout_s=300)
    assert res.returncode == 0, res.stderr[-2000:]
    executed = re.findall(r"^Executed (\S+) in", res.stderr, re.M)
    assert sorted(Path(e).name for e in executed) == [p.name for p in seeds]


@pytest.mark.slow
@needs_clang
def test_fuzz_parser_45_seconds_no_crash(tmp_path):
    res = _fuzz_make(tmp_path, "run", timeout_s=400, SECONDS="45")
    log = res.stderr
    assert res.returncode == 0, log[-3000:]
    runs = int(re.search(r"stat::number_of_executed_units: (\d+)", log).group(1))
    cov = [int(v) for v in re.findall(r"cov: (\d+)", log)]
    assert runs >= 50_000 and cov and max(cov) >= 100, (runs, cov[-1:])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
