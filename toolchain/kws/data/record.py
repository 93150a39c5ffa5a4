"""`kws data record`: takes from a microphone, with a prompt, a live level meter and silence trimming.

The microphone is reached through a *stream factory*, so tests (and other audio back-ends) can stand
in for sounddevice:

    stream_factory(sample_rate_hz, block_frames) -> context manager yielding a stream whose
    stream.read(frames) returns (float32 [frames, channels] in [-1, 1], overflowed: bool)

which is exactly how `sounddevice.InputStream(samplerate=..., blocksize=..., channels=1,
dtype="float32")` behaves. The stream is opened anew for every take, so audio captured while the
user reads the prompt never ends up in a clip.

The pure parts -- level meter text, speech bounds (trimming), clip naming, prompt text -- are
separate functions so they can be tested without any audio device.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
from pathlib import Path, PurePosixPath
from typing import Callable, ContextManager, Iterable, Protocol

import numpy as np

from kws import config
from kws.data import audio, manifest
from kws.errors import KwsError

BLOCK_MS = 100           # one level-meter update per block
FRAME_MS = 10.0          # trimming works on frames this long
MARGIN_MS = 100.0        # kept before the first and after the last loud frame
THRESHOLD_DB = -35.0     # a frame is "sound" if its RMS is within this of the take's loudest frame
SILENCE_DBFS = -55.0     # a take whose loudest frame is quieter than this heard nothing
CLIP_LEVEL = 0.999       # |sample| at or above this counts as clipped
MAX_RETRIES = 3          # rejected takes retried this many times before giving up
METER_WIDTH = 30
METER_FLOOR_DB = -60.0   # an empty bar; a full bar is 0 dBFS
_DB_FLOOR = 1e-6         # -120 dBFS: what digital silence reports instead of -inf


class InputStream(Protocol):
    def read(self, frames: int) -> tuple[np.ndarray, bool]:
        """(float32 [frames, channels], overflowed)."""


StreamFactory = Callable[[int, int], ContextManager[InputStream]]


# ---------------------------------------------------------------------------------------------
# Pure parts


def _db(value: float) -> float:
    return 20.0 * math.log10(max(float(value), _DB_FLOOR))


def levels_dbfs(x: np.ndarray) -> tuple[float, float]:
    """(RMS, peak) of float [n] in dBFS (full scale = 1.0); digital silence gives -120 dBFS."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return _db(0.0), _db(0.0)
    return _db(math.sqrt(float(np.mean(x * x)))), _db(float(np.max(np.abs(x))))


def level_meter(x: np.ndarray, *, width: int = METER_WIDTH, floor_db: float = METER_FLOOR_DB) -> str:
    """One line of text for float [n]: a bar of the RMS level (empty at `floor_db`, full at 0 dBFS),
    a `|` at the peak level, both values in dBFS, and CLIPPING when a sample reaches full scale.
    The length depends on `width` only (so `\r` redraws leave no stale characters).

    e.g. `[##########      |       ]  -38.2 dBFS rms  -24.9 dBFS peak`
    """
    rms_db, peak_db = levels_dbfs(x)

    def cells(db: float) -> int:
        return int(round(width * min(max((db - floor_db) / -floor_db, 0.0), 1.0)))

    fill, peak_at = cells(rms_db), cells(peak_db)
    bar = ["#"] * fill + [" "] * (width - fill)
    if peak_at > fill:
        bar[peak_at - 1] = "|"
    clipping = "  CLIPPING" if peak_db >= _db(CLIP_LEVEL) else " " * 10  # constant length for \r redraws
    return f"[{''.join(bar)}] {rms_db:6.1f} dBFS rms {peak_db:6.1f} dBFS peak{clipping}"


def speech_bounds(x: np.ndarray, *, sample_rate_hz: int, frame_ms: float = FRAME_MS,
                  margin_ms: float = MARGIN_MS, threshold_db: float = THRESHOLD_DB,
                  silence_dbfs: float = SILENCE_DBFS) -> tuple[int, int] | None:
    """Where the sound is in float [n]: (start, end) sample indices to keep, or None if all silence.

    The take is cut into `frame_ms` frames; a frame is sound when its RMS is within `threshold_db`
    of the loudest frame's RMS. The kept span runs from the first to the last sound frame (quiet
    gaps inside are kept), widened by `margin_ms` each side and clipped to the take. None when the
    loudest frame is below `silence_dbfs` (nothing but silence or the microphone's own noise).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    frame = max(1, int(round(sample_rate_hz * frame_ms / 1000.0)))
    if x.size == 0:
        return None
    n_frames = -(-x.size // frame)
    padded = np.zeros(n_frames * frame)
    padded[:x.size] = x
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    loudest = float(rms.max())
    if _db(loudest) < silence_dbfs:
        return None
    sound = np.flatnonzero(rms >= loudest * 10.0 ** (threshold_db / 20.0))
    margin = int(round(sample_rate_hz * margin_ms / 1000.0))
    start = max(0, int(sound[0]) * frame - margin)
    end = min(x.size, (int(sound[-1]) + 1) * frame + margin)
    return start, end


def next_clip_name(speaker: str, taken: Iterable[str]) -> str:
    """`<speaker>_<n>.wav` with n one past the highest n of this speaker among `taken` (file names),
    or 0 for the first. Never a name in `taken`; numbering follows recording order (no gap filling).
    """
    pattern = re.compile(re.escape(speaker) + r"_(\d+)\.wav", re.IGNORECASE)
    used = [int(m.group(1)) for name in taken if (m := pattern.fullmatch(name))]
    return f"{speaker}_{max(used) + 1 if used else 0}.wav"


def prompt_text(label: str, take: int, count: int, *, seconds: float) -> str:
    """The line shown before take `take` of `count`."""
    head = f"Take {take}/{count}:"
    if label == config.SILENCE_LABEL:
        return f"{head} stay quiet; {seconds:g} s of background sound are recorded after the beep (Enter to start)"
    if label == config.UNKNOWN_LABEL:
        return f"{head} say any word except the wake word after the beep (Enter to start, {seconds:g} s)"
    return f"{head} say '{label.replace('_', ' ').strip()}' after the beep (Enter to start, {seconds:g} s)"


# ---------------------------------------------------------------------------------------------
# Recording


def record(*, label: str, count: int, out: Path, seconds: float = 2.0, speaker: str | None = None,
           device=None, sample_rate_hz: int = 16000, stream_factory: StreamFactory | None = None,
           prompt: Callable[[str], None] | None = None,
           wait: Callable[[], None] | None = None) -> list[Path]:
    """Record `count` takes of `label` into OUT/<label>/<speaker>_<n>.wav; returns the new paths.

    Each take: `prompt(text)` (default: print to stderr), `wait()` (default: wait for Enter on
    stdin), a beep, then `seconds` of audio read from the input in 100 ms blocks at
    `sample_rate_hz` while a level meter is drawn on stderr. The take is mixed to mono, resampled to
    16 kHz, and trimmed to its sound plus 100 ms each side (see speech_bounds; `_silence_` takes are
    kept whole). A take that is all silence, overflowed or holds NaN is rejected and retried, up to
    MAX_RETRIES times, then KwsError. Clips are 16-bit mono WAV at 16 kHz, never overwriting an
    existing file (the next free n is used); after every take OUT/manifest.csv is rewritten
    atomically with all its previous rows plus the new one (it is created if missing).

    `device`: sounddevice input device name or index (None: the default input). `stream_factory`
    replaces sounddevice (see the module docstring). `speaker` defaults to the user name.
    """
    out = Path(out)
    _check_name(label, "--label")
    if count < 1:
        raise KwsError(f"--count {count}: must be at least 1")
    if not (math.isfinite(seconds) and 0.1 <= seconds <= 600):
        raise KwsError(f"--seconds {seconds}: must be between 0.1 and 600")
    if sample_rate_hz < 1000:
        raise KwsError(f"sample rate {sample_rate_hz} Hz: too low to record speech")
    speaker = _default_speaker() if speaker is None else speaker
    _check_name(speaker, "--speaker")
    if out.exists() and not out.is_dir():
        raise KwsError(f"{out}: exists and is not a folder")
    label_dir = out / label
    if label_dir.exists() and not label_dir.is_dir():
        raise KwsError(f"{label_dir}: exists and is not a folder")
    manifest_path = out / config.MANIFEST_NAME
    rows = manifest.read(manifest_path) if manifest_path.exists() else []  # fail before recording

    if stream_factory is None:
        stream_factory = _sounddevice_factory(device)
    say = prompt or _print_stderr
    wait = wait or _wait_for_enter
    source = f"record:{device if device is not None else 'default'}"

    paths: list[Path] = []
    for take in range(1, count + 1):
        clip = _take(label=label, take=take, count=count, seconds=seconds, sample_rate_hz=sample_rate_hz,
                     stream_factory=stream_factory, say=say, wait=wait)
        taken = [p.name for p in label_dir.iterdir()] if label_dir.is_dir() else []
        taken += [PurePosixPath(r.path).name for r in rows if r.label == label]
        path = label_dir / next_clip_name(speaker, taken)
        audio.write_wav(path, clip, sample_rate_hz=config.SAMPLE_RATE_HZ)  # refuses to overwrite
        rows.append(manifest.Row(
            path=f"{label}/{path.name}", label=label, speaker=speaker,
            split=manifest.split_for_speaker(speaker), source=source,
            duration_s=clip.shape[0] / config.SAMPLE_RATE_HZ, sample_rate_hz=config.SAMPLE_RATE_HZ,
            sha256=audio.sha256_file(path), status="ok"))
        manifest.write(manifest_path, rows, overwrite=True)
        paths.append(path)
        say(f"saved {path} ({clip.shape[0] / config.SAMPLE_RATE_HZ:.2f} s)")
    return paths


def _take(*, label: str, take: int, count: int, seconds: float, sample_rate_hz: int,
          stream_factory: StreamFactory, say: Callable[[str], None], wait: Callable[[], None]) -> np.ndarray:
    """One accepted take: float32 [n] at 16 kHz, trimmed. Retries rejected attempts."""
    reason = ""
    for attempt in range(MAX_RETRIES + 1):
        say(prompt_text(label, take, count, seconds=seconds))
        wait()
        x, overflowed = _capture(stream_factory, sample_rate_hz=sample_rate_hz, seconds=seconds)
        if overflowed:
            reason = "the input overflowed (audio was lost)"
        elif not np.all(np.isfinite(x)):
            reason = "the input held NaN or infinite samples"
        else:
            y = audio.resample(x, sample_rate_hz, config.SAMPLE_RATE_HZ)  # float32 [m] at 16 kHz
            clipped = int(np.count_nonzero(np.abs(x) >= CLIP_LEVEL))
            if clipped:
                say(f"warning: take {take}/{count} clipped ({clipped} samples at full scale); "
                    "speak softer or lower the input gain")
            if label == config.SILENCE_LABEL:
                return y
            bounds = speech_bounds(y, sample_rate_hz=config.SAMPLE_RATE_HZ)
            if bounds is not None:
                return y[bounds[0]:bounds[1]]
            reason = f"heard only silence (loudest level {levels_dbfs(x)[1]:.1f} dBFS)"
        if attempt < MAX_RETRIES:
            say(f"take {take}/{count} rejected: {reason}; once more")
    raise KwsError(f"take {take}/{count} of {label!r}: {reason} in {MAX_RETRIES + 1} attempts; "
                   "check the microphone, the input device and its level")


def _capture(stream_factory: StreamFactory, *, sample_rate_hz: int, seconds: float) -> tuple[np.ndarray, bool]:
    """Read `seconds` of audio: (float32 [round(seconds*rate)], any block overflowed)."""
    block = max(1, sample_rate_hz * BLOCK_MS // 1000)
    total = int(round(seconds * sample_rate_hz))
    chunks: list[np.ndarray] = []
    got, overflowed = 0, False
    err = sys.stderr
    err.write("\a")  # the beep
    with stream_factory(sample_rate_hz, block) as stream:
        while got < total:
            data, over = stream.read(min(block, total - got))
            mono = audio.to_mono(np.asarray(data, dtype=np.float32))  # float32 [frames]
            if mono.shape[0] == 0:
                raise KwsError("the audio input stream returned no samples")
            chunks.append(mono)
            got += mono.shape[0]
            overflowed |= bool(over)
            err.write("\r" + level_meter(mono))
            err.flush()
    err.write("\n")
    return np.concatenate(chunks)[:total], overflowed


# ---------------------------------------------------------------------------------------------
# Defaults and the sounddevice back-end


def _check_name(value: str, what: str) -> None:
    if (not value or value != value.strip() or value.startswith(".")
            or any(c in value for c in "/\\\0") or any(ord(c) < 32 for c in value)):
        raise KwsError(f"{what} {value!r}: must be a plain name (no path separators, no leading dot)")


def _default_speaker() -> str:
    import getpass

    try:
        return getpass.getuser() or "speaker"
    except (KeyError, OSError):
        return "speaker"


def _print_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _wait_for_enter() -> None:
    if sys.stdin is None or sys.stdin.readline() == "":
        raise KwsError("standard input is closed; `kws data record` waits for Enter before each take")


def _parse_device(device):
    if isinstance(device, str) and device.strip().isdigit():
        return int(device)
    return device


def _sounddevice_factory(device) -> StreamFactory:
    """sounddevice.InputStream as a StreamFactory; KwsError if it, PortAudio or an input is missing."""
    try:
        import sounddevice as sd
    except ImportError:
        raise KwsError("recording needs the Python package sounddevice, which is not installed "
                       "(pip install sounddevice)") from None
    except OSError as exc:
        raise KwsError(f"recording needs the PortAudio library, which is missing ({exc}); "
                       "on Debian: apt-get install libportaudio2") from None
    dev = _parse_device(device)
    name = "the default audio input" if dev is None else f"audio input device {device!r}"
    try:
        sd.query_devices(dev, kind="input")
    except (ValueError, sd.PortAudioError) as exc:
        what = "no audio input device found" if dev is None else f"{name} not found"
        raise KwsError(f"{what} ({exc})") from None

    @contextlib.contextmanager
    def factory(sample_rate_hz: int, block_frames: int):
        try:
            stream = sd.InputStream(samplerate=sample_rate_hz, blocksize=block_frames, device=dev,
                                    channels=1, dtype="float32")
        except (ValueError, sd.PortAudioError) as exc:
            raise KwsError(f"cannot open {name} at {sample_rate_hz} Hz ({exc})") from None
        try:
            with stream as opened:
                yield opened
        except sd.PortAudioError as exc:
            raise KwsError(f"{name} failed while recording ({exc})") from None

    return factory
