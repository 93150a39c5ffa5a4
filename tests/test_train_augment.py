"""Augmentation and window placement: each transformation does what it claims, measurably, and a seed
fixes every draw."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import speechlike
from kws import config
from kws.train import augment

SR = 16000


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_speed_changes_length_by_the_factor():
    x = speechlike(1.0, seed=1)
    for factor in (0.88, 0.95, 1.1):
        y = augment.speed(x, factor)
        assert abs(len(y) - len(x) / factor) <= 0.02 * len(x), factor
    assert augment.speed(x, 1.0) is x


def test_room_impulse_response_decays_at_the_stated_rt60():
    rng = np.random.default_rng(0)
    for rt60 in (0.2, 0.6):
        h = augment.room_impulse_response(rng, rt60_s=rt60)
        assert h[0] == 1.0 and len(h) == int(rt60 * SR)
        e = np.square(h[1:].astype(np.float64))
        first = e[: len(e) // 6].mean()
        last = e[-len(e) // 6:].mean()
        # energy falls 60 dB over rt60: between the first and last sixth, about 50 dB
        assert 35 < 10 * np.log10(first / last) < 65, rt60


def test_add_noise_hits_the_snr():
    rng = np.random.default_rng(1)
    x = speechlike(1.0, seed=2)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    for snr in (0.0, 10.0, 20.0):
        y = augment.add_noise(x, noise, snr)
        n = y - x
        measured = 20 * np.log10(augment.active_rms(x) / _rms(n))
        assert measured == pytest.approx(snr, abs=0.01)


def test_microphone_lowpass_removes_high_band():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(SR).astype(np.float32) * 0.1
    y = augment.microphone(x, rng, lowpass_hz=3500)
    spec_x = np.abs(np.fft.rfft(x)) ** 2
    spec_y = np.abs(np.fft.rfft(y)) ** 2
    hi = slice(int(5000 / SR * len(x)), None)
    mid = slice(int(800 / SR * len(x)), int(2500 / SR * len(x)))
    assert spec_y[hi].sum() / spec_y[mid].sum() < 0.01 * spec_x[hi].sum() / spec_x[mid].sum()
    assert _rms(y) == pytest.approx(_rms(x), rel=1e-4)


def test_place_puts_the_end_where_asked():
    x = np.arange(1, 101, dtype=np.float32)
    w = augment.place(x, 300, end_at=250)
    assert w[249] == 100 and w[150] == 1 and w[149] == 0 and w[250] == 0
    w = augment.place(x, 60, end_at=60)          # cut at the front
    assert w[0] == 41 and w[-1] == 100
    w = augment.place(x, 60, end_at=120)         # end beyond the window: the start is kept
    assert w[0] == 0 and w[19] == 0 and w[20] == 1 and w[-1] == 40


def test_speech_extent_finds_the_word():
    x = np.zeros(SR, np.float32)
    x[4000:9000] = speechlike(5000 / SR, seed=3)[:5000]
    s, e = augment.speech_extent(x)
    assert 3900 <= s <= 4800 and 8200 <= e <= 9100


def test_specaugment_masks_and_seed():
    cfg = config.AugmentConfig(spec_time_masks=2, spec_time_mask_frames=5, spec_freq_masks=2, spec_freq_mask_bins=5)
    aug = augment.Augmenter(cfg, noise_pool=[])
    f = np.random.default_rng(4).integers(-100, 100, size=(49, 40)).astype(np.int8)
    outs = [aug.features(f, np.random.default_rng(s)) for s in range(20)]
    changed = [int(np.sum(o != f)) for o in outs]
    assert max(changed) > 0 and len(set(changed)) > 3
    assert all(c <= 2 * 5 * 40 + 2 * 5 * 49 for c in changed)
    np.testing.assert_array_equal(aug.features(f, np.random.default_rng(7)), aug.features(f, np.random.default_rng(7)))
    assert np.array_equal(f, np.random.default_rng(4).integers(-100, 100, size=(49, 40)).astype(np.int8))  # input untouched


def test_augmenter_is_reproducible_and_varied():
    pool = [np.random.default_rng(9).standard_normal(SR * 2).astype(np.float32) * 0.05]
    aug = augment.Augmenter(config.AugmentConfig(), noise_pool=pool)
    x = speechlike(0.8, seed=5)
    a = [aug.after_placement(aug.before_placement(x, np.random.default_rng(s)), np.random.default_rng(s)) for s in range(6)]
    b = [aug.after_placement(aug.before_placement(x, np.random.default_rng(s)), np.random.default_rng(s)) for s in range(6)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert all(u.dtype == np.int16 for u in a)
    assert len({u.tobytes() for u in a}) == 6
