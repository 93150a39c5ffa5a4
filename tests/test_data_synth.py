"""`kws data synth`: determinism, real diversity, format, negatives, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kws import config
from kws.cli import main
from kws.data import manifest, noise, synth, words

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (`make setup` installs it)")


@pytest.fixture(scope="module")
def nova(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "nova"
    synth.synth(word="hey nova", count=40, negatives=45, out=out, seed=11, progress=False)
    return out


def _read_all(root: Path) -> dict[str, np.ndarray]:
    return {row.path: sf.read(root / row.path, dtype="int16")[0] for row in manifest.read(root / "manifest.csv")}


def test_same_seed_same_bytes_whatever_the_parallelism(nova, tmp_path):
    again = tmp_path / "again"
    synth.synth(word="hey nova", count=40, negatives=45, out=again, seed=11, jobs=1, progress=False)
    files = sorted(p.relative_to(nova) for p in nova.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:
        assert (nova / f).read_bytes() == (again / f).read_bytes(), f


def test_another_seed_gives_other_audio(nova, tmp_path):
    other = tmp_path / "other"
    synth.synth(word="hey nova", count=40, negatives=0, out=other, seed=12, progress=False)
    a = {r.sha256 for r in manifest.read(nova / "manifest.csv")}
    b = {r.sha256 for r in manifest.read(other / "manifest.csv")}
    assert len(a & b) < 3


def test_format_and_manifest_match_the_files(nova):
    rows = manifest.read(nova / "manifest.csv")
    assert len(rows) == 85
    for row in rows:
        info = sf.info(nova / row.path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / 16000 - row.duration_s) < 1e-6
        assert hashlib.sha256((nova / row.path).read_bytes()).hexdigest() == row.sha256
        assert row.split == manifest.split_for_speaker(row.speaker)
        assert row.path.startswith(row.label + "/")
    counts = {lab: sum(r.label == lab for r in rows) for lab in ("hey_nova", "_unknown_", "_silence_")}
    assert counts == {"hey_nova": 40, "_unknown_": 30, "_silence_": 15}


def test_positives_are_diverse(nova):
    rows = [r for r in manifest.read(nova / "manifest.csv") if r.label == "hey_nova"]
    engines = {r.speaker.split(":")[0] for r in rows}
    assert "espeak-ng" in engines and len(engines) >= 2, engines
    assert len({r.speaker for r in rows}) >= 30          # many voices, not 40 copies of one
    assert len({r.sha256 for r in rows}) == len(rows)
    durations = np.array([r.duration_s for r in rows])
    assert durations.std() > 0.05 and 0.3 < durations.min() and durations.max() < 3.0
    clips = _read_all(nova)
    peaks = [np.abs(clips[r.path]).max() for r in rows]
    assert max(peaks) / min(peaks) > 2.0                 # levels vary
    # No two clips are the same waveform up to gain: max normalized cross-correlation well below 1.
    sig = [clips[r.path].astype(np.float64) for r in rows[:12]]
    for i in range(len(sig)):
        for j in range(i + 1, len(sig)):
            a, b = sig[i] - sig[i].mean(), sig[j] - sig[j].mean()
            n = min(len(a), len(b))
            c = np.max(np.abs(np.correlate(a[:n], b[:n], "full"))) / (np.linalg.norm(a[:n]) * np.linalg.norm(b[:n]))
            assert c < 0.95


def test_negatives_never_say_the_wake_word_and_include_confusables(nova):
    info = json.loads((nova / "synth.json").read_text())
    unknown = [c["text"] for c in info["clips"] if c["label"] == "_unknown_"]
    assert all(words.normalize(t) != "hey nova" for t in unknown)
    conf = set(words.confusables("hey nova"))
    assert sum(words.normalize(t) in conf for t in unknown) >= 5
    kinds = {c["noise"] for c in info["clips"] if c["label"] == "_silence_"}
    assert len(kinds) >= 4


def test_silence_clips_are_noise_of_one_second(nova):
    rows = [r for r in manifest.read(nova / "manifest.csv") if r.label == "_silence_"]
    levels = []
    for r in rows:
        x, _ = sf.read(nova / r.path)
        assert len(x) == 16000
        levels.append(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))
    assert max(levels) - min(levels) > 10


def test_confusables_share_phonemes_and_skip_homophones():
    c = words.confusables("hey nova")
    assert "hey nova" not in c and "hay nova" not in c     # "hay" sounds like "hey"
    assert "nova" in c and "hey" in c
    target = [p for w in words.phonemize(["hey", "nova"]) for p in w]
    unrelated = words.phonemize(["umbrella"])[0]
    sims = [words.similarity(target, ph) for ph in words.phonemize(c[:10])]
    assert min(sims) > words.similarity(target, unrelated)


def test_noise_colours_have_their_slopes():
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(1 << 16)
    band = (freqs > 0.01) & (freqs < 0.4)
    slopes = {}
    for colour, exponent in noise.COLOURS.items():
        x = noise.coloured(1 << 16, colour, rng)
        assert abs(np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 1) < 1e-3
        p = np.abs(np.fft.rfft(x)) ** 2
        slopes[colour] = np.polyfit(np.log(freqs[band]), np.log(p[band]), 1)[0]
        assert abs(slopes[colour] - exponent) < 0.15, (colour, slopes[colour])


def test_missing_espeak_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    from kws.data import tts
    tts.working_voices.cache_clear()
    out = tmp_path / "x"
    rc = main(["data", "synth", "--word", "hey nova", "--count", "3", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("kws: error: espeak-ng")
    assert not out.exists()
    tts.working_voices.cache_clear()


def test_bad_arguments_and_existing_output(tmp_path, capsys):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("user data")
    assert main(["data", "synth", "--word", "hey nova", "--count", "2", "--out", str(keep)]) == 2
    assert (keep / "mine.txt").read_text() == "user data" and len(list(keep.iterdir())) == 1
    assert main(["data", "synth", "--word", "!!", "--count", "2", "--out", str(tmp_path / "a")]) == 2
    assert main(["data", "synth", "--word", "go", "--count", "0", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("kws: error:") for e in err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "synth", "--word", "computer", "--count", "4", "--negatives", "3", "--out", str(out)]) == 0
    assert "wrote 7 clips" in capsys.readouterr().out
    labels = {r.label for r in manifest.read(out / "manifest.csv")}
    assert labels == {"computer", config.UNKNOWN_LABEL, config.SILENCE_LABEL}
    assert not [p for p in tmp_path.iterdir() if ".tmp-kws" in p.name]


def test_a_failure_midway_leaves_no_output(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synth._render

    def flaky(job):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real(job)

    monkeypatch.setattr(synth, "_render", flaky)
    out = tmp_path / "partial"
    from kws.errors import KwsError
    with pytest.raises(KwsError, match="no space left on device"):
        synth.synth(word="hey nova", count=8, out=out, progress=False, jobs=1)
    assert not out.exists() and not list(tmp_path.iterdir())
