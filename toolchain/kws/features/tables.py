"""Integer tables of a frontend preset, for the C frontend.

One generator for both builds: the host library receives these arrays at run time (ctypes), and
firmware builds receive the same arrays as a generated C header (`emit_c_header`), so host and
device compute with identical numbers.

Float definitions (the MLPerf Tiny / TensorFlow ones):
- window: periodic Hann, w[n] = 0.5 - 0.5 cos(2 pi n / N), N = window_samples (tf.signal.hann_window).
- mel matrix: tf.signal.linear_to_mel_weight_matrix's definition: HTK mel scale 1127 ln(1 + f/700),
  bins at linspace(0, sr/2, fft/2+1) with the DC bin zeroed, triangles between num_mel + 2 edges
  equally spaced in mel from mel_low_hz to mel_high_hz.
- DCT: tf.signal.mfccs_from_log_mel_spectrograms: D[k, n] = 2 cos(pi k (2n+1) / (2N)) / sqrt(2N).

Layouts chosen for the C code's speed (same numbers): twiddles once for the split step and once in
radix-4 stage order; the mel matrix as segments of bins that weigh into two adjacent bands (one pass
over the bins); log-mel presets store 1/out_scale instead of an identity matrix.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from kws.config import FrontendPreset

Q15, Q24 = 1 << 15, 1 << 24


def hann_periodic(n: int) -> np.ndarray:
    """float64 [n]."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def hz_to_mel(f):
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix(p: FrontendPreset) -> np.ndarray:
    """float64 [num_bins, num_mel]: weight of FFT bin k in mel band m (TensorFlow's definition)."""
    bins = np.linspace(0.0, p.sample_rate_hz / 2.0, p.num_bins)[1:]
    bins_mel = hz_to_mel(bins)[:, None]
    edges = np.linspace(hz_to_mel(p.mel_low_hz), hz_to_mel(p.mel_high_hz), p.num_mel + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    w = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.vstack([np.zeros((1, p.num_mel)), w])


def dct_matrix(num_coeffs: int, num_mel: int) -> np.ndarray:
    """float64 [num_coeffs, num_mel]: TensorFlow's MFCC DCT-II."""
    k = np.arange(num_coeffs)[:, None]
    n = np.arange(num_mel)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2.0 * num_mel)) / np.sqrt(2.0 * num_mel)


@dataclasses.dataclass(frozen=True)
class Tables:
    """Everything kws_frontend_config_t holds, as numpy integer arrays and scalars."""

    preset: FrontendPreset
    window: np.ndarray          # int16 [window_samples], Q15
    twiddle: np.ndarray         # int32 [fft_size/2]: cos (Q15, low half) | -sin (Q15, high half) of 2 pi k / fft_size
    fft_twiddle: np.ndarray     # int32 [3 sum(L/4 - 1)]: per radix-4 stage of span L = 16 .. fft_size/2, for
                                # j = 1 .. L/4 - 1 the entries j s, 2 j s, 3 j s (s = fft_size / L) of that table
    digitrev: np.ndarray        # uint8 [fft_size/2]: base-4 digit reversal
    mel_seg_start: np.ndarray   # uint16 [num_mel + 2]: bins [start[u], start[u+1]) weigh into bands u - 1 and u
    mel_pair_weights: np.ndarray  # uint32 [bin_hi - bin_lo + 1]: per bin, Q15 weight in band u - 1 (low
                                  # half-word) and in band u (high half-word); a missing band weighs 0
    out_matrix: np.ndarray      # int32 [num_coeffs, num_mel], Q24 (already divided by out_scale); [0, num_mel] for log-mel
    out_gain_q24: int           # 1 / out_scale in Q24 (log-mel output: the identity matrix divided by out_scale)
    log2_table: np.ndarray      # int32 [257], Q24
    log_floor_q52: int
    bin_lo: int                 # FFT bins any mel band uses
    bin_hi: int

    def digest(self) -> str:
        h = hashlib.sha256(repr(self.preset).encode())
        for a in (self.window, self.twiddle, self.fft_twiddle, self.digitrev, self.mel_seg_start,
                  self.mel_pair_weights, self.out_matrix, self.log2_table, np.array([self.out_gain_q24])):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def _round_clip(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.round(x), lo, hi)


def _mel_segments(p: FrontendPreset, wq: np.ndarray, bin_lo: int, bin_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The Q15 mel matrix wq [num_bins, num_mel] as segments of bins, for a single pass over the bins:
    every bin weighs into at most two adjacent bands u - 1 (falling edge) and u (rising edge), u not
    decreasing with the bin. Returns (seg_start uint16 [num_mel + 2], pair_weights uint32 [bins])."""
    centers = wq.argmax(axis=0)
    seg, u = [], 0
    for k in range(bin_lo, bin_hi + 1):
        bands = np.nonzero(wq[k])[0]
        if len(bands) == 2 and bands[1] == bands[0] + 1:
            u = int(bands[1])
        elif len(bands) == 1:
            b = int(bands[0])
            u = b if k <= centers[b] else b + 1
        elif len(bands) > 1:
            raise ValueError(f"preset {p.name}: FFT bin {k} lies in mel bands {bands.tolist()}, not two adjacent ones")
        if seg and u < seg[-1]:
            raise ValueError(f"preset {p.name}: mel bands are not ordered along the FFT bins")
        seg.append(u)
    seg = np.array(seg)
    lo = np.array([wq[k, u - 1] if u >= 1 else 0 for k, u in zip(range(bin_lo, bin_hi + 1), seg)], np.int64)
    hi = np.array([wq[k, u] if u < p.num_mel else 0 for k, u in zip(range(bin_lo, bin_hi + 1), seg)], np.int64)
    # the segments must hold every weight of the matrix, and nothing else
    back = np.zeros_like(wq)
    for k, u, a, b in zip(range(bin_lo, bin_hi + 1), seg, lo, hi):
        if u >= 1:
            back[k, u - 1] += a
        if u < p.num_mel:
            back[k, u] += b
    if not np.array_equal(back, wq) or lo.max() >= 1 << 16 or hi.max() >= 1 << 16:
        raise ValueError(f"preset {p.name}: mel weights do not fit the two-band layout")
    start = np.searchsorted(seg, np.arange(p.num_mel + 2)) + bin_lo
    return start.astype(np.uint16), (lo | (hi << 16)).astype(np.uint32)


def build(p: FrontendPreset) -> Tables:
    if p.fft_size not in (32, 128, 512):
        raise ValueError(f"preset {p.name}: fft_size must be 32, 128 or 512 (half of it a power of 4)")
    window = _round_clip(hann_periodic(p.window_samples) * Q15, -32768, 32767).astype(np.int16)
    half = p.fft_size // 2
    angle = 2.0 * np.pi * np.arange(3 * p.fft_size // 4) / p.fft_size
    cos_q15 = _round_clip(np.cos(angle) * Q15, -32768, 32767).astype(np.int64)
    nsin_q15 = _round_clip(-np.sin(angle) * Q15, -32768, 32767).astype(np.int64)
    packed = ((cos_q15 & 0xFFFF) | ((nsin_q15 & 0xFFFF) << 16)).astype(np.uint32).view(np.int32)
    twiddle = packed[:half].copy()
    stages = []
    span = 16
    while span <= half:
        step, q = p.fft_size // span, span // 4
        j = np.arange(1, q)
        stages.append(np.stack([packed[j * step], packed[2 * j * step], packed[3 * j * step]], axis=1).ravel())
        span *= 4
    fft_twiddle = np.concatenate(stages).astype(np.int32)
    digits = (half.bit_length() - 1) // 2
    digitrev = np.array([int(np.base_repr(i, 4).zfill(digits)[::-1], 4) for i in range(half)], dtype=np.uint8)

    mel = mel_matrix(p)
    wq = np.round(mel * Q15).astype(np.int64)
    first, last = [], []
    for m in range(p.num_mel):
        nz = np.nonzero(wq[:, m])[0]
        if len(nz) == 0:
            raise ValueError(f"preset {p.name}: mel band {m} covers no FFT bin (too many bands for this FFT size)")
        first.append(int(nz[0]))
        last.append(int(nz[-1]))
    bin_lo, bin_hi = min(first), max(last)
    seg_start, pair_weights = _mel_segments(p, wq, bin_lo, bin_hi)
    # log-mel: the output matrix would be the identity / out_scale, every diagonal entry this gain
    out_gain_q24 = int(np.round(np.ones(1) / p.out_scale * Q24).astype(np.int32)[0])
    if p.num_coeffs:
        out_matrix = np.round(dct_matrix(p.num_coeffs, p.num_mel) / p.out_scale * Q24).astype(np.int32)
    else:
        out_matrix = np.zeros((0, p.num_mel), np.int32)
    log2_table = np.round(np.log2(1.0 + np.arange(257) / 256.0) * Q24).astype(np.int32)
    log_floor_q52 = int(round(p.log_floor * 2.0**52))
    if not 0 < log_floor_q52 < 2**40:
        raise ValueError(f"preset {p.name}: log_floor must be in (0, 2^-12)")
    return Tables(preset=p, window=window, twiddle=twiddle, fft_twiddle=fft_twiddle, digitrev=digitrev,
                  bin_lo=bin_lo, bin_hi=bin_hi, mel_seg_start=seg_start, mel_pair_weights=pair_weights,
                  out_matrix=out_matrix, out_gain_q24=out_gain_q24, log2_table=log2_table, log_floor_q52=log_floor_q52)


_ENUMS = {
    "normalize": {"fixed": "KWS_FRONTEND_NORM_FIXED", "clip_max": "KWS_FRONTEND_NORM_CLIP_MAX"},
    "rounding": {"trunc": "KWS_FRONTEND_ROUND_TRUNC", "round": "KWS_FRONTEND_ROUND_NEAREST"},
    "overflow": {"saturate": "KWS_FRONTEND_SATURATE", "wrap": "KWS_FRONTEND_WRAP"},
}
ENUM_VALUES = {"normalize": {"fixed": 0, "clip_max": 1}, "rounding": {"trunc": 0, "round": 1},
               "overflow": {"saturate": 0, "wrap": 1}}


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 12) -> str:
    flat = [str(int(v)) for v in np.asarray(values).ravel()]
    lines = [", ".join(flat[i: i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body},\n}};\n"


def emit_c(t: Tables) -> tuple[str, str]:
    """Generated C for a firmware build: (header, source).

    The header holds the preset's sizes as macros and must be seen by every translation unit that
    includes kws/frontend.h (builds force-include it with `-include`), so the state structs are
    sized for this preset; the source holds the tables and `const kws_frontend_config_t
    kws_frontend_config` (flash).
    """
    p = t.preset
    history = p.hop_samples * -(-p.window_samples // p.hop_samples)
    banner = [f"// Generated by kws.features.tables from frontend preset '{p.name}' (toolchain/kws/config.py).",
              f"// Input hash (preset + tables): sha256 {t.digest()}. Do not edit."]
    guard = "KWS_GENERATED_FRONTEND_CONFIG_H"
    header = "\n".join(banner + [
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        f'#define KWS_FRONTEND_PRESET "{p.name}"',
        f"#define KWS_FRONTEND_MAX_FFT {p.fft_size}",
        f"#define KWS_FRONTEND_MAX_MEL {p.num_mel}",
        f"#define KWS_FRONTEND_MAX_HISTORY {history}",
        f"#define KWS_FRONTEND_SAMPLE_RATE_HZ {p.sample_rate_hz}",
        f"#define KWS_FRONTEND_HOP_SAMPLES {p.hop_samples}",
        f"#define KWS_FRONTEND_WINDOW_SAMPLES {p.window_samples}",
        f"#define KWS_FRONTEND_ROW_SIZE {p.row_size}",
        f"#define KWS_FRONTEND_CLIP_SAMPLES {p.clip_samples}",
        f"#define KWS_FRONTEND_CLIP_ROWS {p.frames_for(p.clip_samples) if p.clip_samples else 0}",
        "",
        '#include "kws/frontend.h"',
        "",
        "extern const kws_frontend_config_t kws_frontend_config;",
        "",
        f"#endif  // {guard}",
        "",
    ])
    name = "kws_frontend"
    source = "\n".join(banner + [
        "#include <stddef.h>",
        "",
        '#include "kws/frontend.h"',
        "",
        _c_array("int16_t", f"{name}_window", t.window),
        _c_array("int32_t", f"{name}_twiddle", t.twiddle, 8),
        _c_array("int32_t", f"{name}_fft_twiddle", t.fft_twiddle, 8),
        _c_array("uint8_t", f"{name}_digitrev", t.digitrev, 16),
        _c_array("uint16_t", f"{name}_mel_seg_start", t.mel_seg_start, 16),
        _c_array("uint32_t", f"{name}_mel_pair_weights", t.mel_pair_weights, 8),
        *([_c_array("int32_t", f"{name}_out_matrix", t.out_matrix, 8)] if t.out_matrix.size else []),
        _c_array("int32_t", f"{name}_log2_table", t.log2_table, 8),
        "const kws_frontend_config_t kws_frontend_config = {",
        f"    .window_samples = {p.window_samples}, .hop_samples = {p.hop_samples}, .fft_size = {p.fft_size},",
        f"    .num_mel = {p.num_mel}, .num_coeffs = {p.num_coeffs},",
        f"    .normalize = {_ENUMS['normalize'][p.normalize]}, .rounding = {_ENUMS['rounding'][p.out_rounding]},",
        f"    .overflow = {_ENUMS['overflow'][p.out_overflow]}, .clip_samples = {p.clip_samples},",
        f"    .log_floor_q52 = {t.log_floor_q52}ull, .out_zero_point = {p.out_zero_point},",
        f"    .bin_lo = {t.bin_lo}, .bin_hi = {t.bin_hi},",
        f"    .window = {name}_window, .twiddle = {name}_twiddle, .fft_twiddle = {name}_fft_twiddle,",
        f"    .digitrev = {name}_digitrev, .mel_seg_start = {name}_mel_seg_start,",
        f"    .mel_pair_weights = {name}_mel_pair_weights,",
        f"    .out_matrix = {name + '_out_matrix' if t.out_matrix.size else 'NULL'}, .out_gain_q24 = {t.out_gain_q24},",
        f"    .log2_table = {name}_log2_table,",
        "};",
        "",
    ])
    return header, source


def write_c(t: Tables, out_dir) -> tuple[Path, Path]:
    """Write kws_frontend_config.h/.c into out_dir (atomically); returns their paths."""
    from kws.fileio import atomic_path

    out_dir = Path(out_dir)
    header, source = emit_c(t)
    paths = out_dir / "kws_frontend_config.h", out_dir / "kws_frontend_config.c"
    for path, text in zip(paths, (header, source)):
        if path.is_file() and path.read_text() == text:
            continue  # unchanged: keep the mtime so make does not rebuild
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(text)
    return paths
