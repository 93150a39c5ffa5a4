"""`kws data synth`: a wake word, confusable negatives and noise, from every voice on the machine.

Every random choice (voice, speed, pitch, text form, speed perturbation, level, padding, noise) is drawn
up front from one seeded generator, so the output is a pure function of (word, counts, seed, installed
engines): the same seed gives the same bytes, whatever the number of parallel jobs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from kws import config
from kws.data import audio, manifest, noise, tts, words
from kws.errors import KwsError
from kws.fileio import atomic_dir

# Bumped whenever the same parameters would give other audio (caches keyed on parameters use it).
RECIPE_VERSION = 2
SILENCE_SECONDS = 1.0
# Fraction of --negatives that are _unknown_ speech (the rest is _silence_), and of those the
# fraction drawn from confusables rather than general vocabulary.
UNKNOWN_FRACTION = 2.0 / 3.0
CONFUSABLE_FRACTION = 0.5
SILENCE_KINDS = tuple(noise.COLOURS) + ("hum", "babble", "room_tone")


@dataclasses.dataclass(frozen=True)
class Utterance:
    text: str
    voice: tts.Voice
    speed: float      # relative speaking rate (1 = engine default)
    pitch: float      # relative pitch in [-1, 1] (espeak-ng only; others vary through `perturb`)
    gap: int          # espeak-ng word gap in 10 ms units


@dataclasses.dataclass(frozen=True)
class Job:
    index: int
    label: str
    speaker: str
    utterance: Utterance | None      # speech clips
    perturb: float                   # speed perturbation by resampling (changes tempo and pitch)
    peak_dbfs: float                 # speech: peak level; noise: RMS level
    lead_s: float
    tail_s: float
    noise_kind: str | None = None    # _silence_ clips
    noise_seed: int = 0
    babble: tuple[Utterance, ...] = ()


def label_for(word: str) -> str:
    """Folder-safe label of a wake word: 'Hey Nova!' -> 'hey_nova'."""
    return "_".join(words.normalize(word).replace("'", "").split())


def _check_args(word: str, count: int, negatives: int) -> str:
    norm = words.normalize(word)
    if not norm or not re.search(r"[a-z]", norm):
        raise KwsError(f"--word {word!r}: needs at least one letter a-z: no installed voice (English espeak-ng, flite, festival) can say it")
    if count < 1:
        raise KwsError(f"--count {count}: must be at least 1")
    if negatives < 0:
        raise KwsError(f"--negatives {negatives}: must not be negative")
    return norm


def _voices_by_engine() -> dict[str, tuple[tts.Voice, ...]]:
    if not tts.ENGINES["espeak-ng"].available():
        raise KwsError("espeak-ng: not found on PATH; it is required for `kws data synth` (`make setup` installs it)")
    found = {name: tts.working_voices(name) for name in tts.ENGINES}
    found = {k: v for k, v in found.items() if v}
    if "espeak-ng" not in found:
        raise KwsError("espeak-ng: installed but no English voice renders audio")
    return found


class _VoicePicker:
    """Draws voices so engines get their share and each engine cycles through all its voices."""

    def __init__(self, voices: dict[str, tuple[tts.Voice, ...]], rng: np.random.Generator):
        self.engines = sorted(voices)
        share = np.array([tts.ENGINE_SHARE.get(e, 0.1) for e in self.engines])
        self.p = share / share.sum()
        self.orders = {e: [voices[e][i] for i in rng.permutation(len(voices[e]))] for e in self.engines}
        self.pos = {e: 0 for e in self.engines}
        self.rng = rng

    def __call__(self) -> tts.Voice:
        e = self.engines[int(self.rng.choice(len(self.engines), p=self.p))]
        v = self.orders[e][self.pos[e] % len(self.orders[e])]
        self.pos[e] += 1
        return v


def _text_forms(phrase: str) -> list[str]:
    """Spellings that change the engines' prosody, not the words."""
    forms = [phrase, phrase.capitalize() + ".", phrase.capitalize() + "!", phrase.title()]
    parts = phrase.split()
    if len(parts) > 1:
        forms.append(f"{parts[0].capitalize()}, {' '.join(parts[1:])}.")
    return forms


def _utterance(phrase: str, pick: _VoicePicker, rng: np.random.Generator) -> Utterance:
    forms = _text_forms(phrase)
    return Utterance(text=forms[int(rng.integers(len(forms)))], voice=pick(),
                     speed=float(np.round(rng.uniform(0.75, 1.35), 3)),
                     pitch=float(np.round(rng.uniform(-1.0, 1.0), 3)), gap=int(rng.integers(0, 4)))


def plan(*, word: str, count: int, negatives: int, seed: int,
         voices: dict[str, tuple[tts.Voice, ...]]) -> list[Job]:
    """Every clip's parameters, drawn in a fixed order from one generator seeded with `seed`."""
    norm = _check_args(word, count, negatives)
    rng = np.random.default_rng(seed)
    pick = _VoicePicker(voices, rng)
    jobs: list[Job] = []

    def speech_job(label: str, phrase: str) -> Job:
        u = _utterance(phrase, pick, rng)
        return Job(index=len(jobs), label=label, speaker=u.voice.speaker, utterance=u,
                   perturb=float(np.round(rng.uniform(0.92, 1.08), 4)),
                   peak_dbfs=float(np.round(rng.uniform(-18.0, -1.0), 2)),
                   lead_s=float(np.round(rng.uniform(0.05, 0.3), 3)), tail_s=float(np.round(rng.uniform(0.05, 0.3), 3)))

    positive = label_for(word)
    for _ in range(count):
        jobs.append(speech_job(positive, norm))

    n_unknown = int(round(negatives * UNKNOWN_FRACTION))
    n_silence = negatives - n_unknown
    if n_unknown:
        confusable = words.confusables(norm)
        general = [w for w in words.VOCABULARY if w not in norm.split()]
        for _ in range(n_unknown):
            if confusable and rng.random() < CONFUSABLE_FRACTION:
                phrase = confusable[int(rng.integers(len(confusable)))]
            else:
                k = int(rng.choice([1, 1, 1, 2, 3]))
                phrase = " ".join(general[int(i)] for i in rng.integers(len(general), size=k))
            if words.normalize(phrase) == norm:
                continue
            jobs.append(speech_job(config.UNKNOWN_LABEL, phrase))
    for _ in range(n_silence):
        kind = SILENCE_KINDS[int(rng.integers(len(SILENCE_KINDS)))]
        babble = ()
        if kind == "babble":
            vocab = words.VOCABULARY
            babble = tuple(_utterance(vocab[int(rng.integers(len(vocab)))], pick, rng)
                           for _ in range(int(rng.integers(4, 8))))
        level = rng.uniform(-70.0, -55.0) if kind == "room_tone" else rng.uniform(-50.0, -15.0)
        idx = len(jobs)
        jobs.append(Job(index=idx, label=config.SILENCE_LABEL, speaker=f"noise:{idx}", utterance=None,
                        perturb=1.0, peak_dbfs=float(np.round(level, 2)), lead_s=0.0, tail_s=0.0,
                        noise_kind=kind, noise_seed=int(rng.integers(2**31)), babble=babble))
    return jobs


def _render_speech(u: Utterance, perturb: float) -> np.ndarray:
    """float32 [n] at 16 kHz, trimmed of leading/trailing silence."""
    x, rate = tts.ENGINES[u.voice.engine].render(u.text, u.voice, speed=u.speed, pitch=u.pitch, gap=u.gap)
    # Speed perturbation: resample to rate/perturb and read the result as 16 kHz.
    y = audio.resample(x, rate, int(round(config.SAMPLE_RATE_HZ / perturb)))
    return trim(y)


def trim(x: np.ndarray, *, frame: int = 160, floor_db: float = 45.0) -> np.ndarray:
    """Cut leading/trailing 10 ms frames more than `floor_db` below the loudest frame. float32 [n] -> [m]."""
    n = len(x) // frame
    if n == 0:
        return x
    energy = (x[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1)
    active = np.nonzero(energy > energy.max() * 10.0 ** (-floor_db / 10.0))[0]
    if len(active) == 0:
        return x[:0]
    return x[active[0] * frame: (active[-1] + 1) * frame]


def _render(job: Job) -> np.ndarray:
    rate = config.SAMPLE_RATE_HZ
    if job.utterance is not None:
        y = _render_speech(job.utterance, job.perturb)
        peak = float(np.max(np.abs(y))) if len(y) else 0.0
        if peak == 0.0:
            raise KwsError(f"{job.utterance.voice.speaker}: rendered silence for {job.utterance.text!r}")
        y = y * (10.0 ** (job.peak_dbfs / 20.0) / peak)
        return np.concatenate([np.zeros(int(job.lead_s * rate), np.float32), y.astype(np.float32),
                               np.zeros(int(job.tail_s * rate), np.float32)])
    n = int(SILENCE_SECONDS * rate)
    rng = np.random.default_rng(job.noise_seed)
    if job.noise_kind in noise.COLOURS:
        x = noise.coloured(n, job.noise_kind, rng)
    elif job.noise_kind == "hum":
        x = noise.hum(n, rng, sample_rate_hz=rate)
    elif job.noise_kind == "room_tone":
        x = noise.coloured(n, "pink", rng)
    else:
        x = noise.babble(n, [_render_speech(u, 1.0) for u in job.babble], rng)
    return noise.at_level(x, job.peak_dbfs)


def synth(*, word: str, count: int, out: Path, negatives: int = 0, seed: int = 0,
          jobs: int | None = None, progress: bool = True) -> list[manifest.Row]:
    """Write OUT/<label>/<speakerhash>_nohash_<n>.wav, OUT/manifest.csv and OUT/synth.json.

    Labels: the wake word's label (see `label_for`), `_unknown_` and `_silence_` (with negatives).
    Clips are 16 kHz mono 16-bit; speech is trimmed, levelled and padded with 50-300 ms of silence;
    `_silence_` clips last 1 s. Returns the manifest rows.
    """
    out = Path(out)
    _check_args(word, count, negatives)
    voices = _voices_by_engine()
    plan_ = plan(word=word, count=count, negatives=negatives, seed=seed, voices=voices)
    names: list[str] = []
    per_speaker: dict[tuple[str, str], int] = {}
    for job in plan_:
        key = (job.label, job.speaker)
        n = per_speaker.get(key, 0)
        per_speaker[key] = n + 1
        h = hashlib.sha1(job.speaker.encode()).hexdigest()[:8]
        names.append(f"{job.label}/{h}_nohash_{n}.wav")

    from tqdm import tqdm

    rows: list[manifest.Row] = []
    with atomic_dir(out) as tmp:
        def work(i: int) -> manifest.Row:
            job = plan_[i]
            x = _render(job)
            path = tmp / names[i]
            path.parent.mkdir(parents=True, exist_ok=True)
            audio.write_wav(path, x)
            return manifest.Row(path=names[i], label=job.label, speaker=job.speaker,
                                split=manifest.split_for_speaker(job.speaker),
                                source=f"synth:{job.speaker}" if job.utterance else f"synth:noise:{job.noise_kind}",
                                duration_s=len(x) / config.SAMPLE_RATE_HZ,
                                sample_rate_hz=config.SAMPLE_RATE_HZ, sha256=audio.sha256_file(path))

        workers = max(1, jobs or os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for row in tqdm(pool.map(work, range(len(plan_))), total=len(plan_), desc="synth",
                            unit="clip", disable=not (progress and sys.stderr.isatty()), leave=False):
                rows.append(row)
        manifest.write(tmp / config.MANIFEST_NAME, rows)
        info = {
            "word": word, "count": count, "negatives": negatives, "seed": seed, "recipe_version": RECIPE_VERSION,
            "engines": {name: tts.ENGINES[name].version() for name in sorted(voices)},
            "voices": {name: len(v) for name, v in sorted(voices.items())},
            "clips": [_describe(job, names[job.index]) for job in plan_],
        }
        (tmp / "synth.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return rows


def _describe(job: Job, path: str) -> dict:
    d = {"path": path, "label": job.label, "speaker": job.speaker, "perturb": job.perturb, "level_dbfs": job.peak_dbfs}
    if job.utterance is not None:
        u = job.utterance
        d.update(text=u.text, speed=u.speed, pitch=u.pitch, gap=u.gap, lead_s=job.lead_s, tail_s=job.tail_s)
    else:
        d.update(noise=job.noise_kind, noise_seed=job.noise_seed)
    return d
