"""`kws features IN... --preset P --out OUT.npz`: features of many files with the C frontend."""

from __future__ import annotations

import concurrent.futures
import io
import os
from pathlib import Path

import numpy as np

from kws import config, features
from kws.data import audio
from kws.errors import KwsError
from kws.fileio import atomic_path


def collect(inputs: list[str | os.PathLike]) -> list[tuple[Path, str]]:
    """(path, name) for every audio file named or found (recursively, sorted) in the inputs.

    name is the path relative to the folder given, or the file name for files given directly.
    """
    found: list[tuple[Path, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and audio.is_audio_name(f)
                           and config.QUARANTINE_DIR not in f.relative_to(p).parts)
            if not files:
                raise KwsError(f"{p}: folder holds no audio files")
            found.extend((f, f.relative_to(p).as_posix()) for f in files)
        elif p.is_file():
            found.append((p, p.name))
        else:
            raise KwsError(f"{p}: no such file or folder")
    return found


def extract(inputs: list[str | os.PathLike], *, preset: str, out: str | os.PathLike,
            clip_samples: int | None = None, jobs: int | None = None) -> dict:
    """Write OUT.npz with `x` int8 [N, frames, row_size], `names` [N] and `labels` [N] (parent folder).

    Clips must be 16 kHz mono (no silent resampling). Presets without a fixed clip length
    zero-pad every clip to the longest (or to `clip_samples`) so all have the same frame count.
    Returns a summary dict.
    """
    p = config.frontend_preset(preset)
    files = collect(inputs)
    pcms = [audio.load_pcm16(f, sample_rate_hz=p.sample_rate_hz) for f, _ in files]
    length = p.clip_samples or clip_samples or max(len(x) for x in pcms)
    if not p.clip_samples:
        pcms = [np.pad(x[:length], (0, max(0, length - len(x)))) for x in pcms]
    fe = features.frontend(preset)
    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        rows = list(pool.map(fe.clip, pcms))
    x = np.stack(rows) if rows else np.zeros((0, p.frames_for(length), p.row_size), np.int8)
    names = np.array([n for _, n in files])
    labels = np.array([Path(n).parent.name or "" for n in names])
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, names=names, labels=labels, preset=np.array(preset))
    with atomic_path(out, overwrite=False) as tmp:
        tmp.write_bytes(buf.getvalue())
    return {"clips": len(files), "shape": list(x.shape), "preset": preset, "out": str(out)}
