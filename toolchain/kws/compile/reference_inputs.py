"""Varied, realistic inputs for the reference models of ../shared/models/reference, made from real speech
with our C frontend (used by the bit-exactness tests and tools/bench_compile.py).

- MLPerf Tiny DS-CNN: mlperf_kws01 features, [N, 1, 49, 10, 1] int8.
- TFLM micro_speech: 49 frames x 40 log-mel bands (ww_logmel40), [N, 1, 1960] int8.
- microWakeWord okay_nabu (streaming, 3 frames per call): one continuous stream of 3N log-mel frames,
  stretched over the model's input range (its own features are non-negative, zero point -128).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from kws.errors import KwsError

MODELS = {
    "dscnn": "mlperf_tiny_kws_ref_model.tflite",
    "micro_speech": "tflm_micro_speech_quantized.tflite",
    "okay_nabu": "microwakeword_v2_okay_nabu.tflite",
}


def real_clips(real_dir: Path, n: int) -> np.ndarray:
    """int16 [n, 16000]: the first n clips (sorted paths) of real_dir/speech_commands_v2_test, padded/cut to 1 s."""
    import soundfile as sf

    files = sorted(glob.glob(str(Path(real_dir) / "speech_commands_v2_test" / "*" / "*.flac")))
    if len(files) < n:
        raise KwsError(f"{real_dir}/speech_commands_v2_test: {len(files)} clips, {n} needed")
    out = np.zeros((n, 16000), np.int16)
    for i, f in enumerate(files[:n]):
        pcm = sf.read(f, dtype="int16")[0][:16000]
        out[i, :len(pcm)] = pcm
    return out


def inputs_for(key: str, clips: np.ndarray) -> np.ndarray:
    from kws import features

    n = len(clips)
    if key == "dscnn":
        return np.stack([features.compute(c, preset="mlperf_kws01") for c in clips]).reshape(n, 1, 49, 10, 1)
    logmel = np.stack([features.compute(c, preset="ww_logmel40")[:49] for c in clips])
    if key == "micro_speech":
        return logmel.reshape(n, 1, 1960)
    if key == "okay_nabu":
        stream = logmel.reshape(-1, 40)[:3 * n].astype(np.float64)
        lo, hi = np.percentile(stream, [1, 99])
        stream = np.clip((stream - lo) / (hi - lo) * 255 - 128, -128, 127).astype(np.int8)
        return np.ascontiguousarray(stream.reshape(n, 1, 3, 40))
    raise KwsError(f"unknown reference model {key!r} (known: {', '.join(MODELS)})")
