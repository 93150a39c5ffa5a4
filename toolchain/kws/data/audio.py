"""Audio in and out: decoding with clear errors, mono mixdown, resampling, 16-bit WAV output."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kws import config
from kws.errors import KwsError
from kws.fileio import atomic_path


def read(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode any file libsndfile reads.

    Returns (samples, sample_rate_hz): samples float32 [frames, channels] in [-1, 1] for integer
    formats (float files keep their values, NaN included). Raises KwsError naming the file when it
    is missing, unreadable or not audio at all (e.g. text with a .wav name).
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise KwsError(f"{path}: no such file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        detail = str(exc).split(":")[-1].strip() or "unknown format"
        raise KwsError(f"{path}: not a decodable audio file ({detail})") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise KwsError(f"{path}: cannot decode audio ({exc})") from None
    return data, int(rate)


def info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(frames, sample_rate_hz, channels) from the header only; KwsError if not audio."""
    import soundfile

    try:
        i = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
        raise KwsError(f"{path}: not a decodable audio file ({str(exc).split(':')[-1].strip()})") from None
    return int(i.frames), int(i.samplerate), int(i.channels)


def load(path: str | os.PathLike, *, sample_rate_hz: int = config.SAMPLE_RATE_HZ) -> np.ndarray:
    """Load a clip that must already be in pipeline format: float32 [n], mono, `sample_rate_hz`.

    Nothing is converted silently: another rate, several channels, no samples, or NaN/inf values
    raise KwsError naming the file and the cause (`kws data import` converts on purpose).
    """
    data, rate = read(path)
    if rate != sample_rate_hz:
        raise KwsError(f"{path}: sample rate is {rate} Hz, expected {sample_rate_hz} Hz (convert it with `kws data import`)")
    if data.shape[1] != 1:
        raise KwsError(f"{path}: has {data.shape[1]} channels, expected mono (convert it with `kws data import`)")
    if data.shape[0] == 0:
        raise KwsError(f"{path}: contains no samples")
    x = data[:, 0]
    if not np.all(np.isfinite(x)):
        raise KwsError(f"{path}: contains NaN or infinite samples")
    return x


def to_mono(data: np.ndarray) -> np.ndarray:
    """float32 [frames, channels] or [frames] -> float32 [frames], the mean of the channels."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        return data
    return data.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample float32 [n] with soxr (very high quality); deterministic. Output length round(n*to/from)."""
    if from_hz == to_hz:
        return np.asarray(x, dtype=np.float32)
    if from_hz <= 0 or to_hz <= 0:
        raise KwsError(f"invalid sample rates for resampling: {from_hz} -> {to_hz} Hz")
    import soxr

    y = soxr.resample(np.asarray(x, dtype=np.float32), from_hz, to_hz, quality="VHQ")
    return np.asarray(y, dtype=np.float32)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """float [n] in [-1, 1] -> int16 [n], rounded to nearest and saturated."""
    y = np.round(np.asarray(x, dtype=np.float64) * 32767.0)
    return np.clip(y, -32768, 32767).astype(np.int16)


def write_wav(path: str | os.PathLike, x: np.ndarray, *, sample_rate_hz: int = config.SAMPLE_RATE_HZ,
              overwrite: bool = False) -> Path:
    """Write mono float [n] (or int16 [n]) as 16-bit PCM WAV, atomically. Returns the path."""
    import soundfile

    x = np.asarray(x)
    pcm = x if x.dtype == np.int16 else to_pcm16(x)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        soundfile.write(str(tmp), pcm, sample_rate_hz, subtype="PCM_16", format="WAV")
    return path


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_audio_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in config.AUDIO_EXTENSIONS


def load_pcm16(path: str | os.PathLike, *, sample_rate_hz: int = config.SAMPLE_RATE_HZ) -> np.ndarray:
    """Load a clip for the frontend: int16 [n], exactly the stored samples of a 16-bit file.

    The same strict checks as `load` (rate, mono, non-empty, finite); float files are rounded to
    int16 with saturation.
    """
    x = load(path, sample_rate_hz=sample_rate_hz)
    import soundfile

    if soundfile.info(str(path)).subtype in ("PCM_16", "PCM_S8", "PCM_U8"):
        data, _ = soundfile.read(str(path), dtype="int16", always_2d=True)
        return data[:, 0]
    return to_pcm16(x)
