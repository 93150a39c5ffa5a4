"""`kws data validate`: per-clip checks, duplicates, dataset checks, quarantine, reports, CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import speechlike, tone
from kws.cli import main
from kws.data import checks, manifest
from kws.data.audio import write_wav
from kws.data.validate import validate
from kws.errors import KwsError

RATE = 16000


def utterance(seed: int, *, amp: float = 0.3) -> np.ndarray:
    """float32 [16000]: a voiced, syllable-modulated sound whose pitch and formant glide (like speech;
    conftest.speechlike keeps one spectral shape, which leaves a fingerprint nothing to hold on to)."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    f0 = (100 + 100 * rng.random()) * (1 + 0.15 * np.sin(2 * np.pi * (1 + 2 * rng.random()) * t + 6.28 * rng.random()))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    formant = np.interp(t, np.linspace(0, 1, 8), rng.uniform(400, 2800, size=8))
    x = np.zeros(RATE)
    for k in range(1, 30):
        weight = np.exp(-((k * f0 - formant) / 300.0) ** 2) + 0.2 / k
        x += np.where(k * f0 < RATE / 2 - 200, weight, 0.0) * np.sin(k * phase)
    env = np.clip(np.sin(2 * np.pi * (2 + 2 * rng.random()) * t + 6.28 * rng.random()), 0, None) ** 0.7
    x *= env * np.hanning(RATE)
    return (amp * x / np.abs(x).max()).astype(np.float32)


def pink_noise(seed: int, n: int = RATE) -> np.ndarray:
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(2 * n))
    spec[1:] /= np.sqrt(np.arange(1, len(spec)))
    spec[0] = 0
    x = np.fft.irfft(spec)[:n]
    return 0.3 * x / np.abs(x).max()


def spk(i: int) -> str:
    return f"{0x1000_0000 + i:08x}"


GOOD = {"yes": 12, "no": 12}

# file (relative to the dataset) -> (reason, severity) expected
DEFECTS = {
    "yes/nan.wav": ("nan_or_inf", "error"),
    "yes/rate8k.wav": ("sample_rate", "error"),
    "yes/stereo.wav": ("channels", "error"),
    "yes/short.wav": ("duration", "error"),
    "yes/clipped.wav": ("clipping", "error"),
    "yes/zeros.wav": ("digital_silence", "error"),
    "yes/quiet.wav": ("low_rms", "error"),
    "yes/soft.wav": ("low_rms", "warning"),
    "no/dc.wav": ("dc_offset", "warning"),
    "no/dup.wav": ("exact_duplicate", "error"),
    "no/neardup.wav": ("near_duplicate", "warning"),
    "no/x.wav": ("undecodable", "error"),
    "yes/noise.wav": ("no_speech", "warning"),
    "yes/empty.wav": ("empty", "error"),
}


def make_dataset(root: Path) -> Path:
    """Good clips (SC-style names, so speakers are known) plus one clip per defect, an empty label
    folder, and a _silence_ class whose quiet noise must pass."""
    for label, n in GOOD.items():
        for i in range(n):
            seed = 100 * (label == "no") + i
            write_wav(root / label / f"{spk(seed)}_nohash_0.wav", utterance(seed))
    write_wav(root / "_background_noise_" / "long.wav", pink_noise(99, 31 * RATE))  # exempt from max duration
    (root / "_silence_").mkdir()
    for i in range(10):
        write_wav(root / "_silence_" / f"s{i}.wav", pink_noise(i) * 10 ** (-55 / 20) / 0.3)
    x = utterance(900)
    soundfile.write(root / "yes/nan.wav", np.where(np.arange(RATE) == 5000, np.nan, x).astype(np.float32), RATE,
                    subtype="FLOAT")
    write_wav(root / "yes/rate8k.wav", utterance(901)[::2], sample_rate_hz=8000)
    soundfile.write(root / "yes/stereo.wav", np.stack([utterance(902)] * 2, axis=1), RATE, subtype="PCM_16")
    x = utterance(903)
    loudest = int(np.argmax(np.abs(x)))
    write_wav(root / "yes/short.wav", x[loudest - 800:loudest + 800])
    write_wav(root / "yes/clipped.wav", np.clip(utterance(904) * 8, -1, 1))
    write_wav(root / "yes/zeros.wav", np.zeros(RATE, np.float32))
    write_wav(root / "yes/quiet.wav", utterance(905) * 10 ** (-65 / 20) / 0.1)
    write_wav(root / "yes/soft.wav", utterance(906) * 10 ** (-48 / 20) / 0.1)
    write_wav(root / "no/dc.wav", utterance(907) + 0.05)
    shutil.copyfile(root / "no" / f"{spk(100)}_nohash_0.wav", root / "no/dup.wav")
    write_wav(root / "no/neardup.wav", np.concatenate([np.zeros(48), utterance(101)[:-48]]) * 0.6)
    (root / "no/x.wav").write_text("this is not audio\n")
    write_wav(root / "yes/noise.wav", np.random.default_rng(5).standard_normal(RATE) * 0.1)
    soundfile.write(root / "yes/empty.wav", np.zeros(0, np.float32), RATE, subtype="PCM_16")
    (root / "empty_label").mkdir()
    (root / "empty_label" / "notes.txt").write_text("no audio here\n")
    return root


def tree(root: Path) -> dict[str, str]:
    """Every file under root (relative path -> sha256 of its bytes)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def findings(rep) -> dict[str, set[tuple[str, str]]]:
    return {c.path: {(f.reason, f.severity) for f in c.findings} for c in rep.clips}


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "ds")


# --- the checks themselves ---------------------------------------------------------------------------

def test_speech_heuristic_passes_speech_and_fails_noise_and_tone():
    speech = [checks.speech_features(speechlike(seed=s).astype(np.float64), RATE) for s in range(6)]
    speech += [checks.speech_features(utterance(s).astype(np.float64), RATE) for s in range(6)]
    assert all(f["speech_like"] for f in speech)
    rng = np.random.default_rng(0)
    for name, x, rate in [("white", rng.standard_normal(RATE) * 0.1, RATE), ("pink", pink_noise(1), RATE),
                          ("tone", tone(440.0).astype(np.float64), RATE),
                          ("white 8 kHz", rng.standard_normal(8000) * 0.1, 8000),
                          ("tone 1 kHz", tone(1000.0, rate=8000).astype(np.float64), 8000)]:
        f = checks.speech_features(x, rate)
        assert not f["speech_like"], (name, f)
    white = checks.speech_features(rng.standard_normal(RATE) * 0.1, RATE)
    assert white["flatness"] > 0.9 > 0.5 > max(f["flatness"] for f in speech)
    assert checks.speech_features(tone(440.0).astype(np.float64), RATE)["modulation_db"] < 1.0


def test_fingerprint_flags_copies_but_not_other_utterances():
    rng = np.random.default_rng(3)
    base = [utterance(s).astype(np.float64) for s in range(30)]
    x = base[7]
    copies = [x * 0.25, np.clip(x * 3, -1, 1), x + rng.standard_normal(RATE) * 3e-4,
              np.concatenate([np.zeros(80), x])[:RATE],  # 5 ms later
              np.concatenate([x[48:], np.zeros(48)]),  # 3 ms earlier
              np.concatenate([np.zeros(40), x])[:RATE] * 0.5 + rng.standard_normal(RATE) * 2e-4]
    fps = [checks.fingerprint(c, RATE) for c in base + copies]
    pairs = checks.near_duplicates(fps)
    found = {(i, j) for i, j, _ in pairs}
    group = [7] + [30 + k for k in range(len(copies))]
    assert found == set(itertools.combinations(group, 2)), pairs
    # different utterances are far apart (or share too few usable bits to compare)
    other = [checks.fingerprint_distance(fps[i], fps[j]) for i in range(30) for j in range(i + 1, 30)]
    assert min(other) > 2 * checks.NEAR_DUP_MAX_BER
    # the same word at a different pitch is also not a copy
    lower = checks.fingerprint(np.interp(np.arange(RATE) * 0.9, np.arange(RATE), x), RATE)
    assert checks.fingerprint_distance(fps[7], lower) > checks.NEAR_DUP_MAX_BER


def test_analyze_reports_a_text_file_instead_of_raising(tmp_path):
    p = tmp_path / "x.wav"
    p.write_text("hello")
    res = checks.analyze(p, rel_path="x.wav", label="yes", sample_rate_hz=RATE, min_duration_s=0.2,
                         max_duration_s=30.0)
    assert [(f.reason, f.severity) for f in res.findings] == [("undecodable", "error")]
    assert res.file_sha256 == hashlib.sha256(b"hello").hexdigest()


# --- the whole command ---------------------------------------------------------------------------------

def test_every_defect_is_caught_quarantined_and_recorded(dataset):
    before = tree(dataset)
    rep = validate(dataset)
    got = findings(rep)
    for path, (reason, severity) in DEFECTS.items():
        assert (reason, severity) in got[path], (path, got[path])
        if severity == "warning":
            assert all(s == "warning" for _, s in got[path]), (path, got[path])
    dup = next(c for c in rep.clips if c.path == "no/dup.wav")
    assert f"no/{spk(100)}_nohash_0.wav" in dup.errors[0].detail
    assert rep.near_duplicates == [{"a": f"no/{spk(101)}_nohash_0.wav", "b": "no/neardup.wav",
                                    "bit_error_rate": rep.near_duplicates[0]["bit_error_rate"]}]
    assert {f for f in got["yes/short.wav"] if f[1] == "error"} == {("duration", "error")}
    # good clips, the quiet _silence_ noise and the long background noise pass every check
    good = [c for c in rep.clips if c.path not in DEFECTS]
    assert len(good) == sum(GOOD.values()) + 11 and all(not c.findings for c in good), \
        [(c.path, c.findings) for c in good if c.findings]
    assert {i["check"] for i in rep.dataset_issues if i["severity"] == "error"} == {"empty_label_folder"}

    # quarantined: moved, same bytes, never deleted; the manifest says why
    errors = {p: r for p, (r, s) in DEFECTS.items() if s == "error"}
    assert {q["from"] for q in rep.quarantined} == set(errors)
    after = tree(dataset)
    rows = {r.path: r for r in manifest.read(dataset / "manifest.csv")}
    for q in rep.quarantined:
        assert not (dataset / q["from"]).exists()
        assert q["to"] == f"_quarantine/{errors[q['from']]}/{q['from'].split('/')[0]}/{Path(q['from']).name}"
        assert after[q["to"]] == before[q["from"]]
        assert rows[q["to"]].status == f"quarantined:{errors[q['from']]}"
    assert sorted(before.values()) == sorted(h for p, h in after.items()
                                             if not p.startswith("_report/") and p != "manifest.csv")
    assert rows["no/dc.wav"].status == "warn:dc_offset"
    assert rows["yes/noise.wav"].status == "warn:no_speech"
    assert rows[f"yes/{spk(0)}_nohash_0.wav"].status == "ok"
    assert rows[f"yes/{spk(0)}_nohash_0.wav"].speaker == spk(0)
    assert rows[f"yes/{spk(0)}_nohash_0.wav"].split == manifest.split_for_speaker(spk(0))
    assert len(rows) == sum(GOOD.values()) + 11 + len(DEFECTS)

    # counts: the empty label folder is the only error left
    c = rep.counts
    assert (c["errors"], c["quarantined"], c["dataset_errors"]) == (len(errors), len(errors), 1)
    assert c["warnings"] == len(DEFECTS) - len(errors)
    assert rep.errors_remaining == 1
    line = rep.summary_line()
    assert "\n" not in line and f"{len(rep.clips)} clips checked" in line and f"{len(errors)} quarantined" in line

    # reports
    rd = dataset / "_report"
    for name in ("report.md", "report.json", "rms_dbfs.png", "peak_dbfs.png", "duration_s.png"):
        assert (rd / name).stat().st_size > 0
    assert (rd / "rms_dbfs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((rd / "report.json").read_text())
    assert data == json.loads(json.dumps(rep.as_dict()))
    assert data["summary"]["errors"] == len(errors) and data["summary"]["errors_remaining"] == 1
    assert data["checks"]["clipping"]["errors"] == 1 and data["checks"]["dc_offset"]["warnings"] == 1
    assert data["sample_rates_hz"] == {"8000": 1, "16000": len(rep.clips) - 2}  # x.wav has no rate
    md = (rd / "report.md").read_text()
    assert "neardup.wav" in md and "empty_label/" in md and "rms_dbfs.png" in md


def test_second_run_is_idempotent(dataset):
    first = validate(dataset)
    snapshot = {p: h for p, h in tree(dataset).items() if not p.startswith("_report/")}
    second = validate(dataset)
    assert {p: h for p, h in tree(dataset).items() if not p.startswith("_report/")} == snapshot
    assert second.quarantined == [] and second.counts["errors"] == 0
    assert second.previously_quarantined == len(first.quarantined) > 0
    assert second.errors_remaining == first.errors_remaining == 1  # the empty label folder, still
    assert {c.path for c in second.clips if c.warnings} == {c.path for c in first.clips if c.warnings and not c.errors}


def test_no_quarantine_touches_nothing(dataset, tmp_path):
    before = tree(dataset)
    stat_before = {p: (dataset / p).stat().st_mtime_ns for p in before}
    rep = validate(dataset, quarantine=False, report_dir=str(tmp_path / "rep"), json_out=str(tmp_path / "r.json"))
    assert tree(dataset) == before
    assert {p: (dataset / p).stat().st_mtime_ns for p in before} == stat_before
    assert rep.quarantined == [] and rep.errors_remaining == rep.counts["errors"] + 1 > 1
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["quarantined"] == 0
    assert (tmp_path / "rep" / "duration_s.png").is_file()
    # without a report folder, only the JSON asked for is written, and nothing in the dataset
    rep2 = validate(dataset, quarantine=False, json_out=str(tmp_path / "r2.json"))
    assert tree(dataset) == before and (tmp_path / "r2.json").is_file()
    assert rep2.counts == rep.counts


def test_quarantine_never_overwrites(dataset):
    clash = dataset / "_quarantine" / "digital_silence" / "yes" / "zeros.wav"
    clash.parent.mkdir(parents=True)
    clash.write_bytes(b"someone else's file")
    zeros = (dataset / "yes" / "zeros.wav").read_bytes()
    rep = validate(dataset)
    assert clash.read_bytes() == b"someone else's file"
    moved = next(q for q in rep.quarantined if q["from"] == "yes/zeros.wav")
    assert moved["to"] == "_quarantine/digital_silence/yes/zeros-1.wav"
    assert (dataset / moved["to"]).read_bytes() == zeros


def test_failed_manifest_write_undoes_the_moves(dataset, monkeypatch):
    before = tree(dataset)

    def full_disk(path, rows, **kwargs):
        raise KwsError(f"{path}: no space left on device")

    monkeypatch.setattr(manifest, "write", full_disk)
    with pytest.raises(KwsError, match="no space left"):
        validate(dataset)
    assert {p: h for p, h in tree(dataset).items()} == before


def test_manifest_missing_file_and_speaker_leakage(tmp_path):
    root = tmp_path / "m"
    rows = []
    for i, (speaker, split) in enumerate([("alice", "train"), ("alice", "test"), ("bob", "train"),
                                          ("bob", "train"), ("carol", "validation")]):
        rel = f"yes/{speaker}_{i}.wav"
        write_wav(root / rel, utterance(200 + i))
        rows.append(manifest.Row(rel, "yes", speaker, split, "test", 1.0, RATE, "", "ok"))
    rows.append(manifest.Row("yes/gone.wav", "yes", "dave", "train", "test", 1.0, RATE, "", "ok"))
    manifest.write(root / "manifest.csv", rows)
    before = tree(root)
    rep = validate(root, quarantine=False)
    issues = {i["check"]: i for i in rep.dataset_issues}
    assert issues["manifest_missing_file"]["message"] == "manifest names a missing file yes/gone.wav"
    assert issues["speaker_leakage"]["speakers"] == ["alice"] and "alice" in issues["speaker_leakage"]["message"]
    assert rep.counts["clips_checked"] == 5 and rep.counts["errors"] == 0
    assert "yes (5)" in issues["label_balance"]["message"] and issues["label_balance"]["severity"] == "warning"
    assert rep.errors_remaining == 2
    assert tree(root) == before and not (root / "_report").exists()


def test_unwritable_root_and_foreign_report_files(dataset, tmp_path, monkeypatch):
    before = tree(dataset)
    foreign = tmp_path / "mine.json"
    foreign.write_text('{"my": "data"}')
    with pytest.raises(KwsError, match="refusing to overwrite"):
        validate(dataset, json_out=str(foreign))
    assert foreign.read_text() == '{"my": "data"}' and tree(dataset) == before  # checked before any move
    (tmp_path / "rd").mkdir()
    (tmp_path / "rd" / "report.md").write_text("notes")
    with pytest.raises(KwsError, match="refusing to overwrite"):
        validate(dataset, quarantine=False, report_dir=str(tmp_path / "rd"))
    import kws.data.validate as v

    monkeypatch.setattr(v.os, "access", lambda *a, **k: False)
    with pytest.raises(KwsError, match="--no-quarantine and --report-dir") as exc:
        validate(dataset)
    assert "\n" not in str(exc.value)
    assert validate(dataset, quarantine=False, report_dir=str(tmp_path / "ok")).counts["quarantined"] == 0


def test_cli_exit_codes(dataset, tmp_path, capsys):
    clean = tmp_path / "clean"
    for label in ("yes", "no"):
        for i in range(10):
            write_wav(clean / label / f"{spk(i)}_nohash_{label == 'no':d}.wav", utterance(300 + 20 * (label == "no") + i))
    assert main(["data", "validate", str(clean)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "20 clips checked: 20 ok" in out[0] and "0 errors remaining" in out[0]

    assert main(["data", "validate", str(dataset), "--no-quarantine", "--report-dir", str(tmp_path / "r")]) == 1
    out = capsys.readouterr().out
    assert "0 quarantined" in out and (tmp_path / "r" / "report.md").is_file()
    # with quarantine, clip errors are gone but the empty label folder keeps the exit status at 1
    assert main(["data", "validate", str(dataset), "--json", str(tmp_path / "j.json")]) == 1
    assert json.loads((tmp_path / "j.json").read_text())["summary"]["errors_remaining"] == 1
    capsys.readouterr()
    (dataset / "empty_label" / "notes.txt").unlink()
    (dataset / "empty_label").rmdir()
    assert main(["data", "validate", str(dataset), "--json", str(tmp_path / "j.json")]) == 0
    capsys.readouterr()

    assert main(["data", "validate", str(tmp_path / "nowhere")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kws: error:") and "nowhere" in err[0]


# --- real data ---------------------------------------------------------------------------------------

def _sample(src: Path, dst: Path, per_label: int, pattern: str = "*.flac") -> int:
    n = 0
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        files = sorted(folder.glob(pattern))
        for f in files[:: max(1, len(files) // per_label)][:per_label]:
            (dst / folder.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst / folder.name / f.name)
            n += 1
    return n


def test_speech_commands_sample(shared_real, tmp_path):
    ds = tmp_path / "sc"
    n = _sample(shared_real / "speech_commands_v2_test", ds, 13)
    assert n >= 150
    rep = validate(ds, quarantine=False)
    d = rep.as_dict()
    assert d["summary"]["clips_checked"] == n
    assert d["sample_rates_hz"] == {"16000": n} and d["channels"] == {"1": n}
    assert d["duration_s"]["min"] == d["duration_s"]["max"] == 1.0
    for reason in ("undecodable", "empty", "nan_or_inf", "sample_rate", "channels", "duration", "digital_silence",
                   "exact_duplicate"):
        assert d["checks"][reason]["errors"] == 0, reason
    words = d["speech_like"]
    assert words["checked"] == n - len(list((ds / "_silence_").iterdir()))
    assert words["speech_like"] >= 0.95 * words["checked"]
    assert d["near_duplicates"] == []
    # speakers come from the file names; _silence_ clips have none
    assert any("skipped for" in note and "no speaker id" in note for note in rep.notes)
    assert not [i for i in d["dataset_issues"] if i["severity"] == "error"]
    # the RMS levels vary (real data), and the quietest words are above the error threshold
    assert d["rms_dbfs"]["max"] - d["rms_dbfs"]["min"] > 20
    assert all(c.rms_dbfs > checks.LOW_RMS_ERROR_DBFS for c in rep.clips if c.label != "_silence_")


def test_fsdd_sample_is_8_khz(shared_real, tmp_path):
    ds = tmp_path / "fsdd"
    n = _sample(shared_real / "fsdd", ds, 8)
    strict = validate(ds, quarantine=False)
    assert strict.counts["errors"] == n
    assert all("sample_rate" in {f.reason for f in c.errors} for c in strict.clips)
    at8k = validate(ds, quarantine=False, sample_rate_hz=8000)
    assert at8k.as_dict()["sample_rates_hz"] == {"8000": n}
    assert not any(f.reason == "sample_rate" for c in at8k.clips for f in c.findings)
    # what may remain are clips shorter than 0.2 s (FSDD trims its recordings tightly)
    assert all(f.reason == "duration" for c in at8k.clips for f in c.errors)
    assert at8k.counts["ok"] + at8k.counts["warnings"] >= 0.9 * n
    assert at8k.as_dict()["speech_like"]["speech_like"] >= 0.95 * n
