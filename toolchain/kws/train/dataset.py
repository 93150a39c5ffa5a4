"""Training data: clips from manifests or label folders, the class map, and the 1 s windows the model
sees, made on the fly (augmented) and turned into features by the C frontend.

Classes: a wake-word model has [<word>, _silence_, _unknown_]; a commands model has the configured
words then _silence_, _unknown_ (MLPerf Tiny's order). Any other label is _unknown_.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from pathlib import Path

import numpy as np

from kws import config
from kws.errors import KwsError
from kws.train import augment

NOISE_LABELS = ("_background_noise_",)


@dataclasses.dataclass
class Item:
    """One training example source. pcm None: a _silence_ window cut from the noise pool."""
    pcm: np.ndarray | None       # float32 [n], 16 kHz
    label: int
    split: str
    name: str
    source: str = ""


@dataclasses.dataclass
class Corpus:
    classes: list[str]
    items: list[Item]
    noise: list[np.ndarray]      # float32 clips for background mixing and silence windows

    def split(self, name: str) -> list[Item]:
        return [it for it in self.items if it.split == name]

    def counts(self, split: str) -> dict[str, int]:
        c = dict.fromkeys(self.classes, 0)
        for it in self.split(split):
            c[self.classes[it.label]] += 1
        return c


def classes_for(cfg: config.TrainConfig) -> list[str]:
    from kws.data.synth import label_for

    if cfg.is_wake_word:
        return [label_for(cfg.word), config.SILENCE_LABEL, config.UNKNOWN_LABEL]
    return [*cfg.commands.labels, config.SILENCE_LABEL, config.UNKNOWN_LABEL]


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Any readable audio file -> float32 [n] mono at 16 kHz (resampled when needed)."""
    from kws.data import audio

    data, rate = audio.read(path)
    x = audio.to_mono(data)
    if len(x) == 0:
        raise KwsError(f"{path}: contains no samples")
    if not np.all(np.isfinite(x)):
        raise KwsError(f"{path}: contains NaN or infinite samples")
    return audio.resample(x, rate, config.SAMPLE_RATE_HZ) if rate != config.SAMPLE_RATE_HZ else x


def _entries(root: Path) -> list[tuple[Path, str, str, str]]:
    """(file, label, split, source) of a dataset folder: its manifest (ok rows only) or, without one,
    <label>/**/audio with the speaker-hash split of each file name."""
    from kws.data import audio, manifest

    if not root.is_dir():
        raise KwsError(f"{root}: no such dataset folder")
    mf = root / config.MANIFEST_NAME
    if mf.is_file():
        return [(root / r.path, r.label, r.split, r.source) for r in manifest.read(mf) if r.status == "ok"]
    out = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_report", config.QUARANTINE_DIR))):
        for f in sorted(label_dir.rglob("*")):
            if f.is_file() and audio.is_audio_name(f):
                speaker = manifest.speech_commands_speaker(f.name) or f.stem
                out.append((f, label_dir.name, manifest.split_for_speaker(speaker), f"dir:{root.name}"))
    if not out:
        raise KwsError(f"{root}: no manifest.csv and no audio in <label>/ sub-folders")
    return out


def noise_files(dirs) -> list[Path]:
    from kws.data import audio

    files = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            files.append(d)
        elif d.is_dir():
            files += sorted(f for f in d.rglob("*") if f.is_file() and audio.is_audio_name(f))
        else:
            raise KwsError(f"{d}: no such noise file or folder")
    return files


def build(cfg: config.TrainConfig, *, data_dirs: list[Path], require_splits=("train", "validation")) -> Corpus:
    """Load every clip of data_dirs (plus data.noise_dirs) into memory and check the class counts."""
    classes = classes_for(cfg)
    index = {c: i for i, c in enumerate(classes)}
    unknown = index[config.UNKNOWN_LABEL]
    items, noise = [], []
    for root in data_dirs:
        entries = _entries(Path(root))
        for split in require_splits:
            if not any(e[2] == split for e in entries if e[1] not in NOISE_LABELS):
                raise KwsError(f"{root}: dataset has no {split!r} clips (every split in {', '.join(require_splits)} is needed; "
                               "splits come from manifest.csv or the speaker-hash rule)")
        for path, label, split, source in entries:
            x = load_audio(path)
            if label in NOISE_LABELS:
                noise.append(x)
                continue
            cls = index.get(label, unknown)
            items.append(Item(pcm=x, label=cls, split=split, name=str(path), source=source))
            if label == config.SILENCE_LABEL and split == "train":
                noise.append(x)
    for f in noise_files(cfg.data.noise_dirs):
        noise.append(load_audio(f))
    corpus = Corpus(classes=classes, items=items, noise=noise)
    _add_virtual_silence(corpus)
    counts = corpus.counts("train")
    for name, n in counts.items():
        if n < cfg.data.min_clips_per_class:
            raise KwsError(f"class {name!r} has {n} training clips, fewer than data.min_clips_per_class = "
                           f"{cfg.data.min_clips_per_class} (add data or lower it)")
    return corpus


def _add_virtual_silence(corpus: Corpus) -> None:
    """Datasets without _silence_ clips (Speech Commands keeps noise in _background_noise_) get silence
    windows cut from the noise pool at training time: as many as the average class, per split."""
    s = corpus.classes.index(config.SILENCE_LABEL)
    if not corpus.noise:
        return
    for split in config.SPLITS:
        its = corpus.split(split)
        if not its or any(it.label == s for it in its):
            continue
        n = max(1, len(its) // (len(corpus.classes) - 1))
        corpus.items += [Item(pcm=None, label=s, split=split, name=f"noise-window-{split}-{i}") for i in range(n)]


@dataclasses.dataclass
class WindowMaker:
    """Turns an Item into the model's input window: int8 features [window_frames, row_size]."""
    preset: config.FrontendPreset
    window_frames: int
    augmenter: augment.Augmenter
    positive_labels: frozenset
    silence_label: int
    shift_ms: float
    context_pool: list = dataclasses.field(default_factory=list)   # float32 speech clips (training negatives)

    @property
    def window_samples(self) -> int:
        if self.preset.clip_samples:
            return self.preset.clip_samples
        return (self.window_frames - 1) * self.preset.hop_samples + self.preset.window_samples

    def pcm(self, item: Item, rng: np.random.Generator | None) -> np.ndarray:
        """The window's int16 samples; rng None: no augmentation and a fixed placement (evaluation)."""
        n = self.window_samples
        fixed = rng is None
        r = np.random.default_rng(zlib.crc32(item.name.encode())) if fixed else rng
        if item.pcm is None:                       # silence cut from the noise pool, at a random level
            x = augment.noise_segment(self.augmenter.noise_pool, n, r) * np.float32(10 ** (r.uniform(-30, 0) / 20))
        elif item.label == self.silence_label:     # a noise clip: a random stretch of it
            x = augment.noise_segment([item.pcm], n, r)
        else:
            x = item.pcm
            positive = item.label in self.positive_labels
            if positive:                           # the utterance itself, with 50 ms either side
                s, e = augment.speech_extent(x)
                margin = int(0.05 * config.SAMPLE_RATE_HZ)
                x = x[max(0, s - margin): e + margin]
            if not fixed:
                x = self.augmenter.before_placement(x, r)
                x = self._with_context(x, r, positive=positive)
            shift = int(self.shift_ms * config.SAMPLE_RATE_HZ / 1000)
            if positive:                           # the word ends within the last shift_ms of the window
                end_at = n - (shift // 3 if fixed else int(r.integers(0, shift + 1)))
            else:                                  # other speech anywhere, possibly cut
                end_at = n if fixed else int(r.integers(n // 2, n + len(x) // 2 + 1))
            x = augment.place(x, n, end_at=end_at)
        return augment.to_int16(x) if fixed else self.augmenter.after_placement(x, r)

    def _with_context(self, x: np.ndarray, r: np.random.Generator, *, positive: bool) -> np.ndarray:
        """Speech does not come one word per second: with probability context_prob other speech from
        the pool precedes the clip (and, for non-wake-word speech, follows it), joined with gaps of
        0-250 ms, as words run together in a conversation or in back-to-back recordings."""
        pool, p = self.context_pool, self.augmenter.cfg.context_prob
        if not pool or not self.augmenter.cfg.enabled or r.random() >= p:
            return x
        sr = config.SAMPLE_RATE_HZ

        def other() -> np.ndarray:
            y = pool[int(r.integers(len(pool)))]
            s, e = augment.speech_extent(y)
            return y[max(0, s - int(r.integers(0, sr // 10))): e]

        def gap() -> np.ndarray:
            return np.zeros(int(r.integers(0, sr // 4)), np.float32)

        parts = [other(), gap(), x]
        if not positive and r.random() < 0.5:
            parts += [gap(), other()]
        return np.concatenate(parts).astype(np.float32)

    def features(self, item: Item, rng: np.random.Generator | None) -> np.ndarray:
        from kws import features

        f = features.compute(self.pcm(item, rng), preset=self.preset.name, name=item.name)
        if f.shape[0] != self.window_frames:
            raise KwsError(f"preset {self.preset.name} gives {f.shape[0]} frames per window, model.window_frames is {self.window_frames}")
        return self.augmenter.features(f, rng) if rng is not None else f


def to_model_input(q: np.ndarray, preset: config.FrontendPreset, arch: str) -> np.ndarray:
    """int8 features [..., frames, bins] -> the float model input: the real values the int8 codes stand
    for, (q - zero_point) * scale, shaped [..., frames, 1, bins] ("tc") or [..., frames, bins, 1]."""
    x = (q.astype(np.float32) - np.float32(preset.out_zero_point)) * np.float32(preset.out_scale)
    return x[..., :, None, :] if arch == "tc" else x[..., None]


def input_shape(preset: config.FrontendPreset, window_frames: int, arch: str) -> tuple[int, int, int]:
    return (window_frames, 1, preset.row_size) if arch == "tc" else (window_frames, preset.row_size, 1)
