"""`kws data fetch`: local archives, downloads from a loopback server, hostile archives, failures, CLI."""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import os
import re
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import speechlike, tone
from kws.cli import main
from kws.data import fetch as fetch_mod
from kws.data import manifest
from kws.errors import KwsError

OFFICIAL = "speech_commands_v0.02.tar.gz"


def hash_split(speaker: str) -> str:
    """Speech Commands' speaker-hash rule, restated from the paper (arXiv:1804.03209) for the test."""
    top = 2**27 - 1
    percent = (int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % (top + 1)) * (100.0 / top)
    return "validation" if percent < 10 else "test" if percent < 20 else "train"


def speakers(split: str, n: int, *, skip: set[str] = frozenset()) -> list[str]:
    """The first `n` 8-hex-digit speaker ids that the hash rule puts in `split`."""
    out, i = [], 0
    while len(out) < n:
        s = f"{i * 2654435761 % 2**32:08x}"
        if hash_split(s) == split and s not in skip:
            out.append(s)
        i += 1
    return out


TRAIN = speakers("train", 5)
L_VAL, L_TEST, H_TRAIN, H_TRAIN_8K, LEAK = TRAIN  # hash says train for all of these
H_VAL = speakers("validation", 1)[0]
H_TEST = speakers("test", 1)[0]

# relative path -> (expected label, speaker, split, duration_s, sample_rate_hz)
EXPECTED = {
    f"yes/{L_VAL}_nohash_0.wav": ("yes", L_VAL, "validation", 1.0, 16000),  # the list beats the hash
    f"yes/{L_TEST}_nohash_0.wav": ("yes", L_TEST, "test", 1.0, 16000),
    f"yes/{H_TRAIN}_nohash_0.wav": ("yes", H_TRAIN, "train", 1.0, 16000),
    f"no/{H_VAL}_nohash_0.wav": ("no", H_VAL, "validation", 1.0, 16000),
    f"no/{H_TEST}_nohash_0.wav": ("no", H_TEST, "test", 1.0, 16000),
    f"no/{H_TRAIN_8K}_nohash_0.wav": ("no", H_TRAIN_8K, "train", 0.5, 8000),
    f"no/{LEAK}_nohash_0.wav": ("no", LEAK, "test", 1.0, 16000),
    f"no/{LEAK}_nohash_1.wav": ("no", LEAK, "train", 1.0, 16000),  # same speaker, unlisted: a leak
    "_background_noise_/white_noise.wav": ("_background_noise_", "noise", "train", 2.5, 16000),
}
UNDECODABLE = "no/deadbeef_nohash_0.wav"


def make_tree(root: Path) -> Path:
    """A miniature Speech Commands tree: clips, noise, list files, a licence, one broken clip."""
    for i, (rel, (_label, _spk, _split, seconds, rate)) in enumerate(sorted(EXPECTED.items())):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        x = (np.random.default_rng(i).uniform(-0.3, 0.3, int(seconds * rate)).astype(np.float32)
             if "noise" in rel else speechlike(seconds, rate=rate, seed=i))
        soundfile.write(str(path), x, rate, subtype="PCM_16")
    (root / UNDECODABLE).write_bytes(b"RIFF this is not really audio")
    (root / "_background_noise_" / "README.md").write_text("noise recordings\n")
    (root / "validation_list.txt").write_text(f"yes/{L_VAL}_nohash_0.wav\nright/ffffffff_nohash_0.wav\n")
    (root / "testing_list.txt").write_text(f"yes/{L_TEST}_nohash_0.wav\nno/{LEAK}_nohash_0.wav\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return root


def make_archive(tmp_path: Path, name: str = "subset.tar.gz", *, mode: str = "w:gz") -> Path:
    tree = make_tree(tmp_path / "tree")
    archive = tmp_path / name
    with tarfile.open(archive, mode) as tf:
        tf.add(tree, arcname=".")  # members are ./yes/..., as in the published archive
    return archive


def no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert list(out.parent.glob(f".{out.name}.*")) == []


# ---------------------------------------------------------------------------------------------------
# local archives


def test_local_archive_gives_manifest_with_list_and_hash_splits(tmp_path, capsys):
    archive = make_archive(tmp_path)
    archive_bytes = archive.read_bytes()
    out = tmp_path / "sc2"
    assert fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False) == out

    rows = {r.path: r for r in manifest.read(out / "manifest.csv")}
    assert set(rows) == set(EXPECTED) | {UNDECODABLE}  # README.md, LICENSE and the lists are not clips
    for rel, (label, speaker, split, seconds, rate) in EXPECTED.items():
        row = rows[rel]
        assert (row.label, row.speaker, row.split, row.status) == (label, speaker, split, "ok"), rel
        assert row.sample_rate_hz == rate and row.duration_s == pytest.approx(seconds, abs=1e-6), rel
        assert row.source == "speech_commands_v2"
        assert row.sha256 == hashlib.sha256((out / rel).read_bytes()).hexdigest()
        assert row.sha256 == hashlib.sha256((tmp_path / "tree" / rel).read_bytes()).hexdigest()
    # the hash rule really decided the unlisted ones: all three splits occur among them
    assert {rows[f"no/{s}_nohash_0.wav"].split for s in (H_VAL, H_TEST, H_TRAIN_8K)} == {"validation", "test", "train"}
    assert len({r.sha256 for r in rows.values()}) == len(rows)
    assert len({r.duration_s for r in rows.values() if r.status == "ok"}) == 3
    bad = rows[UNDECODABLE]
    assert bad.status == "error:undecodable" and bad.label == "no" and bad.sample_rate_hz == 0
    assert (out / "LICENSE").read_text() == "CC BY 4.0\n"  # everything extracted, not only clips
    err = capsys.readouterr().err
    assert "1 speaker(s) appear in more than one split" in err and LEAK in err
    assert "1 file(s) named in" in err and "1 clip(s) cannot be decoded" in err
    assert archive.read_bytes() == archive_bytes
    assert list(tmp_path.glob(".sc2.*")) == []


def test_local_archive_hash_is_checked_when_named_officially_or_given(tmp_path):
    archive = make_archive(tmp_path, OFFICIAL)  # official name, other content
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = tmp_path / "sc2"
    with pytest.raises(KwsError) as e:
        fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False)
    msg = str(e.value)
    assert str(archive) in msg and fetch_mod.DATASETS["speech_commands_v2"].sha256 in msg and good in msg
    assert archive.is_file()  # the user's file is left alone
    no_leftovers(out)

    with pytest.raises(KwsError, match="SHA-256 mismatch"):
        fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), sha256="ab" * 32, progress=False)
    no_leftovers(out)
    with pytest.raises(KwsError, match="not a SHA-256 digest"):
        fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), sha256="xyz", progress=False)
    fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), sha256=good.upper(), progress=False)
    assert (out / "manifest.csv").is_file()


def test_real_speech_commands_clips(shared_real, tmp_path):
    """Real Speech Commands recordings (FLAC) packed as the published archive lays them out."""
    src = shared_real / "speech_commands_v2_test"
    picked = sorted((src / "yes").iterdir())[:6] + sorted((src / "_unknown_").iterdir())[:6]
    noise = sorted((shared_real / "background_noise").iterdir())[0]
    archive = tmp_path / "real.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for p in picked:
            tf.add(p, arcname=f"./{p.parent.name}/{p.name}")
        tf.add(noise, arcname=f"./_background_noise_/{noise.name}")
    out = fetch_mod.fetch("speech_commands_v2", out=tmp_path / "sc2", archive=str(archive), progress=False)
    rows = {r.path: r for r in manifest.read(out / "manifest.csv")}
    assert len(rows) == len(picked) + 1
    for p in picked:
        row = rows[f"{p.parent.name}/{p.name}"]
        speaker = re.search(r"([0-9a-f]{8})_nohash_", p.name).group(1)
        assert (row.label, row.speaker, row.split, row.status) == (p.parent.name, speaker, hash_split(speaker), "ok")
        assert row.sample_rate_hz == 16000 and 0.3 < row.duration_s <= 1.0
        assert row.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert len({r.speaker for r in rows.values()}) > 3
    noise_row = rows[f"_background_noise_/{noise.name}"]
    assert (noise_row.speaker, noise_row.split) == ("noise", "train") and noise_row.duration_s > 5.0


# ---------------------------------------------------------------------------------------------------
# downloads from a loopback server


class Server:
    """An HTTP server on 127.0.0.1 serving one file, with or without Range support."""

    def __init__(self, payload: bytes, name: str = OFFICIAL):
        self.payload, self.name = payload, name
        self.honour_range, self.cut_at, self.requests = True, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                if self.path != f"/{server.name}":
                    self.send_error(404)
                    return
                data, start = server.payload, 0
                if rng and server.honour_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if server.cut_at is None else body[:server.cut_at])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    archive = make_archive(tmp_path / "src")
    server = Server(archive.read_bytes())
    yield server
    server.close()


def download(server: Server, tmp_path: Path, out: str = "sc2", **kw) -> Path:
    kw.setdefault("sha256", hashlib.sha256(server.payload).hexdigest())
    return fetch_mod.fetch("speech_commands_v2", out=tmp_path / out, url=server.url,
                           download_dir=str(tmp_path / "dl"), progress=False, **kw)


def test_download_verifies_renames_and_reuses(served, tmp_path):
    out = download(served, tmp_path)
    assert served.requests == [None]
    final = tmp_path / "dl" / OFFICIAL
    assert final.read_bytes() == served.payload
    assert not (tmp_path / "dl" / f"{OFFICIAL}.part").exists()
    assert len(manifest.read(out / "manifest.csv")) == len(EXPECTED) + 1

    out2 = download(served, tmp_path, "again")  # reused after its hash is checked again: no request
    assert served.requests == [None]
    assert (out2 / "manifest.csv").read_bytes() == (out / "manifest.csv").read_bytes()


def test_download_resumes_after_a_lost_connection(served, tmp_path):
    half = len(served.payload) // 2
    served.cut_at = half
    with pytest.raises(KwsError) as e:
        download(served, tmp_path)
    assert "resume" in str(e.value) and "--archive" in str(e.value) and "\n" not in str(e.value)
    part = tmp_path / "dl" / f"{OFFICIAL}.part"
    assert part.read_bytes() == served.payload[:half]
    no_leftovers(tmp_path / "sc2")

    served.cut_at = None
    out = download(served, tmp_path)
    assert served.requests == [None, f"bytes={half}-"]
    assert hashlib.sha256((tmp_path / "dl" / OFFICIAL).read_bytes()).hexdigest() == hashlib.sha256(served.payload).hexdigest()
    assert not part.exists() and (out / "manifest.csv").is_file()


def test_download_restarts_when_the_server_ignores_range(served, tmp_path):
    served.honour_range = False
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / f"{OFFICIAL}.part").write_bytes(b"x" * 1000)  # appending would break the hash
    out = download(served, tmp_path)
    assert served.requests == ["bytes=1000-"]
    assert (tmp_path / "dl" / OFFICIAL).read_bytes() == served.payload
    assert (out / "manifest.csv").is_file()


def test_download_with_a_complete_part_file(served, tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / f"{OFFICIAL}.part").write_bytes(served.payload)
    out = download(served, tmp_path)  # the server answers 416: nothing left to send
    assert served.requests == [f"bytes={len(served.payload)}-"]
    assert (tmp_path / "dl" / OFFICIAL).read_bytes() == served.payload
    assert (out / "manifest.csv").is_file()


def test_download_with_the_wrong_hash_keeps_no_dataset(served, tmp_path):
    actual = hashlib.sha256(served.payload).hexdigest()
    with pytest.raises(KwsError) as e:
        download(served, tmp_path, sha256="0" * 64)
    msg = str(e.value)
    assert "0" * 64 in msg and actual in msg and OFFICIAL in msg
    no_leftovers(tmp_path / "sc2")
    dl = tmp_path / "dl"
    assert sorted(p.name for p in dl.iterdir()) == [f"{OFFICIAL}.bad-{actual[:12]}"]
    assert (dl / f"{OFFICIAL}.bad-{actual[:12]}").read_bytes() == served.payload


def test_network_failures_suggest_archive(served, tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/{OFFICIAL}"
    for url in (dead, served.url.replace(OFFICIAL, "missing.tar.gz")):
        with pytest.raises(KwsError) as e:
            fetch_mod.fetch("speech_commands_v2", out=tmp_path / "sc2", url=url, sha256="0" * 64,
                            download_dir=str(tmp_path / "dl"), progress=False)
        assert "--archive" in str(e.value) and url in str(e.value)
        no_leftovers(tmp_path / "sc2")
    assert "404" in str(e.value)
    rc = main(["data", "fetch", "speech_commands_v2", "--url", dead, "--out", str(tmp_path / "sc2"),
               "--download-dir", str(tmp_path / "dl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("kws: error:") and "--archive" in err[0]


def test_download_disk_full_keeps_no_dataset(served, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fetch_mod, "_receive", full)
    with pytest.raises(KwsError, match="no space left on device"):
        download(served, tmp_path)
    no_leftovers(tmp_path / "sc2")
    assert not (tmp_path / "dl" / OFFICIAL).exists()


# ---------------------------------------------------------------------------------------------------
# hostile archives


def wav_bytes(seconds: float = 1.0) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, tone(seconds=seconds), 16000, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def add_special(tf: tarfile.TarFile, name: str, type_: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type_, linkname
    if type_ == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    tf.addfile(info)


HOSTILE = {
    # case: (members after one good clip, name of the refused member, fetch keyword arguments)
    "absolute": (lambda tf, o: add_file(tf, "/tmp/kws-evil.wav", wav_bytes()), "/tmp/kws-evil.wav", {}),
    "dotdot": (lambda tf, o: add_file(tf, "yes/../../evil.wav", wav_bytes()), "yes/../../evil.wav", {}),
    "symlink_up": (lambda tf, o: add_special(tf, "yes/evil", tarfile.SYMTYPE, "../../outside"), "yes/evil", {}),
    "symlink_absolute": (lambda tf, o: add_special(tf, "evil", tarfile.SYMTYPE, str(o)), "evil", {}),
    "symlink_chain": (lambda tf, o: (add_special(tf, "a", tarfile.SYMTYPE, "."),
                                     add_special(tf, "evil", tarfile.SYMTYPE, "a/.."),
                                     add_file(tf, "evil/evil.wav", wav_bytes())), "evil", {}),
    "hardlink_up": (lambda tf, o: add_special(tf, "yes/evil", tarfile.LNKTYPE, "../outside"), "yes/evil", {}),
    "hardlink_absolute": (lambda tf, o: add_special(tf, "evil", tarfile.LNKTYPE, str(o)), "evil", {}),
    "device": (lambda tf, o: add_special(tf, "yes/evil", tarfile.CHRTYPE), "yes/evil", {}),
    "fifo": (lambda tf, o: add_special(tf, "yes/evil", tarfile.FIFOTYPE), "yes/evil", {}),
    "too_many_members": (lambda tf, o: [add_file(tf, f"no/{i:08x}_nohash_0.wav", wav_bytes(0.1)) for i in range(4)],
                         "no/00000002_nohash_0.wav", {"max_members": 3}),
    "member_too_large": (lambda tf, o: add_file(tf, "no/evil.wav", wav_bytes(2.0)), "no/evil.wav",
                         {"max_member_bytes": 40_000}),
    "total_too_large": (lambda tf, o: [add_file(tf, f"no/{i:08x}_nohash_0.wav", wav_bytes()) for i in range(3)],
                        "no/00000001_nohash_0.wav", {"max_total_bytes": 70_000}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused(tmp_path, case):
    build, refused, limits = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.write_text("precious\n")
    archive = tmp_path / f"{case}.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        add_file(tf, "yes/0a7c2a8d_nohash_0.wav", wav_bytes())  # extracted before the refusal
        build(tf, outside)
    out = tmp_path / "deep" / "er" / "out"
    with pytest.raises(KwsError) as e:
        fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False, **limits)
    msg = str(e.value)
    assert str(archive) in msg and repr(refused) in msg and "refusing" in msg and "\n" not in msg
    no_leftovers(out)
    left = [p for p in (tmp_path / "deep").rglob("*")]
    assert all(p.is_dir() and not p.is_symlink() for p in left), left  # nothing escaped the temp folder
    assert outside.read_text() == "precious\n" and not Path("/tmp/kws-evil.wav").exists()


def test_symlinks_and_hardlinks_inside_are_accepted(tmp_path):
    archive = tmp_path / "links.tar"
    clip = wav_bytes()
    with tarfile.open(archive, "w") as tf:
        add_file(tf, "yes/0a7c2a8d_nohash_0.wav", clip)
        add_special(tf, "yes/0a7c2a8d_nohash_1.wav", tarfile.LNKTYPE, "yes/0a7c2a8d_nohash_0.wav")
        add_special(tf, "docs/clip", tarfile.SYMTYPE, "../yes/0a7c2a8d_nohash_0.wav")
    out = tmp_path / "out"
    fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False)
    rows = manifest.read(out / "manifest.csv")
    assert [r.path for r in rows] == ["yes/0a7c2a8d_nohash_0.wav", "yes/0a7c2a8d_nohash_1.wav"]
    assert {r.sha256 for r in rows} == {hashlib.sha256(clip).hexdigest()}
    assert (out / "docs" / "clip").is_symlink() and (out / "docs" / "clip").read_bytes() == clip


# ---------------------------------------------------------------------------------------------------
# broken input and full disks


def test_truncated_and_non_tar_archives(tmp_path):
    good = make_archive(tmp_path).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good[: len(good) * 3 // 5])
    no_trailer = tmp_path / "no_trailer.tar.gz"  # every tar block present, the gzip CRC/size missing
    no_trailer.write_bytes(good[:-8])
    plain = make_archive(tmp_path / "p", "plain.tar", mode="w")
    with tarfile.open(plain) as tf:  # cut a plain tar exactly between two members
        offset = tf.getmembers()[len(tf.getmembers()) // 2].offset
    cut_plain = tmp_path / "cut_plain.tar"
    cut_plain.write_bytes(plain.read_bytes()[:offset])
    text = tmp_path / "notes.tar.gz"
    text.write_text("these are not the files you are looking for\n")
    for archive, why in [(cut, "truncated or corrupt"), (no_trailer, "truncated or corrupt"), (cut_plain, "truncated or corrupt"),
                         (text, "not a tar archive"), (tmp_path / "absent.tar.gz", "no such archive")]:
        out = tmp_path / "out"
        with pytest.raises(KwsError) as e:
            fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False)
        assert str(archive) in str(e.value) and why in str(e.value) and "\n" not in str(e.value)
        no_leftovers(out)
    fetch_mod.fetch("speech_commands_v2", out=tmp_path / "ok", archive=str(plain), progress=False)


def test_non_empty_out_is_left_untouched(tmp_path):
    archive = make_archive(tmp_path)
    out = tmp_path / "sc2"
    out.mkdir()
    (out / "mine.txt").write_text("mine\n")
    with pytest.raises(KwsError, match="not empty"):
        fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False)
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "mine\n"
    assert list(tmp_path.glob(".sc2.*")) == []


def test_disk_full_during_extraction_leaves_nothing(tmp_path, monkeypatch):
    archive = make_archive(tmp_path)
    calls = []
    real_write = fetch_mod._Writer.write

    def write(self, data):
        calls.append(len(data))
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, data)

    monkeypatch.setattr(fetch_mod._Writer, "write", write)
    out = tmp_path / "sc2"
    with pytest.raises(KwsError) as e:
        fetch_mod.fetch("speech_commands_v2", out=out, archive=str(archive), progress=False)
    assert str(e.value) == f"{out}: no space left on device"
    assert len(calls) == 4
    no_leftovers(out)


# ---------------------------------------------------------------------------------------------------
# command line


def test_cli_fetch(tmp_path, capsys):
    archive = make_archive(tmp_path)
    out = tmp_path / "sc2"
    assert main(["data", "fetch", "speech_commands_v2", "--archive", str(archive), "--out", str(out)]) == 0
    assert f"dataset ready in {out}" in capsys.readouterr().out
    assert len(manifest.read(out / "manifest.csv")) == len(EXPECTED) + 1

    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\0" * 100)
    rc = main(["data", "fetch", "speech_commands_v2", "--archive", str(bad), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("kws: error:") and str(bad) in err[0]
    assert not (tmp_path / "o2").exists()
