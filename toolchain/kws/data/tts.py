"""Speech engines for `kws data synth`: espeak-ng, flite and festival, behind one small interface.

Each engine lists its voices and renders text to float32 samples. Which engines and voices exist is
read off the machine (never assumed), so the same code uses whatever `make setup` installed.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kws.errors import KwsError

_TIMEOUT_S = 60


@dataclasses.dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng" | "flite" | "festival"
    name: str    # engine-specific voice id, e.g. "en-us+f3", "slt", "kal_diphone"

    @property
    def speaker(self) -> str:
        return f"{self.engine}:{self.name}"


def _run(cmd: list[str], *, input_text: str | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, input=input_text.encode() if input_text is not None else None,
                              capture_output=True, timeout=_TIMEOUT_S)
    except FileNotFoundError:
        raise KwsError(f"{cmd[0]}: not found on PATH; install it (`make setup` does)") from None
    except subprocess.TimeoutExpired:
        raise KwsError(f"{cmd[0]}: timed out after {_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise KwsError(f"{cmd[0]}: failed with status {proc.returncode} ({err[-1] if err else 'no message'})")
    return proc.stdout


def _decode(data: bytes, what: str) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        x, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for bad streams
        raise KwsError(f"{what}: produced no decodable audio ({exc})") from None
    if x.shape[0] == 0 or not np.any(x):
        raise KwsError(f"{what}: produced silence")
    return x.mean(axis=1).astype(np.float32), int(rate)


def _render_to_file(cmd_for: callable, what: str, input_text: str | None = None) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory(prefix="kws-tts-") as tmp:
        out = Path(tmp) / "out.wav"
        _run(cmd_for(str(out)), input_text=input_text)
        if not out.is_file():
            raise KwsError(f"{what}: wrote no audio")
        return _decode(out.read_bytes(), what)


class Espeak:
    """espeak-ng: every English accent it ships (not the MBROLA ones, which need extra data) x variants."""

    name = "espeak-ng"
    # Variants that do not sound like a person (robots, effects, test voices) are left out.
    _SKIP_VARIANT = re.compile(r"robo|demonic|tweaky|fast|announcer", re.IGNORECASE)

    def available(self) -> bool:
        return shutil.which("espeak-ng") is not None

    @functools.lru_cache(maxsize=None)
    def version(self) -> str:
        return _run(["espeak-ng", "--version"]).decode().split(" Data")[0].strip()

    @functools.lru_cache(maxsize=None)
    def accents(self) -> tuple[str, ...]:
        out = _run(["espeak-ng", "--voices=en"]).decode().splitlines()[1:]
        accents = set()
        for line in out:
            cols = line.split()
            if len(cols) >= 5 and cols[4].startswith("gmw/"):
                accents.add(cols[1])
        return tuple(sorted(accents))

    @functools.lru_cache(maxsize=None)
    def variants(self) -> tuple[str, ...]:
        out = _run(["espeak-ng", "--voices=variant"]).decode().splitlines()[1:]
        names = set()
        for line in out:
            cols = line.split()
            if len(cols) >= 5 and cols[4].startswith("!v/"):
                v = cols[4][3:]
                if not self._SKIP_VARIANT.search(v):
                    names.add(v)
        return tuple(sorted(names))

    def voices(self) -> list[Voice]:
        return [Voice(self.name, f"{a}+{v}") for a in self.accents() for v in self.variants()]

    def render(self, text: str, voice: Voice, *, speed: float, pitch: float, gap: int = 0) -> tuple[np.ndarray, int]:
        wpm = int(round(175 * speed))
        pitch_0_99 = int(np.clip(round(50 + 30 * pitch), 0, 99))
        cmd = ["espeak-ng", "--stdout", "-v", voice.name, "-s", str(wpm), "-p", str(pitch_0_99), "-g", str(gap), text]
        return _decode(_run(cmd), f"espeak-ng voice {voice.name}")


class Flite:
    """flite: its compiled-in voices (the limited-domain `awb_time` clock voice is left out)."""

    name = "flite"

    def available(self) -> bool:
        return shutil.which("flite") is not None

    @functools.lru_cache(maxsize=None)
    def version(self) -> str:
        proc = subprocess.run(["flite", "--version"], capture_output=True, text=True, timeout=_TIMEOUT_S)
        lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if "version" in ln]
        return lines[0] if lines else "flite"

    def voices(self) -> list[Voice]:
        out = _run(["flite", "-lv"]).decode()
        names = out.split(":", 1)[-1].split()
        return [Voice(self.name, n) for n in sorted(names) if not n.endswith("_time")]

    def render(self, text: str, voice: Voice, *, speed: float, pitch: float, gap: int = 0) -> tuple[np.ndarray, int]:
        del gap
        stretch = f"{1.0 / speed:.3f}"
        return _render_to_file(
            lambda out: ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", out],
            f"flite voice {voice.name}")


class Festival:
    """festival's text2wave with every voice installed under /usr/share/festival/voices."""

    name = "festival"
    voices_root = Path("/usr/share/festival/voices")

    def available(self) -> bool:
        return shutil.which("text2wave") is not None and self.voices_root.is_dir()

    def version(self) -> str:
        return "festival " + ",".join(v.name for v in self.voices())

    def voices(self) -> list[Voice]:
        return [Voice(self.name, p.name) for p in sorted(self.voices_root.glob("*/*")) if p.is_dir()]

    def render(self, text: str, voice: Voice, *, speed: float, pitch: float, gap: int = 0) -> tuple[np.ndarray, int]:
        del gap
        if voice.name.endswith("_hts"):
            # HTS voices ignore Duration_Stretch; hts_engine takes a speed rate (-r) and a pitch shift in
            # half tones (-fm) instead.
            tune = (f"(set! hts_engine_params (append hts_engine_params (list (list \"-r\" {speed:.3f}) "
                    f"(list \"-fm\" {3.0 * pitch:.2f}))))")
        else:
            tune = f"(Parameter.set 'Duration_Stretch {1.0 / speed:.3f})"
        return _render_to_file(
            lambda out: ["text2wave", "-eval", f"(voice_{voice.name})", "-eval", tune, "-o", out],
            f"festival voice {voice.name}", input_text=text + "\n")


ENGINES = {e.name: e for e in (Espeak(), Flite(), Festival())}
# Share of clips per engine when several are present: espeak-ng has hundreds of accent x variant
# voices, the others a handful each.
ENGINE_SHARE = {"espeak-ng": 0.7, "flite": 0.15, "festival": 0.15}


@functools.lru_cache(maxsize=None)
def working_voices(engine_name: str) -> tuple[Voice, ...]:
    """The engine's voices that render a test word (espeak-ng: one probe per accent)."""
    engine = ENGINES[engine_name]
    if not engine.available():
        return ()
    voices = engine.voices()
    ok: list[Voice] = []
    probed: dict[str, bool] = {}
    for v in voices:
        key = v.name.split("+")[0] if engine_name == "espeak-ng" else v.name
        if key not in probed:
            probe = Voice(engine_name, key + ("+m1" if engine_name == "espeak-ng" else ""))
            try:
                engine.render("test", probe, speed=1.0, pitch=0.0)
                probed[key] = True
            except KwsError:
                probed[key] = False
        if probed[key]:
            ok.append(v)
    return tuple(ok)
