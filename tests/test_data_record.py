"""`kws data record` with fake input streams: trimming, level meter, retries, naming, manifest."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike, tone
from kws import config
from kws.cli import main
from kws.data import audio, manifest, record as rec
from kws.errors import KwsError

RATE = 16000


class FakeMic:
    """A StreamFactory playing a list of takes (float32 [n] each), one per opened stream.

    Past the end of a take it returns digital silence. Records every (sample_rate_hz, block) it was
    opened with and every read size.
    """

    def __init__(self, takes: list[np.ndarray], *, overflow_takes: tuple[int, ...] = ()):
        self.takes = list(takes)
        self.overflow_takes = overflow_takes
        self.opened: list[tuple[int, int]] = []
        self.reads: list[int] = []

    def __call__(self, sample_rate_hz: int, block_frames: int):
        index = len(self.opened)
        self.opened.append((sample_rate_hz, block_frames))
        signal = self.takes[min(index, len(self.takes) - 1)]
        overflow = index in self.overflow_takes
        mic = self

        class Stream:
            pos = 0

            def read(self, frames):
                mic.reads.append(frames)
                chunk = np.zeros((frames, 1), dtype=np.float32)
                part = signal[self.pos:self.pos + frames]
                chunk[:len(part), 0] = part
                self.pos += frames
                return chunk, overflow

        @contextlib.contextmanager
        def cm():
            yield Stream()

        return cm()


def _noise(seconds: float, *, rate: int = RATE, dbfs: float = -80.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 10 ** (dbfs / 20), int(round(seconds * rate)))).astype(np.float32)


def _take(lead_s: float, burst: np.ndarray, tail_s: float, *, rate: int = RATE, seed: int = 1) -> np.ndarray:
    return np.concatenate([_noise(lead_s, rate=rate, seed=seed), burst, _noise(tail_s, rate=rate, seed=seed + 1)])


def _record(tmp_path: Path, mic: FakeMic, **kw):
    messages: list[str] = []
    kw.setdefault("label", "hey_nova")
    kw.setdefault("count", 1)
    kw.setdefault("speaker", "alice")
    paths = rec.record(out=tmp_path / "data", stream_factory=mic, prompt=messages.append, wait=lambda: None, **kw)
    return paths, messages


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_level_meter_grows_with_level_and_flags_clipping():
    quiet, mid, loud = (tone(440, 0.1, amp=a) for a in (0.003, 0.05, 0.7))
    texts = [rec.level_meter(x) for x in (np.zeros(1600, np.float32), quiet, mid, loud)]
    bars = [t[1:t.index("]")].count("#") for t in texts]
    rms = [float(re.search(r"(-?\d+\.\d) dBFS rms", t).group(1)) for t in texts]
    peak = [float(re.search(r"(-?\d+\.\d) dBFS peak", t).group(1)) for t in texts]
    assert bars == sorted(bars) and len(set(bars)) == 4 and bars[0] == 0
    assert rms == sorted(rms) and len(set(rms)) == 4
    # a sine's RMS is its amplitude / sqrt(2): -3 dB below its peak
    assert rms[3] == pytest.approx(20 * np.log10(0.7 / np.sqrt(2)), abs=0.1)
    assert peak[3] == pytest.approx(20 * np.log10(0.7), abs=0.1)
    assert not any("CLIPPING" in t for t in texts)
    clipped = rec.level_meter(np.clip(tone(440, 0.1, amp=1.5), -1, 1))
    assert "CLIPPING" in clipped
    assert len({len(t) for t in texts + [clipped]}) == 1  # constant width for \r redraws


def test_speech_bounds_trim_to_the_burst_plus_margin():
    burst = speechlike(0.8, seed=3)
    x = _take(0.5, burst, 0.7)
    start, end = rec.speech_bounds(x, sample_rate_hz=RATE)
    margin, frame = int(0.1 * RATE), int(0.01 * RATE)
    b0, b1 = int(0.5 * RATE), int(1.3 * RATE)
    assert b0 - margin - frame <= start < b0 + int(0.15 * RATE)
    assert b1 - int(0.15 * RATE) < end <= b1 + margin + frame
    kept = x[start:end]
    assert np.sum(kept.astype(np.float64) ** 2) >= 0.995 * np.sum(burst.astype(np.float64) ** 2)
    # a quieter burst sits elsewhere: the bounds follow it
    start2, end2 = rec.speech_bounds(_take(1.0, 0.1 * burst, 0.2), sample_rate_hz=RATE)
    assert start2 > start + int(0.4 * RATE) and end2 > end + int(0.4 * RATE)


def test_speech_bounds_silence_is_none():
    assert rec.speech_bounds(np.zeros(RATE, np.float32), sample_rate_hz=RATE) is None
    assert rec.speech_bounds(_noise(1.0, dbfs=-70), sample_rate_hz=RATE) is None
    assert rec.speech_bounds(np.zeros(0, np.float32), sample_rate_hz=RATE) is None
    assert rec.speech_bounds(_noise(1.0, dbfs=-30), sample_rate_hz=RATE) is not None


def test_next_clip_name():
    assert rec.next_clip_name("alice", []) == "alice_0.wav"
    assert rec.next_clip_name("alice", ["alice_0.wav", "alice_7.wav", "bob_9.wav", "alice_x.wav"]) == "alice_8.wav"
    assert rec.next_clip_name("bob", ["alice_0.wav", "bob_1_3.wav"]) == "bob_0.wav"
    assert rec.next_clip_name("a.b", ["axb_4.wav"]) == "a.b_0.wav"  # the speaker is not a regex


def test_prompt_text():
    assert rec.prompt_text("hey_nova", 3, 10, seconds=2.0).startswith("Take 3/10: say 'hey nova' after the beep")
    assert "stay quiet" in rec.prompt_text(config.SILENCE_LABEL, 1, 2, seconds=2.0)
    assert "except the wake word" in rec.prompt_text(config.UNKNOWN_LABEL, 1, 2, seconds=2.0)


# ---------------------------------------------------------------------------------------------
# Recording with a fake microphone


def test_record_trims_and_writes_16k_mono_clips(tmp_path, capsys):
    bursts = [speechlike(0.6, seed=s) for s in (1, 2)]
    mic = FakeMic([_take(0.6, bursts[0], 0.8), _take(0.3, bursts[1], 1.1, seed=5)])
    paths, messages = _record(tmp_path, mic, count=2, seconds=2.0)

    assert [p.name for p in paths] == ["alice_0.wav", "alice_1.wav"]
    assert mic.opened == [(RATE, 1600), (RATE, 1600)]  # one stream per take, 100 ms blocks
    assert sum(mic.reads) == 2 * 2 * RATE
    for path, burst in zip(paths, bursts):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        y = sf.read(str(path), dtype="float32")[0]
        assert 0.4 * RATE < len(y) <= len(burst) + 2 * int(0.11 * RATE)  # silence gone, margins kept
        # it contains the burst: the burst's samples appear in the clip (up to 16-bit rounding)
        corr = np.correlate(y, burst, mode="valid") if len(y) >= len(burst) else np.correlate(burst, y, mode="valid")
        shift = int(np.argmax(corr))
        if len(y) >= len(burst):
            assert np.max(np.abs(y[shift:shift + len(burst)] - burst)) < 2e-4
        else:
            assert np.max(np.abs(burst[shift:shift + len(y)] - y)) < 2e-4
        # the ends are quiet margins, the middle is loud
        assert np.max(np.abs(y[:160])) < 0.02 and np.max(np.abs(y[-160:])) < 0.02
        assert np.max(np.abs(y)) > 0.25
    a, b = (sf.read(str(p))[0] for p in paths)
    assert len(a) != len(b) or not np.array_equal(a, b)

    rows = manifest.read(tmp_path / "data" / "manifest.csv")
    assert [r.path for r in rows] == ["hey_nova/alice_0.wav", "hey_nova/alice_1.wav"]
    for r, p in zip(rows, paths):
        assert (r.label, r.speaker, r.sample_rate_hz, r.status) == ("hey_nova", "alice", 16000, "ok")
        assert r.split == manifest.split_for_speaker("alice")
        assert r.sha256 == audio.sha256_file(p)
        assert r.duration_s == pytest.approx(sf.info(str(p)).frames / RATE, abs=1e-6)
    assert messages[0].startswith("Take 1/2: say 'hey nova'") and messages[-1].startswith("saved ")
    err = capsys.readouterr().err
    assert "dBFS rms" in err  # the live level meter


def test_record_resamples_device_rate_to_16k(tmp_path):
    burst = speechlike(0.5, rate=48000, seed=4)
    mic = FakeMic([_take(0.5, burst, 0.5, rate=48000)])
    (path,), _ = _record(tmp_path, mic, sample_rate_hz=48000, seconds=1.5)
    assert mic.opened == [(48000, 4800)]
    info = sf.info(str(path))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert 0.3 * RATE < info.frames < 0.75 * RATE


def test_silent_takes_are_retried_then_accepted(tmp_path):
    silent = _noise(1.0, dbfs=-75)
    mic = FakeMic([silent, silent, _take(0.3, speechlike(0.4, seed=9), 0.3)])
    (path,), messages = _record(tmp_path, mic, seconds=1.0)
    assert len(mic.opened) == 3
    rejected = [m for m in messages if "rejected" in m]
    assert len(rejected) == 2 and all("silence" in m for m in rejected)
    assert path.name == "alice_0.wav" and path.is_file()


def test_all_silent_takes_end_in_an_error(tmp_path):
    mic = FakeMic([np.zeros(RATE, np.float32)])
    with pytest.raises(KwsError, match=r"take 1/3 of 'hey_nova': heard only silence .* in 4 attempts"):
        _record(tmp_path, mic, count=3, seconds=1.0)
    assert len(mic.opened) == rec.MAX_RETRIES + 1 == 4
    assert not (tmp_path / "data").exists()  # nothing written


def test_overflowed_take_is_retried(tmp_path):
    take = _take(0.3, speechlike(0.4, seed=2), 0.3)
    mic = FakeMic([take, take], overflow_takes=(0,))
    (path,), messages = _record(tmp_path, mic, seconds=1.0)
    assert len(mic.opened) == 2
    assert any("overflowed" in m for m in messages)
    assert path.is_file()


def test_clipping_warns_but_keeps_the_take(tmp_path):
    loud = np.clip(speechlike(0.5, seed=6, amp=1.0) * 1.5, -1, 1)
    mic = FakeMic([_take(0.2, loud, 0.2)])
    (path,), messages = _record(tmp_path, mic, seconds=1.0)
    assert any(m.startswith("warning: take 1/1 clipped") for m in messages)
    assert path.is_file()


def test_silence_label_keeps_the_whole_take(tmp_path):
    mic = FakeMic([_noise(1.0, dbfs=-65)])
    (path,), messages = _record(tmp_path, mic, label=config.SILENCE_LABEL, seconds=1.0)
    assert sf.info(str(path)).frames == RATE
    assert "stay quiet" in messages[0]


def test_recording_more_preserves_existing_clips_and_rows(tmp_path):
    data = tmp_path / "data"
    old_clip = audio.write_wav(data / "hey_nova" / "alice_0.wav", tone(300, 0.5))
    other = audio.write_wav(data / "_unknown_" / "bob_3.wav", tone(500, 0.5))
    old_rows = [
        manifest.Row("hey_nova/alice_0.wav", "hey_nova", "alice", "train", "synth:x", 0.5, 16000,
                     audio.sha256_file(old_clip), "ok"),
        manifest.Row("_unknown_/bob_3.wav", "_unknown_", "bob", "test", "import:y", 0.5, 16000,
                     audio.sha256_file(other), "warn:dc_offset"),
        # a quarantined clip no longer in the label folder still reserves its name
        manifest.Row("_quarantine/silent/hey_nova/alice_4.wav", "hey_nova", "alice", "train", "synth:x", 0.5,
                     16000, "0" * 64, "quarantined:silent"),
    ]
    manifest.write(data / "manifest.csv", old_rows)
    before = {p: p.read_bytes() for p in (old_clip, other)}

    mic = FakeMic([_take(0.2, speechlike(0.4, seed=s), 0.2, seed=s) for s in (1, 2)])
    paths, _ = _record(tmp_path, mic, count=2, seconds=0.8)

    assert [p.name for p in paths] == ["alice_5.wav", "alice_6.wav"]
    assert all(p.read_bytes() == b for p, b in before.items())
    rows = manifest.read(data / "manifest.csv")
    assert [r for r in rows if r in old_rows] == sorted(old_rows, key=lambda r: r.path)
    assert len(rows) == 5
    assert {r.path for r in rows} - {r.path for r in old_rows} == {"hey_nova/alice_5.wav", "hey_nova/alice_6.wav"}
    assert sorted(p.name for p in (data / "hey_nova").iterdir()) == ["alice_0.wav", "alice_5.wav", "alice_6.wav"]


def test_bad_arguments_fail_before_recording(tmp_path):
    mic = FakeMic([np.zeros(10, np.float32)])
    with pytest.raises(KwsError, match="--label '../x'"):
        _record(tmp_path, mic, label="../x")
    with pytest.raises(KwsError, match="--speaker 'a/b'"):
        _record(tmp_path, mic, speaker="a/b")
    with pytest.raises(KwsError, match="--count 0"):
        _record(tmp_path, mic, count=0)
    with pytest.raises(KwsError, match="--seconds"):
        _record(tmp_path, mic, seconds=0.0)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.csv").write_text("not,a,manifest\n")
    with pytest.raises(KwsError, match="not a kws manifest"):
        _record(tmp_path, mic)
    assert mic.opened == []


# ---------------------------------------------------------------------------------------------
# The sounddevice back-end and the CLI


def _fake_sounddevice(*, devices: bool, takes: list[np.ndarray] | None = None) -> types.ModuleType:
    """A stand-in `sounddevice` module: query_devices/InputStream/PortAudioError, no hardware."""
    mod = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    def query_devices(device=None, kind=None):
        if not devices:
            raise PortAudioError("Error querying device -1")
        return {"name": "fake", "max_input_channels": 1}

    mic = FakeMic(takes or [np.zeros(10, np.float32)])

    class InputStream:
        def __init__(self, *, samplerate, blocksize, device, channels, dtype):
            assert (channels, dtype) == (1, "float32")
            self._cm = mic(samplerate, blocksize)

        def __enter__(self):  # like sounddevice: starts the stream, returns itself
            self._inner = self._cm.__enter__()
            return self

        def __exit__(self, *exc):
            return self._cm.__exit__(*exc)

        def read(self, frames):
            return self._inner.read(frames)

    mod.PortAudioError, mod.query_devices, mod.InputStream, mod.mic = PortAudioError, query_devices, InputStream, mic
    return mod


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("kws: error: ") and err.count("\n") == 1, err
    return err


def test_cli_without_sounddevice_gives_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # `import sounddevice` raises ImportError
    rc = main(["data", "record", "--label", "yes", "--count", "2", "--out", str(tmp_path / "d")])
    assert rc == 2
    assert "sounddevice" in _one_error_line(capsys)
    assert not (tmp_path / "d").exists()


def test_cli_without_portaudio_gives_one_line(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import)
    rc = main(["data", "record", "--label", "yes", "--count", "1", "--out", str(tmp_path / "d")])
    assert rc == 2
    assert "PortAudio" in _one_error_line(capsys)


def test_cli_without_input_device_gives_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", _fake_sounddevice(devices=False))
    rc = main(["data", "record", "--label", "yes", "--count", "1", "--out", str(tmp_path / "d")])
    assert rc == 2
    assert "no audio input device" in _one_error_line(capsys)


def test_cli_records_through_sounddevice(tmp_path, monkeypatch, capsys):
    takes = [_take(0.3, speechlike(0.5, seed=s), 0.4, seed=s) for s in (1, 2)]
    fake = _fake_sounddevice(devices=True, takes=takes)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n\n"))  # Enter before each take
    rc = main(["data", "record", "--label", "yes", "--count", "2", "--seconds", "1.2", "--speaker", "carol",
               "--out", str(tmp_path / "d")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "recorded 2 clips" in captured.out
    assert "Take 2/2: say 'yes'" in captured.err and "dBFS rms" in captured.err
    assert sorted(p.name for p in (tmp_path / "d" / "yes").iterdir()) == ["carol_0.wav", "carol_1.wav"]
    assert [r.source for r in manifest.read(tmp_path / "d" / "manifest.csv")] == ["record:default"] * 2

    # stdin closed before the next take: a one-line error, the clips already saved stay
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    rc = main(["data", "record", "--label", "yes", "--count", "1", "--speaker", "carol", "--out", str(tmp_path / "d")])
    assert rc == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("Take 1/1:")  # the prompt came first, then one error line
    assert lines[-1].startswith("kws: error: ") and "standard input is closed" in lines[-1]
    assert sum("kws: error" in line for line in lines) == 1
    assert len(manifest.read(tmp_path / "d" / "manifest.csv")) == 2
