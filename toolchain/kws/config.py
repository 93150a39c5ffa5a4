"""The one source of truth for constants shared by every stage.

Firmware headers that need these numbers are generated from this module, never kept in sync by hand.
"""

from __future__ import annotations

# Audio entering the pipeline: every stage after `kws data` assumes this format.
SAMPLE_RATE_HZ = 16000
CHANNELS = 1
SAMPLE_WIDTH_BYTES = 2  # clips are written as 16-bit PCM WAV

# Class names shared with Speech Commands / MLPerf Tiny.
UNKNOWN_LABEL = "_unknown_"
SILENCE_LABEL = "_silence_"
QUARANTINE_DIR = "_quarantine"
MANIFEST_NAME = "manifest.csv"

# One manifest format for every acquisition command (see kws.data.manifest).
MANIFEST_COLUMNS = (
    "path",
    "label",
    "speaker",
    "split",
    "source",
    "duration_s",
    "sample_rate_hz",
    "sha256",
    "status",
)
SPLITS = ("train", "validation", "test")

# Speaker-hash split, the rule Speech Commands itself uses (Warden 2018, arXiv:1804.03209):
# percentage = (int(sha1(speaker), 16) % (MAX + 1)) * 100 / MAX, MAX = 2**27 - 1.
SPLIT_HASH_MAX = 2**27 - 1
VALIDATION_PERCENT = 10.0
TESTING_PERCENT = 10.0

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".aifc")

# Speech Commands v0.02, as published by its author.
SPEECH_COMMANDS_V2_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_V2_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"


# ---------------------------------------------------------------------------------------------
# Training configs (TOML). The schema lives here; `load_train_config` validates it with one-line
# errors naming the file and the key.

import dataclasses as _dc
import tomllib as _tomllib
from pathlib import Path as _Path


@_dc.dataclass(frozen=True)
class DataConfig:
    synth_count: int = 600          # wake-word clips from `kws data synth`
    synth_negatives: int = 1200     # _unknown_ + _silence_ clips
    seed: int = 1234


@_dc.dataclass(frozen=True)
class TrainConfig:
    word: str
    out: str
    data: DataConfig = DataConfig()


_SCHEMA = {
    "wake_word": {"word": str},
    "output": {"dir": str},
    "data": {f.name: f.type for f in _dc.fields(DataConfig)},
}


def load_train_config(path: str | _Path) -> TrainConfig:
    """Parse and validate a training TOML file (see configs/default.toml)."""
    from kws.errors import KwsError

    path = _Path(path)
    try:
        doc = _tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KwsError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KwsError(f"{path}: cannot read ({exc})") from None
    except _tomllib.TOMLDecodeError as exc:
        raise KwsError(f"{path}: invalid TOML ({exc})") from None
    for section, value in doc.items():
        if section not in _SCHEMA:
            raise KwsError(f"{path}: unknown section [{section}] (known: {', '.join(_SCHEMA)})")
        if not isinstance(value, dict):
            raise KwsError(f"{path}: {section} must be a table")
        for key, v in value.items():
            want = _SCHEMA[section].get(key)
            if want is None:
                raise KwsError(f"{path}: unknown key {section}.{key} (known: {', '.join(_SCHEMA[section])})")
            want_type = {"int": int, "str": str}.get(want, want) if isinstance(want, str) else want
            if not isinstance(v, want_type) or (want_type is int and isinstance(v, bool)):
                raise KwsError(f"{path}: {section}.{key} must be {want_type.__name__}, got {type(v).__name__}")
    word = doc.get("wake_word", {}).get("word")
    if not word:
        raise KwsError(f"{path}: missing wake_word.word")
    data = DataConfig(**doc.get("data", {}))
    if data.synth_count < 1 or data.synth_negatives < 0:
        raise KwsError(f"{path}: data.synth_count must be >= 1 and data.synth_negatives >= 0")
    out = doc.get("output", {}).get("dir") or f"models/{'_'.join(word.lower().split())}"
    return TrainConfig(word=word, out=out, data=data)


# ---------------------------------------------------------------------------------------------
# Frontend presets (DESIGN.md decision 2). The C frontend's tables and its generated header come
# from these values through kws.features.tables; nothing is copied by hand.

@_dc.dataclass(frozen=True)
class FrontendPreset:
    name: str
    sample_rate_hz: int = 16000
    window_samples: int = 480        # periodic Hann window
    hop_samples: int = 320
    fft_size: int = 512              # frames are zero-padded to this length
    num_mel: int = 40
    mel_low_hz: float = 20.0
    mel_high_hz: float = 4000.0
    num_coeffs: int = 10             # DCT-II coefficients kept; 0 = output the log-mel bands themselves
    log_floor: float = 1e-6          # log(mel + log_floor)
    # "clip_max": divide the waveform by its maximum sample value, as MLPerf Tiny does per 1 s clip
    # (a streaming device supplies the maximum up front); "fixed": samples are int16 / 32768.
    normalize: str = "fixed"
    clip_samples: int = 0            # whole-clip interface: pad/cut to this many samples (0: as given)
    out_scale: float = 1.0           # int8 = cast(value / out_scale + out_zero_point)
    out_zero_point: int = 0
    out_rounding: str = "round"      # "trunc" (toward zero, as numpy's float->int cast) or "round" (half away)
    out_overflow: str = "saturate"   # "saturate" or "wrap" (numpy's float->int8 cast on x86 wraps mod 256)

    @property
    def num_bins(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def row_size(self) -> int:
        return self.num_coeffs or self.num_mel

    def frames_for(self, n_samples: int) -> int:
        n = self.clip_samples or n_samples
        return 0 if n < self.window_samples else 1 + (n - self.window_samples) // self.hop_samples


FRONTEND_PRESETS = {
    # MLPerf Tiny KWS (kws01) features, exactly as its training scripts make them: 30 ms Hann, 20 ms hop,
    # 512-point |FFT|, 40 mel bands 20-4000 Hz, log(x + 1e-6), DCT-II (TF's scaling), 10 coefficients,
    # 49 frames of a 1 s clip divided by its maximum, int8 = numpy cast of (mfcc / 0.5847029 + 83):
    # truncation toward zero, wrapping past the int8 range (it happens: ~1 value in 100k on real speech).
    "mlperf_kws01": FrontendPreset(
        name="mlperf_kws01", normalize="clip_max", clip_samples=16000,
        out_scale=0.5847029, out_zero_point=83, out_rounding="trunc", out_overflow="wrap"),
    # Streaming wake-word features: 40 log-mel bands 60-7600 Hz over 30 ms / 20 ms, fixed gain
    # (no per-clip normalization, so every hop is final when it is computed). int8 covers
    # (-128 - 11) * 0.1 .. (127 - 11) * 0.1 = -13.9 .. 11.6, and ln(1e-6) = -13.8.
    "ww_logmel40": FrontendPreset(
        name="ww_logmel40", mel_low_hz=60.0, mel_high_hz=7600.0, num_coeffs=0,
        normalize="fixed", out_scale=0.1, out_zero_point=11, out_rounding="round", out_overflow="saturate"),
}


def frontend_preset(name: str) -> FrontendPreset:
    from kws.errors import KwsError

    try:
        return FRONTEND_PRESETS[name]
    except KeyError:
        raise KwsError(f"unknown frontend preset {name!r} (known: {', '.join(FRONTEND_PRESETS)})") from None
