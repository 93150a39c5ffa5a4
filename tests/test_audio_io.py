"""Audio I/O, manifest and atomic output: the foundation every stage uses."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from kws.data import audio, manifest
from kws.errors import KwsError
from kws.fileio import atomic_path


def test_load_refuses_everything_but_pipeline_format(tmp_path):
    sf.write(tmp_path / "ok.wav", tone(), 16000, subtype="PCM_16")
    assert audio.load(tmp_path / "ok.wav").shape == (16000,)
    sf.write(tmp_path / "rate.wav", tone(rate=8000), 8000)
    sf.write(tmp_path / "stereo.wav", np.stack([tone(), tone()], 1), 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    bad = tone()
    bad[100] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    (tmp_path / "text.wav").write_text("not audio at all")
    expect = {"rate.wav": "8000 Hz", "stereo.wav": "2 channels", "empty.wav": "no samples",
              "nan.wav": "NaN", "text.wav": "not a decodable audio file", "missing.wav": "no such file"}
    for name, cause in expect.items():
        with pytest.raises(KwsError) as e:
            audio.load(tmp_path / name)
        msg = str(e.value)
        assert str(tmp_path / name) in msg and cause in msg and "\n" not in msg


def test_resample_gives_right_rate_length_and_pitch():
    x = tone(1000.0, 1.0, rate=44100)
    y = audio.resample(x, 44100, 16000)
    assert len(y) == 16000 and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 1000.0) <= 1.0
    assert abs(np.sqrt(np.mean(y**2)) - np.sqrt(np.mean(x**2))) < 0.01


def test_pcm16_rounds_and_saturates():
    pcm = audio.to_pcm16(np.array([0.0, 1.0, -1.0, 2.0, -2.0, 0.5 / 32767, 1.5 / 32767]))
    assert pcm.tolist() == [0, 32767, -32767, 32767, -32768, 0, 2]  # 0.5 rounds to even, 1.5 to 2


def test_atomic_path_never_leaves_partial_files(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"user data")
    with pytest.raises(KwsError, match="already exists"):
        with atomic_path(target):
            pass
    assert target.read_bytes() == b"user data"


def test_manifest_round_trip_and_errors(tmp_path):
    rows = [manifest.Row("b/x.wav", "b", "s1", "train", "t", 1.0, 16000, "ab", "ok"),
            manifest.Row("a/y.wav", "a", "s2", "test", "t", 0.5, 16000, "cd", "warn:dc_offset")]
    manifest.write(tmp_path / "manifest.csv", rows)
    back = manifest.read(tmp_path / "manifest.csv")
    assert [r.path for r in back] == ["a/y.wav", "b/x.wav"] and back[1] == rows[0]
    with pytest.raises(KwsError, match="names a missing file a/y.wav"):
        manifest.check_files(tmp_path, back)
    (tmp_path / "bad.csv").write_text("path,label\nx,y\n")
    with pytest.raises(KwsError, match="not a kws manifest"):
        manifest.read(tmp_path / "bad.csv")
    good_header = ",".join(manifest.config.MANIFEST_COLUMNS)
    (tmp_path / "split.csv").write_text(good_header + "\nx,y,s,holdout,t,1,16000,h,ok\n")
    with pytest.raises(KwsError, match="split.csv:2: unknown split"):
        manifest.read(tmp_path / "split.csv")


def test_speaker_split_is_stable_balanced_and_speech_commands_compatible():
    speakers = [hashlib.sha1(str(i).encode()).hexdigest()[:8] for i in range(4000)]
    splits = [manifest.split_for_speaker(s) for s in speakers]
    share = {k: splits.count(k) / len(splits) for k in ("train", "validation", "test")}
    assert 0.77 < share["train"] < 0.83 and 0.08 < share["validation"] < 0.12 and 0.08 < share["test"] < 0.12
    assert splits == [manifest.split_for_speaker(s) for s in speakers]
    assert manifest.speech_commands_speaker("0a7c2a8d_nohash_0.wav") == "0a7c2a8d"
    assert manifest.speech_commands_speaker("backward_87070229_nohash_2.flac") == "87070229"
    assert manifest.speech_commands_speaker("1041.flac") is None


def test_speaker_split_matches_the_published_lists(shared_real):
    """The hash rule reproduces the official split: every clip in the shared test set lands in 'test'."""
    root = shared_real / "speech_commands_v2_test"
    names = [p.name for p in root.rglob("*.flac")]
    speakers = {manifest.speech_commands_speaker(n) for n in names} - {None}
    assert len(speakers) > 50
    assert {manifest.split_for_speaker(s) for s in speakers} == {"test"}


def test_atomic_outputs_get_normal_permissions(tmp_path):
    from kws.fileio import atomic_dir, write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "a").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
