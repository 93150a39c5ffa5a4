"""`kws data import`: bring a folder of labelled audio into the pipeline format.

Every clip is decoded, mixed down to mono, resampled to 16 kHz with soxr and written as 16-bit PCM
WAV under OUT/<label>/, with one OUT/manifest.csv. The whole import is staged in a temporary folder
and renamed to OUT at the end, so OUT exists only when every clip was imported.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path

import numpy as np

from kws import config
from kws.data import audio, manifest
from kws.errors import KwsError
from kws.fileio import atomic_dir

LAYOUTS = ("folders", "speech_commands")
BACKGROUND_NOISE_LABEL = "_background_noise_"
BACKGROUND_NOISE_SPEAKER = "noise"
SC_VALIDATION_LIST = "validation_list.txt"
SC_TESTING_LIST = "testing_list.txt"


@dataclasses.dataclass(frozen=True)
class _Job:
    """One source clip and where it goes: `rel_out` is relative to OUT (POSIX)."""

    src_path: Path
    label: str
    rel_out: str
    speaker: str
    split: str


def import_audio(src: Path, *, out: Path, layout: str = "folders",
                 speaker_regex: str | None = None) -> list[manifest.Row]:
    """Import SRC/<label>/**/<audio file> into OUT as 16 kHz mono 16-bit WAV plus OUT/manifest.csv.

    layout "folders": each sub-folder of SRC is a label; audio files (config.AUDIO_EXTENSIONS) are
    found at any depth below it. The speaker of a clip is, in order of preference:
      1. the first group of `speaker_regex`, searched (re.search) in the file name;
      2. the first sub-folder between label and file (SRC/<label>/<speaker>/.../x.wav);
      3. the file stem -- every file is then its own speaker, so the speaker-hash split can put
         clips of one real person in several splits; give a regex or sub-folders to avoid that.
    layout "speech_commands": the Speech Commands tree; the speaker is the hash in the file name
    (`<hash>_nohash_<n>.wav`) unless `speaker_regex` is given; `_background_noise_` clips, and
    `_silence_` clips whose name holds no speaker (MLPerf Tiny's test set), get the speaker
    "noise". If SRC holds validation_list.txt and testing_list.txt they decide the split
    (files named in neither are train); otherwise the speaker-hash rule does, as for folders.

    Each output clip keeps its relative name with a .wav suffix: OUT/<label>/<rel>.wav. Hidden files
    and folders (names starting with "."), files without an audio extension (README, .txt) and
    SRC/_quarantine/ (clips `kws data validate` judged unfit) are ignored. Returns the manifest
    rows; the clips are written as int16 PCM, out-of-range samples saturated.

    Raises KwsError (one line, naming the input) for: SRC missing or not a folder; no label
    folders; a label folder without audio; an audio file outside a label folder; a file that does
    not decode; NaN/inf samples; a speaker regex that does not compile or does not match a file;
    two sources that would write the same output file; OUT existing and not empty.
    """
    src, out = Path(src), Path(out)
    if layout not in LAYOUTS:
        raise KwsError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    if not src.exists():
        raise KwsError(f"{src}: no such folder")
    if not src.is_dir():
        raise KwsError(f"{src}: not a folder")
    src_abs, out_abs = src.resolve(), out.resolve()
    if out_abs == src_abs or src_abs in out_abs.parents:
        raise KwsError(f"{out}: output folder is, or is inside, the source folder {src}; choose one outside it")
    pattern = _compile_speaker_regex(speaker_regex)

    jobs = _plan(src, layout=layout, pattern=pattern)
    source = f"import:{src_abs.name or src_abs}"

    from tqdm import tqdm

    rows: list[manifest.Row] = []
    with atomic_dir(out) as tmp:
        for job in tqdm(jobs, desc=f"import {src_abs.name}", unit="file", file=sys.stderr,
                        disable=None, leave=False):
            rows.append(_convert(job, tmp, source=source))
        manifest.write(tmp / config.MANIFEST_NAME, rows)
    return rows


def _compile_speaker_regex(speaker_regex: str | None) -> re.Pattern | None:
    if speaker_regex is None:
        return None
    try:
        pattern = re.compile(speaker_regex)
    except re.error as exc:
        raise KwsError(f"--speaker-regex '{speaker_regex}': not a valid regular expression ({exc})") from None
    if pattern.groups < 1:
        raise KwsError(f"--speaker-regex '{speaker_regex}': needs a group, e.g. '^([a-z]+)_', "
                       "whose match is the speaker id")
    return pattern


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _plan(src: Path, *, layout: str, pattern: re.Pattern | None) -> list[_Job]:
    """Scan SRC (no decoding) and decide label, speaker, split and output name of every clip."""
    try:
        entries = sorted(p for p in src.iterdir() if _visible(p))
    except OSError as exc:
        raise KwsError(f"{src}: cannot list folder ({exc.strerror or exc})") from None
    stray = [p for p in entries if p.is_file() and audio.is_audio_name(p)]
    if stray:
        raise KwsError(f"{stray[0]}: audio file outside a label folder (expected SRC/<label>/<file>)")
    label_dirs = [p for p in entries if p.is_dir() and p.name != config.QUARANTINE_DIR]
    if not label_dirs:
        raise KwsError(f"{src}: holds no label folders (expected {src}/<label>/<audio files>)")

    lists = _read_split_lists(src) if layout == "speech_commands" else None

    jobs: list[_Job] = []
    seen: dict[str, Path] = {}
    for label_dir in label_dirs:
        label = label_dir.name
        files = _audio_files(label_dir)
        if not files:
            raise KwsError(f"{label_dir}: label folder holds no audio files")
        for path in files:
            rel = path.relative_to(label_dir)
            speaker = _speaker(path, rel, label=label, layout=layout, pattern=pattern)
            if lists is not None:
                split = lists.get(_list_key(f"{label}/{rel.as_posix()}"), "train")
            else:
                split = manifest.split_for_speaker(speaker)
            rel_out = f"{label}/{rel.with_suffix('.wav').as_posix()}"
            if rel_out in seen:
                raise KwsError(f"{seen[rel_out]} and {path} would both be written to {rel_out}; rename one")
            seen[rel_out] = path
            jobs.append(_Job(path, label, rel_out, speaker, split))
    return jobs


def _audio_files(label_dir: Path) -> list[Path]:
    """Audio files below `label_dir` at any depth, skipping hidden files and folders; sorted."""
    found = []
    for root, dirs, files in os.walk(label_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and audio.is_audio_name(name):
                found.append(Path(root) / name)
    return sorted(found)


def _speaker(path: Path, rel: Path, *, label: str, layout: str, pattern: re.Pattern | None) -> str:
    if layout == "speech_commands" and label == BACKGROUND_NOISE_LABEL:
        return BACKGROUND_NOISE_SPEAKER
    if pattern is not None:
        m = pattern.search(path.name)
        speaker = m.group(1) if m else None
        if not speaker:
            raise KwsError(f"{path}: file name does not match --speaker-regex '{pattern.pattern}' "
                           "(its first group must capture the speaker id)")
        return speaker
    if layout == "speech_commands":
        speaker = manifest.speech_commands_speaker(path.name)
        if speaker is None and label == config.SILENCE_LABEL:
            return BACKGROUND_NOISE_SPEAKER  # MLPerf Tiny's generated silence clips have no speaker
        if speaker is None:
            raise KwsError(f"{path}: not a Speech Commands file name (<hash>_nohash_<n>.wav); "
                           "use --layout folders or give --speaker-regex")
        return speaker
    if len(rel.parts) > 1:
        return rel.parts[0]
    return path.stem


def _list_key(rel_posix: str) -> str:
    """A list entry without its audio extension, so x.wav in a list also names a converted x.flac."""
    stem, ext = os.path.splitext(rel_posix)
    return stem if ext.lower() in config.AUDIO_EXTENSIONS else rel_posix


def _read_split_lists(src: Path) -> dict[str, str] | None:
    """{_list_key("label/file.wav"): "validation"|"test"} from Speech Commands' lists, or None if absent."""
    val, test = src / SC_VALIDATION_LIST, src / SC_TESTING_LIST
    if not val.is_file() and not test.is_file():
        return None
    if not (val.is_file() and test.is_file()):
        have, missing = (val, test) if val.is_file() else (test, val)
        raise KwsError(f"{src}: has {have.name} but no {missing.name}; provide both split lists or neither")
    splits: dict[str, str] = {}
    for path, split in ((val, "validation"), (test, "test")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise KwsError(f"{path}: cannot read split list ({exc})") from None
        for lineno, line in enumerate(lines, start=1):
            name = line.strip().replace("\\", "/")
            if not name:
                continue
            key = _list_key(name)
            if splits.get(key, split) != split:
                raise KwsError(f"{path}:{lineno}: {name} is also in the {splits[key]} list")
            splits[key] = split
    return splits


def _convert(job: _Job, tmp: Path, *, source: str) -> manifest.Row:
    """Decode, check, mono-mix, resample and write one clip into the staging folder `tmp`."""
    data, rate = audio.read(job.src_path)  # float32 [frames, channels]
    if data.shape[0] == 0:
        raise KwsError(f"{job.src_path}: contains no samples")
    if not np.all(np.isfinite(data)):
        raise KwsError(f"{job.src_path}: contains NaN or infinite samples; not imported")
    mono = audio.to_mono(data)  # float32 [frames]
    y = audio.resample(mono, rate, config.SAMPLE_RATE_HZ)  # float32 [round(frames*16000/rate)]
    if y.shape[0] == 0:
        raise KwsError(f"{job.src_path}: too short to import ({data.shape[0]} samples at {rate} Hz)")
    dest = tmp / job.rel_out
    audio.write_wav(dest, y, sample_rate_hz=config.SAMPLE_RATE_HZ)  # int16 PCM, saturated
    return manifest.Row(
        path=job.rel_out, label=job.label, speaker=job.speaker, split=job.split, source=source,
        duration_s=y.shape[0] / config.SAMPLE_RATE_HZ, sample_rate_hz=config.SAMPLE_RATE_HZ,
        sha256=audio.sha256_file(dest), status="ok")
