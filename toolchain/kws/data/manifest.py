"""The one manifest format: `DIR/manifest.csv` with columns

    path,label,speaker,split,source,duration_s,sample_rate_hz,sha256,status

`path` is relative to DIR (POSIX separators); `split` is train|validation|test, assigned from the
speaker so no speaker crosses splits; `source` says where the clip came from (e.g.
`espeak-ng:en-us+f3`, `speech_commands_v2`, `import:<source folder name>`); `status` is `ok`, `warn:<checks>` or
`quarantined:<reason>` (written by `kws data validate`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
from pathlib import Path

from kws import config
from kws.errors import KwsError
from kws.fileio import atomic_path


@dataclasses.dataclass
class Row:
    path: str
    label: str
    speaker: str
    split: str
    source: str
    duration_s: float
    sample_rate_hz: int
    sha256: str
    status: str = "ok"

    def as_csv(self) -> list[str]:
        return [self.path, self.label, self.speaker, self.split, self.source,
                f"{self.duration_s:.6f}", str(self.sample_rate_hz), self.sha256, self.status]


def split_for_speaker(speaker: str, *, validation_percent: float = config.VALIDATION_PERCENT,
                      testing_percent: float = config.TESTING_PERCENT) -> str:
    """train|validation|test from a stable hash of the speaker id (Speech Commands' own rule)."""
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percent = (digest % (config.SPLIT_HASH_MAX + 1)) * (100.0 / config.SPLIT_HASH_MAX)
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + testing_percent:
        return "test"
    return "train"


_SC_SPEAKER = re.compile(r"(?:^|_)([0-9a-f]{8})_nohash_", re.IGNORECASE)


def speech_commands_speaker(file_name: str) -> str | None:
    """The speaker id in a Speech Commands file name (`<hash>_nohash_<n>.wav`, or `<word>_<hash>_nohash_<n>`)."""
    m = _SC_SPEAKER.search(file_name)
    return m.group(1).lower() if m else None


def read(path: str | os.PathLike) -> list[Row]:
    """Parse a manifest; KwsError naming the file and line on any malformed content."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KwsError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KwsError(f"{path}: cannot read manifest ({exc})") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != config.MANIFEST_COLUMNS:
        raise KwsError(f"{path}: not a kws manifest (header must be {','.join(config.MANIFEST_COLUMNS)})")
    rows = []
    for lineno, rec in enumerate(reader, start=2):
        if not rec:
            continue
        if len(rec) != len(config.MANIFEST_COLUMNS):
            raise KwsError(f"{path}:{lineno}: expected {len(config.MANIFEST_COLUMNS)} fields, found {len(rec)}")
        try:
            rows.append(Row(rec[0], rec[1], rec[2], rec[3], rec[4], float(rec[5]), int(rec[6]), rec[7], rec[8]))
        except ValueError as exc:
            raise KwsError(f"{path}:{lineno}: bad number ({exc})") from None
        if rows[-1].split not in config.SPLITS:
            raise KwsError(f"{path}:{lineno}: unknown split {rows[-1].split!r} (expected one of {', '.join(config.SPLITS)})")
    return rows


def write(path: str | os.PathLike, rows: list[Row], *, overwrite: bool = False) -> Path:
    """Write rows (sorted by path, so the bytes are reproducible) atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(config.MANIFEST_COLUMNS)
    for row in sorted(rows, key=lambda r: r.path):
        w.writerow(row.as_csv())
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)


def check_files(root: str | os.PathLike, rows: list[Row], *, manifest_name: str = config.MANIFEST_NAME) -> None:
    """KwsError for the first row whose file is missing."""
    root = Path(root)
    for i, row in enumerate(rows, start=2):
        if row.status.startswith("quarantined"):
            continue
        if not (root / row.path).is_file():
            raise KwsError(f"{root / manifest_name}:{i}: names a missing file {row.path}")
