"""Lowering: each TFLite operator becomes one kernel call plus the constant data it needs.

A lowering function takes (ctx, op) and returns a Lowered: the C statement(s) with placeholders for
tensor addresses (`{T<index>}`, filled in after memory planning) and `{SCRATCH}`, the MACs it costs,
the scratch bytes its kernel needs on the target, and whether its output may (alias) or must share its
input's memory. Constant data (weights, params structs, tables) goes through ctx.array()/ctx.params(),
which also counts the flash each operator adds. A lowering raises ctx.fail(...) for anything it does
not support: never wrong code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kws.compile.ir import CompileError, Graph, Op, Tensor

CTYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
          "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t", "uint64": "uint64_t",
          "float32": "float", "bool": "uint8_t"}

TARGETS = ("host", "cortex-m4")


@dataclass
class Lowered:
    call: str = ""
    macs: int = 0
    scratch_bytes: int = 0
    alias: tuple[int, int] | None = None           # (input, output): the output IS the input's memory
    inplace: list[tuple[int, int]] = field(default_factory=list)  # (input, output): may share memory
    kernel: str = ""


LOWERINGS: dict[str, Callable[["Ctx", Op], Lowered]] = {}


def lowering(*kinds: str):
    def register(fn):
        for k in kinds:
            LOWERINGS[k] = fn
        return fn
    return register


class Ctx:
    """What a lowering function may use: tensors, C symbols for constants, and errors."""

    def __init__(self, graph: Graph, target: str):
        self.graph = graph
        self.target = target
        self.decls: list[str] = []
        self.flash: dict[int, int] = {}       # op index -> bytes of constant data it added
        self.op: Op | None = None
        self._weights: dict[int, str] = {}
        self._names: set[str] = set()

    # --- tensors -----------------------------------------------------------------------------------
    def t(self, i: int) -> Tensor:
        return self.graph.tensors[i]

    def fail(self, why: str) -> CompileError:
        op = self.op
        where = f"{op.describe()}" if op is not None else "model"
        return CompileError(f"{self.graph.path}: {where}: {why}")

    def expect(self, i: int, dtypes: tuple[str, ...], what: str) -> Tensor:
        if i < 0:
            raise self.fail(f"{what} is missing")
        t = self.t(i)
        if t.dtype not in dtypes:
            raise self.fail(f"{what} (tensor {i}) is {t.dtype}; supported: {', '.join(dtypes)}")
        if t.dtype in ("int8", "uint8", "int16") and t.scale is None:
            raise self.fail(f"{what} (tensor {i}) is {t.dtype} without quantization parameters")
        return t

    def per_tensor(self, t: Tensor, what: str) -> tuple[float, int]:
        if t.per_channel:
            raise self.fail(f"{what} (tensor {t.index}) is quantized per channel; only per-tensor is supported here")
        return t.qparams()

    def ptr(self, i: int) -> str:
        return f"{{T{i}}}"

    # --- constants ---------------------------------------------------------------------------------
    def _symbol(self, hint: str) -> str:
        base = f"op{self.op.index}_{hint}" if self.op is not None else hint
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def _count(self, nbytes: int) -> None:
        key = self.op.index if self.op is not None else -1
        self.flash[key] = self.flash.get(key, 0) + nbytes

    def array(self, hint: str, values, ctype: str) -> str:
        """Emit `static const ctype name[] = {...}` (4-byte aligned); return its name."""
        values = np.asarray(values).ravel()
        name = self._symbol(hint)
        self.decls.append(c_array(ctype, name, values))
        self._count(values.size * _ctype_bytes(ctype))
        return name

    def weights(self, i: int) -> str:
        """The symbol of constant tensor i's data (emitted once, shared by every op that reads it)."""
        if i in self._weights:
            return self._weights[i]
        t = self.t(i)
        if t.data is None:
            raise self.fail(f"tensor {i} '{t.name}' must be constant (weights computed at run time are not supported)")
        name = self._symbol(f"t{i}")
        self.decls.append(c_array(CTYPES[t.dtype], name, t.data, comment=f"tensor {i} '{t.name}' {list(t.shape)}"))
        self._count(t.nbytes)
        self._weights[i] = name
        return name

    def params(self, ctype: str, fields: dict) -> str:
        """Emit `static const ctype name = {.field = value, ...}`; return `&name`."""
        name = self._symbol("params")
        body = ",\n".join(f"    .{k} = {_c_value(v)}" for k, v in fields.items())
        self.decls.append(f"static const {ctype} {name} = {{\n{body},\n}};")
        self._count(4 * len(fields) + 4 * sum(isinstance(v, (list, tuple)) for v in fields.values()))
        return f"&{name}"


def _ctype_bytes(ctype: str) -> int:
    return {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
            "float": 4, "int64_t": 8, "uint64_t": 8}[ctype]


def _c_value(v) -> str:
    if isinstance(v, (list, tuple, np.ndarray)):
        return "{" + ", ".join(_c_value(x) for x in v) + "}"
    if isinstance(v, str):
        return v
    if isinstance(v, (float, np.floating)):
        return _c_float(float(v))
    return str(int(v))


def _c_float(x: float) -> str:
    if math.isinf(x) or math.isnan(x):
        raise CompileError(f"non-finite constant {x}")
    return f"{np.float32(x).item():.9g}f"


def c_array(ctype: str, name: str, values, *, comment: str = "", per_line: int = 16) -> str:
    values = np.asarray(values).ravel()
    if ctype == "float":
        items = [_c_float(float(v)) for v in values]
    elif ctype == "int32_t":
        items = [str(int(v)) if int(v) != -(1 << 31) else "INT32_MIN" for v in values]
    elif ctype == "int64_t":
        items = [f"INT64_C({int(v)})" for v in values]
    elif ctype == "uint64_t":
        items = [f"UINT64_C({int(v)})" for v in values]
    else:
        items = [str(int(v)) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)] or ["0"]
    head = f"// {comment}\n" if comment else ""
    body = ",\n    ".join(lines)
    return f"{head}static const {ctype} {name}[{max(len(items), 1)}] KWS_ALIGNED = {{\n    {body},\n}};"


# --- shared arithmetic for lowerings -------------------------------------------------------------------
def round_half_away(x: float) -> int:
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def activation_range(ctx: Ctx, fused: int, out: Tensor) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8/uint8 output."""
    lo, hi = (-128, 127) if out.dtype == "int8" else (0, 255) if out.dtype == "uint8" else (-32768, 32767)
    scale, zp = out.qparams()

    def q(f: float) -> int:
        return zp + round_half_away(float(np.float32(f) / np.float32(scale)))

    if fused == 0:
        return lo, hi
    if fused == 1:       # RELU
        return max(lo, q(0.0)), hi
    if fused == 3:       # RELU6
        return max(lo, q(0.0)), min(hi, q(6.0))
    if fused == 2:       # RELU_N1_TO_1
        return max(lo, q(-1.0)), min(hi, q(1.0))
    names = {4: "TANH", 5: "SIGN_BIT", 6: "SIGMOID"}
    raise ctx.fail(f"fused activation {names.get(fused, fused)} is not supported")


def compute_padding(in_size: int, k: int, stride: int, dilation: int, padding: int, out_size: int,
                    ctx: Ctx, what: str) -> int:
    """TFLite's padding rule (SAME = 0, VALID = 1): checks the model's output size and returns the
    leading padding."""
    eff = (k - 1) * dilation + 1
    if padding == 0:
        expect = (in_size + stride - 1) // stride
    elif padding == 1:
        expect = (in_size - eff + stride) // stride
    else:
        raise ctx.fail(f"padding mode {padding} is not supported")
    if expect != out_size:
        raise ctx.fail(f"{what}: output size {out_size} does not follow from input {in_size}, kernel {k}, "
                       f"stride {stride}, dilation {dilation} (expected {expect})")
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2
