"""Generated noise for `_silence_` clips (and, later, for augmentation): coloured noise, mains hum,
babble, room tone. Every generator is a pure function of its numpy Generator: same seed, same samples.
"""

from __future__ import annotations

import numpy as np

# Spectral slope of each colour: power ~ f**exponent.
COLOURS = {"white": 0.0, "pink": -1.0, "brown": -2.0, "blue": 1.0, "violet": 2.0}


def coloured(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """float32 [n] noise with power spectral density ~ f**COLOURS[colour], unit RMS."""
    if colour not in COLOURS:
        raise ValueError(f"unknown noise colour {colour!r} (known: {', '.join(COLOURS)})")
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum *= f ** (COLOURS[colour] / 2.0)
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator, *, sample_rate_hz: int) -> np.ndarray:
    """float32 [n] mains hum: 50 or 60 Hz with decaying random harmonics and a little broadband noise, unit RMS."""
    mains = rng.choice([50.0, 60.0]) * (1 + rng.uniform(-0.003, 0.003))
    t = np.arange(n) / sample_rate_hz
    x = np.zeros(n)
    for k in range(1, 1 + int(rng.integers(3, 12))):
        x += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi))
    x += 0.05 * rng.standard_normal(n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def babble(n: int, utterances: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """float32 [n]: several utterances (float32 [m] each) overlapped at random offsets and gains, unit RMS."""
    x = np.zeros(n)
    for u in utterances:
        if len(u) == 0:
            continue
        start = int(rng.integers(-len(u) // 2, n))
        lo, hi = max(start, 0), min(start + len(u), n)
        if hi > lo:
            x[lo:hi] += rng.uniform(0.3, 1.0) * u[lo - start: hi - start]
    rms = np.sqrt(np.mean(x**2))
    if rms == 0.0:
        return coloured(n, "pink", rng)
    return (x / rms).astype(np.float32)


def at_level(x: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """Scale float32 [n] of unit RMS to `rms_dbfs`, never past full scale."""
    y = x * (10.0 ** (rms_dbfs / 20.0))
    peak = np.max(np.abs(y)) if len(y) else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)
