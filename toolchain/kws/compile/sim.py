"""`kws sim`: run an int8 .tflite on inputs in one of the three simulators of DESIGN.md decision 4.

- tflm: the tflite-micro Python interpreter (the golden reference).
- host: the compiled C (kws compile) built for x86 as a shared library, called through ctypes.
- qemu: the compiled C built into firmware/apps/model_run for qemu_mps2_an386 (Cortex-M4) and run
  under QEMU with -icount; also counts instructions per inference.

Each engine takes X [N, *input_shape] in the model's input dtype and returns Y [N, *output_shape];
inputs run in order without resetting, so streaming state carries over. With trace=True the engine
also returns every op output of every inference: {(op, tensor): array [N, *shape]}.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kws.compile import codegen
from kws.compile.ir import Graph
from kws.errors import KwsError

REPO = Path(__file__).resolve().parents[3]
FIRMWARE = REPO / "firmware"
ENGINES = ("tflm", "host", "qemu")


@dataclass
class SimResult:
    outputs: np.ndarray
    trace: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


def _io(g: Graph):
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise KwsError(f"{g.path}: kws sim handles models with one input and one output "
                       f"(this one has {len(g.inputs)} and {len(g.outputs)})")
    return g.t(g.inputs[0]), g.t(g.outputs[0])


def check_inputs(g: Graph, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    ti, _ = _io(g)
    x = np.asarray(x)
    if x.dtype != np.dtype(ti.dtype):
        raise KwsError(f"{what}: dtype {x.dtype}, the model's input is {ti.dtype}")
    if tuple(x.shape[1:]) != tuple(ti.shape):
        if x.ndim >= 1 and int(np.prod(x.shape[1:], dtype=np.int64)) == ti.size:
            x = x.reshape((x.shape[0],) + tuple(ti.shape))
        else:
            raise KwsError(f"{what}: shape {list(x.shape)}, expected [N, {', '.join(map(str, ti.shape))}]")
    if x.shape[0] == 0:
        raise KwsError(f"{what}: no inputs (N = 0)")
    return np.ascontiguousarray(x)


# --- tflm ----------------------------------------------------------------------------------------------
def run_tflm(model: str | Path, x: np.ndarray, *, trace: bool = False, graph: Graph | None = None) -> SimResult:
    from tflite_micro.python.tflite_micro import runtime

    g = graph or codegen.ir.load(model)
    x = check_inputs(g, x)
    _, to = _io(g)
    cfg = runtime.InterpreterConfig.kPreserveAllTensors if trace else runtime.InterpreterConfig.kAllocationRecording
    # The interpreter's default arena (10 x the file size) is too small for tiny models with large
    # activations; give it at least 1 MiB.
    arena = max(10 * Path(model).stat().st_size, 1 << 20)
    interp = runtime.Interpreter.from_file(str(model), arena_size=arena, intrepreter_config=cfg)
    outs = np.empty((len(x),) + tuple(to.shape), dtype=to.dtype)
    pairs = [tuple(p) for p in codegen.trace_tensors(g)] if trace else []
    tr = {p: np.empty((len(x),) + tuple(g.t(p[1]).shape), dtype=g.t(p[1]).dtype) for p in pairs}
    for n in range(len(x)):
        interp.set_input(x[n], 0)
        interp.invoke()
        outs[n] = interp.get_output(0).reshape(to.shape)
        for p in pairs:
            tr[p][n] = np.asarray(interp.GetTensor(p[1], 0)["tensor_data"]).reshape(g.t(p[1]).shape)
    return SimResult(outs, tr)


# --- host ----------------------------------------------------------------------------------------------
def _nn_sources(arch: str | None) -> list[Path]:
    srcs = {p.stem: p for p in sorted((FIRMWARE / "src" / "nn").glob("*.c"))}
    if arch:
        for p in sorted((FIRMWARE / "kernels" / arch).glob("*.[cS]")):
            srcs[p.stem] = p
    return list(srcs.values())


def _digest(paths, *texts) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p).encode())
        h.update(Path(p).read_bytes())
    for t in texts:
        h.update(t.encode())
    return h.hexdigest()[:16]


_GLUE = """
#include <stdint.h>
#include <string.h>
#include "model.h"

static uint8_t *trace_at, *trace_end;
void kws_model_trace(int op, int tensor, const void *data, uint32_t bytes) {
    (void)op; (void)tensor;
    if (trace_at && trace_at + bytes <= trace_end) { memcpy(trace_at, data, bytes); trace_at += bytes; }
}
void kws_model_profile(int op) { (void)op; }

long kws_sim_run(const uint8_t *in, uint8_t *out, long n, uint8_t *trace, long trace_cap) {
    trace_at = trace; trace_end = trace ? trace + trace_cap : 0;
    kws_model_init();
    for (long i = 0; i < n; i++) {
        memcpy(kws_model_input(0), in + i * KWS_MODEL_INPUT0_BYTES, KWS_MODEL_INPUT0_BYTES);
        kws_model_invoke();
        memcpy(out + i * KWS_MODEL_OUTPUT0_BYTES, kws_model_output(0), KWS_MODEL_OUTPUT0_BYTES);
    }
    return trace ? (long)(trace_at - trace) : 0;
}
"""


def build_host(c: codegen.Compiled, *, trace: bool, build_root: Path | None = None) -> Path:
    """Build the compiled model + reference kernels as a shared library (cached by content)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise KwsError("no C compiler found (cc/gcc): the host engine builds the generated C")
    srcs = _nn_sources(None)
    headers = sorted((FIRMWARE / "src" / "nn").glob("*.h")) + sorted((FIRMWARE / "include" / "kws").glob("*.h"))
    key = _digest(srcs + headers, c.header, c.source, _GLUE, str(trace))
    root = Path(build_root or REPO / "build" / "sim" / "host")
    lib = root / key / "libmodel.so"
    if lib.exists():
        return lib
    work = root / key
    work.mkdir(parents=True, exist_ok=True)
    gen = Path(tempfile.mkdtemp(prefix=".gen-", dir=work))
    (gen / "model.h").write_text(c.header)
    (gen / "model.c").write_text(c.source)
    (gen / "glue.c").write_text(_GLUE)
    tmp = work / f".libmodel.so.{os.getpid()}"
    cmd = [cc, "-std=c99", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
           f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'src'}", f"-I{gen}"]
    if trace:
        cmd.append("-DKWS_MODEL_TRACE")
    cmd += [str(gen / "model.c"), str(gen / "glue.c")] + [str(s) for s in srcs] + ["-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        err = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:300])
        raise KwsError(f"host build of the compiled model failed: {err}")
    os.replace(tmp, lib)
    shutil.rmtree(gen, ignore_errors=True)
    return lib


def _split_trace(g: Graph, raw: bytes, n: int) -> dict[tuple[int, int], np.ndarray]:
    pairs = [tuple(p) for p in codegen.trace_tensors(g)]
    per = sum(g.t(t).nbytes for _, t in pairs)
    if len(raw) != per * n:
        raise KwsError(f"trace holds {len(raw)} bytes, expected {per * n}")
    buf = np.frombuffer(raw, np.uint8).reshape(n, per)
    out, at = {}, 0
    for op, t in pairs:
        tt = g.t(t)
        out[(op, t)] = buf[:, at:at + tt.nbytes].copy().view(tt.dtype).reshape((n,) + tuple(tt.shape))
        at += tt.nbytes
    return out


def run_host(model: str | Path, x: np.ndarray, *, trace: bool = False, compiled: codegen.Compiled | None = None) -> SimResult:
    c = compiled or codegen.compile_model(model, target="host", name="model")
    g = c.graph
    x = check_inputs(g, x)
    ti, to = _io(g)
    lib = ctypes.CDLL(str(build_host(c, trace=trace)))
    lib.kws_sim_run.restype = ctypes.c_long
    lib.kws_sim_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p, ctypes.c_long]
    out = np.zeros((len(x),) + tuple(to.shape), dtype=to.dtype)
    per = sum(g.t(t).nbytes for _, t in codegen.trace_tensors(g)) if trace else 0
    tbuf = np.zeros(per * len(x), np.uint8) if trace else None
    used = lib.kws_sim_run(x.ctypes.data, out.ctypes.data, len(x),
                           tbuf.ctypes.data if trace else None, per * len(x))
    tr = _split_trace(g, tbuf[:used].tobytes(), len(x)) if trace else {}
    return SimResult(out, tr, {"arena_bytes": c.plan.arena_bytes, "state_bytes": c.plan.state_bytes})


# --- qemu ----------------------------------------------------------------------------------------------
def build_qemu(c: codegen.Compiled, *, trace: bool = False, profile: bool = False,
               build_root: Path | None = None) -> Path:
    from kws.bench import qemu

    key = _digest([], c.header, c.source, str(trace), str(profile))
    root = Path(build_root or REPO / "build" / "sim" / "qemu") / key
    gen = root / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "model.h").write_text(c.header) if not (gen / "model.h").exists() else None
    (gen / "model.c").write_text(c.source) if not (gen / "model.c").exists() else None
    flags = (["-DKWS_MODEL_TRACE"] if trace else []) + (["-DKWS_MODEL_PROFILE"] if profile else [])
    return qemu.build("qemu_mps2_an386", "model_run", extra_srcs=[gen / "model.c"], extra_inc=[gen],
                      extra_cflags=flags, build_dir=root / "fw")


def elf_sizes(elf: Path) -> dict:
    """text/data/bss of an ELF from arm-none-eabi-size (Berkeley format)."""
    size = shutil.which("arm-none-eabi-size")
    if size is None:
        raise KwsError("arm-none-eabi-size not found: install gcc-arm-none-eabi (make setup)")
    out = subprocess.run([size, str(elf)], capture_output=True, text=True, check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def run_qemu(model: str | Path, x: np.ndarray, *, trace: bool = False, profile: bool = False,
             compiled: codegen.Compiled | None = None, timeout_s: float = 1800) -> SimResult:
    from kws.bench import qemu

    c = compiled or codegen.compile_model(model, target="cortex-m4", name="model")
    g = c.graph
    x = check_inputs(g, x)
    _, to = _io(g)
    elf = build_qemu(c, trace=trace, profile=profile)
    with tempfile.TemporaryDirectory(prefix="kws-sim-qemu-") as tmp:
        work = Path(tmp)
        (work / "model_in.bin").write_bytes(x.tobytes())
        qemu.run_ok(elf, cwd=work, timeout_s=timeout_s)
        out = np.frombuffer((work / "model_out.bin").read_bytes(), to.dtype).reshape((len(x),) + tuple(to.shape))
        ticks = np.frombuffer((work / "model_ticks.bin").read_bytes(), "<u4")
        tr = _split_trace(g, (work / "model_trace.bin").read_bytes(), len(x)) if trace else {}
        prof = (np.frombuffer((work / "model_profile.bin").read_bytes(), "<u4").reshape(len(x), len(g.ops) + 1)
                if profile else None)
    instr = np.array([qemu.ticks_to_instructions(int(t), qemu.DEFAULT_ICOUNT_SHIFT) for t in ticks])
    sizes = elf_sizes(elf)
    stats = {"instructions_per_inference": float(np.median(instr)),
             "instructions_min": float(instr.min()), "instructions_max": float(instr.max()),
             "inferences": int(len(x)), "arena_bytes": c.plan.arena_bytes, "state_bytes": c.plan.state_bytes,
             "flash_bytes": sizes["text"] + sizes["data"], "weights_bytes": c.weights_bytes,
             "image": sizes, "icount_shift": qemu.DEFAULT_ICOUNT_SHIFT,
             "note": "instructions counted under QEMU -icount (not cycles)"}
    if prof is not None:
        d = np.diff(prof.astype(np.int64), axis=1) % (1 << 32)
        per_op = np.median(d, axis=0) * 40 / (1 << qemu.DEFAULT_ICOUNT_SHIFT)
        stats["instructions_per_op"] = [float(v) for v in per_op]
    return SimResult(out, tr, stats)


def run(engine: str, model: str | Path, x: np.ndarray, **kw) -> SimResult:
    if engine == "tflm":
        return run_tflm(model, x, **kw)
    if engine == "host":
        return run_host(model, x, **kw)
    if engine == "qemu":
        return run_qemu(model, x, **kw)
    raise KwsError(f"--engine {engine}: unknown; choose from {', '.join(ENGINES)}")


def save_stats(stats: dict, path: str | Path) -> None:
    from kws.fileio import write_text
    write_text(path, json.dumps(stats, indent=1) + "\n", overwrite=True)
