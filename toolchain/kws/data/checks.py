"""Per-clip checks for `kws data validate`: one read per file, a fixed set of measurements, findings.

Every finding has a stable reason id (used in `_quarantine/<reason>/`, in the manifest status and in
the report) and a severity: "error" (the clip is unfit to train on and is quarantined) or "warning"
(reported only). Levels are in dB relative to digital full scale: 20*log10(x) for a peak, and
20*log10(rms) for an RMS level, so a full-scale square wave is 0 dBFS and a full-scale sine -3 dBFS.

The speech-likeness heuristic and the near-duplicate fingerprint are documented on `speech_features`
and `fingerprint`; `near_duplicates` finds close fingerprints among many clips (exact duplicates are
grouped by `ClipResult.content_hash` in kws.data.validate).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np

from kws import config

ERROR = "error"
WARNING = "warning"

# Reason id -> what it means. The order is the priority when a clip has several errors: the first
# one names its quarantine folder.
REASONS: dict[str, str] = {
    "undecodable": "the file is not decodable audio",
    "empty": "the file holds no samples",
    "nan_or_inf": "samples are NaN or infinite",
    "sample_rate": "the sample rate is not the expected one",
    "channels": "the clip is not mono",
    "duration": "the duration is outside the allowed range",
    "digital_silence": "every sample is zero",
    "clipping": "samples at full scale (|x| >= 0.999)",
    "low_rms": "the RMS level is very low",
    "exact_duplicate": "same decoded samples as an earlier clip",
    "dc_offset": "the mean sample value is far from zero",
    "near_duplicate": "probably the same recording as another clip (gain, noise or shift aside)",
    "no_speech": "no speech-like energy in the loudest second",
}

# Thresholds (the numbers); documented in the report.
CLIP_LEVEL = 0.999
CLIP_ERROR_FRACTION = 0.01
CLIP_WARN_FRACTION = 0.001
LOW_RMS_ERROR_DBFS = -60.0
LOW_RMS_WARN_DBFS = -40.0
DC_WARN = 0.02
# Labels whose clips are not speech: no speech-likeness check, and quiet is expected of _silence_.
NON_SPEECH_LABELS = (config.SILENCE_LABEL, "_background_noise_")
# Long noise recordings used for augmentation: exempt from the maximum duration.
LONG_NOISE_LABEL = "_background_noise_"


@dataclasses.dataclass
class Finding:
    reason: str
    severity: str
    detail: str


@dataclasses.dataclass
class ClipResult:
    """Everything validate needs about one clip (small: it crosses a process boundary)."""

    path: str  # relative to the dataset root, POSIX separators
    label: str
    file_sha256: str = ""
    content_hash: str = ""  # hash of the decoded samples, rate and shape ("" when undecodable)
    sample_rate_hz: int = 0
    channels: int = 0
    frames: int = 0
    duration_s: float = 0.0
    peak_dbfs: float | None = None
    rms_dbfs: float | None = None
    dc: float | None = None
    clip_fraction: float | None = None
    speech: dict | None = None  # speech_features() of the loudest second
    findings: list[Finding] = dataclasses.field(default_factory=list)
    fp: tuple[np.ndarray, np.ndarray] | None = None  # (bits, mask) uint16 [47], see fingerprint()

    def add(self, reason: str, severity: str, detail: str) -> None:
        self.findings.append(Finding(reason, severity, detail))

    @property
    def errors(self) -> list[Finding]:
        order = list(REASONS)
        return sorted((f for f in self.findings if f.severity == ERROR), key=lambda f: order.index(f.reason))

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]


def _db(x: float) -> float | None:
    """20*log10(x) for an amplitude, None for zero."""
    if not np.isfinite(x) or x <= 0:
        return None
    return float(20.0 * np.log10(x))


def analyze(path: str | Path, *, rel_path: str, label: str, sample_rate_hz: int, min_duration_s: float,
            max_duration_s: float) -> ClipResult:
    """Read `path` once (bytes hashed, then decoded from memory) and run every per-clip check.

    Samples are decoded as float32 [frames, channels]; clipping looks at every channel, the level,
    speech and fingerprint checks at the float64 [frames] channel mean. Never raises for bad content:
    an unreadable or non-audio file is an "undecodable" finding.
    """
    import soundfile

    res = ClipResult(path=rel_path, label=label)
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        res.add("undecodable", ERROR, f"cannot read the file ({exc.strerror or exc})")
        return res
    res.file_sha256 = hashlib.sha256(blob).hexdigest()
    try:
        data, rate = soundfile.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types; any of them means "not audio"
        detail = str(exc).split(":")[-1].strip() or type(exc).__name__
        res.add("undecodable", ERROR, f"not decodable audio ({detail})")
        return res
    res.sample_rate_hz, res.frames, res.channels = int(rate), int(data.shape[0]), int(data.shape[1])
    res.duration_s = res.frames / rate if rate > 0 else 0.0
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{rate}:{data.shape}".encode())
    h.update(np.ascontiguousarray(data).tobytes())
    res.content_hash = h.hexdigest()

    if res.frames == 0:
        res.add("empty", ERROR, "no samples")
    if rate != sample_rate_hz:
        res.add("sample_rate", ERROR, f"sample rate {rate} Hz, expected {sample_rate_hz} Hz")
    if res.channels != 1:
        res.add("channels", ERROR, f"{res.channels} channels, expected mono")
    too_long = res.duration_s > max_duration_s and label != LONG_NOISE_LABEL
    if res.frames and (res.duration_s < min_duration_s or too_long):
        res.add("duration", ERROR,
                f"duration {res.duration_s:.3f} s outside [{min_duration_s:g}, {max_duration_s:g}] s")
    if res.frames == 0:
        return res
    if not np.all(np.isfinite(data)):
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        res.add("nan_or_inf", ERROR, f"{bad} NaN or infinite samples")
        return res

    mag = np.abs(data)
    peak = float(mag.max())
    res.peak_dbfs = _db(peak)
    if peak == 0.0:
        res.add("digital_silence", ERROR, "every sample is zero")
        return res
    res.clip_fraction = float(np.count_nonzero(mag >= CLIP_LEVEL) / mag.size)
    if res.clip_fraction > CLIP_ERROR_FRACTION:
        res.add("clipping", ERROR, f"{100 * res.clip_fraction:.2f} % of samples at full scale")
    elif res.clip_fraction > CLIP_WARN_FRACTION:
        res.add("clipping", WARNING, f"{100 * res.clip_fraction:.2f} % of samples at full scale")

    x = data.mean(axis=1, dtype=np.float64) if res.channels > 1 else data[:, 0].astype(np.float64)
    res.dc = float(x.mean())
    rms = float(np.sqrt(np.mean(x * x)))
    res.rms_dbfs = _db(rms)
    level = res.rms_dbfs if res.rms_dbfs is not None else -np.inf
    if label != config.SILENCE_LABEL:
        if level < LOW_RMS_ERROR_DBFS:
            res.add("low_rms", ERROR, f"RMS {level:.1f} dBFS < {LOW_RMS_ERROR_DBFS:g} dBFS")
        elif level < LOW_RMS_WARN_DBFS:
            res.add("low_rms", WARNING, f"RMS {level:.1f} dBFS < {LOW_RMS_WARN_DBFS:g} dBFS")
    if abs(res.dc) > DC_WARN:
        res.add("dc_offset", WARNING, f"mean {res.dc:+.3f} of full scale")

    if rate > 0:
        res.speech = speech_features(x, rate)
        if label not in NON_SPEECH_LABELS and not res.speech["speech_like"]:
            s = res.speech
            res.add("no_speech", WARNING, f"loudest second: {100 * s['band_share']:.0f} % energy in 100-4000 Hz, "
                    f"flatness {s['flatness']:.2f}, modulation {s['modulation_db']:.1f} dB")
        res.fp = fingerprint(x, rate)
    return res


# --- speech-likeness --------------------------------------------------------------------------------

SPEECH_WIN_S = 0.032
SPEECH_HOP_S = 0.010
SPEECH_BAND_HZ = (100.0, 4000.0)
SPEECH_MIN_BAND_SHARE = 0.15
SPEECH_MAX_FLATNESS = 0.5
SPEECH_MIN_MODULATION_DB = 6.0


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """float64 [n] -> float64 [frames, win] view (zero-padded to at least one frame)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    count = 1 + (len(x) - win) // hop
    return np.lib.stride_tricks.as_strided(x, shape=(count, win), strides=(x.strides[0] * hop, x.strides[0]),
                                           writeable=False)


def speech_features(x: np.ndarray, sample_rate_hz: int) -> dict:
    """Speech-likeness of the loudest second of mono float64 [n]; a heuristic, not a detector.

    Frames of 32 ms every 10 ms (each frame's mean removed, so a DC offset does not count; Hann
    window). The loudest 1 s run of frames by power in 100-4000 Hz (the whole clip when shorter) is
    measured three ways:
      band_share    share of its power above 50 Hz that lies in 100-4000 Hz: speech carries most of its
                    energy there; this rejects hiss and rumble only (sibilant words score ~0.2);
      flatness      spectral flatness (geometric / arithmetic mean) of its mean power spectrum from
                    100 Hz to 0.95 x Nyquist: ~0.99 for white noise, ~0.6 for pink noise, below 0.4 for
                    speech and ~0 for a tone;
      modulation_db spread (90th - 10th percentile) of its 100-4000 Hz frame energies in dB: syllables
                    and pauses make 10-60 dB; a steady tone, white, pink or brown noise stay below 5 dB.
    speech_like = band_share >= 0.15 and flatness <= 0.5 and modulation_db >= 6.
    Calibrated on Speech Commands v2 test words (99.3 % pass; the failures are clips where steady
    noise or hum drowns the word), FSDD (99.4 %), and synthetic white/pink/brown noise and tones (0 %).
    """
    win = max(16, int(round(SPEECH_WIN_S * sample_rate_hz)))
    hop = max(1, int(round(SPEECH_HOP_S * sample_rate_hz)))
    fr = _frames(x, win, hop)
    fr = (fr - fr.mean(axis=1, keepdims=True)) * np.hanning(win)
    nfft = 1 << (win - 1).bit_length()
    power = np.abs(np.fft.rfft(fr, n=nfft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate_hz)
    in_band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
    energy = power[:, in_band].sum(axis=1)
    span = min(len(energy), int(round(1.0 / SPEECH_HOP_S)))
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    start = int(np.argmax(csum[span:] - csum[:-span]))
    spec = power[start:start + span].mean(axis=0)
    e = energy[start:start + span]
    total = float(spec[freqs >= 50.0].sum())
    band_share = float(spec[in_band].sum() / total) if total > 0 else 0.0
    s = spec[(freqs >= SPEECH_BAND_HZ[0]) & (freqs <= 0.95 * sample_rate_hz / 2)]
    floor = max(float(s.max()) * 1e-12, 1e-30)
    flatness = float(np.exp(np.mean(np.log(s + floor))) / (np.mean(s) + floor))
    edb = 10 * np.log10(e + max(float(e.max()) * 1e-6, 1e-30))
    modulation_db = float(np.percentile(edb, 90) - np.percentile(edb, 10))
    speech_like = (band_share >= SPEECH_MIN_BAND_SHARE and flatness <= SPEECH_MAX_FLATNESS
                   and modulation_db >= SPEECH_MIN_MODULATION_DB)
    return {"band_share": round(band_share, 4), "flatness": round(flatness, 4),
            "modulation_db": round(modulation_db, 2), "speech_like": bool(speech_like)}


# --- near-duplicate fingerprint -----------------------------------------------------------------------

FP_WIN_S = 0.032
FP_HOP_S = 0.016
FP_FRAMES = 48
FP_BANDS = 17  # 16 bits per frame pair
FP_BAND_HZ = (300.0, 3800.0)
FP_FLOOR_DB = 40.0
FP_VALID_DB = 40.0
FP_DEAD_ZONE = 0.3  # natural-log units (about 1.3 dB)
NEAR_DUP_MAX_BER = 0.10
NEAR_DUP_MAX_SHIFT_FRAMES = 3
NEAR_DUP_MIN_BITS = 48
NEAR_DUP_MIN_OVERLAP = 0.6
LSH_MIN_BITS_PER_FRAME = 8
LSH_MAX_BUCKET = 64


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def _mel_inv(m):
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def fingerprint(x: np.ndarray, sample_rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """A gain-invariant binary fingerprint of mono float [n].

    1. Align: the DC is removed and the segment is centred on the clip's energy centroid (the
       x^2-weighted mean sample index): a gain leaves it in place, leading silence or a shift moves it
       with the audio, a small added noise hardly moves it. (This replaces "trim leading silence",
       which fails when the sound starts at the first sample.)
    2. 48 frames of 32 ms every 16 ms (Hann) around it, zero outside the clip; power in 17 mel-spaced
       bands from 300 to 3800 Hz; log, with a floor 40 dB below the loudest band of the segment (noise
       under the floor changes nothing).
    3. dd(t, b) = [L(t,b) - L(t,b+1)] - [L(t-1,b) - L(t-1,b+1)]; bit = dd > 0. Differences of log
       energies cancel any gain. A bit is usable (mask) when |dd| > 0.3 (signs of tiny differences flip
       with the slightest noise) and both frames lie inside the clip within 40 dB of its loudest frame.
    Returns (bits, mask), each uint16 [47]: bit b of element t is band difference b of frame pair t.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    win = max(16, int(round(FP_WIN_S * sample_rate_hz)))
    hop = max(1, int(round(FP_HOP_S * sample_rate_hz)))
    e = x * x
    total = float(e.sum())
    centre = int(round(float((np.arange(len(x)) * e).sum()) / total)) if total > 0 else len(x) // 2
    span = win + hop * (FP_FRAMES - 1)
    start = centre - span // 2
    before, after = max(0, -start), max(0, start + span - len(x))
    seg = np.pad(x, (before, after))[start + before:start + before + span]
    inside = np.zeros(span)
    lo_in, hi_in = max(0, -start), min(span, len(x) - start)
    inside[lo_in:max(lo_in, hi_in)] = 1.0
    in_frame = _frames(inside, win, hop).mean(axis=1) >= 0.5
    power = np.abs(np.fft.rfft(_frames(seg, win, hop) * np.hanning(win), n=1 << (win - 1).bit_length(), axis=1)) ** 2
    freqs = np.fft.rfftfreq(1 << (win - 1).bit_length(), 1.0 / sample_rate_hz)
    edges = _mel_inv(np.linspace(_mel(FP_BAND_HZ[0]), _mel(FP_BAND_HZ[1]), FP_BANDS + 1))
    band = np.searchsorted(edges, freqs, side="right") - 1
    keep = (band >= 0) & (band < FP_BANDS)
    bands = np.zeros((FP_FRAMES, FP_BANDS))
    np.add.at(bands.T, band[keep], power[:, keep].T)
    top = float(bands.max())
    logb = np.log(np.maximum(bands, max(top * 10 ** (-FP_FLOOR_DB / 10), 1e-300)))
    d = logb[:, :-1] - logb[:, 1:]
    dd = d[1:] - d[:-1]
    fe = bands.sum(axis=1)
    loud = in_frame & (fe > 0) & (fe >= fe.max() * 10 ** (-FP_VALID_DB / 10))
    usable = (loud[1:] & loud[:-1])[:, None] & (np.abs(dd) > FP_DEAD_ZONE)
    weights = (1 << np.arange(FP_BANDS - 1)).astype(np.uint32)
    return (((dd > 0) * weights).sum(axis=1).astype(np.uint16), (usable * weights).sum(axis=1).astype(np.uint16))


def _unpack(words: np.ndarray) -> np.ndarray:
    """uint16 [t] -> bool [t, 16], bit b of word t at [t, b]."""
    return ((np.asarray(words, dtype=np.uint16)[:, None] >> np.arange(16, dtype=np.uint16)) & 1).astype(bool)


def fingerprint_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Bit error rate between two fingerprints over the bits usable in both, minimised over frame
    shifts of up to +-3 (+-48 ms); 1.0 when no shift leaves at least 48 common bits and 60 % of the
    larger fingerprint's usable bits (two clips of very different length are not duplicates)."""
    ab, am, bb, bm = _unpack(a[0]), _unpack(a[1]), _unpack(b[0]), _unpack(b[1])
    need = max(NEAR_DUP_MIN_BITS, NEAR_DUP_MIN_OVERLAP * max(int(am.sum()), int(bm.sum())))
    n = len(ab)
    best = 1.0
    for s in range(-NEAR_DUP_MAX_SHIFT_FRAMES, NEAR_DUP_MAX_SHIFT_FRAMES + 1):
        sa, sb = slice(max(0, s), n + min(0, s)), slice(max(0, -s), n - max(0, s))
        common = am[sa] & bm[sb]
        count = int(common.sum())
        if count < need:
            continue
        best = min(best, float(np.count_nonzero(ab[sa][common] != bb[sb][common])) / count)
    return best


def _popcount16(words: np.ndarray) -> np.ndarray:
    return _unpack(words).sum(axis=1)


def near_duplicates(fps: list[tuple[np.ndarray, np.ndarray] | None], *,
                    max_ber: float = NEAR_DUP_MAX_BER) -> list[tuple[int, int, float]]:
    """Pairs (i, j, bit_error_rate), i < j, of fingerprints closer than `max_ber` (None entries skipped).

    Candidates come from banding (LSH): each run of two consecutive frame pairs with at least 8 usable
    bits each gives a 32-bit key (their 2 x 16 bits); clips sharing any key are compared with
    fingerprint_distance. (Keying on the raw bits recalls more near copies than keying on masked bits:
    the dead-zone mask itself is unstable under noise, while floored bands tie identically.) A near
    copy shares most of its keys, unrelated clips almost none, so the work grows with the number of
    clips, not its square. Keys shared by more than 64 clips carry no information (e.g. a common
    pattern) and are ignored. Measured recall of the whole search on Speech Commands test clips: 99 %
    for gain changes or added noise 60 dB below the peak, 96-98 % for 3-5 ms shifts.
    """
    key_list, owner_list = [], []
    for i, fp in enumerate(fps):
        if fp is None:
            continue
        bits, mask = fp
        words = bits.astype(np.int64)
        ok = _popcount16(mask) >= LSH_MIN_BITS_PER_FRAME
        both = ok[:-1] & ok[1:]
        keys = np.unique((words[:-1] << 16 | words[1:])[both])
        key_list.append(keys)
        owner_list.append(np.full(len(keys), i, dtype=np.int64))
    if not key_list:
        return []
    keys, owners = np.concatenate(key_list), np.concatenate(owner_list)
    order = np.argsort(keys, kind="stable")
    keys, owners = keys[order], owners[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(keys)]])
    sizes = ends - starts
    candidates: set[tuple[int, int]] = set()
    useful = (sizes > 1) & (sizes <= LSH_MAX_BUCKET)
    for lo, size in zip(starts[useful], sizes[useful]):
        members = owners[lo:lo + size]
        for a_i in range(size):
            for b_i in range(a_i + 1, size):
                candidates.add((int(min(members[a_i], members[b_i])), int(max(members[a_i], members[b_i]))))
    pairs = []
    for i, j in sorted(candidates):
        d = fingerprint_distance(fps[i], fps[j])
        if d <= max_ber:
            pairs.append((i, j, d))
    return pairs
