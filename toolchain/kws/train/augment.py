"""On-the-fly augmentation (numpy only): speed perturbation, synthetic-room reverberation, gain,
background noise at a stated SNR, and SpecAugment masks on the int8 features.

Waveforms are float32 [n] in [-1, 1) at 16 kHz; the result is int16 with saturation, ready for the
C frontend (the only source of features). Every function takes its numpy Generator, so a seed gives
the same augmented epoch on every machine.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from kws.config import AugmentConfig


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play x `factor` times faster (tempo and pitch together): float32 [n] -> [~n / factor]."""
    from scipy.signal import resample_poly

    if abs(factor - 1.0) < 1e-3 or len(x) < 32:
        return x
    frac = Fraction(factor).limit_denominator(50)
    return resample_poly(x, frac.denominator, frac.numerator).astype(np.float32)


def room_impulse_response(rng: np.random.Generator, *, rt60_s: float, sample_rate_hz: int = 16000) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise whose energy
    falls by 60 dB in rt60_s (Sabine-style diffuse tail), low-passed a little per reflection order.
    float32 [m], peak 1 at the direct path."""
    n = max(16, int(min(rt60_s, 1.2) * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)   # ln(1000) = 6.9078: -60 dB energy
    tail = np.convolve(tail, [0.5, 0.5], mode="same")
    pre_delay = int(rng.uniform(0.002, 0.012) * sample_rate_hz)
    tail[:pre_delay] = 0.0
    h = 0.4 * tail / (np.max(np.abs(tail)) + 1e-12)
    h[0] = 1.0
    return h.astype(np.float32)


def reverb(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """x convolved with rir, same length as x, rescaled to x's RMS."""
    from scipy.signal import fftconvolve

    y = fftconvolve(x, rir)[: len(x)]
    rx, ry = _rms(x), _rms(y)
    return (y * (rx / ry) if ry > 0 else y).astype(np.float32)


def microphone(x: np.ndarray, rng: np.random.Generator, *, lowpass_hz: float, sample_rate_hz: int = 16000) -> np.ndarray:
    """A different microphone and channel: 4th-order Butterworth low-pass at lowpass_hz (8 kHz phone
    audio ends near 3.4-4 kHz), a high-pass at 50-300 Hz, and a gentle spectral tilt. float32 -> float32."""
    from scipy.signal import butter, lfilter, sosfilt

    nyq = sample_rate_hz / 2
    y = x
    if lowpass_hz < nyq * 0.97:
        y = sosfilt(butter(4, lowpass_hz / nyq, btype="low", output="sos"), y)
    y = sosfilt(butter(2, float(rng.uniform(50, 300)) / nyq, btype="high", output="sos"), y)
    a = float(rng.uniform(-0.5, 0.5))           # first-order tilt: y[n] - a * y[n-1]
    y = lfilter([1.0, -a], [1.0], y)
    return _match_rms(y, x)


def _match_rms(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    ry, rx = _rms(y), _rms(like)
    return (y * (rx / ry) if ry > 0 else y).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def active_rms(x: np.ndarray, *, frame: int = 160) -> float:
    """RMS over the loudest half of the 10 ms frames: the speech level, not diluted by pauses."""
    n = len(x) // frame
    if n == 0:
        return _rms(x)
    e = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    e = np.sort(e)[n // 2:]
    return float(np.sqrt(e.mean()))


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """x plus noise (same length) scaled so that active_rms(x) / rms(noise) is snr_db."""
    rn = _rms(noise)
    if rn == 0:
        return x
    level = active_rms(x)
    if level == 0:          # no speech (silence class): the noise at a level of its own
        return (x + noise).astype(np.float32)
    return (x + noise * (level / rn) * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def noise_segment(pool: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples from a random clip of the pool (looped if short), or white noise if the pool is empty."""
    if not pool:
        return (rng.standard_normal(n) * 0.01).astype(np.float32)
    src = pool[int(rng.integers(len(pool)))]
    if len(src) < n:
        src = np.tile(src, n // max(len(src), 1) + 1)
    start = int(rng.integers(0, len(src) - n + 1))
    return src[start: start + n].astype(np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


class Augmenter:
    """Applies an AugmentConfig to waveforms and features. noise_pool: float32 clips to mix in."""

    def __init__(self, cfg: AugmentConfig, *, noise_pool: list[np.ndarray], sample_rate_hz: int = 16000):
        self.cfg = cfg
        self.noise_pool = noise_pool
        self.sample_rate_hz = sample_rate_hz

    def before_placement(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per-utterance changes that alter its length: speed perturbation."""
        if not self.cfg.enabled:
            return x
        return speed(x, float(rng.uniform(*self.cfg.speed)))

    def after_placement(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Changes to the placed window: reverberation, microphone response, gain, background noise.
        float32 -> int16."""
        c = self.cfg
        if c.enabled:
            if rng.random() < c.reverb_prob:
                x = reverb(x, room_impulse_response(rng, rt60_s=float(rng.uniform(*c.rt60_s)),
                                                    sample_rate_hz=self.sample_rate_hz))
            if rng.random() < c.eq_prob:
                x = microphone(x, rng, lowpass_hz=float(rng.uniform(*c.lowpass_hz)), sample_rate_hz=self.sample_rate_hz)
            x = x * np.float32(10.0 ** (rng.uniform(*c.gain_db) / 20.0))
            if rng.random() < c.noise_prob:
                x = add_noise(x, noise_segment(self.noise_pool, len(x), rng), float(rng.uniform(*c.snr_db)))
        return to_int16(x)

    def features(self, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SpecAugment (Park et al. 2019) time and frequency masks on int8 [frames, bins]; masked cells
        take the clip's mean value. Returns a new array."""
        c = self.cfg
        if not c.enabled:
            return f
        f = f.copy()
        fill = np.int8(int(round(float(f.mean()))))
        frames, bins = f.shape
        for _ in range(c.spec_time_masks):
            w = int(rng.integers(0, c.spec_time_mask_frames + 1))
            if 0 < w < frames:
                s = int(rng.integers(0, frames - w + 1))
                f[s: s + w, :] = fill
        for _ in range(c.spec_freq_masks):
            w = int(rng.integers(0, c.spec_freq_mask_bins + 1))
            if 0 < w < bins:
                s = int(rng.integers(0, bins - w + 1))
                f[:, s: s + w] = fill
        return f


def speech_extent(x: np.ndarray, *, frame: int = 160, floor_db: float = 35.0) -> tuple[int, int]:
    """(start, end) sample indices of the speech in x: the first and last 10 ms frame within floor_db
    of the loudest frame. (0, 0) for an empty clip, the whole clip when nothing stands out."""
    n = len(x) // frame
    if n == 0:
        return (0, len(x))
    e = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    if e.max() <= 0:
        return (0, len(x))
    active = np.flatnonzero(e > e.max() * 10.0 ** (-floor_db / 10.0))
    return int(active[0] * frame), int(min(len(x), (active[-1] + 1) * frame))


def place(x: np.ndarray, n: int, *, end_at: int) -> np.ndarray:
    """A length-n window of zeros holding x placed so that x's last sample would land at index
    end_at - 1 (end_at may exceed n); what falls outside the window is cut off. float32 [n]."""
    out = np.zeros(n, dtype=np.float32)
    start = end_at - len(x)
    lo, hi = max(0, start), min(n, end_at)
    if hi > lo:
        out[lo:hi] = x[lo - start: hi - start]
    return out


def db(x: float) -> float:
    return 20.0 * math.log10(max(x, 1e-12))
