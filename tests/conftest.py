"""Shared fixtures. The default run needs no board; tests that read ../shared skip where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KWS_SHARED", REPO.parent / "shared"))
SHARED_REAL = SHARED / "data" / "real"


def pytest_addoption(parser):
    parser.addoption("--port", default=None, help="serial port of a board for tests marked hw")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--port"):
        return
    skip_hw = pytest.mark.skip(reason="needs a board: pass --port")
    for item in items:
        if "hw" in item.keywords:
            item.add_marker(skip_hw)


@pytest.fixture
def shared_real() -> Path:
    """../shared/data/real, or skip with the reason."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (real speech data lives in ../shared beside the checkout)")
    return SHARED_REAL


def tone(freq_hz: float = 440.0, seconds: float = 1.0, *, rate: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def speechlike(seconds: float = 1.0, *, rate: int = 16000, seed: int = 0, amp: float = 0.3) -> np.ndarray:
    """A harmonic, syllable-modulated signal (voiced-speech-like energy), varied by seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = 110 + 90 * rng.random()
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6.28) / k for k in range(1, 20))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * (3 + 3 * rng.random()) * t)) * np.hanning(len(t))
    x = x * envelope
    return (amp * x / np.max(np.abs(x))).astype(np.float32)
