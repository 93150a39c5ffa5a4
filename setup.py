"""Builds the C frontend as a host library inside the package (DESIGN.md decision 1).

Metadata lives in pyproject.toml; this file only declares the extension. The library is loaded
with ctypes (kws.features.native), named by the hash of its sources so a stale one is never used.
"""

import importlib.util
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_kws_sources", ROOT / "toolchain/kws/features/_sources.py")
_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sources)

setup(ext_modules=[Extension(
    f"kws.features._frontend_{_sources.digest(ROOT)}",
    sources=list(_sources.SOURCES),
    include_dirs=[_sources.INCLUDE_DIR],
    extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
)])
