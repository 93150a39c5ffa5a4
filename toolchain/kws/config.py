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
    synth_count: int = 1500         # wake-word clips from `kws data synth` (0: no synthetic data)
    synth_negatives: int = 4000     # _unknown_ + _silence_ clips
    seed: int = 1234
    dirs: tuple = ()                # more datasets: folders with manifest.csv or <label>/ sub-folders
    noise_dirs: tuple = ()          # background noise for augmentation (any audio files, searched recursively)
    min_clips_per_class: int = 20   # fewer training clips than this in a class is an error
    dirs_repeat: int = 1            # each training clip of data.dirs appears this often per epoch (a few real clips)


@_dc.dataclass(frozen=True)
class ModelConfig:
    arch: str = "tc"                # "tc" (temporal convolutions, always-on size) or "ds_cnn" (MLPerf Tiny)
    filters: int = 48
    blocks: int = 4
    kernel: int = 5                 # "tc": temporal kernel of the depthwise blocks
    window_frames: int = 49         # frames the model sees (49 x 20 ms hop + 10 ms = 1 s)
    # The device runs the model every stride_hops hops (8 = 160 ms). Measured (BENCHMARKS.md, firmware):
    # every 8 hops instead of 4 halves the model's share of the always-on cost for the same FRR within
    # the noise of the real-speech evaluation (29.9 % vs 31.0 % at 1 FA/h, 384 clips, 1.31 h).
    stride_hops: int = 8
    dropout: float = 0.2


@_dc.dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    shift_ms: float = 300.0         # the utterance ends uniformly in the last shift_ms of the window
    gain_db: tuple = (-18.0, 6.0)
    noise_prob: float = 0.8
    snr_db: tuple = (0.0, 25.0)
    speed: tuple = (0.88, 1.12)     # speed perturbation by resampling: tempo and pitch change together
    reverb_prob: float = 0.5
    eq_prob: float = 0.5            # another microphone: low-pass, high-pass and tilt
    lowpass_hz: tuple = (3400.0, 8000.0)
    rt60_s: tuple = (0.15, 0.8)
    context_prob: float = 0.0       # other speech runs into the window before/after the clip (measured: no gain)
    spec_time_masks: int = 2
    spec_time_mask_frames: int = 5
    spec_freq_masks: int = 2
    spec_freq_mask_bins: int = 5


@_dc.dataclass(frozen=True)
class FitConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.003
    seed: int = 1
    balance: bool = True            # weight classes by inverse frequency
    label_smoothing: float = 0.1    # softer targets: scores do not pile up at 255, thresholds can separate
    finetune_epochs: int = 20
    finetune_learning_rate: float = 0.0005


@_dc.dataclass(frozen=True)
class DetectorConfig:
    target_faph: float = 0.5        # calibrate for this many false accepts per hour
    windows: tuple = (1, 2, 3, 4, 6)  # smoothing windows tried (model invocations)
    refractory_ms: tuple = (1000.0, 2000.0)
    calibration_minutes: float = 30.0  # negative audio for calibration: validation negatives, re-augmented until this long


@_dc.dataclass(frozen=True)
class CommandsConfig:
    labels: tuple = ()              # target words; others become _unknown_, plus _silence_
    dataset: str = ""               # Speech Commands layout or a kws manifest folder


@_dc.dataclass(frozen=True)
class TrainConfig:
    word: str                       # wake word; "" for a commands model
    out: str
    data: DataConfig = DataConfig()
    frontend: str = "ww_logmel40"
    model: ModelConfig = ModelConfig()
    augment: AugmentConfig = AugmentConfig()
    train: FitConfig = FitConfig()
    detector: DetectorConfig = DetectorConfig()
    commands: CommandsConfig | None = None

    @property
    def is_wake_word(self) -> bool:
        return self.commands is None


# TOML section -> (dataclass, TrainConfig field). Types come from the dataclass defaults.
_SECTIONS = {"data": (DataConfig, "data"), "model": (ModelConfig, "model"), "augment": (AugmentConfig, "augment"),
             "train": (FitConfig, "train"), "detector": (DetectorConfig, "detector"),
             "commands": (CommandsConfig, "commands")}
_SCALARS = {"wake_word": {"word": str}, "output": {"dir": str}, "frontend": {"preset": str}}
_KNOWN = list(_SCALARS) + list(_SECTIONS)


def _type_name(v) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "array", dict: "table"}.get(type(v), type(v).__name__)


def _coerce(path, key: str, v, default):
    """Check a TOML value against the type of the field's default value; returns the stored value."""
    from kws.errors import KwsError

    def bad(want: str):
        return KwsError(f"{path}: {key} must be {want}, got {_type_name(v)} {v!r}")

    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise bad("a bool (true/false)")
        return v
    if isinstance(default, int):
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad("an integer")
        return v
    if isinstance(default, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("a number")
        return float(v)
    if isinstance(default, str):
        if not isinstance(v, str):
            raise bad("a string")
        return v
    if isinstance(default, tuple):
        if not isinstance(v, list):
            raise bad("an array")
        kinds = {type(x) for x in default} or {str}
        if kinds <= {int, float} and float in kinds:
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise bad("an array of numbers")
            v = [float(x) for x in v]
        elif kinds == {int}:
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                raise bad("an array of integers")
        elif not all(isinstance(x, str) for x in v):
            raise bad("an array of strings")
        if len(default) == 2 and key.split(".")[-1] in _RANGES and len(v) != 2:
            raise bad("[low, high]")
        return tuple(v)
    raise AssertionError(key)


_RANGES = {"gain_db", "snr_db", "speed", "rt60_s", "lowpass_hz"}


def _section(path, name: str, cls, table: dict):
    from kws.errors import KwsError

    defaults = cls() if name != "commands" else CommandsConfig()
    fields = {f.name for f in _dc.fields(cls)}
    values = {}
    for key, v in table.items():
        if key not in fields:
            raise KwsError(f"{path}: unknown key {name}.{key} (known: {', '.join(sorted(fields))})")
        values[key] = _coerce(path, f"{name}.{key}", v, getattr(defaults, key))
    return cls(**{**{f.name: getattr(defaults, f.name) for f in _dc.fields(cls)}, **values})


def check_train_config(cfg: TrainConfig, where: str = "config") -> TrainConfig:
    """Value checks shared by the TOML and the --word short form."""
    from kws.errors import KwsError

    def need(ok: bool, msg: str):
        if not ok:
            raise KwsError(f"{where}: {msg}")

    need(cfg.frontend in FRONTEND_PRESETS, f"frontend.preset {cfg.frontend!r} is unknown (known: {', '.join(FRONTEND_PRESETS)})")
    need(cfg.data.synth_count >= 0 and cfg.data.synth_negatives >= 0, "data.synth_count and data.synth_negatives must be >= 0")
    need(cfg.data.min_clips_per_class >= 1, "data.min_clips_per_class must be >= 1")
    need(1 <= cfg.data.dirs_repeat <= 100, "data.dirs_repeat must be 1..100")
    m = cfg.model
    need(m.arch in ("tc", "ds_cnn"), f"model.arch {m.arch!r} is unknown (known: tc, ds_cnn)")
    need(m.filters >= 1 and m.blocks >= 0 and m.kernel >= 1, "model.filters, model.kernel must be >= 1, model.blocks >= 0")
    need(8 <= m.window_frames <= 200, "model.window_frames must be 8..200")
    need(1 <= m.stride_hops <= 50, "model.stride_hops must be 1..50")
    need(0.0 <= m.dropout < 1.0, "model.dropout must be in [0, 1)")
    a = cfg.augment
    for k in _RANGES:
        lo, hi = getattr(a, k)
        need(lo <= hi, f"augment.{k} must be [low, high] with low <= high")
    need(a.speed[0] > 0.5 and a.speed[1] < 2.0, "augment.speed must lie within (0.5, 2.0)")
    need(a.rt60_s[0] > 0, "augment.rt60_s must be > 0")
    for k in ("noise_prob", "reverb_prob", "eq_prob", "context_prob"):
        need(0.0 <= getattr(a, k) <= 1.0, f"augment.{k} must be in [0, 1]")
    t = cfg.train
    need(t.epochs >= 1 and t.batch_size >= 1 and t.finetune_epochs >= 1, "train.epochs, train.batch_size, train.finetune_epochs must be >= 1")
    need(t.learning_rate > 0 and t.finetune_learning_rate > 0, "train learning rates must be > 0")
    need(0.0 <= t.label_smoothing < 0.5, "train.label_smoothing must be in [0, 0.5)")
    d = cfg.detector
    need(d.target_faph > 0, "detector.target_faph must be > 0")
    need(len(d.windows) > 0 and all(1 <= w <= 50 for w in d.windows), "detector.windows must be integers 1..50")
    need(len(d.refractory_ms) > 0 and all(0 <= r <= 10000 for r in d.refractory_ms), "detector.refractory_ms must be 0..10000 ms")
    if cfg.commands is not None:
        need(len(cfg.commands.labels) >= 1, "commands.labels must name at least one word")
        need(bool(cfg.commands.dataset), "commands.dataset must name the dataset folder")
        need(not cfg.word, "give either [wake_word] or [commands], not both")
    else:
        need(bool(cfg.word.strip()), "missing wake_word.word")
        need(cfg.data.synth_count > 0 or len(cfg.data.dirs) > 0, "no training data: data.synth_count is 0 and data.dirs is empty")
    return cfg


def default_out(word: str) -> str:
    return f"models/{'_'.join(word.lower().split()) or 'model'}"


def load_train_config(path: str | _Path) -> TrainConfig:
    """Parse and validate a training TOML file (see configs/default.toml). Relative paths (output.dir,
    data.dirs, data.noise_dirs, commands.dataset) are taken from the current folder, like the CLI's."""
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
    parts: dict = {}
    for section, table in doc.items():
        if section not in _KNOWN:
            raise KwsError(f"{path}: unknown section [{section}] (known: {', '.join(_KNOWN)})")
        if not isinstance(table, dict):
            raise KwsError(f"{path}: {section} must be a table, got {_type_name(table)}")
        if section in _SCALARS:
            for key, v in table.items():
                want = _SCALARS[section].get(key)
                if want is None:
                    raise KwsError(f"{path}: unknown key {section}.{key} (known: {', '.join(_SCALARS[section])})")
                parts[f"{section}.{key}"] = _coerce(path, f"{section}.{key}", v, "")
        else:
            cls, field = _SECTIONS[section]
            parts[field] = _section(path, section, cls, table)
    word = parts.pop("wake_word.word", "")
    out = parts.pop("output.dir", "") or default_out(word or path.stem)
    preset = parts.pop("frontend.preset", None)
    if preset is not None:
        parts["frontend"] = preset
    if "commands" not in parts and not word:
        raise KwsError(f"{path}: missing wake_word.word (or a [commands] section)")
    return check_train_config(TrainConfig(word=word, out=out, **parts), str(path))


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
