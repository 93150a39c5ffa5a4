"""`kws compile`: an int8 .tflite -> model.c / model.h with weights, a static memory plan and one kernel
call per operator.

compile_model() does the work in memory (read, lower every op, plan, emit) and returns a Compiled;
write() puts model.c, model.h and model.json in a folder atomically.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws import __version__
from kws.compile import ir, planner
from kws.compile.ir import CompileError, Graph
from kws.compile.lower import CTYPES, LOWERINGS, TARGETS, Ctx, Lowered
from kws.errors import KwsError

# Importing the op modules registers their lowerings.
from kws.compile import ops_nn, ops_tensor  # noqa: F401,E402

MARKER = ".kws-compile"
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass
class Layer:
    index: int
    kind: str
    kernel: str
    out_shape: tuple
    macs: int
    out_bytes: int
    live_bytes: int
    flash_bytes: int


@dataclass
class Compiled:
    graph: Graph
    name: str
    target: str
    header: str
    source: str
    plan: planner.Plan
    layers: list[Layer]
    weights_bytes: int
    macs: int
    seconds: float

    def summary(self) -> dict:
        g = self.graph

        def io(i):
            t = g.t(i)
            s, z = (t.qparams() if t.scale is not None else (None, None))
            return {"tensor": i, "name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                    "scale": s, "zero_point": z, "bytes": t.nbytes}

        return {"generator": f"kws compile {__version__}", "model": Path(g.path).name, "sha256": g.sha256,
                "name": self.name, "target": self.target, "arena_bytes": self.plan.arena_bytes,
                "state_bytes": self.plan.state_bytes, "weights_bytes": self.weights_bytes, "macs": self.macs,
                "ops": len(g.ops), "inputs": [io(i) for i in g.inputs], "outputs": [io(i) for i in g.outputs],
                "layers": [vars(x) | {"out_shape": list(x.out_shape)} for x in self.layers],
                "trace_tensors": trace_tensors(g)}


def trace_tensors(g: Graph) -> list[list[int]]:
    """[op index, tensor index] of every op output the trace hook reports, in order."""
    out = []
    for op in g.ops:
        for t in op.outputs:
            if t >= 0 and g.t(t).dtype != "resource" and g.t(t).nbytes > 0:
                out.append([op.index, t])
    return out


def _check_graph(g: Graph) -> None:
    for i in list(g.inputs) + list(g.outputs):
        t = g.t(i)
        sig = t.shape_signature
        if sig is not None and any(d < 0 for d in sig[1:]):
            raise CompileError(f"{g.path}: tensor {i} '{t.name}' has a dynamic shape {list(sig)}; "
                               "export the model with fixed shapes")
        if t.dtype not in CTYPES:
            raise CompileError(f"{g.path}: graph input/output tensor {i} is {t.dtype}, which is not supported")
    for t in g.tensors:
        if t.shape_signature is not None and any(d < 0 for d in t.shape_signature[1:]):
            raise CompileError(f"{g.path}: tensor {t.index} '{t.name}' has a dynamic shape {list(t.shape_signature)}")
    if not any(t.dtype in ("int8", "uint8") for t in g.tensors if not t.is_const):
        raise CompileError(f"{g.path}: a float model; compile the int8 quantized .tflite "
                           "(full-integer post-training quantization)")


def compile_model(model, *, target: str = "host", name: str = "model", max_ram: int | None = None) -> Compiled:
    """model: a path to a .tflite or a Graph. Raises CompileError (one line) on anything unsupported."""
    t0 = time.perf_counter()
    if target not in TARGETS:
        raise KwsError(f"--target {target}: unknown target; choose from {', '.join(TARGETS)}")
    if not _IDENT.match(name):
        raise KwsError(f"--name {name!r}: must be a lowercase C identifier (letters, digits, _), at most 32 characters")
    g = model if isinstance(model, Graph) else ir.load(model)
    _check_graph(g)
    ctx = Ctx(g, target)
    lowered: list[Lowered] = []
    for op in g.ops:
        ctx.op = op
        fn = LOWERINGS.get(op.kind)
        if fn is None:
            raise ctx.fail(f"operator {op.kind} is not supported (supported: {', '.join(sorted(LOWERINGS))})")
        lowered.append(fn(ctx, op))
    ctx.op = None
    plan = planner.plan(g, lowered)
    planner.check(g, plan)
    if max_ram is not None and plan.arena_bytes + plan.state_bytes > max_ram:
        raise CompileError(f"{g.path}: needs {plan.arena_bytes + plan.state_bytes} bytes of RAM "
                           f"(arena {plan.arena_bytes} + state {plan.state_bytes}), over --max-ram {max_ram}")
    header, source = _emit(g, ctx, lowered, plan, name, target)
    layers = []
    for op, low in zip(g.ops, lowered):
        outs = [g.t(i) for i in op.outputs if i >= 0]
        layers.append(Layer(op.index, op.kind, low.kernel, outs[0].shape if outs else (), low.macs,
                            sum(t.nbytes for t in outs), plan.live_bytes[op.index], ctx.flash.get(op.index, 0)))
    weights = sum(ctx.flash.values())
    return Compiled(g, name, target, header, source, plan, layers, weights,
                    sum(x.macs for x in layers), time.perf_counter() - t0)


def _ptr(g: Graph, plan: planner.Plan, arena: str, i: int) -> str:
    t = g.t(i)
    return f"(({CTYPES[t.dtype]} *)({arena} + {plan.offsets[i]}))"


def _emit(g: Graph, ctx: Ctx, lowered: list[Lowered], plan: planner.Plan, name: str, target: str) -> tuple[str, str]:
    P = f"kws_{name}"
    M = f"KWS_{name.upper()}"
    arena, state = f"{P}_arena", f"{P}_state"
    handle_key = {h: v.key for v in g.variables.values() for h in v.handles}
    banner = (f"// Generated by kws compile {__version__} from {Path(g.path).name}\n"
              f"// (sha256 {g.sha256}) for target {target}. Do not edit: rerun kws compile.\n")

    def subst(code: str, op_index: int) -> str:
        def rep(m: re.Match) -> str:
            kind, val = m.group(1), m.group(2)
            if kind == "T":
                return _ptr(g, plan, arena, int(val))
            key = handle_key[int(val)]
            return f"({state} + {plan.state_offsets[key]})"
        code = re.sub(r"\{([TH])(\d+)\}", rep, code)
        if "{SCRATCH}" in code:
            off = plan.scratch.get(op_index)
            code = code.replace("{SCRATCH}", f"({arena} + {off})" if off is not None else "NULL")
        return code

    io_defs = []
    for kind, idx in (("INPUT", g.inputs), ("OUTPUT", g.outputs)):
        io_defs.append(f"#define {M}_NUM_{kind}S {len(idx)}")
        for k, i in enumerate(idx):
            t = g.t(i)
            io_defs.append(f"#define {M}_{kind}{k}_BYTES {t.nbytes}")
            io_defs.append(f"#define {M}_{kind}{k}_ELEMENTS {t.size}")
            io_defs.append(f"#define {M}_{kind}{k}_SHAPE {{{', '.join(str(d) for d in t.shape)}}}")
            io_defs.append(f"#define {M}_{kind}{k}_DTYPE_{t.dtype.upper()} 1")
            if t.scale is not None and not t.per_channel:
                s, z = t.qparams()
                io_defs.append(f"#define {M}_{kind}{k}_SCALE {np.float32(s).item():.9g}f")
                io_defs.append(f"#define {M}_{kind}{k}_ZERO_POINT {z}")
    header = f"""{banner}
// The compiled model: call {P}_init() once, then per inference fill {P}_input(0), call
// {P}_invoke() and read {P}_output(0). All memory is static: the arena ({M}_ARENA_BYTES) holds
// every activation and scratch buffer at offsets fixed by the compiler; the state ({M}_STATE_BYTES)
// holds the streaming variables that carry over between invocations. Not reentrant.
#ifndef {M}_H
#define {M}_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {M}_SHA256 "{g.sha256}"
#define {M}_ARENA_BYTES {plan.arena_bytes}
#define {M}_STATE_BYTES {plan.state_bytes}
#define {M}_WEIGHTS_BYTES {sum(ctx.flash.values())}
#define {M}_MACS {sum(x.macs for x in lowered)}
#define {M}_NUM_OPS {len(g.ops)}
{chr(10).join(io_defs)}

// Resets the streaming state to its initial values (models without state: does nothing).
void {P}_init(void);
// Runs one inference on the current input(s).
void {P}_invoke(void);
// Where to write input `index` (0-based; {M}_INPUT<index>_BYTES bytes) before {P}_invoke().
void *{P}_input(int index);
// Output `index` after {P}_invoke(); valid until the next invoke or input write.
const void *{P}_output(int index);

// Hooks for simulators and profilers, compiled in only when these macros are defined:
// KWS_MODEL_TRACE: {P}_trace(op, tensor, data, bytes) after every op for each output it wrote.
// KWS_MODEL_PROFILE: {P}_profile(op) before every op and {P}_profile({M}_NUM_OPS) at the end.
void {P}_trace(int op, int tensor, const void *data, uint32_t bytes);
void {P}_profile(int op);

#ifdef __cplusplus
}}
#endif

#endif  // {M}_H
"""
    body = []
    for op, low in zip(g.ops, lowered):
        out_shapes = ", ".join(str(list(g.t(i).shape)) for i in op.outputs if i >= 0)
        lines = [f"    // op {op.index}: {op.kind} -> {out_shapes}" + (f", {low.macs} MACs" if low.macs else "")]
        lines.append(f"    {P}_PROFILE({op.index});")
        code = subst(low.call, op.index)
        lines += [f"    {line}" for line in code.splitlines() if line.strip()]
        for t in op.outputs:
            if t >= 0 and g.t(t).dtype != "resource" and g.t(t).nbytes > 0:
                lines.append(f"    {P}_TRACE({op.index}, {t}, {_ptr(g, plan, arena, t)}, {g.t(t).nbytes});")
        body.append("\n".join(lines))
    init_lines = []
    for key, v in g.variables.items():
        sym = f"{P}_init_{len(init_lines)}"
        init_lines.append((sym, key, v))
    init_decls = "\n".join(
        _c_init_array(sym, v) for sym, _, v in init_lines)
    init_body = "\n".join(f"    memcpy({state} + {plan.state_offsets[key]}, {sym}, {v.nbytes});"
                          for sym, key, v in init_lines) or "    // no state"
    in_cases = "\n".join(f"    case {k}: return {_ptr(g, plan, arena, i)};" for k, i in enumerate(g.inputs))
    out_cases = "\n".join(f"    case {k}: return {_ptr(g, plan, arena, i)};" for k, i in enumerate(g.outputs))
    state_def = (f"static int8_t {state}[{M}_STATE_BYTES] __attribute__((aligned(8)));"
                 if plan.state_bytes else "")
    source = f"""{banner}
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kws/nn.h"
#include "{name}.h"

#define KWS_ALIGNED __attribute__((aligned(4)))

#ifdef KWS_MODEL_TRACE
#define {P}_TRACE(op, t, p, n) {P}_trace(op, t, p, n)
#else
#define {P}_TRACE(op, t, p, n) ((void)0)
#endif
#ifdef KWS_MODEL_PROFILE
#define {P}_PROFILE(op) {P}_profile(op)
#else
#define {P}_PROFILE(op) ((void)0)
#endif

static int8_t {arena}[{M}_ARENA_BYTES > 0 ? {M}_ARENA_BYTES : 1] __attribute__((aligned(8)));
{state_def}

{chr(10).join(ctx.decls)}

{init_decls}

void {P}_init(void) {{
{init_body}
}}

void *{P}_input(int index) {{
    switch (index) {{
{in_cases}
    default: return NULL;
    }}
}}

const void *{P}_output(int index) {{
    switch (index) {{
{out_cases}
    default: return NULL;
    }}
}}

void {P}_invoke(void) {{
{chr(10).join(body)}
    {P}_PROFILE({len(g.ops)});
}}
"""
    return header, source


def _c_init_array(sym: str, v) -> str:
    from kws.compile.lower import c_array
    return c_array(CTYPES[v.dtype], sym, v.init, comment=f"initial value of variable {v.key}")


def layer_table(c: Compiled) -> str:
    rows = [f"{'#':>3}  {'op':<18} {'kernel':<20} {'output':<16} {'MACs':>10} {'out B':>7} {'live RAM':>9} {'flash B':>8}"]
    for x in c.layers:
        rows.append(f"{x.index:>3}  {x.kind:<18} {x.kernel:<20} {str(list(x.out_shape)):<16} {x.macs:>10,} "
                    f"{x.out_bytes:>7,} {x.live_bytes:>9,} {x.flash_bytes:>8,}")
    rows.append(f"total: {c.macs:,} MACs; arena {c.plan.arena_bytes:,} B; state {c.plan.state_bytes:,} B; "
                f"weights and tables {c.weights_bytes:,} B; compiled in {c.seconds:.2f} s")
    return "\n".join(rows)


def write(c: Compiled, out: str | Path) -> Path:
    """Write model.c/.h/.json into `out` atomically. An existing folder is replaced only if it is a
    previous kws compile output (it holds the marker file); anything else is refused."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise KwsError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise KwsError(f"{out}: folder exists, is not empty and is not a kws compile output; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-kws-compile"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        (tmp / f"{c.name}.h").write_text(c.header)
        (tmp / f"{c.name}.c").write_text(c.source)
        (tmp / f"{c.name}.json").write_text(json.dumps(c.summary(), indent=1) + "\n")
        (tmp / MARKER).write_text(f"{c.graph.sha256}\n")
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-kws-compile"
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KwsError(f"{out}: cannot write ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
