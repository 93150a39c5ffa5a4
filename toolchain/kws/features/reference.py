"""Float reference pipelines, for checking the C frontend only (never used to make features).

- `mlperf_tf(pcm)`: MLPerf Tiny's KWS feature pipeline in TensorFlow (tf.signal), as its training
  scripts compute it: the float MFCCs [49, 10] before the int8 cast.
- `quantize_like_mlperf(mfcc)`: its int8 cast (numpy float -> int8: truncation, wrapping).
- `logmel_librosa(pcm, preset)`: natural-log mel magnitudes [frames, num_mel] from librosa, an
  independent implementation (its own STFT and mel filters; HTK mel scale, no filter normalization).
"""

from __future__ import annotations

import numpy as np

from kws.config import FrontendPreset


def mlperf_tf(pcm: np.ndarray, *, clip_samples: int = 16000) -> np.ndarray:
    """int16 [n] -> float32 [49, 10]: tf.signal STFT (480/320, periodic Hann, 512 FFT), |.|, 40 mel
    bands 20-4000 Hz, log(x + 1e-6), MFCC, first 10; the waveform divided by its maximum first."""
    import tensorflow as tf

    w = tf.cast(pcm[:clip_samples], tf.float32)
    w = w / tf.reduce_max(w)
    w = tf.pad(w, [[0, clip_samples - tf.shape(w)[-1]]])
    st = tf.signal.stft(w, frame_length=480, frame_step=320, fft_length=None, window_fn=tf.signal.hann_window)
    spec = tf.abs(st)
    mel = tf.signal.linear_to_mel_weight_matrix(40, st.shape[-1], 16000, 20.0, 4000.0)
    logmel = tf.math.log(tf.tensordot(spec, mel, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(logmel)[..., :10].numpy()


def quantize_like_mlperf(mfcc: np.ndarray, *, scale: float = 0.5847029, zero_point: int = 83) -> np.ndarray:
    """numpy's float -> int8 cast of mfcc / scale + zero_point, made explicit: truncate, wrap mod 256."""
    v = np.trunc(np.asarray(mfcc, np.float32) / np.float32(scale) + np.float32(zero_point)).astype(np.int64)
    return (((v + 128) % 256) - 128).astype(np.int8)


def logmel_librosa(pcm: np.ndarray, p: FrontendPreset) -> np.ndarray:
    """int16 [n] -> float64 [frames, num_mel]: ln(mel magnitude of pcm / 32768 + log_floor)."""
    import librosa

    x = pcm.astype(np.float64) / 32768.0
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(p.window_samples) / p.window_samples)
    frames = 1 + (len(x) - p.window_samples) // p.hop_samples
    spec = np.stack([np.abs(np.fft.rfft(x[i * p.hop_samples: i * p.hop_samples + p.window_samples] * window,
                                        n=p.fft_size)) for i in range(frames)])
    fb = librosa.filters.mel(sr=p.sample_rate_hz, n_fft=p.fft_size, n_mels=p.num_mel, fmin=p.mel_low_hz,
                             fmax=p.mel_high_hz, htk=True, norm=None)
    return np.log(spec @ fb.T + p.log_floor)
