"""The C frontend as a host shared library (DESIGN.md decision 1), loaded with ctypes.

The library is built from firmware/src/frontend*.c plus host_glue.c: by the package install
(setup.py) and, in a source checkout whose C files changed since, again on first use into
build/host-lib/ (named by the hash of its sources, so a stale library is never loaded).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np

from kws.errors import KwsError
from kws.features.tables import ENUM_VALUES, Tables

from kws.features import _sources

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parents[2]
SOURCES = tuple(REPO / p for p in _sources.SOURCES)
CFLAGS = ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")


def source_hash() -> str | None:
    """Hash of the C sources, or None when they are not present (an installed wheel)."""
    return _sources.digest(REPO)


def build_library(out: Path) -> Path:
    """Compile the host library to `out` (atomically); KwsError with the compiler's message on failure."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise KwsError("no C compiler (cc) found: the frontend library needs one")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    cmd = [cc, *CFLAGS, f"-I{REPO / _sources.INCLUDE_DIR}", *map(str, SOURCES), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise KwsError(f"building the frontend library failed: {last}")
    os.replace(tmp, out)
    return out


def library_path() -> Path:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    digest = source_hash()
    if digest is None:  # installed without sources: the library the install built
        found = sorted(PACKAGE_DIR.glob(f"_frontend_*{suffix}"))
        if not found:
            raise KwsError(f"{PACKAGE_DIR}: the frontend library is missing; reinstall kws-toolchain")
        return found[-1]
    packaged = PACKAGE_DIR / f"_frontend_{digest}{suffix}"
    if packaged.is_file():
        return packaged
    cached = REPO / "build" / "host-lib" / f"libkws_frontend_{digest}.so"
    return cached if cached.is_file() else build_library(cached)


class _Config(ctypes.Structure):
    _fields_ = [
        ("window_samples", ctypes.c_int32), ("hop_samples", ctypes.c_int32), ("fft_size", ctypes.c_int32),
        ("num_mel", ctypes.c_int32), ("num_coeffs", ctypes.c_int32), ("normalize", ctypes.c_int32),
        ("rounding", ctypes.c_int32), ("overflow", ctypes.c_int32), ("clip_samples", ctypes.c_int32),
        ("log_floor_q52", ctypes.c_uint64), ("out_zero_point", ctypes.c_int32),
        ("bin_lo", ctypes.c_int32), ("bin_hi", ctypes.c_int32),
        ("window", ctypes.c_void_p), ("twiddle", ctypes.c_void_p), ("fft_twiddle", ctypes.c_void_p),
        ("digitrev", ctypes.c_void_p), ("mel_seg_start", ctypes.c_void_p), ("mel_pair_weights", ctypes.c_void_p),
        ("out_matrix", ctypes.c_void_p), ("out_gain_q24", ctypes.c_int32),
        ("log2_table", ctypes.c_void_p),
    ]


class NativeFrontend:
    """A preset's tables bound to the C library. Thread-safe (state lives on the C stack per call)."""

    def __init__(self, tables: Tables):
        self.tables = tables
        p = tables.preset
        # Keep the arrays alive as long as the config points into them.
        self._arrays = {k: np.ascontiguousarray(getattr(tables, k)) for k in
                        ("window", "twiddle", "fft_twiddle", "digitrev", "mel_seg_start", "mel_pair_weights",
                         "out_matrix", "log2_table")}
        a = {k: (v.ctypes.data if v.size else None) for k, v in self._arrays.items()}
        self.config = _Config(
            p.window_samples, p.hop_samples, p.fft_size, p.num_mel, p.num_coeffs,
            ENUM_VALUES["normalize"][p.normalize], ENUM_VALUES["rounding"][p.out_rounding],
            ENUM_VALUES["overflow"][p.out_overflow], p.clip_samples, tables.log_floor_q52, p.out_zero_point,
            tables.bin_lo, tables.bin_hi, a["window"], a["twiddle"], a["fft_twiddle"], a["digitrev"],
            a["mel_seg_start"], a["mel_pair_weights"], a["out_matrix"], tables.out_gain_q24,
            a["log2_table"])
        self.lib = _lib()

    def clip(self, pcm: np.ndarray) -> np.ndarray:
        """int16 [n] -> int8 [frames, row_size] through kws_frontend_clip."""
        p = self.tables.preset
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        rows = max(p.frames_for(len(pcm)), 0)
        out = np.zeros((max(rows, 1), p.row_size), dtype=np.int8)
        got = self.lib.kws_host_clip(ctypes.byref(self.config), pcm.ctypes.data, len(pcm), out.ctypes.data, rows)
        if got < 0:
            raise KwsError(f"frontend preset {p.name}: rejected by the C frontend (bad configuration)")
        return out[:got]

    def stream(self, pcm: np.ndarray, *, norm_max: int = 32768) -> np.ndarray:
        """int16 [n] pushed hop by hop (a trailing partial hop is dropped) -> int8 [rows, row_size]."""
        p = self.tables.preset
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        n = len(pcm) - len(pcm) % p.hop_samples
        rows = 0 if n < p.window_samples else 1 + (n - p.window_samples) // p.hop_samples
        out = np.zeros((max(rows, 1), p.row_size), dtype=np.int8)
        got = self.lib.kws_host_stream(ctypes.byref(self.config), pcm.ctypes.data, n, int(norm_max),
                                       out.ctypes.data, rows)
        if got < 0:
            raise KwsError(f"frontend preset {p.name}: rejected by the C frontend (bad configuration)")
        return out[:got]


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_path()))
    vp, i32 = ctypes.c_void_p, ctypes.c_int32
    lib.kws_host_clip.argtypes = [ctypes.POINTER(_Config), vp, i32, vp, i32]
    lib.kws_host_clip.restype = i32
    lib.kws_host_stream.argtypes = [ctypes.POINTER(_Config), vp, i32, i32, vp, i32]
    lib.kws_host_stream.restype = i32
    return lib


if __name__ == "__main__":  # `python -m kws.features.native`: build (or find) the library and print its path
    print(library_path())
    sys.exit(0)
