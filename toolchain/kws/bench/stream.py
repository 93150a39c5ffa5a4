"""`kws bench --mode stream`: the wake-word counterpart of MLPerf Tiny's modes.

One long recording is played to the `wake` app (firmware/apps/wake): in device time under QEMU (the
board paces 20 ms blocks by its timer in virtual time), as fast as it consumes them on the host board,
or in real time over a serial port (the board's audio framing: it prints a line starting with
`kws-audio-start`, then the host sends "KWSA", the sample count as uint32 LE and the int16 LE samples).
The app's own detections (`wake <label> <score> <t_ms>`, t_ms on the stream's clock) are then scored
with `kws eval`'s rules (kws.evaluate.scoring): a positive clip is found when a detection falls between
the start of its utterance and HIT_TAIL_MS after its end; detections in negative audio are false
accepts, debounced over DEBOUNCE_MS, per hour of negative audio; exact 95 % intervals on both.

The recording is built from the same audio `kws eval` uses: every positive clip with 1 s of quiet room
before and after it, then each negatives folder played back to back, then each noise file; optional
noise mixed under all of it at --snr-db. Unlike `kws eval`, which scores every clip from a fresh state,
the device hears one continuous stream, so its smoothing and refractory period carry across clip
boundaries (as they would in the field).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.errors import KwsError

SAMPLE_RATE_HZ = 16000
BLOCK_SAMPLES = 320  # 20 ms: what the harness sends per write in real time


@dataclass(frozen=True)
class Segment:
    """A stretch of the recording: [start, start + samples) in samples of the whole stream."""

    name: str
    kind: str                                  # "positive" or "negative"
    start: int
    samples: int
    utterance_ms: tuple[float, float] | None = None   # positives: on the stream's clock


def build_recording(*, positives: list[str], negatives: list[str], noise: list[str] | None = None,
                    snr_db: float | None = None) -> tuple[np.ndarray, list[Segment]]:
    """int16 [S] mono 16 kHz recording and its labelled segments (see the module docstring)."""
    from kws.evaluate import streaming
    from kws.evaluate.run import _files, _mix
    from kws.train.augment import speech_extent, to_int16
    from kws.train.dataset import load_audio

    pos_files = _files(positives, "--positives")
    noise_files = _files(noise, "--noise") if noise else []
    noise_audio = [load_audio(f) for f in noise_files]
    rng = np.random.default_rng(0)
    parts: list[np.ndarray] = []
    segments: list[Segment] = []
    pos = 0

    def add(x: np.ndarray, name: str, kind: str, utt: tuple[float, float] | None = None) -> None:
        nonlocal pos
        parts.append(x)
        segments.append(Segment(name, kind, pos, len(x), utt))
        pos += len(x)

    for f in pos_files:
        x = _mix(load_audio(f), noise_audio, snr_db, rng)
        padded, offset = streaming.pad_for_stream(x, before_s=1.0, after_s=1.0, noise=None)
        s, e = speech_extent(x)
        ms = 1000.0 / SAMPLE_RATE_HZ
        add(padded, str(f), "positive", ((pos + offset + s) * ms, (pos + offset + e) * ms))
    for d in negatives:
        clips = [_mix(load_audio(f), noise_audio, snr_db, rng) for f in _files([d], "--negatives")]
        add(np.concatenate(clips), str(d), "negative")
    for f, x in zip(noise_files, noise_audio):
        add(x, str(f), "negative")
    if not any(s.kind == "positive" for s in segments):
        raise KwsError("--mode stream needs --positives DIR (wake-word clips)")
    if not any(s.kind == "negative" for s in segments):
        raise KwsError("--mode stream needs negative audio (--negatives DIR or --noise DIR)")
    return to_int16(np.concatenate(parts)), segments


def score(events_ms: list[float], segments: list[Segment]) -> dict:
    """FRR and false accepts per hour of the device's detections (times in ms on the stream's clock)."""
    from kws.evaluate import scoring
    from kws.evaluate.stats import binomial_ci, poisson_rate_ci

    t = np.sort(np.asarray(events_ms, dtype=np.float64))
    ms = 1000.0 / SAMPLE_RATE_HZ
    missed, false_accepts, negative_s, positives = [], 0, 0.0, 0
    by_stream: dict[str, int] = {}
    positives_ms, negatives_ms = [], []   # for the timeline plot: [start, end, hit] and [start, end]
    for seg in segments:
        lo, hi = seg.start * ms, (seg.start + seg.samples) * ms
        inside = t[(t >= lo) & (t < hi)]
        if seg.kind == "positive":
            positives += 1
            start, end = seg.utterance_ms  # type: ignore[misc]
            hit = bool(np.any((inside >= start) & (inside <= end + scoring.HIT_TAIL_MS)))
            if not hit:
                missed.append(seg.name)
            positives_ms.append([round(start), round(end), int(hit)])
        else:
            negative_s += seg.samples / SAMPLE_RATE_HZ
            negatives_ms.append([round(lo), round(hi)])
            count = scoring._debounced_count(inside.tolist())
            false_accepts += count
            if count:
                by_stream[seg.name] = count
    hours = negative_s / 3600.0
    return {
        "frr": len(missed) / positives, "frr_ci95": list(binomial_ci(len(missed), positives)),
        "positives": positives, "misses": len(missed), "missed_names": missed,
        "faph": false_accepts / hours, "faph_ci95": list(poisson_rate_ci(false_accepts, hours)),
        "false_accepts": false_accepts, "negative_hours": hours, "false_accepts_by_stream": by_stream,
        "detections": int(len(t)),
        "rules": {"hit_tail_ms": scoring.HIT_TAIL_MS, "debounce_ms": scoring.DEBOUNCE_MS},
        # the timeline, in whole ms on the stream's clock: detection times, positive utterances
        # [start, end, 1 if found else 0], negative audio [start, end]
        "events_ms": [round(float(v)) for v in t], "positives_ms": positives_ms, "negatives_ms": negatives_ms,
    }


def run_serial(port: str, pcm: np.ndarray, *, baud: int, timeout_s: float, log=print,
               progress=None) -> tuple[list, str]:
    """Play pcm to a wake app on a serial port in real time; returns (events, summary line).
    progress: called as progress(seconds sent, total seconds) after each block."""
    import serial  # pyserial

    from kws.compile.firmware import _EVENT

    try:
        link = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
    except (serial.SerialException, ValueError) as e:
        raise KwsError(f"--port {port}: cannot open it: {e}") from None
    events, summary, buf = [], "", b""

    def drain() -> None:
        nonlocal buf, summary
        buf += link.read(4096)
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").strip()
            m = _EVENT.match(line)
            if m:
                events.append((m.group(1), int(m.group(2)), int(m.group(3))))
            elif line.startswith("wake: hops"):
                summary = line

    with link:
        deadline = time.monotonic() + timeout_s
        while b"kws-audio-start" not in buf:
            if time.monotonic() > deadline:
                raise KwsError(f"--port {port}: the wake app did not ask for audio (no kws-audio-start line "
                               f"within {timeout_s:g} s; reset the board?)")
            buf += link.read(4096)
        buf = buf.split(b"kws-audio-start", 1)[1].split(b"\n", 1)[-1]
        data = np.ascontiguousarray(pcm, dtype="<i2")
        link.write(b"KWSA" + int(len(data)).to_bytes(4, "little"))
        t0 = time.monotonic()
        for i in range(0, len(data), BLOCK_SAMPLES):
            link.write(data[i:i + BLOCK_SAMPLES].tobytes())
            if progress is not None:
                progress(min(i + BLOCK_SAMPLES, len(data)) / SAMPLE_RATE_HZ, len(data) / SAMPLE_RATE_HZ)
            drain()
            ahead = t0 + (i + BLOCK_SAMPLES) / SAMPLE_RATE_HZ - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        deadline = time.monotonic() + timeout_s
        while not summary and time.monotonic() < deadline:
            drain()
    if not summary:
        log(f"no end-of-stream summary from the device within {timeout_s:g} s")
    return events, summary


def run(*, positives: list[str], negatives: list[str], noise: list[str] | None, snr_db: float | None,
        port: str | None, board: str | None, firmware: str | None, baud: int, timeout_s: float,
        log=print, progress=None) -> dict:
    """The `stream` section of the report. progress: called as progress(done_s, total_s), the seconds
    of the recording the device has been given (serial: sent; QEMU / host board: read from its file)."""
    from kws.compile import firmware as fw

    pcm, segments = build_recording(positives=positives, negatives=negatives, noise=noise, snr_db=snr_db)
    seconds = len(pcm) / SAMPLE_RATE_HZ
    log(f"recording: {seconds / 60:.1f} min, {sum(s.kind == 'positive' for s in segments)} positive clips, "
        f"{sum(s.samples for s in segments if s.kind == 'negative') / SAMPLE_RATE_HZ / 3600:.2f} h of negatives")
    out: dict = {"audio_s": seconds, "clock": None}
    if port:
        events, summary = run_serial(port, pcm, baud=baud, timeout_s=timeout_s, log=log, progress=progress)
        out["clock"] = "real time (host clock) over the serial port"
        out["complete"] = bool(summary)
        run_info = fw.parse_wake_uart(summary) if summary else None
    else:
        if board not in ("qemu_mps2_an386", "host"):
            raise KwsError("--mode stream: give --port URL, or --board qemu_mps2_an386|host --firmware <wake app>")
        if not firmware or not Path(firmware).is_file():
            raise KwsError(f"--firmware {firmware}: no such file (the wake app built for {board})")
        limit = max(600.0, 2 * seconds)
        if board == "qemu_mps2_an386":
            run_info = fw.run_wake_qemu(Path(firmware), pcm, timeout_s=limit, progress=progress)
            out["clock"] = "device time under QEMU (-icount: a 20 ms block per 20 ms of virtual time)"
        else:
            run_info = fw.run_wake_host(Path(firmware), pcm, timeout_s=limit, progress=progress)
            out["clock"] = "host board: blocks as fast as the app consumes them"
        events = run_info.events
        out["complete"] = True
    out.update(score([t for _, _, t in events], segments))
    if run_info is not None:
        out["device"] = {"hops": run_info.hops, "invocations": run_info.invocations,
                         "overruns": run_info.overruns, "busy_share": run_info.busy_ticks / max(run_info.total_ticks, 1)}
        if run_info.overruns:
            log(f"the device dropped {run_info.overruns} audio blocks (overruns): its detections are not "
                "those of the full stream")
    return out
