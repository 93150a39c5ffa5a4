"""`kws data import`: conversion to 16 kHz mono 16-bit WAV, speakers, splits, layouts, bad input."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike, tone
from kws.cli import main
from kws.data import manifest
from kws.data.importer import import_audio
from kws.errors import KwsError

HAS_OGG = "OGG" in sf.available_formats()


def _write(path: Path, x: np.ndarray, rate: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, rate, **kw)
    return path


def _spectrum(x: np.ndarray, rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies Hz, sine amplitudes) of float [n] with a Hann window."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)))) * 4.0 / len(x)
    return np.fft.rfftfreq(len(x), 1.0 / rate), mag


def _amplitude_at(x: np.ndarray, freq_hz: float, rate: int = 16000) -> float:
    freqs, mag = _spectrum(x, rate)
    near = np.abs(freqs - freq_hz) <= 3.0
    return float(mag[near].max())


def _dominant_hz(x: np.ndarray, rate: int = 16000) -> float:
    freqs, mag = _spectrum(x, rate)
    return float(freqs[np.argmax(mag)])


def _no_leftovers(parent: Path, expected: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == expected


# ---------------------------------------------------------------------------------------------
# Conversion


def test_import_converts_rate_channels_and_format(tmp_path):
    src = tmp_path / "src"
    stereo = np.stack([tone(440, 1.0, rate=8000), tone(1000, 1.0, rate=8000)], axis=1)  # L 440, R 1000
    _write(src / "yes" / "alice" / "a.wav", stereo, 8000, subtype="PCM_16")
    _write(src / "yes" / "bob" / "b.flac", tone(660, 0.7, rate=22050), 22050, subtype="PCM_16")
    sources = {"yes/alice/a.wav": (8000, 8000), "yes/bob/b.wav": (22050, round(0.7 * 22050))}
    if HAS_OGG:
        _write(src / "no" / "carol" / "c.ogg", tone(3000, 0.5, rate=48000), 48000, format="OGG", subtype="VORBIS")
        sources["no/carol/c.wav"] = (48000, 24000)
    else:
        _write(src / "no" / "carol" / "c.aiff", tone(3000, 0.5, rate=48000), 48000, subtype="PCM_16")
        sources["no/carol/c.wav"] = (48000, 24000)
    (src / "no" / "README.txt").write_text("not audio")
    (src / "notes.md").write_text("not audio either")
    out = tmp_path / "out"

    rows = import_audio(src, out=out)

    assert sorted(r.path for r in rows) == sorted(sources)
    assert manifest.read(out / "manifest.csv") == sorted(rows, key=lambda r: r.path)
    assert not (out / "no" / "README.txt").exists()
    _no_leftovers(tmp_path, {"src", "out"})
    by_path = {r.path: r for r in rows}
    dominant = {}
    for rel, (rate, n_in) in sources.items():
        info = sf.info(str(out / rel))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert abs(info.frames - round(n_in * 16000 / rate)) <= 1
        row = by_path[rel]
        assert row.duration_s == pytest.approx(info.frames / 16000, abs=1e-6)
        assert row.sample_rate_hz == 16000 and row.status == "ok" and row.source == "import:src"
        assert row.label == rel.split("/")[0]
        assert row.speaker == rel.split("/")[1]  # the sub-folder between label and file
        assert row.split == manifest.split_for_speaker(row.speaker)
        assert row.sha256 == hashlib.sha256((out / rel).read_bytes()).hexdigest()
        dominant[rel] = _dominant_hz(sf.read(str(out / rel))[0])

    # content preserved: each clip keeps its own frequency (and the clips differ)
    assert dominant["yes/bob/b.wav"] == pytest.approx(660, abs=3)
    assert dominant["no/carol/c.wav"] == pytest.approx(3000, abs=3)
    # the stereo clip is the mean of its channels: both tones, each at half its amplitude (0.5 -> 0.25)
    mono = sf.read(str(out / "yes/alice/a.wav"))[0]
    assert _amplitude_at(mono, 440) == pytest.approx(0.25, abs=0.02)
    assert _amplitude_at(mono, 1000) == pytest.approx(0.25, abs=0.02)
    assert _amplitude_at(mono, 700) < 0.01
    assert len(set(r.sha256 for r in rows)) == len(rows)


def test_resampling_removes_content_above_8khz_instead_of_aliasing(tmp_path):
    src = tmp_path / "src"
    x = tone(1000, 0.5, rate=48000, amp=0.1) + tone(12000, 0.5, rate=48000, amp=0.5)
    _write(src / "hum" / "a.wav", x, 48000, subtype="FLOAT")
    import_audio(src, out=tmp_path / "out")
    y = sf.read(str(tmp_path / "out" / "hum" / "a.wav"))[0]
    assert _amplitude_at(y, 1000) == pytest.approx(0.1, abs=0.01)
    assert _amplitude_at(y, 4000) < 0.002  # 12 kHz would alias to 16 - 12 = 4 kHz


def test_overrange_float_input_saturates_instead_of_wrapping(tmp_path):
    src = tmp_path / "src"
    x = tone(200, 0.5, rate=8000, amp=1.3)  # float WAV: values beyond full scale
    _write(src / "loud" / "a.wav", x, 8000, subtype="FLOAT")
    import_audio(src, out=tmp_path / "out")
    y, rate = sf.read(str(tmp_path / "out" / "loud" / "a.wav"), dtype="int16")
    assert rate == 16000
    ideal = tone(200, 0.5, rate=16000, amp=1.3)
    inner = slice(320, len(ideal) - 320)  # away from the edges
    sure = np.abs(ideal[inner]) > 0.05
    assert np.array_equal(np.sign(y[inner][sure]), np.sign(ideal[inner][sure]))  # no wrap-around
    assert y.max() == 32767 and y.min() == -32768
    assert np.count_nonzero(y == 32767) > 100  # a flat top, not a single sample


def test_existing_empty_out_folder_is_used_and_hidden_or_quarantined_files_skipped(tmp_path):
    src = tmp_path / "src"
    _write(src / "yes" / "a.wav", tone(440, 0.3), 16000)
    _write(src / "_quarantine" / "silent" / "yes" / "q.wav", np.zeros(100, np.float32), 16000)  # not a label
    _write(src / "yes" / ".hidden" / "h.wav", tone(440, 0.3), 16000)
    (src / "yes" / "._a.wav").write_bytes(b"macOS resource fork, not audio")
    (tmp_path / "out").mkdir()
    rows = import_audio(src, out=tmp_path / "out")
    assert [r.path for r in rows] == ["yes/a.wav"]
    # 16 kHz input is copied unchanged (up to 16-bit rounding)
    y = sf.read(str(tmp_path / "out" / "yes" / "a.wav"), dtype="float32")[0]
    assert np.max(np.abs(y - tone(440, 0.3))) < 1.0 / 32767


# ---------------------------------------------------------------------------------------------
# Speakers and splits


def test_speaker_defaults_to_file_stem_without_sub_folders(tmp_path):
    src = tmp_path / "src"
    for i in range(6):
        _write(src / "yes" / f"take{i}.wav", speechlike(0.3, seed=i), 16000)
    rows = import_audio(src, out=tmp_path / "out")
    assert sorted(r.speaker for r in rows) == [f"take{i}" for i in range(6)]
    assert all(r.split == manifest.split_for_speaker(r.speaker) for r in rows)


def test_speaker_regex_and_splits_consistent_per_speaker(tmp_path):
    src = tmp_path / "src"
    names = [f"{d}_{who}_{n}.wav" for d in (3, 4) for who in ("george", "lucas", "nicolas", "yweweler", "jackson")
             for n in range(2)]
    for i, name in enumerate(names):
        label = {"3": "three", "4": "four"}[name[0]]
        # a sub-folder too: the regex wins over it
        _write(src / label / "session1" / name, speechlike(0.25, seed=i), 16000)
    rows = import_audio(src, out=tmp_path / "out", speaker_regex=r"^\d+_([a-z]+)_")
    assert len(rows) == len(names)
    splits = {}
    for r in rows:
        assert r.speaker == r.path.split("/")[-1].split("_")[1]
        splits.setdefault(r.speaker, set()).add(r.split)
    assert set(splits) == {"george", "lucas", "nicolas", "yweweler", "jackson"}
    assert all(len(s) == 1 for s in splits.values())  # no speaker crosses splits
    assert all(s == {manifest.split_for_speaker(k)} for k, s in splits.items())


def test_speaker_regex_errors(tmp_path):
    src = tmp_path / "src"
    _write(src / "yes" / "3_george_1.wav", tone(440, 0.2), 16000)
    _write(src / "yes" / "oddname.wav", tone(440, 0.2), 16000)
    with pytest.raises(KwsError, match="not a valid regular expression"):
        import_audio(src, out=tmp_path / "o1", speaker_regex="([a-z")
    with pytest.raises(KwsError, match="needs a group"):
        import_audio(src, out=tmp_path / "o2", speaker_regex="george")
    with pytest.raises(KwsError) as exc:
        import_audio(src, out=tmp_path / "o3", speaker_regex=r"^\d+_([a-z]+)_")
    assert "oddname.wav" in str(exc.value) and r"^\d+_([a-z]+)_" in str(exc.value)
    _no_leftovers(tmp_path, {"src"})


def _speech_commands_tree(src: Path) -> None:
    for i, rel in enumerate(["yes/0A1B2C3D_nohash_0.wav", "yes/11111111_nohash_0.wav", "no/0a1b2c3d_nohash_1.wav",
                             "no/22222222_nohash_0.wav"]):
        _write(src / rel, speechlike(0.3, seed=i), 16000)
    _write(src / "_background_noise_" / "white_noise.wav",
           np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000)
    _write(src / "_silence_" / "1041.wav", np.zeros(16000, np.float32), 16000)  # MLPerf Tiny's silence clips
    (src / "README.md").write_text("Speech Commands")


def test_speech_commands_layout_uses_split_lists(tmp_path):
    src = tmp_path / "sc"
    _speech_commands_tree(src)
    (src / "validation_list.txt").write_text("yes/11111111_nohash_0.wav\nmissing/x.wav\n")
    (src / "testing_list.txt").write_text("no/0a1b2c3d_nohash_1.wav\n\n")
    rows = {r.path: r for r in import_audio(src, out=tmp_path / "out", layout="speech_commands")}
    assert {p: (r.label, r.speaker, r.split) for p, r in rows.items()} == {
        "yes/0A1B2C3D_nohash_0.wav": ("yes", "0a1b2c3d", "train"),
        "yes/11111111_nohash_0.wav": ("yes", "11111111", "validation"),
        "no/0a1b2c3d_nohash_1.wav": ("no", "0a1b2c3d", "test"),
        "no/22222222_nohash_0.wav": ("no", "22222222", "train"),
        "_background_noise_/white_noise.wav": ("_background_noise_", "noise", "train"),
        "_silence_/1041.wav": ("_silence_", "noise", "train"),
    }
    assert all(r.source == "import:sc" for r in rows.values())


def test_speech_commands_layout_without_lists_uses_the_hash_rule(tmp_path):
    src = tmp_path / "sc"
    _speech_commands_tree(src)
    rows = import_audio(src, out=tmp_path / "out", layout="speech_commands")
    assert len(rows) == 6
    for r in rows:
        expected = "noise" if r.label.startswith("_") else r.path.split("/")[1][:8].lower()
        assert r.speaker == expected
        assert r.split == manifest.split_for_speaker(expected)


def test_speech_commands_layout_errors(tmp_path):
    src = tmp_path / "sc"
    _speech_commands_tree(src)
    (src / "validation_list.txt").write_text("yes/11111111_nohash_0.wav\n")
    with pytest.raises(KwsError, match="has validation_list.txt but no testing_list.txt"):
        import_audio(src, out=tmp_path / "out", layout="speech_commands")
    (src / "validation_list.txt").unlink()
    _write(src / "yes" / "recorded_by_me.wav", tone(440, 0.2), 16000)
    with pytest.raises(KwsError, match=r"recorded_by_me\.wav: not a Speech Commands file name"):
        import_audio(src, out=tmp_path / "out", layout="speech_commands")
    _no_leftovers(tmp_path, {"sc"})


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_source_folders(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KwsError, match=re.escape(f"{tmp_path / 'nope'}: no such folder")):
        import_audio(tmp_path / "nope", out=out)
    (tmp_path / "file.wav").write_bytes(b"x")
    with pytest.raises(KwsError, match="not a folder"):
        import_audio(tmp_path / "file.wav", out=out)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("hello")
    with pytest.raises(KwsError, match="holds no label folders"):
        import_audio(empty, out=out)
    (empty / "yes").mkdir()
    (empty / "yes" / "notes.txt").write_text("no audio here")
    with pytest.raises(KwsError) as exc:
        import_audio(empty, out=out)
    assert str(exc.value) == f"{empty / 'yes'}: label folder holds no audio files"
    assert not out.exists()


def test_audio_outside_label_folder_and_name_collision(tmp_path):
    src = tmp_path / "src"
    _write(src / "yes" / "a.wav", tone(440, 0.2), 16000)
    _write(src / "stray.wav", tone(440, 0.2), 16000)
    with pytest.raises(KwsError, match="stray.wav: audio file outside a label folder"):
        import_audio(src, out=tmp_path / "out")
    (src / "stray.wav").unlink()
    _write(src / "yes" / "a.flac", tone(440, 0.2), 16000)
    with pytest.raises(KwsError, match=r"would both be written to yes/a\.wav"):
        import_audio(src, out=tmp_path / "out")
    with pytest.raises(KwsError, match="is inside, the source folder"):
        import_audio(src, out=src / "converted")
    _no_leftovers(tmp_path, {"src"})


def test_failed_import_leaves_no_output(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        _write(src / "a_first" / f"{i}.wav", tone(440, 0.2), 16000)  # converted before the failure
    (src / "z_last").mkdir()
    (src / "z_last" / "fake.wav").write_text("this is text, not RIFF audio")
    with pytest.raises(KwsError) as exc:
        import_audio(src, out=tmp_path / "out")
    assert "fake.wav: not a decodable audio file" in str(exc.value)
    _no_leftovers(tmp_path, {"src"})  # no OUT and no temporary folder either


def test_nan_samples_are_refused(tmp_path):
    src = tmp_path / "src"
    x = tone(440, 0.2)
    x[100] = np.nan
    _write(src / "yes" / "nan.wav", x, 16000, subtype="FLOAT")
    y = tone(440, 0.2, rate=8000)
    y[5] = np.inf
    _write(src / "zz" / "inf.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(KwsError, match=r"nan\.wav: contains NaN or infinite samples"):
        import_audio(src, out=tmp_path / "out")
    (src / "yes" / "nan.wav").unlink()
    _write(src / "yes" / "ok.wav", tone(440, 0.2), 16000)
    with pytest.raises(KwsError, match=r"inf\.wav: contains NaN or infinite samples"):
        import_audio(src, out=tmp_path / "out")
    _no_leftovers(tmp_path, {"src"})


def test_non_empty_out_is_refused_and_left_alone(tmp_path):
    src = tmp_path / "src"
    _write(src / "yes" / "a.wav", tone(440, 0.2), 16000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("user data")
    with pytest.raises(KwsError, match="not empty"):
        import_audio(src, out=out)
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert (out / "precious.txt").read_text() == "user data"
    _no_leftovers(tmp_path, {"src", "out"})


# ---------------------------------------------------------------------------------------------
# Real data and the CLI


def test_import_real_fsdd_clips(shared_real, tmp_path):
    fsdd = shared_real / "fsdd"
    if not fsdd.is_dir():
        pytest.skip(f"{fsdd} is absent")
    src = tmp_path / "fsdd"
    picked = []
    for word in ("zero", "seven"):
        by_speaker = {}
        for f in sorted((fsdd / word).glob("*.flac")):
            by_speaker.setdefault(f.name.split("_")[1], f)
        for f in list(by_speaker.values())[:5]:
            (src / word).mkdir(parents=True, exist_ok=True)
            picked.append(Path(shutil.copy(f, src / word / f.name)))
    assert len(picked) >= 4

    rows = import_audio(src, out=tmp_path / "out", speaker_regex=r"^\d+_([a-z]+)_")

    assert len(rows) == len(picked)
    by_path = {r.path: r for r in rows}
    durations = []
    for f in picked:
        r = by_path[f"{f.parent.name}/{f.stem}.wav"]
        info_in, info_out = sf.info(str(f)), sf.info(str(tmp_path / "out" / r.path))
        assert info_in.samplerate == 8000
        assert (info_out.samplerate, info_out.channels, r.sample_rate_hz) == (16000, 1, 16000)
        assert r.duration_s == pytest.approx(info_in.frames / info_in.samplerate, abs=1.0 / 16000)
        assert r.speaker == f.name.split("_")[1]
        assert r.split == manifest.split_for_speaker(r.speaker)
        durations.append(r.duration_s)
    assert len(set(durations)) > 1


def test_cli_import(tmp_path, capsys):
    src = tmp_path / "src"
    _write(src / "yes" / "a.wav", tone(440, 0.2, rate=8000), 8000)
    _write(src / "no" / "b.wav", tone(880, 0.2, rate=8000), 8000)
    rc = main(["data", "import", str(src), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "imported 2 clips" in captured.out
    assert len(manifest.read(tmp_path / "out" / "manifest.csv")) == 2

    rc = main(["data", "import", str(src), "--out", str(tmp_path / "out")])  # OUT now not empty
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("kws: error: ") and err.count("\n") == 1 and "not empty" in err

    rc = main(["data", "import", str(tmp_path / "missing"), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("kws: error: ") and err.count("\n") == 1 and "no such folder" in err
