"""The firmware's C detector (firmware/src/detector.c) makes exactly the decisions of the Python
detector `kws eval` uses, on every invocation of many random streams; the generated header compiles
and carries thresholds.json's values."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import REPO
from kws.evaluate import codegen, detector

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="needs a host C compiler")


class Params(ctypes.Structure):
    _fields_ = [("threshold", ctypes.c_uint8), ("window", ctypes.c_uint8), ("refractory", ctypes.c_uint32)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "libdet.so"
    subprocess.run([CC, "-O2", "-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{REPO / 'firmware/include'}",
                    str(REPO / "firmware/src/detector.c"), "-o", str(out)], check=True)
    return ctypes.CDLL(str(out))


def c_detect(lib, scores: np.ndarray, threshold: int, window: int, refractory: int) -> np.ndarray:
    state = ctypes.create_string_buffer(512)
    p = Params(threshold, window, refractory)
    assert lib.kws_detector_init(state, ctypes.byref(p)) == 0
    return np.array([i for i, s in enumerate(scores) if lib.kws_detector_push(state, ctypes.c_uint8(int(s)))], np.int64)


def test_c_detector_equals_python_detector(lib):
    rng = np.random.default_rng(0)
    seen = set()
    for trial in range(300):
        m = int(rng.integers(1, 400))
        # bursts of high scores over a noisy floor, like a model's output
        s = rng.integers(0, 140, size=m)
        for _ in range(int(rng.integers(0, 6))):
            a = int(rng.integers(0, m))
            s[a: a + int(rng.integers(1, 12))] = rng.integers(150, 256)
        s = s.astype(np.uint8)
        t, w, r = int(rng.integers(0, 256)), int(rng.integers(1, 9)), int(rng.integers(0, 30))
        py = detector.detect(s, detector.DetectorParams(t, w, r))
        np.testing.assert_array_equal(c_detect(lib, s, t, w, r), py, err_msg=f"trial {trial}")
        seen.add(len(py))
    assert len(seen) > 10          # the streams really produce different numbers of detections


def test_c_detector_refuses_bad_window(lib):
    state = ctypes.create_string_buffer(512)
    assert lib.kws_detector_init(state, ctypes.byref(Params(100, 0, 0))) == -1
    assert lib.kws_detector_init(state, ctypes.byref(Params(100, 65, 0))) == -1


def test_generated_header_carries_thresholds(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "model_int8.tflite").write_bytes(b"")
    doc = {"preset": "ww_logmel40", "window_frames": 49, "stride_hops": 4, "positive_class": 0,
           "classes": ["hey_nova", "_silence_", "_unknown_"], "threshold": 231, "window": 3, "refractory": 25}
    (model / "thresholds.json").write_text(json.dumps(doc))
    h = codegen.write_detector_header(model, tmp_path / "gen")
    prog = tmp_path / "check.c"
    prog.write_text('#include "kws_detector_config.h"\n'
                    '_Static_assert(KWS_DETECTOR_THRESHOLD == 231u, "t");\n'
                    '_Static_assert(KWS_DETECTOR_WINDOW == 3u, "w");\n'
                    '_Static_assert(KWS_DETECTOR_REFRACTORY == 25u, "r");\n'
                    '_Static_assert(KWS_DETECTOR_STRIDE_HOPS == 4u, "s");\n'
                    'int main(void) { return KWS_DETECTOR_POSITIVE_CLASS; }\n')
    subprocess.run([CC, "-std=c11", "-Wall", "-Werror", f"-I{h.parent}", str(prog), "-o", str(tmp_path / "check")], check=True)
    assert "sha256" in h.read_text().splitlines()[1]
