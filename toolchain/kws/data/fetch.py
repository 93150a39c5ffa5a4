"""`kws data fetch`: get a public dataset as a folder of clips plus one manifest.

Three steps, each refusing bad input with a one-line KwsError:

1. the archive: downloaded with urllib (resumable from `<name>.part` with an HTTP Range request,
   SHA-256 checked, renamed to its final name only when good and reused by the next run), or a local
   file given with `archive=`;
2. safe extraction into a temporary folder beside `out`, member by member: no absolute paths, no
   `..`, no links leading outside, no devices or FIFOs, and limits on member count and sizes;
3. `out/manifest.csv`, with splits from the dataset's list files and its speaker-hash rule.

The temporary folder is renamed to `out` only after all three succeed, so `out` never holds a partial
dataset. Datasets are data (`DATASETS`), not branches in the code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Callable

from kws import config
from kws.data import audio, manifest
from kws.errors import KwsError
from kws.fileio import atomic_dir, os_error

# Extraction limits: generous for Speech Commands v0.02 (2.4 GB compressed, ~3.8 GB and ~106k files
# unpacked, the longest member a few MB of background noise), small enough to stop a decompression bomb.
MAX_TOTAL_BYTES = 16 * 2**30
MAX_MEMBER_BYTES = 2**30
MAX_MEMBERS = 500_000

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0
USER_AGENT = "kws-toolchain (kws data fetch)"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What `fetch` needs to know about one public dataset."""

    url: str
    sha256: str
    archive_name: str  # the official file name; a local archive with this name is hash-checked
    source: str  # the manifest's `source` column
    split_rule: str  # a key of _SPLIT_RULES
    validation_list: str = "validation_list.txt"
    testing_list: str = "testing_list.txt"
    noise_label: str = "_background_noise_"  # folder of long noise recordings (train, speaker "noise")


DATASETS: dict[str, Dataset] = {
    "speech_commands_v2": Dataset(
        url=config.SPEECH_COMMANDS_V2_URL,
        sha256=config.SPEECH_COMMANDS_V2_SHA256,
        archive_name="speech_commands_v0.02.tar.gz",
        source="speech_commands_v2",
        split_rule="speech_commands",
    ),
}


def fetch(dataset: str, *, out: Path, archive: str | None = None, url: str | None = None,
          sha256: str | None = None, download_dir: str | None = None, progress: bool = True,
          max_total_bytes: int = MAX_TOTAL_BYTES, max_member_bytes: int = MAX_MEMBER_BYTES,
          max_members: int = MAX_MEMBERS) -> Path:
    """Download (or take `archive`), extract safely and write `out/manifest.csv`. Returns `out`.

    `out` must not exist or be empty. `sha256` overrides the known hash (a local archive is checked
    only when `sha256` is given or its file name is the official one). Progress bars go to stderr
    when it is a terminal and `progress` is true. The `max_*` limits bound what extraction accepts.
    """
    if dataset not in DATASETS:
        raise KwsError(f"unknown dataset {dataset!r} (known: {', '.join(sorted(DATASETS))})")
    ds = DATASETS[dataset]
    out = Path(out)
    expected = _check_sha256(sha256) if sha256 is not None else None
    with atomic_dir(out) as tmp:  # refuses a non-empty `out` before any download starts
        if archive is not None:
            path = Path(archive).expanduser()
            if not path.exists():
                raise KwsError(f"{path}: no such archive")
            if not path.is_file():
                raise KwsError(f"{path}: not a file (expected a .tar.gz archive)")
            if expected is None and path.name == ds.archive_name:
                expected = ds.sha256
            if expected is not None:
                _verify(path, expected, progress=progress, rename_bad=False)
        else:
            folder = Path(download_dir).expanduser() if download_dir else out.parent
            if _is_within(folder, out):
                raise KwsError(f"--download-dir {folder}: must not be inside the output folder {out}")
            path = _download(url or ds.url, folder, name=_name_from_url(url, ds),
                             expected=expected or ds.sha256, progress=progress)
        files = _extract(path, tmp, out=out, progress=progress, max_total_bytes=max_total_bytes,
                         max_member_bytes=max_member_bytes, max_members=max_members)
        if config.MANIFEST_NAME in files or (tmp / config.MANIFEST_NAME).exists():
            raise KwsError(f"{path}: contains its own {config.MANIFEST_NAME}; refusing to overwrite it")
        rows = _rows(tmp, files, ds, archive=path, progress=progress)
        manifest.write(tmp / config.MANIFEST_NAME, rows)
    return out


# ---------------------------------------------------------------------------------------------------
# the archive: hashes and downloads


def _check_sha256(value: str) -> str:
    digest = value.strip().lower()
    if not _SHA256_RE.match(digest):
        raise KwsError(f"--sha256 {value!r}: not a SHA-256 digest (64 hexadecimal digits)")
    return digest


def _bar(*, progress: bool, **kwargs):
    """A tqdm bar on stderr; shown only on a terminal, never when `progress` is false."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=None if progress else True, **kwargs)


def _byte_bar(*, progress: bool, total: int | None, desc: str, initial: int = 0):
    return _bar(progress=progress, total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024)


def _sha256_of(path: Path, *, progress: bool) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f, _byte_bar(progress=progress, total=path.stat().st_size,
                                              desc=f"checking {path.name}") as bar:
            for block in iter(lambda: f.read(CHUNK_BYTES), b""):
                h.update(block)
                bar.update(len(block))
    except OSError as exc:
        raise KwsError(f"{path}: cannot read archive ({exc.strerror or exc})") from None
    return h.hexdigest()


def _verify(path: Path, expected: str, *, progress: bool, rename_bad: bool, actual: str | None = None) -> None:
    """KwsError unless `path` hashes to `expected`. With `rename_bad` (our own downloads only) the file
    is kept as `<name>.bad-<short hash>` so it can never be taken for a good archive."""
    actual = actual or _sha256_of(path, progress=progress)
    if actual == expected:
        return
    where = ""
    if rename_bad:
        name = path.name[:-len(".part")] if path.name.endswith(".part") else path.name
        bad = path.with_name(f"{name}.bad-{actual[:12]}")
        try:
            os.replace(path, bad)
        except OSError as exc:
            raise os_error(bad, exc) from None
        where = f"; kept as {bad} (run again to download afresh)"
    raise KwsError(f"{path}: SHA-256 mismatch: expected {expected}, got {actual}{where}")


def _name_from_url(url: str | None, ds: Dataset) -> str:
    if url is None:
        return ds.archive_name
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    return name if name and name not in (".", "..") and "/" not in name and "\\" not in name else ds.archive_name


def _is_within(path: Path, folder: Path) -> bool:
    a, b = os.path.realpath(path), os.path.realpath(folder)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _download(url: str, folder: Path, *, name: str, expected: str, progress: bool) -> Path:
    """Download `url` to `folder/name` through `folder/name.part`; returns the verified archive."""
    final = folder / name
    part = folder / f"{name}.part"
    if final.exists():  # a previous run finished: reuse it, but only once its hash is verified again
        _verify(final, expected, progress=progress, rename_bad=True)
        return final
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(folder, exc) from None

    def failed(reason: object) -> KwsError:
        kept = f"; the partial download is kept in {part}, run again to resume" if part.exists() else ""
        return KwsError(f"cannot download {url}: {reason}{kept}; or download {name} yourself and pass "
                        f"--archive FILE")

    import http.client
    import urllib.error
    import urllib.request

    net_errors = (OSError, http.client.HTTPException, ValueError)
    offset = _size(part)
    for _attempt in range(2):  # a second attempt only when a Range request went wrong
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # nothing left to send: the partial file may be complete
                if _sha256_of(part, progress=progress) == expected:
                    break
                offset = 0
                continue
            raise failed(f"HTTP {exc.code} {exc.reason}") from None
        except net_errors as exc:
            raise failed(getattr(exc, "reason", None) or exc) from None
        with resp:
            if resp.status == 206:
                if not offset:
                    raise failed("the server sent part of the file without being asked to")
                if _range_start(resp.headers.get("Content-Range")) != offset:
                    offset = 0  # a range we did not ask for: ask again for everything
                    continue
            elif resp.status in (200, None):  # None: a file:// URL
                offset = 0  # no Range asked, or the server ignored it: this response starts at byte 0
            else:
                raise failed(f"unexpected HTTP status {resp.status}")
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            try:
                h, received = _receive(resp, part, offset=offset, total=total, progress=progress, failed=failed)
            except OSError as exc:  # writing the partial file (reading errors became KwsError)
                raise os_error(part, exc) from None
            if total is not None and received < total:
                raise failed(f"connection closed after {received} of {total} bytes")
            _verify(part, expected, progress=progress, rename_bad=True, actual=h.hexdigest())
            break
    else:
        raise failed("the server did not honour the Range request")
    try:
        os.replace(part, final)
    except OSError as exc:
        raise os_error(final, exc) from None
    return final


def _receive(resp, part: Path, *, offset: int, total: int | None, progress: bool, failed):
    """Append the response body to `part` (truncated first unless `offset`); returns (sha256 object
    over the whole file, bytes in the file). Network errors become `failed(...)`; OSError is a write."""
    import http.client

    h = hashlib.sha256()
    if offset:
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(CHUNK_BYTES), b""):
                h.update(block)
    received = offset
    with open(part, "ab" if offset else "wb") as f, \
            _byte_bar(progress=progress, total=total, initial=offset, desc=part.name[:-len(".part")]) as bar:
        while True:
            try:
                chunk = resp.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise failed(f"connection lost after {received} bytes ({exc})") from None
            if not chunk:
                break
            f.write(chunk)
            h.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return h, received


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", content_range or "")
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------------
# safe extraction


class _Refused(Exception):
    """A member that must not be extracted; turned into a KwsError naming archive and member."""


def _member_parts(name: str) -> tuple[str, ...]:
    """The components of a member path, or _Refused when it is absolute or climbs with `..`."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _Refused("absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise _Refused("path contains '..'")
    if any("\\" in p or "\0" in p for p in parts):
        raise _Refused("path contains a backslash or NUL")
    return parts


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _safe_parent(path: Path, real_root: str) -> None:
    """Create path's parent folders, refusing any route that leaves the root through a symlink."""
    if not _inside(os.path.realpath(path.parent), real_root):
        raise _Refused("its folder leads outside the destination through a symlink")
    os.makedirs(path.parent, exist_ok=True)


def _copy_stream(src, dst, *, limit: int) -> str:
    """Copy a member's bytes from `src` to `dst` (both binary files); returns their SHA-256.

    Errors reading `src` (a corrupt or truncated archive) become _ReadError; `limit` caps the bytes."""
    h = hashlib.sha256()
    n = 0
    while True:
        try:
            chunk = src.read(CHUNK_BYTES)
        except _archive_errors() as exc:
            raise _ReadError(exc) from None
        if not chunk:
            break
        n += len(chunk)
        if n > limit:
            raise _Refused(f"holds more than the {limit} bytes its header declares")
        h.update(chunk)
        dst.write(chunk)
    return h.hexdigest()


class _ReadError(Exception):
    """An error reading the archive (truncated, corrupt), kept apart from errors writing files."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc).strip() or type(exc).__name__)


class _WriteError(Exception):
    """An OSError while writing the destination (kept apart from errors reading the archive)."""

    def __init__(self, exc: OSError):
        self.exc = exc


class _Writer:
    """A binary file whose write errors become _WriteError."""

    def __init__(self, fd: int):
        self.f = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self.f.write(data)
        except OSError as exc:
            raise _WriteError(exc) from None

    def close(self) -> None:
        try:
            self.f.close()
        except OSError as exc:
            raise _WriteError(exc) from None


def _archive_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged archive raises (gzip.BadGzipFile is an OSError)."""
    import lzma
    import tarfile
    import zlib

    return (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


def _extract(archive: Path, dest: Path, *, out: Path, progress: bool, max_total_bytes: int,
             max_member_bytes: int, max_members: int) -> dict[str, str]:
    """Extract `archive` into the empty folder `dest`, checking every member first.

    Returns {posix path relative to dest: sha256} for every regular file (hard links included)."""
    import tarfile

    from tqdm.utils import CallbackIOWrapper

    files: dict[str, str] = {}
    links: list[tuple[str, Path]] = []
    counts = {"members": 0, "bytes": 0}
    real_root = os.path.realpath(dest)
    limits = (max_total_bytes, max_member_bytes, max_members)
    bad_archive = _archive_errors()
    member_name = ""
    try:
        raw = open(archive, "rb")
    except OSError as exc:
        raise KwsError(f"{archive}: cannot read archive ({exc.strerror or exc})") from None
    try:
        with raw, _byte_bar(progress=progress, total=_size(archive), desc=f"extracting {archive.name}") as bar:
            stream = CallbackIOWrapper(bar.update, raw, "read")
            try:
                tf = tarfile.open(fileobj=stream, mode="r:*")
            except tarfile.ReadError:
                raise KwsError(f"{archive}: not a tar archive (or a compression kws cannot read)") from None
            with tf:
                while (member := tf.next()) is not None:
                    member_name = member.name
                    _extract_member(tf, member, dest, real_root, files, links, counts, limits)
                member_name = ""
                if tf.fileobj is stream:  # plain tar: the end must be marked by a block of zeros
                    stream.seek(tf.offset)
                    end = stream.read(tarfile.BLOCKSIZE)
                    if len(end) != tarfile.BLOCKSIZE or any(end):
                        raise EOFError("no end-of-archive marker")
                else:  # compressed: read to the end so a truncated stream or a bad CRC shows
                    while tf.fileobj.read(CHUNK_BYTES):
                        pass
        for name, path in links:  # a link may have been aimed outside through links made after it
            if not _inside(os.path.realpath(path), real_root):
                member_name = name
                raise _Refused("symlink resolves outside the destination")
    except _Refused as exc:
        raise KwsError(f"{archive}: refusing member {member_name!r}: {exc}") from None
    except _WriteError as exc:
        raise os_error(out, exc.exc) from None
    except (_ReadError, *bad_archive) as exc:
        at = f" at member {member_name!r}" if member_name else ""
        detail = str(exc).strip() or type(exc).__name__
        raise KwsError(f"{archive}: truncated or corrupt archive{at} ({detail})") from None
    if not files:
        raise KwsError(f"{archive}: contains no files")
    return files


def _extract_member(tf, member, dest: Path, real_root: str, files: dict[str, str],
                    links: list[tuple[str, Path]], counts: dict[str, int], limits: tuple[int, int, int]) -> None:
    max_total_bytes, max_member_bytes, max_members = limits
    counts["members"] += 1
    if counts["members"] > max_members:
        raise _Refused(f"the archive has more than {max_members} members (limit)")
    parts = _member_parts(member.name)
    if not parts:
        if member.isdir():
            return  # the archive root itself ("./")
        raise _Refused("empty path")
    target = dest.joinpath(*parts)
    rel = "/".join(parts)
    try:
        if member.isdir():
            if not _inside(os.path.realpath(target), real_root):
                raise _Refused("folder leads outside the destination through a symlink")
            os.makedirs(target, exist_ok=True)
        elif member.isreg():
            if member.size > max_member_bytes:
                raise _Refused(f"{member.size} bytes is over the per-member limit of {max_member_bytes}")
            counts["bytes"] += member.size
            if counts["bytes"] > max_total_bytes:
                raise _Refused(f"the archive unpacks to more than {max_total_bytes} bytes (limit)")
            _safe_parent(target, real_root)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
            fd = os.open(target, flags, 0o644)
            w = _Writer(fd)
            try:
                files[rel] = _copy_stream(tf.extractfile(member), w, limit=member.size)
            finally:
                w.close()
        elif member.issym():
            link = member.linkname
            if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
                raise _Refused(f"symlink to the absolute path {link!r}")
            if not _inside(os.path.normpath(os.path.join(real_root, *parts[:-1], link)), real_root):
                raise _Refused(f"symlink to {link!r} points outside the destination")
            _safe_parent(target, real_root)
            os.symlink(link, target)
            links.append((member.name, target))
            if not _inside(os.path.realpath(target), real_root):
                raise _Refused(f"symlink to {link!r} resolves outside the destination")
        elif member.islnk():
            try:
                source_parts = _member_parts(member.linkname)
            except _Refused as exc:
                raise _Refused(f"hard link to {member.linkname!r}: {exc}") from None
            source = os.path.realpath(dest.joinpath(*source_parts))
            if not source_parts or not _inside(source, real_root):
                raise _Refused(f"hard link to {member.linkname!r} points outside the destination")
            if not os.path.isfile(source):
                raise _Refused(f"hard link to {member.linkname!r}, which is not an extracted file")
            _safe_parent(target, real_root)
            os.link(source, target, follow_symlinks=False)
            files[rel] = audio.sha256_file(target)
        elif member.ischr() or member.isblk():
            raise _Refused("device file")
        elif member.isfifo():
            raise _Refused("FIFO (named pipe)")
        else:
            raise _Refused(f"unsupported member type {member.type!r}")
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise _Refused("clashes with another member of the same path") from None
    except OSError as exc:
        raise _WriteError(exc) from None


# ---------------------------------------------------------------------------------------------------
# splits and manifest


def _read_list(path: Path) -> set[str]:
    """The relative paths named in a Speech Commands list file (empty when the file is absent)."""
    if not path.is_file():
        return set()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KwsError(f"{path.name}: cannot read split list ({exc})") from None
    out = set()
    for line in text.splitlines():
        line = line.strip().replace("\\", "/")
        while line.startswith("./"):
            line = line[2:]
        if line:
            out.add(line)
    return out


def _split_speech_commands(rel: str, label: str, *, validation: set[str], testing: set[str],
                           noise_label: str) -> tuple[str, str]:
    """(speaker, split) by Speech Commands' rules: the list files first, else the speaker hash."""
    name = rel.rsplit("/", 1)[-1]
    if label == noise_label:
        return "noise", "train"
    speaker = manifest.speech_commands_speaker(name) or Path(name).stem
    if rel in testing:
        return speaker, "test"
    if rel in validation:
        return speaker, "validation"
    return speaker, manifest.split_for_speaker(speaker)


_SPLIT_RULES: dict[str, Callable[..., tuple[str, str]]] = {"speech_commands": _split_speech_commands}


def _warn(message: str) -> None:
    print(f"kws: warning: {message}", file=sys.stderr)


def _rows(root: Path, files: dict[str, str], ds: Dataset, *, archive: Path, progress: bool) -> list[manifest.Row]:
    validation = _read_list(root / ds.validation_list)
    testing = _read_list(root / ds.testing_list)
    rule = _SPLIT_RULES[ds.split_rule]
    clips = sorted(p for p in files if audio.is_audio_name(p) and "/" in p)
    if not clips:
        raise KwsError(f"{archive}: contains no audio clips in <label>/ folders")
    stray = sum(1 for p in files if audio.is_audio_name(p) and "/" not in p)
    if stray:
        _warn(f"{archive}: {stray} audio file(s) at the archive root have no label folder and were left out")
    both = validation & testing
    if both:
        _warn(f"{len(both)} file(s) are in both {ds.validation_list} and {ds.testing_list}; "
              f"they were put in test (e.g. {sorted(both)[0]})")
    listed = validation | testing
    missing = len(listed - set(clips))
    if missing:
        _warn(f"{missing} file(s) named in {ds.validation_list}/{ds.testing_list} are not in {archive.name}")
    rows = []
    undecodable = 0
    for rel in _bar(progress=progress, iterable=clips, desc="manifest", unit="clip"):
        label = rel.split("/", 1)[0]
        speaker, split = rule(rel, label, validation=validation, testing=testing, noise_label=ds.noise_label)
        try:
            frames, rate, _channels = audio.info(root / rel)
            duration_s, status = (frames / rate if rate else 0.0), "ok"
        except KwsError:
            frames, rate, duration_s, status = 0, 0, 0.0, "error:undecodable"
            undecodable += 1
        rows.append(manifest.Row(path=rel, label=label, speaker=speaker, split=split, source=ds.source,
                                 duration_s=duration_s, sample_rate_hz=rate, sha256=files[rel], status=status))
    if undecodable:
        _warn(f"{undecodable} clip(s) cannot be decoded; listed with status error:undecodable")
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        if row.label != ds.noise_label:
            splits_of.setdefault(row.speaker, set()).add(row.split)
    leaks = sorted(s for s, splits in splits_of.items() if len(splits) > 1)
    if leaks:
        example = f"{leaks[0]}: {', '.join(sorted(splits_of[leaks[0]]))}"
        _warn(f"{len(leaks)} speaker(s) appear in more than one split (e.g. {example})")
    return rows
