"""Features: the C frontend (firmware/src/frontend*.c) as a host library.

    compute(pcm, preset="mlperf_kws01") -> int8 [frames, row_size]

is the only way the toolchain makes features, so training, evaluation and device agree bit for bit.
"""

from __future__ import annotations

import functools

import numpy as np

from kws import config
from kws.errors import KwsError


@functools.lru_cache(maxsize=None)
def frontend(preset: str):
    """The NativeFrontend of a preset name (tables built once per process)."""
    from kws.features import native, tables

    return native.NativeFrontend(tables.build(config.frontend_preset(preset)))


def _check_pcm(pcm, what: str) -> np.ndarray:
    a = np.asarray(pcm)
    if a.dtype != np.int16:
        raise KwsError(f"{what}: expected int16 samples, got {a.dtype} (use kws.data.audio.load_pcm16 for files)")
    if a.ndim != 1:
        raise KwsError(f"{what}: expected mono samples [n], got shape {a.shape}")
    if a.size == 0:
        raise KwsError(f"{what}: contains no samples")
    return a


def compute(pcm, *, preset: str = "mlperf_kws01", name: str = "pcm") -> np.ndarray:
    """Features of one clip: int16 [n] at the preset's rate -> int8 [frames, row_size].

    Presets with clip_samples (mlperf_kws01: 16000 -> 49 x 10) cut or zero-pad the clip and
    normalize it by its maximum; others give 1 + (n - window) // hop rows (0 if n < window).
    """
    return frontend(preset).clip(_check_pcm(pcm, name))


def stream(pcm, *, preset: str = "mlperf_kws01", norm_max: int = 32768, name: str = "pcm") -> np.ndarray:
    """Features through the streaming interface (hop by hop), with a given normalization divisor."""
    return frontend(preset).stream(_check_pcm(pcm, name), norm_max=norm_max)
