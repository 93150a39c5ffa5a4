"""kws compile: the generated C is bit-identical to the tflite-micro interpreter (output and every
intermediate tensor) on the reference models, on the host build and on Cortex-M4 under QEMU; bad models
fail at compile time with one line and leave nothing behind."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, SHARED_REAL
from kws import cli
from kws.compile import codegen, ir, sim

REF = SHARED / "models" / "reference"
MODELS = {
    "dscnn": "mlperf_tiny_kws_ref_model.tflite",
    "micro_speech": "tflm_micro_speech_quantized.tflite",
    "okay_nabu": "microwakeword_v2_okay_nabu.tflite",
}
N_INPUTS = 1000
HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None


def _model(key: str) -> Path:
    p = REF / MODELS[key]
    if not p.is_file():
        pytest.skip(f"{p} is absent (reference models live in ../shared beside the checkout)")
    return p


@functools.lru_cache(maxsize=None)
def _real_clips() -> np.ndarray:
    """int16 [N, 16000] real Speech Commands test clips (padded/cut to 1 s)."""
    import soundfile as sf

    files = sorted(glob.glob(str(SHARED_REAL / "speech_commands_v2_test" / "*" / "*.flac")))
    if len(files) < N_INPUTS:
        pytest.skip(f"{SHARED_REAL / 'speech_commands_v2_test'}: fewer than {N_INPUTS} clips")
    out = np.zeros((N_INPUTS, 16000), np.int16)
    for i, f in enumerate(files[:N_INPUTS]):
        pcm = sf.read(f, dtype="int16")[0][:16000]
        out[i, :len(pcm)] = pcm
    return out


@functools.lru_cache(maxsize=None)
def inputs_for(key: str) -> np.ndarray:
    """1,000 varied, realistic inputs per model, made with our C frontend from real speech."""
    from kws import features

    clips = _real_clips()
    if key == "dscnn":       # MLPerf Tiny KWS features (mlperf_kws01 preset), [N, 1, 49, 10, 1]
        x = np.stack([features.compute(c, preset="mlperf_kws01") for c in clips])
        return x.reshape(N_INPUTS, 1, 49, 10, 1)
    logmel = np.stack([features.compute(c, preset="ww_logmel40")[:49] for c in clips])
    if key == "micro_speech":  # 49 frames x 40 log-mel bands, [N, 1, 1960]
        return logmel.reshape(N_INPUTS, 1, 1960)
    # okay_nabu streams 3 frames per call: one continuous stream of 3,000 frames, stretched over the
    # model's input range (its own features are non-negative with zero point -128).
    stream = logmel.reshape(-1, 40)[:3 * N_INPUTS].astype(np.float64)
    lo, hi = np.percentile(stream, [1, 99])
    stream = np.clip((stream - lo) / (hi - lo) * 255 - 128, -128, 127).astype(np.int8)
    return np.ascontiguousarray(stream.reshape(N_INPUTS, 1, 3, 40))


@functools.lru_cache(maxsize=None)
def golden(key: str) -> sim.SimResult:
    return sim.run_tflm(_model(key), inputs_for(key), trace=True)


def _assert_same(ref: sim.SimResult, got: sim.SimResult, key: str) -> None:
    assert got.outputs.dtype == ref.outputs.dtype and got.outputs.shape == ref.outputs.shape
    assert set(got.trace) == set(ref.trace) and len(ref.trace) > 0
    for k in ref.trace:
        diff = np.count_nonzero(ref.trace[k] != got.trace[k])
        assert diff == 0, f"{key}: op {k[0]} tensor {k[1]}: {diff} values differ from tflite-micro"
    assert np.array_equal(ref.outputs, got.outputs)
    # The comparison means something only if the outputs vary: a constant model makes any test pass.
    n = len(ref.outputs)
    distinct = len({o.tobytes() for o in ref.outputs.reshape(n, -1)})
    assert distinct >= 5, f"{key}: only {distinct} distinct outputs over {n} inputs"
    for k, v in ref.trace.items():
        assert len(np.unique(v)) > 1 or v.size <= n, f"{key}: tensor {k} is constant over every input"


@pytest.mark.slow
@pytest.mark.parametrize("key", list(MODELS))
def test_reference_model_bit_exact_on_host(key):
    ref = golden(key)
    got = sim.run_host(_model(key), inputs_for(key), trace=True)
    _assert_same(ref, got, key)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make setup`)")
@pytest.mark.parametrize("key", list(MODELS))
def test_reference_model_bit_exact_on_cortex_m4_qemu(key):
    ref = golden(key)
    got = sim.run_qemu(_model(key), inputs_for(key), trace=True)
    _assert_same(ref, got, key)
    assert got.stats["instructions_per_inference"] > 0


def test_dscnn_memory_plan_and_compile_time():
    p = _model("dscnn")
    t0 = time.perf_counter()
    c = codegen.compile_model(p, target="cortex-m4")
    seconds = time.perf_counter() - t0
    assert seconds <= 5.0
    g = c.graph
    # Two 8,000-byte activations must be live at once (a layer's input and output): the plan can not
    # beat that, and must not need much more (the goal is the two plus the 490-byte input).
    biggest = sorted((g.t(i).nbytes for op in g.ops for i in op.outputs), reverse=True)
    assert biggest[0] + biggest[1] <= c.plan.arena_bytes <= 16_500
    for host_target in ("host", "cortex-m4"):
        planned = codegen.compile_model(p, target=host_target).plan
        assert planned.arena_bytes <= 16_500
    # MACs of the table = the textbook count for each conv/dw/fc layer.
    expect = 0
    for op in g.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w, y = g.t(op.inputs[1]), g.t(op.outputs[0])
            per = w.shape[1] * w.shape[2] * (w.shape[3] if op.kind == "CONV_2D" else 1)
            expect += y.size * per
        elif op.kind == "FULLY_CONNECTED":
            expect += g.t(op.inputs[1]).size
    pool = next(x for x in c.layers if x.kind == "AVERAGE_POOL_2D")
    assert c.macs == expect + pool.macs


def test_generated_code_has_banner_constants_and_no_heap(tmp_path):
    p = _model("dscnn")
    c = codegen.compile_model(p, target="cortex-m4", name="kws01")
    out = codegen.write(c, tmp_path / "gen")
    h = (out / "kws01.h").read_text()
    src = (out / "kws01.c").read_text()
    assert c.graph.sha256 in h.splitlines()[1] and "Generated by kws compile" in h.splitlines()[0]
    assert f"#define KWS_KWS01_ARENA_BYTES {c.plan.arena_bytes}" in h
    assert "#define KWS_KWS01_INPUT0_ZERO_POINT 83" in h
    assert "malloc" not in src and src.count("kws_nn_") >= len(c.graph.ops) - 1
    # It compiles on its own with the kernels, warnings as errors.
    cc = shutil.which("cc") or shutil.which("gcc")
    fw = Path(sim.FIRMWARE)
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", str(out / "kws01.c"),
                    f"-I{fw / 'include'}", f"-I{out}", "-o", str(tmp_path / "m.o")], check=True)


def _mutate(src: Path, dst: Path, fn) -> Path:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    fn(m, s)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(bytes(b.Output()))
    return dst


def _set_input_type_int16(m, s):
    m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].type = s.TensorType.INT16


def _dynamic_shape(m, s):
    t = m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]]
    t.shapeSignature = np.array([1, -1, 10, 1], dtype=np.int32)


def _unsupported_op(m, s):
    for oc in m.operatorCodes:
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == s.BuiltinOperator.SOFTMAX:
            oc.builtinCode = s.BuiltinOperator.LOG_SOFTMAX
            oc.deprecatedBuiltinCode = min(s.BuiltinOperator.LOG_SOFTMAX, 127)


def _bad_models(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = _model("dscnn")
    data = good.read_bytes()
    (tmp_path / "trunc.tflite").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.tflite").write_text("this is not a model\n")
    return {
        "truncated": (tmp_path / "trunc.tflite", "truncated"),
        "not tflite": (tmp_path / "text.tflite", "not a TFLite flatbuffer"),
        "float": (REF / "mlperf_tiny_kws_ref_model_float32.tflite", "float model"),
        "int16 activations": (_mutate(good, tmp_path / "i16.tflite", _set_input_type_int16), "int16"),
        "dynamic shape": (_mutate(good, tmp_path / "dyn.tflite", _dynamic_shape), "dynamic shape"),
        "unsupported op": (_mutate(good, tmp_path / "op.tflite", _unsupported_op), "op 12 (LOG_SOFTMAX)"),
    }


def test_bad_models_fail_with_one_line_and_leave_nothing(tmp_path, capsys):
    for what, (path, needle) in _bad_models(tmp_path).items():
        if not path.exists():
            continue
        out = tmp_path / f"out-{what.replace(' ', '_')}"
        rc = cli.main(["compile", str(path), "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert rc != 0, what
        assert len(err.splitlines()) == 1 and err.startswith("kws: error: "), (what, err)
        assert needle in err, (what, err)
        assert not out.exists(), what
        assert not [p for p in tmp_path.iterdir() if "tmp-kws" in p.name], what
    # A RAM budget the model does not fit.
    out = tmp_path / "budget"
    rc = cli.main(["compile", str(_model("dscnn")), "--out", str(out), "--max-ram", "12k"])
    err = capsys.readouterr().err
    assert rc != 0 and "over --max-ram 12288" in err and not out.exists()


def test_compile_refuses_to_replace_user_folder(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    rc = cli.main(["compile", str(_model("micro_speech")), "--out", str(user)])
    assert rc != 0 and "not a kws compile output" in capsys.readouterr().err
    assert (user / "notes.txt").read_text() == "keep me"
    # A previous compile output is replaced.
    out = tmp_path / "gen"
    assert cli.main(["compile", str(_model("micro_speech")), "--out", str(out), "--quiet"]) == 0
    first = (out / "model.c").read_text()
    assert cli.main(["compile", str(_model("dscnn")), "--out", str(out), "--quiet"]) == 0
    assert (out / "model.c").read_text() != first


def test_sim_cli_engines_agree(tmp_path, capsys):
    p = _model("micro_speech")
    x = inputs_for("micro_speech")[:40]
    np.save(tmp_path / "x.npy", x)
    engines = ["tflm", "host"] + (["qemu"] if HAVE_QEMU else [])
    outs = {}
    for e in engines:
        args = ["sim", str(p), "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / f"y_{e}.npy"),
                "--engine", e]
        if e == "qemu":
            args += ["--stats", str(tmp_path / "stats.json")]
        assert cli.main(args) == 0, capsys.readouterr().err
        outs[e] = np.load(tmp_path / f"y_{e}.npy")
    for e in engines[1:]:
        assert np.array_equal(outs["tflm"], outs[e]), e
    assert len({o.tobytes() for o in outs["tflm"]}) > 5
    if HAVE_QEMU:
        import json
        st = json.loads((tmp_path / "stats.json").read_text())
        assert st["instructions_per_inference"] > 1000 and st["arena_bytes"] > 0 and st["flash_bytes"] > st["weights_bytes"]
    # Wrong dtype / shape: one line, non-zero.
    np.save(tmp_path / "bad.npy", x.astype(np.float32))
    rc = cli.main(["sim", str(p), "--inputs", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "y.npy")])
    assert rc != 0 and "dtype float32" in capsys.readouterr().err


def test_export_writes_aligned_tflite_array_and_compiled_c(tmp_path, capsys):
    p = _model("dscnn")
    out = tmp_path / "export"
    assert cli.main(["export", str(p), "--out", str(out), "--name", "kws01"]) == 0
    assert (out / "compiled" / "kws01.c").is_file()
    # Build the array with a tiny program that prints its alignment and writes its bytes back.
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include <stdint.h>\n#include "kws01_data.h"\n'
                    'int main(int c, char **v) { (void)c; FILE *f = fopen(v[1], "wb");\n'
                    '  fwrite(kws01_data, 1, KWS01_DATA_LEN, f); fclose(f);\n'
                    '  return ((uintptr_t)kws01_data % 16) != 0; }\n')
    cc = shutil.which("cc") or shutil.which("gcc")
    exe = tmp_path / "dump"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", str(main), str(out / "tflm" / "kws01_data.c"),
                    f"-I{out / 'tflm'}", "-o", str(exe)], check=True)
    subprocess.run([str(exe), str(tmp_path / "back.tflite")], check=True)
    assert (tmp_path / "back.tflite").read_bytes() == p.read_bytes()
    # An existing non-empty folder is refused.
    assert cli.main(["export", str(p), "--out", str(out)]) != 0
    assert "not empty" in capsys.readouterr().err


@pytest.mark.skipif(os.environ.get("KWS_SKIP_TRAINED") == "1", reason="KWS_SKIP_TRAINED=1")
def test_ir_reads_state_variables_and_init_values():
    g = ir.load(_model("okay_nabu"))
    assert len(g.variables) == 6
    for v in g.variables.values():
        assert v.init.shape == v.shape and v.dtype == "int8"
    c = codegen.compile_model(g)
    assert c.plan.state_bytes >= sum(v.nbytes for v in g.variables.values())
