"""`kws bench --mode accuracy`: top-1, per-class accuracy, confusion matrix and MLPerf Tiny's AUC.

Datasets:
- audio in Speech Commands layout, DIR/<label>/*.wav|flac (16 kHz mono): features made on the host by
  our C frontend's mlperf_kws01 preset (the device's own code, DESIGN.md decisions 1-2), padded / cut to
  1 s as MLPerf's scripts do. Folder names map as MLPerf KWS does: the 10 words to their index,
  `_silence_` to silence, every other word to `_unknown_`; `_background_noise_` is skipped.
- MLPerf Tiny's own format: DIR/y_labels.csv (rows `file, classes, class`, no header, as the runner's
  DataSet reads it) beside the .bin input files (490 int8 bytes each for kws01).

Labels: MLPerf KWS's 12 classes in its order (LABELS).

AUC: the definition the MLPerf Tiny / EEMBC runner reports ("simplified average ROC AUC"): each result
vector normalised to sum 1; for every class, a one-vs-rest ROC over the thresholds 0.00, 0.01, ..., 1.00
(score > threshold counts as positive) with the point at threshold 0 set to (1, 1); the trapezoid area
under it; the mean over the classes. Implemented here from that description.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.errors import KwsError

LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"]
SILENCE, UNKNOWN = 10, 11
AUDIO_EXT = (".wav", ".flac")
CLIP_SAMPLES = 16000


def label_index(folder: str) -> int | None:
    """MLPerf KWS's class of a Speech Commands folder name (None: not a class, e.g. background noise)."""
    f = folder.lower()
    if f in LABELS[:10]:
        return LABELS.index(f)
    if f in ("_silence_", "silence"):
        return SILENCE
    if f.startswith("_background_noise"):
        return None
    return UNKNOWN


@dataclass
class Item:
    name: str            # path relative to the dataset folder
    label: int
    path: Path
    kind: str            # "audio" or "bin"


def list_items(root: Path) -> tuple[list[Item], str]:
    """(items sorted by name, "audio" | "bin")."""
    root = Path(root)
    if not root.is_dir():
        raise KwsError(f"--dataset {root}: no such folder")
    csv_path = root / "y_labels.csv"
    if csv_path.is_file():
        items = []
        with open(csv_path, newline="") as fh:
            for row_no, row in enumerate(csv.reader(fh), 1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 3:
                    raise KwsError(f"{csv_path}:{row_no}: expected 'file, classes, class', got {row}")
                name, classes, cls = (c.strip() for c in row[:3])
                try:
                    cls_i, n_cls = int(cls), int(classes)
                except ValueError:
                    raise KwsError(f"{csv_path}:{row_no}: class and classes must be integers, got {row}") from None
                if n_cls != len(LABELS) or not 0 <= cls_i < len(LABELS):
                    raise KwsError(f"{csv_path}:{row_no}: {n_cls} classes / class {cls_i}: kws01 has "
                                   f"{len(LABELS)} classes")
                p = root / name
                if not p.is_file():
                    raise KwsError(f"{csv_path}:{row_no}: {p} does not exist")
                items.append(Item(name, cls_i, p, "bin"))
        if not items:
            raise KwsError(f"{csv_path}: no rows")
        return items, "bin"
    items = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        cls = label_index(sub.name)
        if cls is None:
            continue
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in AUDIO_EXT:
                items.append(Item(f"{sub.name}/{f.name}", cls, f, "audio"))
    if not items:
        raise KwsError(f"--dataset {root}: no <label>/*.wav|flac clips and no y_labels.csv")
    return items, "audio"


def subset(items: list[Item], limit: int | None) -> list[Item]:
    """limit items spread evenly over the sorted list (so every class is represented), or all."""
    if not limit or limit >= len(items):
        return items
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in sorted(set(idx.tolist()))]


def features(items: list[Item], input_bytes: int = 490, progress=None) -> np.ndarray:
    """int8 [N, input_bytes]: the model inputs (mlperf_kws01 features of audio, or the .bin bytes)."""
    out = np.zeros((len(items), input_bytes), np.int8)
    if items and items[0].kind == "audio":
        import soundfile as sf

        from kws import features as fe
    for i, it in enumerate(items):
        if it.kind == "bin":
            data = it.path.read_bytes()
            if len(data) != input_bytes:
                raise KwsError(f"{it.path}: {len(data)} bytes, the model takes {input_bytes}")
            out[i] = np.frombuffer(data, np.int8)
        else:
            try:
                pcm, rate = sf.read(str(it.path), dtype="int16", always_2d=True)
            except Exception as e:  # noqa: BLE001 - libsndfile raises its own types
                raise KwsError(f"{it.path}: cannot read it: {e}") from None
            if rate != 16000:
                raise KwsError(f"{it.path}: {rate} Hz; mlperf_kws01 features need 16 kHz (resample with kws data import)")
            clip = np.zeros(CLIP_SAMPLES, np.int16)
            mono = pcm[:, 0][:CLIP_SAMPLES]
            clip[:len(mono)] = mono
            x = np.asarray(fe.compute(clip, preset="mlperf_kws01"), np.int8).reshape(-1)
            if x.size != input_bytes:
                raise KwsError(f"mlperf_kws01 features are {x.size} bytes, the model takes {input_bytes}")
            out[i] = x
        if progress is not None:
            progress(i + 1, len(items))
    return out


def mlperf_auc(scores: np.ndarray, labels: np.ndarray, n_classes: int = len(LABELS)) -> tuple[float, list[float]]:
    """(mean, per-class) of MLPerf Tiny's simplified ROC AUC (see the module docstring)."""
    s = np.asarray(scores, np.float64)
    tot = s.sum(axis=1, keepdims=True)
    s = np.divide(s, tot, out=np.zeros_like(s), where=tot != 0)
    labels = np.asarray(labels)
    thresholds = np.round(np.arange(101) / 100, 2)
    per = []
    for c in range(n_classes):
        pos = labels == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            per.append(float("nan"))
            continue
        above = s[:, c][None, :] > thresholds[:, None]            # [101, N]
        tpr = (above & pos[None, :]).sum(axis=1) / n_pos
        fpr = (above & ~pos[None, :]).sum(axis=1) / n_neg
        tpr[0], fpr[0] = 1.0, 1.0
        per.append(float(np.sum(0.5 * (tpr[:-1] + tpr[1:]) * (fpr[:-1] - fpr[1:]))))
    valid = [a for a in per if not np.isnan(a)]
    return (float(np.mean(valid)) if valid else float("nan")), per


def metrics(pred: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None) -> dict:
    pred = np.asarray(pred, int)
    labels = np.asarray(labels, int)
    n = len(labels)
    conf = np.zeros((len(LABELS), len(LABELS)), int)
    for t, p in zip(labels, pred):
        conf[t, p] += 1
    per_class = {}
    for c, name in enumerate(LABELS):
        m = labels == c
        k = int(m.sum())
        per_class[name] = {"n": k, "correct": int((pred[m] == c).sum()),
                           "accuracy": float((pred[m] == c).mean()) if k else None}
    out = {"top1": float((pred == labels).mean()) if n else None, "n": int(n),
           "correct": int((pred == labels).sum()), "labels": LABELS, "per_class": per_class,
           "confusion": conf.tolist()}
    if scores is not None and n:
        auc, per = mlperf_auc(scores, labels)
        out["auc"] = auc
        out["auc_per_class"] = dict(zip(LABELS, per))
        out["auc_definition"] = ("MLPerf Tiny runner: results normalised to sum 1, per-class ROC at thresholds "
                                 "0.00..1.00 step 0.01, trapezoid area, mean over classes")
    return out


def confusion_png(conf: list[list[int]], path: Path, title: str) -> Path | None:
    """The confusion matrix as a PNG (None when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    m = np.asarray(conf)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=60, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    hi = m.max() if m.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > hi / 2 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tflm_predictions(model: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, int8 outputs [N, C]) of the tflite-micro interpreter on the same inputs."""
    from kws.compile import sim

    model = Path(model)
    if not model.is_file():
        raise KwsError(f"--compare-tflm {model}: no such file")
    res = sim.run_tflm(model, x)  # any [N, ...] of the model's input size is reshaped
    out = np.asarray(res.outputs).reshape(len(x), -1)
    return out.argmax(axis=1), out
