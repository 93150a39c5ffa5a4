"""Which C files make the host frontend library, and their hash. No imports beyond the standard
library: setup.py loads this file directly to name the extension it builds."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Relative to the repository root.
SOURCES = ("firmware/src/frontend.c", "firmware/src/frontend_fft.c", "toolchain/kws/features/host_glue.c")
HEADERS = ("firmware/include/kws/frontend.h",)
INCLUDE_DIR = "firmware/include"


def digest(root: Path) -> str | None:
    """16 hex digits of SHA-256 over the sources and headers, or None if any is missing."""
    paths = [root / p for p in SOURCES + HEADERS]
    if not all(p.is_file() for p in paths):
        return None
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]
