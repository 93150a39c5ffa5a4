"""The deployed path on the desk: audio -> C frontend (streaming) -> int8 model in the tflite-micro
interpreter every `stride_hops` hops -> uint8 wake-word scores, exactly what the device computes.

The model runs after frame j (0-based) when j + 1 >= window_frames and (j + 1) % stride_hops == 0,
on frames j + 1 - window_frames .. j; that invocation's time is the end of frame j's samples.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from kws import config
from kws.errors import KwsError


@dataclasses.dataclass(frozen=True)
class Deployment:
    """How the device runs a model: stored in thresholds.json beside model_int8.tflite."""
    preset: str
    window_frames: int
    stride_hops: int
    positive_class: int
    classes: tuple
    threshold: int = 128
    window: int = 1
    refractory: int = 0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: dict, where: str) -> "Deployment":
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("preset", "window_frames", "stride_hops", "positive_class", "classes") if n not in doc]
        if missing:
            raise KwsError(f"{where}: missing {', '.join(missing)}")
        d = cls(**{k: (tuple(v) if k == "classes" else v) for k, v in doc.items() if k in names})
        config.frontend_preset(d.preset)
        return d

    @property
    def hop_ms(self) -> float:
        p = config.frontend_preset(self.preset)
        return 1000.0 * p.hop_samples / p.sample_rate_hz

    def invocations_to_ms(self, n: int) -> float:
        return n * self.stride_hops * self.hop_ms


def load_deployment(model_dir: Path) -> tuple[bytes, Deployment]:
    model_dir = Path(model_dir)
    tfl, th = model_dir / "model_int8.tflite", model_dir / "thresholds.json"
    for f in (tfl, th):
        if not f.is_file():
            raise KwsError(f"{model_dir}: no {f.name} (not a kws wake-word model folder?)")
    try:
        doc = json.loads(th.read_text())
    except (OSError, ValueError) as exc:
        raise KwsError(f"{th}: unreadable ({exc})") from None
    return tfl.read_bytes(), Deployment.from_json(doc, str(th))


class Int8Model:
    """The int8 .tflite in the tflite-micro Python interpreter (the golden reference)."""

    def __init__(self, model_bytes: bytes):
        from tflite_micro.python.tflite_micro import runtime

        try:
            self.interp = runtime.Interpreter.from_bytes(model_bytes)
        except Exception as exc:
            raise KwsError(f"model: tflite-micro cannot load it ({str(exc).splitlines()[0][:120]})") from None
        d = self.interp.get_input_details(0)
        self.input_shape = tuple(int(s) for s in d["shape"])
        if d["dtype"] != np.int8:
            raise KwsError(f"model: input dtype is {d['dtype']}, expected int8")
        qp = d["quantization_parameters"]
        self.input_scale, self.input_zero_point = float(qp["scales"][0]), int(qp["zero_points"][0])

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """int8 [frames, bins] -> int8 [classes]."""
        self.interp.set_input(window.reshape(self.input_shape), 0)
        self.interp.invoke()
        return self.interp.get_output(0).reshape(-1)

    def batch(self, windows: np.ndarray) -> np.ndarray:
        """int8 [n, frames, bins] -> int8 [n, classes]."""
        return np.stack([self(w) for w in windows]) if len(windows) else np.zeros((0, 0), np.int8)


def invocation_frames(n_frames: int, window_frames: int, stride_hops: int) -> np.ndarray:
    """Indices j of the frames after which the model runs."""
    j = np.arange(n_frames)
    return j[((j + 1) >= window_frames) & (((j + 1) % stride_hops) == 0)]


def score_audio(pcm: np.ndarray, model: Int8Model, dep: Deployment) -> tuple[np.ndarray, np.ndarray]:
    """int16 [n] -> (scores uint8 [M] = int8 output of the positive class + 128, times_ms float64 [M])."""
    from kws import features

    preset = config.frontend_preset(dep.preset)
    feats = features.stream(pcm, preset=dep.preset)
    js = invocation_frames(len(feats), dep.window_frames, dep.stride_hops)
    scores = np.empty(len(js), dtype=np.uint8)
    for k, j in enumerate(js):
        out = model(feats[j + 1 - dep.window_frames: j + 1])
        scores[k] = int(out[dep.positive_class]) + 128
    times_ms = (js * preset.hop_samples + preset.window_samples) * 1000.0 / preset.sample_rate_hz
    return scores, times_ms.astype(np.float64)


def pad_for_stream(x: np.ndarray, *, before_s: float, after_s: float, noise: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """float32 clip with before_s / after_s of quiet room (noise pool at -60 dBFS, or zeros) around it.
    Returns (padded float32, offset of the clip in samples)."""
    sr = config.SAMPLE_RATE_HZ
    nb, na = int(before_s * sr), int(after_s * sr)
    out = np.zeros(nb + len(x) + na, dtype=np.float32)
    if noise is not None and len(noise):
        rng = rng or np.random.default_rng(0)
        from kws.train.augment import noise_segment

        seg = noise_segment([noise], len(out), rng)
        rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) or 1.0
        out += seg * np.float32(10 ** (-60 / 20) / rms)
    out[nb: nb + len(x)] += x
    return out, nb


def positive_stream(x: np.ndarray, *, name: str, model: Int8Model, dep: Deployment,
                    noise: np.ndarray | None = None, before_s: float = 1.0, after_s: float = 1.0):
    """A clip holding one wake word, with quiet room around it -> ScoredStream (utterance from energy)."""
    from kws.evaluate.scoring import ScoredStream
    from kws.train.augment import speech_extent, to_int16

    padded, offset = pad_for_stream(x, before_s=before_s, after_s=after_s, noise=noise,
                                    rng=np.random.default_rng(len(x)))
    s, e = speech_extent(x)
    scores, times = score_audio(to_int16(padded), model, dep)
    sr = config.SAMPLE_RATE_HZ
    return ScoredStream(scores=scores, times_ms=times, duration_s=len(padded) / sr, kind="positive",
                        utterance_ms=((offset + s) * 1000.0 / sr, (offset + e) * 1000.0 / sr), name=name)


def negative_stream(clips: list[np.ndarray], *, name: str, model: Int8Model, dep: Deployment):
    """Clips played back to back as one long stream that must never trigger -> ScoredStream."""
    from kws.evaluate.scoring import ScoredStream
    from kws.train.augment import to_int16

    x = np.concatenate(clips) if clips else np.zeros(0, np.float32)
    if len(x) == 0:
        raise KwsError(f"{name}: no negative audio")
    scores, times = score_audio(to_int16(x), model, dep)
    return ScoredStream(scores=scores, times_ms=times, duration_s=len(x) / config.SAMPLE_RATE_HZ,
                        kind="negative", name=name)
