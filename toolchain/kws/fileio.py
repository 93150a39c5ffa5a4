"""Safe file output: write to a temporary name in the same folder, then rename.

A crash, a full disk or a bad input never leaves a partial file that looks complete, and nothing the
user already has is overwritten unless the caller asks for it explicitly.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from kws.errors import KwsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _os_error(path: Path, exc: OSError) -> KwsError:
    if exc.errno == errno.ENOSPC:
        return KwsError(f"{path}: no space left on device")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return KwsError(f"{path}: not writable ({exc.strerror})")
    return KwsError(f"{path}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`.

    `overwrite=False` refuses an existing `path` (user data is never replaced silently).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise KwsError(f"{path}: already exists; refusing to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp-kws", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _os_error(path, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _os_error(path, exc) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success rename it to `path`.

    `path` must not exist, or be an empty folder. On failure the temporary folder is removed
    (it holds only what this run wrote).
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise KwsError(f"{path}: exists and is not a folder")
        if any(path.iterdir()):
            raise KwsError(f"{path}: folder exists and is not empty; choose a new output folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp-kws", dir=path.parent))
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o777 & ~_umask())  # mkdtemp makes 0700
        if path.exists():
            path.rmdir()  # empty, checked above
        os.replace(tmp_path, path)
    except OSError as exc:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise _os_error(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _os_error(Path(path), exc) from None
    return Path(path)


def os_error(path: str | os.PathLike, exc: OSError) -> KwsError:
    """The one-line KwsError for an OSError raised while handling `path`."""
    return _os_error(Path(path), exc)
