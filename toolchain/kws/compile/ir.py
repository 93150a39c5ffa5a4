"""A small graph IR read from a `.tflite` flatbuffer (parsed with the schema module tflite-micro ships).

Graph: tensors (shape, dtype, quantization, constant data), operators in execution order, the main
subgraph's inputs and outputs, and resource variables (state of streaming models) with the initial
values their CALL_ONCE init subgraph assigns. Everything is plain numpy and dataclasses; nothing here
knows about C.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kws.errors import KwsError

# TensorType enum values of the TFLite schema -> numpy dtype names. RESOURCE has no storage of its own.
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
           9: "int8", 10: "float64", 12: "uint64", 15: "uint32", 16: "uint16", 17: "int4"}
_RESOURCE = 13


class CompileError(KwsError):
    """The model cannot be compiled: the message names the file or op and the cause."""


@dataclass
class Tensor:
    """One tensor. shape: tuple of ints (batch first); dtype: numpy name or 'resource'.

    scale / zero_point: float32 / int64 arrays (length 1 per-tensor, C per-channel) or None when the
    tensor is not quantized; quant_axis: the per-channel axis. data: the constant value (numpy array of
    dtype and shape) or None for activations.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quant_axis: int = 0
    data: np.ndarray | None = None
    shape_signature: tuple[int, ...] | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        if self.dtype == "resource":
            return 0
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def per_channel(self) -> bool:
        return self.scale is not None and len(self.scale) > 1

    def qparams(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantized tensor."""
        if self.scale is None or len(self.scale) == 0:
            raise CompileError(f"tensor {self.index} '{self.name}' ({self.dtype}) is not quantized")
        return float(self.scale[0]), int(self.zero_point[0]) if self.zero_point is not None and len(self.zero_point) else 0


@dataclass
class Op:
    """One operator: kind is the builtin name (e.g. 'CONV_2D'); inputs may hold -1 (optional, absent)."""

    index: int
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)
    version: int = 1

    def describe(self) -> str:
        return f"op {self.index} ({self.kind})"


@dataclass
class Variable:
    """A resource variable: its storage shape/dtype/quantization and initial value (zeros if none)."""

    key: str
    shape: tuple[int, ...]
    dtype: str
    init: np.ndarray
    handles: list[int] = field(default_factory=list)   # tensor indices of VAR_HANDLE outputs naming it

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Graph:
    path: str
    sha256: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    variables: dict[str, Variable]
    description: str = ""

    def t(self, i: int) -> Tensor:
        return self.tensors[i]


def _builtin_names() -> dict[int, str]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _options(op) -> dict:
    opt = op.builtinOptions
    if opt is None:
        return {}
    out = {}
    for k, v in vars(opt).items():
        if isinstance(v, (bytes, bytearray)):
            v = bytes(v).decode("utf-8", "replace")
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        out[k] = v
    return out


def _buffer(model, raw: bytes, t) -> np.ndarray | None:
    buf = model.buffers[t.buffer] if 0 <= t.buffer < len(model.buffers) else None
    if buf is None:
        return None
    data = None
    if buf.data is not None and len(buf.data):
        data = np.asarray(buf.data, dtype=np.uint8).tobytes()
    elif getattr(buf, "offset", 0) and getattr(buf, "size", 0):
        # Buffers of models over 2 GB live after the flatbuffer: offset/size into the file.
        data = raw[buf.offset:buf.offset + buf.size]
    return data


def load(path: str | Path) -> Graph:
    """Read a .tflite file into a Graph. Raises CompileError naming the file on anything it cannot read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CompileError(f"{path}: cannot read ({e.strerror or e})") from None
    return loads(raw, name=str(path))


def loads(raw: bytes, *, name: str = "<bytes>") -> Graph:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise CompileError(f"{name}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        model = s.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    except Exception as e:  # flatbuffers raises assorted errors on truncated data
        raise CompileError(f"{name}: corrupt or truncated TFLite file ({type(e).__name__})") from None
    if not model.subgraphs:
        raise CompileError(f"{name}: the model has no subgraphs")
    names = _builtin_names()

    def kind_of(op) -> tuple[str, int]:
        if op.opcodeIndex >= len(model.operatorCodes):
            raise CompileError(f"{name}: operator code index {op.opcodeIndex} out of range (corrupt file)")
        oc = model.operatorCodes[op.opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        if names.get(code) == "CUSTOM":
            cc = oc.customCode.decode() if isinstance(oc.customCode, (bytes, bytearray)) else str(oc.customCode)
            return f"CUSTOM:{cc}", oc.version
        return names.get(code, f"BUILTIN_{code}"), oc.version

    def tensors_of(g) -> list[Tensor]:
        out = []
        for i, t in enumerate(g.tensors or []):
            dtype = "resource" if t.type == _RESOURCE else _DTYPES.get(int(t.type), f"type{t.type}")
            shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
            sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None and len(t.shapeSignature) else None
            scale = zp = None
            axis = 0
            q = t.quantization
            if q is not None and q.scale is not None and len(q.scale):
                scale = np.asarray(q.scale, dtype=np.float32)
                zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), dtype=np.int64)
                axis = int(q.quantizedDimension)
            data = None
            rawbuf = _buffer(model, raw, t)
            if rawbuf is not None and dtype in _DTYPES.values():
                want = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                if len(rawbuf) != want:
                    raise CompileError(f"{name}: tensor {i} '{t.name.decode(errors='replace') if t.name else i}' "
                                       f"holds {len(rawbuf)} bytes, its shape needs {want} (corrupt file)")
                data = np.frombuffer(rawbuf, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
            tname = t.name.decode("utf-8", "replace") if isinstance(t.name, (bytes, bytearray)) else str(t.name or i)
            out.append(Tensor(i, tname, shape, dtype, scale, zp, axis, data, sig))
        return out

    main = model.subgraphs[0]
    tensors = tensors_of(main)
    ops = []
    for i, op in enumerate(main.operators or []):
        kind, version = kind_of(op)
        ins = [int(x) for x in (op.inputs if op.inputs is not None else [])]
        outs = [int(x) for x in (op.outputs if op.outputs is not None else [])]
        for x in ins + outs:
            if x >= len(tensors):
                raise CompileError(f"{name}: op {i} ({kind}) names tensor {x}, the graph has {len(tensors)}")
        ops.append(Op(i, kind, ins, outs, _options(op), version))

    # Resource variables: VAR_HANDLE names them (container/shared_name); CALL_ONCE runs an init subgraph
    # that assigns their first values. We evaluate that subgraph here: it may only assign constants.
    variables: dict[str, Variable] = {}

    def var_key(options: dict) -> str:
        return f"{options.get('container', '')}/{options.get('sharedName', '')}"

    for op in ops:
        if op.kind == "VAR_HANDLE":
            key = var_key(op.options)
            variables.setdefault(key, Variable(key, (), "", np.zeros(0))).handles.append(op.outputs[0])
    inits: dict[str, np.ndarray] = {}
    for op in ops:
        if op.kind != "CALL_ONCE":
            continue
        gi = int(op.options.get("initSubgraphIndex", -1))
        if not 0 < gi < len(model.subgraphs):
            raise CompileError(f"{name}: op {op.index} (CALL_ONCE) names subgraph {gi}, which does not exist")
        sub = model.subgraphs[gi]
        st = tensors_of(sub)
        handle_key = {}
        for j, sop in enumerate(sub.operators or []):
            k, _ = kind_of(sop)
            sins = [int(x) for x in sop.inputs]
            if k == "VAR_HANDLE":
                handle_key[int(sop.outputs[0])] = var_key(_options(sop))
            elif k == "ASSIGN_VARIABLE":
                src = st[sins[1]]
                if src.data is None:
                    raise CompileError(f"{name}: init subgraph {gi} op {j} assigns a computed value; only constants are supported")
                inits[handle_key[sins[0]]] = src.data
            else:
                raise CompileError(f"{name}: init subgraph {gi} op {j} is {k}; only VAR_HANDLE and ASSIGN_VARIABLE are supported there")
    # Storage shape/dtype of each variable: from what READ_VARIABLE produces or ASSIGN_VARIABLE stores.
    by_handle = {h: v for v in variables.values() for h in v.handles}
    for op in ops:
        if op.kind in ("READ_VARIABLE", "ASSIGN_VARIABLE"):
            h = op.inputs[0]
            if h not in by_handle:
                raise CompileError(f"{name}: {op.describe()} uses resource tensor {h}, which no VAR_HANDLE makes")
            v = by_handle[h]
            ref = tensors[op.outputs[0]] if op.kind == "READ_VARIABLE" else tensors[op.inputs[1]]
            if v.dtype and (v.shape != ref.shape or v.dtype != ref.dtype):
                raise CompileError(f"{name}: variable {v.key} is used as {v.shape} {v.dtype} and {ref.shape} {ref.dtype}")
            v.shape, v.dtype = ref.shape, ref.dtype
    for v in variables.values():
        if not v.dtype:
            raise CompileError(f"{name}: variable {v.key} is never read or assigned")
        init = inits.get(v.key)
        if init is None:
            init = np.zeros(v.shape, v.dtype)
        elif init.shape != v.shape or init.dtype != np.dtype(v.dtype):
            raise CompileError(f"{name}: variable {v.key} is initialised as {init.shape} {init.dtype}, used as {v.shape} {v.dtype}")
        v.init = init

    desc = model.description.decode("utf-8", "replace") if isinstance(model.description, (bytes, bytearray)) else ""
    return Graph(path=name, sha256=hashlib.sha256(raw).hexdigest(), tensors=tensors, ops=ops,
                 inputs=[int(x) for x in main.inputs], outputs=[int(x) for x in main.outputs],
                 variables=variables, description=desc)
