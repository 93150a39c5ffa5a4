"""The integer C frontend (host library): parity with MLPerf Tiny's float pipeline, streaming,
edge cases, bad input. The Cortex-M4 build is compared bit for bit in test_frontend_qemu.py."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import speechlike
from kws import config, features
from kws.cli import main
from kws.errors import KwsError
from kws.features import reference, tables

MLPERF = config.frontend_preset("mlperf_kws01")
WW = config.frontend_preset("ww_logmel40")
SILENCE_ROW = [-128] + [83] * 9  # trunc(sqrt(2/40) * 40 * ln(1e-6) / 0.5847029 + 83) = trunc(-128.3), then 83s


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [_pcm(speechlike(1.0, seed=s, amp=a)) for s, a in zip(range(8), [0.9, 0.3, 0.05, 0.6, 0.01, 0.5, 0.2, 0.8])]
    out.append(_pcm(0.3 * rng.standard_normal(16000).clip(-3, 3) / 3))
    out.append(_pcm(speechlike(0.6, seed=20) + 0.01 * rng.standard_normal(9600)))
    return out


def test_tables_match_tensorflow_definitions(tf):
    mel = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0).numpy()
    np.testing.assert_allclose(tables.mel_matrix(MLPERF), mel, atol=2e-5)
    np.testing.assert_allclose(tables.hann_periodic(480), tf.signal.hann_window(480).numpy(), atol=1e-6)
    x = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)
    ref = tf.signal.mfccs_from_log_mel_spectrograms(x).numpy()[:, :10]
    np.testing.assert_allclose(x.astype(np.float64) @ tables.dct_matrix(10, 40).T, ref, atol=1e-4)


def test_matches_tensorflow_float_pipeline(tf, clips):
    diffs = []
    for pcm in clips:
        ours = features.compute(pcm)
        ref = reference.quantize_like_mlperf(reference.mlperf_tf(pcm))
        assert ours.shape == ref.shape == (49, 10)
        diffs.append(ours.astype(int) - ref)
    d = np.abs(np.concatenate([x.ravel() for x in diffs]))
    assert (d <= 1).mean() >= 0.99 and d.max() <= 3, np.bincount(d)
    outs = np.stack([features.compute(p) for p in clips])
    assert len({o.tobytes() for o in outs}) == len(clips) and outs.std() > 5  # outputs vary


def test_matches_mlperf_reference_features_on_real_speech(shared_real):
    ref = np.load(shared_real / "speech_commands_v2_test_kws01_features.npz")
    from kws.data import audio

    idx = np.arange(0, len(ref["names"]), 10)
    ours = np.stack([features.compute(audio.load_pcm16(shared_real / "speech_commands_v2_test" / ref["names"][i]))
                     for i in idx])
    d = np.abs(ours.astype(int) - ref["x"][idx])
    assert (d <= 1).mean() >= 0.99 and d.max() <= 3
    assert len(np.unique(ours.reshape(len(idx), -1), axis=0)) == len(idx)


def test_reference_model_predicts_the_same_on_our_features(shared_real):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    from kws.data import audio

    ref = np.load(shared_real / "speech_commands_v2_test_kws01_features.npz")
    model = (shared_real.parent.parent / "models/reference/mlperf_tiny_kws_ref_model.tflite").read_bytes()
    interp = runtime.Interpreter.from_bytes(model, arena_size=200_000)
    idx = np.arange(0, len(ref["names"]), 13)
    preds = []
    for i in idx:
        x = features.compute(audio.load_pcm16(shared_real / "speech_commands_v2_test" / ref["names"][i]))
        interp.set_input(x.reshape(1, 49, 10, 1), 0)
        interp.invoke()
        preds.append(int(np.argmax(interp.get_output(0))))
        interp.reset()
    preds = np.array(preds)
    assert (preds == ref["pred"][idx]).mean() >= 0.98
    assert len(set(preds.tolist())) >= 8


def test_streaming_equals_whole_clip(clips):
    for pcm in clips:
        padded = np.pad(pcm[:16000], (0, max(0, 16000 - len(pcm))))
        norm = features.frontend("mlperf_kws01").tables and int(max(pcm.max(), 1))
        streamed = features.stream(padded, preset="mlperf_kws01", norm_max=norm)
        np.testing.assert_array_equal(streamed, features.compute(pcm))
    rng = np.random.default_rng(3)
    for n in (480, 800, 5000, 16000, 33333):
        pcm = _pcm(0.2 * rng.standard_normal(n).clip(-4, 4) / 4)
        whole = features.compute(pcm, preset="ww_logmel40")
        assert whole.shape == (1 + (n - 480) // 320, 40)
        # a stream delivers frame i once the hop after it arrives: push one more hop of zeros
        streamed = features.stream(np.pad(pcm, (0, 640)), preset="ww_logmel40")
        np.testing.assert_array_equal(streamed[: len(whole)], whole)


def test_silence_has_a_defined_result():
    zero = np.zeros(16000, np.int16)
    out = features.compute(zero)
    assert out.tolist() == [SILENCE_ROW] * 49
    ww = features.compute(zero, preset="ww_logmel40")
    # round(ln(1e-6) / 0.1 + 11) = round(-127.16) = -127 in every band
    assert (ww == -127).all() and ww.shape == (49, 40)


def test_full_scale_square_wave(tf):
    t = np.arange(16000)
    square = np.where((t // 40) % 2 == 0, 32767, -32768).astype(np.int16)  # 200 Hz
    ours = features.compute(square)
    ref = reference.quantize_like_mlperf(reference.mlperf_tf(square))
    assert np.abs(ours.astype(int) - ref).max() <= 1
    ww = features.compute(square, preset="ww_logmel40")
    assert ww.max() < 127 and ww.min() > -127 and ww.std() > 1  # inside the int8 range, not saturated


def test_short_and_long_clips():
    pcm = _pcm(speechlike(1.5, seed=4, amp=0.5))
    np.testing.assert_array_equal(features.compute(pcm), features.compute(pcm[:16000]))
    short = pcm[:8000]
    out = features.compute(short)
    assert out.shape == (49, 10)
    # frames entirely past the end (start >= 8000) see only zero padding
    first_silent = -(-8000 // 320)
    assert out[first_silent:].tolist() == [SILENCE_ROW] * (49 - first_silent)
    assert out[:20].tolist() != [SILENCE_ROW] * 20
    assert features.compute(pcm[:479], preset="ww_logmel40").shape == (0, 40)


def test_single_nonzero_sample(tf):
    pcm = np.zeros(16000, np.int16)
    pcm[8100] = 1000  # not at a frame start, where the periodic Hann window is 0
    ours = features.compute(pcm)
    ref = reference.quantize_like_mlperf(reference.mlperf_tf(pcm))
    assert np.abs(ours.astype(int) - ref).max() <= 1
    touched = [i for i in range(49) if i * 320 <= 8100 < i * 320 + 480]
    for i in range(49):
        assert (ours[i].tolist() == SILENCE_ROW) == (i not in touched)


def test_gain_only_moves_coefficient_zero_of_the_log_mel():
    pcm = _pcm(speechlike(1.0, seed=9, amp=0.5))
    loud, quiet = features.compute(pcm, preset="ww_logmel40"), features.compute((pcm // 4).astype(np.int16), preset="ww_logmel40")
    # a gain of 1/4 shifts every log-mel band by ln(4) = 1.386 = 13.9 LSB (except near the floor)
    diff = (loud.astype(int) - quiet)[loud > -60]
    assert abs(np.median(diff) - 14) <= 1
    # mlperf_kws01 normalizes by the maximum: same features whatever the gain (up to rounding)
    # in frames well above the floor (the integer division changes the quietest frames' noise)
    a, b = features.compute(pcm), features.compute((pcm // 4).astype(np.int16))
    loud_frames = a[:, 0] > 20
    assert loud_frames.sum() > 20 and np.abs(a[loud_frames].astype(int) - b[loud_frames]).max() <= 1


@pytest.mark.slow
def test_log_mel_agrees_with_librosa(clips):
    pytest.importorskip("librosa")
    for pcm in clips[:3]:
        ours = (features.compute(pcm, preset="ww_logmel40").astype(np.float64) - WW.out_zero_point) * WW.out_scale
        ref = reference.logmel_librosa(pcm, WW)
        err = np.abs(ours - ref)
        # quantization step 0.1; librosa's triangles are drawn in Hz, TensorFlow's in mel, which moves
        # steep, quiet high bands by up to ~0.2
        assert err.mean() < 0.04 and np.percentile(err, 99) < 0.25


def test_bad_input_is_refused(tmp_path):
    import soundfile as sf

    with pytest.raises(KwsError, match="expected int16"):
        features.compute(np.zeros(16000, np.float32))
    with pytest.raises(KwsError, match="expected mono"):
        features.compute(np.zeros((16000, 2), np.int16))
    with pytest.raises(KwsError, match="no samples"):
        features.compute(np.zeros(0, np.int16))
    with pytest.raises(KwsError, match="unknown frontend preset 'nope'"):
        features.compute(np.zeros(100, np.int16), preset="nope")
    sf.write(tmp_path / "rate.wav", np.zeros(8000, np.int16), 8000)
    bad = np.zeros(16000, np.float32)
    bad[5] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    for name, cause in [("rate.wav", "8000 Hz"), ("nan.wav", "NaN")]:
        rc = main(["features", str(tmp_path / name), "--out", str(tmp_path / f"{name}.npz")])
        assert rc == 2 and not (tmp_path / f"{name}.npz").exists()


def test_cli_writes_features(tmp_path, clips, capsys):
    import soundfile as sf

    for i, pcm in enumerate(clips[:4]):
        (tmp_path / "in" / f"lab{i % 2}").mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "in" / f"lab{i % 2}" / f"c{i}.wav", pcm, 16000, subtype="PCM_16")
    out = tmp_path / "f.npz"
    assert main(["features", str(tmp_path / "in"), "--out", str(out)]) == 0
    d = np.load(out)
    assert d["x"].shape == (4, 49, 10) and d["x"].dtype == np.int8
    assert list(d["names"]) == ["lab0/c0.wav", "lab0/c2.wav", "lab1/c1.wav", "lab1/c3.wav"]
    np.testing.assert_array_equal(d["x"][1], features.compute(clips[2]))
    assert main(["features", str(tmp_path / "in"), "--out", str(out)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err


# Frontend shapes beyond the two shipped presets: every FFT size, odd windows, windows over one, two
# and several hops, the band up to Nyquist, each rounding and overflow rule.
OTHER_SHAPES = [
    config.FrontendPreset(name="t_fft32", window_samples=30, hop_samples=16, fft_size=32, num_mel=4, num_coeffs=0,
                          mel_low_hz=300.0, mel_high_hz=7000.0, out_scale=0.05),
    config.FrontendPreset(name="t_fft128_odd", window_samples=101, hop_samples=64, fft_size=128, num_mel=10,
                          num_coeffs=5, normalize="clip_max", out_scale=0.3, out_zero_point=-20,
                          out_rounding="trunc", out_overflow="wrap"),
    config.FrontendPreset(name="t_three_hops", window_samples=400, hop_samples=160, num_mel=64, num_coeffs=13,
                          mel_low_hz=60.0, mel_high_hz=7800.0, out_scale=0.7, out_zero_point=3),
    config.FrontendPreset(name="t_hop_over_window", window_samples=400, hop_samples=480, num_coeffs=0, out_scale=0.1,
                          out_zero_point=11, out_rounding="trunc"),
    config.FrontendPreset(name="t_to_nyquist", window_samples=512, hop_samples=256, num_coeffs=0, mel_low_hz=0.0,
                          mel_high_hz=8000.0, out_scale=0.1, out_zero_point=11, log_floor=1e-9, out_overflow="wrap"),
]


def _float_features(pcm: np.ndarray, p: config.FrontendPreset) -> np.ndarray:
    """The preset's float definition (periodic Hann, |rfft|, TensorFlow's mel matrix, ln(x + floor),
    DCT-II or the bands, / out_scale + zero point) before the int8 cast: float64 [frames, row_size]."""
    x = pcm.astype(np.float64) / 32768.0
    win = tables.hann_periodic(p.window_samples)
    frames = 1 + (len(x) - p.window_samples) // p.hop_samples
    spec = np.stack([np.abs(np.fft.rfft(x[i * p.hop_samples: i * p.hop_samples + p.window_samples] * win,
                                        n=p.fft_size)) for i in range(frames)])
    logmel = np.log(spec @ tables.mel_matrix(p) + p.log_floor)
    out = logmel @ tables.dct_matrix(p.num_coeffs, p.num_mel).T if p.num_coeffs else logmel
    return out / p.out_scale + p.out_zero_point


def _cast(v: np.ndarray, p: config.FrontendPreset) -> np.ndarray:
    q = np.trunc(v) if p.out_rounding == "trunc" else np.sign(v) * np.floor(np.abs(v) + 0.5)
    q = q.astype(np.int64)
    return (((q + 128) % 256) - 128) if p.out_overflow == "wrap" else np.clip(q, -128, 127)


@pytest.mark.parametrize("p", OTHER_SHAPES, ids=lambda p: p.name)
def test_other_shapes_follow_the_float_definition_and_stream_like_whole_clips(p):
    from kws.features import native

    fe = native.NativeFrontend(tables.build(p))
    rng = np.random.default_rng(11)
    clips = [_pcm(speechlike(1.0, seed=s, amp=a)) for s, a in zip(range(4), (0.9, 0.3, 0.05, 0.6))]
    clips.append(_pcm(0.3 * rng.standard_normal(16000).clip(-3, 3) / 3))
    diffs, outs = [], []
    for pcm in clips:
        ours = fe.stream(pcm)  # fixed gain: pcm / 32768 (norm_max 32768)
        ref = _cast(_float_features(pcm[: len(pcm) - len(pcm) % p.hop_samples], p), p)
        assert ours.shape == ref.shape and len(ours) > 10
        d = np.abs(ours.astype(int) - ref)
        if p.out_overflow == "wrap":
            d = np.minimum(d, 256 - d)
        diffs.append(d.ravel())
        outs.append(ours)
        if not p.clip_samples and p.normalize == "fixed":
            np.testing.assert_array_equal(fe.clip(pcm)[: len(ours)], ours[: len(fe.clip(pcm))])
    d = np.concatenate(diffs)
    # integer rounding shows near the log floor (quiet bands at a 0.1 step): rarely more than 1 LSB
    assert (d <= 1).mean() >= 0.99 and d.max() <= 5, np.bincount(d)
    allout = np.concatenate([o.ravel() for o in outs])
    assert len({o.tobytes() for o in outs}) == len(clips) and allout.std() > 3  # outputs vary


@pytest.mark.parametrize("p", [*config.FRONTEND_PRESETS.values(), *OTHER_SHAPES], ids=lambda p: p.name)
def test_tables_hold_the_mel_matrix_and_the_twiddles(p):
    t = tables.build(p)
    # the two-band segments give back every Q15 weight of the mel matrix, and no other
    wq = np.round(tables.mel_matrix(p) * tables.Q15).astype(np.int64)
    dense = np.zeros_like(wq)
    seg = t.mel_seg_start.astype(int)
    assert seg[0] == t.bin_lo and seg[-1] == t.bin_hi + 1 and (np.diff(seg) >= 0).all()
    for u in range(p.num_mel + 1):
        for k in range(seg[u], seg[u + 1]):
            w = int(t.mel_pair_weights[k - t.bin_lo])
            if u >= 1:
                dense[k, u - 1] += w & 0xFFFF
            if u < p.num_mel:
                dense[k, u] += w >> 16
            assert (u >= 1 or w & 0xFFFF == 0) and (u < p.num_mel or w >> 16 == 0)
    np.testing.assert_array_equal(dense, wq)
    assert wq.sum() > 0

    def decode(v):
        v = np.asarray(v).astype(np.int64) & 0xFFFFFFFF
        lo, hi = v & 0xFFFF, v >> 16
        return (lo - (lo >= 32768) * 65536 + 1j * (hi - (hi >= 32768) * 65536)) / 32768.0  # cos + i (-sin)

    m = p.fft_size // 2
    np.testing.assert_allclose(decode(t.twiddle), np.exp(-2j * np.pi * np.arange(m) / p.fft_size), atol=2 ** -15)
    # radix-4 stages of span 16, 64, .. m: (W^j, W^2j, W^3j), j = 1 .. span/4 - 1, W = exp(-2 pi i / span)
    want, span = [], 16
    while span <= m:
        j = np.arange(1, span // 4)
        want.append(np.exp(-2j * np.pi * np.stack([j, 2 * j, 3 * j], axis=1) / span).ravel())
        span *= 4
    np.testing.assert_allclose(decode(t.fft_twiddle), np.concatenate(want), atol=2 ** -15)
    if p.num_coeffs == 0:  # log-mel: the output is gain * ln(mel), no matrix stored
        assert t.out_matrix.size == 0 and t.out_gain_q24 == round(2 ** 24 / p.out_scale)
    else:
        assert t.out_matrix.shape == (p.num_coeffs, p.num_mel)
