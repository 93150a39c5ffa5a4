"""After training: float vs int8 quality, threshold calibration, metrics.json, plots, MODEL_CARD.md.

Everything is measured through the deployed path (C frontend features, int8 model in the
tflite-micro interpreter, the device's integer detector); the float model is measured beside it only
to state what quantization costs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from kws import config
from kws.evaluate import scoring, stats, streaming
from kws.evaluate.detector import refractory_from_ms


def _accuracy(pred: np.ndarray, y: np.ndarray) -> dict:
    n, k = len(y), int(np.sum(pred == y))
    lo, hi = stats.binomial_ci(k, n) if n else (0.0, 1.0)
    return {"top1": k / n if n else None, "ci95": [lo, hi], "n": n}


def confusion(pred: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def _negative_audio(items, maker, *, minutes: float, seed: int) -> list[np.ndarray]:
    """Negative clips (float32) re-augmented pass after pass until `minutes` of audio: each pass gives
    every clip another speed, room, gain and noise."""
    clips, total, p = [], 0.0, 0
    src = [it for it in items if it.pcm is not None]
    if not src:
        return clips
    while total < minutes * 60.0 and p < 200:
        rng = np.random.default_rng([seed, 7919, p])
        for it in src:
            x = it.pcm if p == 0 else maker.augmenter.before_placement(it.pcm, rng)
            y = x if p == 0 else maker.augmenter.after_placement(x.astype(np.float32), rng).astype(np.float32) / 32768.0
            clips.append(y)
            total += len(y) / config.SAMPLE_RATE_HZ
        p += 1
    return clips


def wake_streams(items, maker, model, dep, *, minutes: float, seed: int, label: str):
    """Positives one by one, negatives as one long re-augmented stream: the synthetic evaluation set."""
    pos = [streaming.positive_stream(it.pcm, name=it.name, model=model, dep=dep,
                                     noise=maker.augmenter.noise_pool[0] if maker.augmenter.noise_pool else None)
           for it in items if it.label == dep.positive_class and it.pcm is not None]
    neg_items = [it for it in items if it.label != dep.positive_class]
    neg = streaming.negative_stream(_negative_audio(neg_items, maker, minutes=minutes, seed=seed),
                                    name=f"{label} negatives", model=model, dep=dep)
    return pos + [neg]


def finish(*, cfg, model, tflite: bytes, corpus, maker, history, test, val, staging: Path, fingerprint: str,
           train_seconds: float, finetune_from, data_dirs) -> dict:
    """Write every artifact of the model folder into `staging`; returns metrics."""
    from kws.train import card, dataset, models, quantize

    plots = staging / "plots"
    plots.mkdir()
    model.save(staging / "model.keras")
    (staging / "model_int8.tflite").write_bytes(tflite)
    preset = maker.preset
    int8 = streaming.Int8Model(tflite)
    n_cls = len(corpus.classes)

    print("[report] float vs int8 on the test split")
    test_q, test_y = test
    float_pred = np.argmax(model.predict(dataset.to_model_input(test_q, preset, cfg.model.arch), verbose=0), axis=1) \
        if len(test_y) else np.zeros(0, int)
    int8_out = int8.batch(test_q)
    int8_pred = np.argmax(int8_out, axis=1) if len(test_y) else np.zeros(0, int)
    conf = confusion(int8_pred, test_y, n_cls)
    metrics = {
        "fingerprint": fingerprint, "classes": corpus.classes, "frontend": preset.name,
        "model": {"arch": cfg.model.arch, "parameters": models.deployed_parameters(model), "macs": models.macs(model),
                  "input_shape": list(int8.input_shape), "tflite_bytes": len(tflite),
                  "ops": sorted(set(quantize.tflite_ops(tflite))), "activation_peak_bytes": quantize.activation_peak_bytes(tflite)},
        "data": {split: corpus.counts(split) for split in config.SPLITS},
        "data_dirs": [str(d) for d in data_dirs], "voices": _voices(corpus),
        "train": {"epochs": len(history), "seconds": round(train_seconds, 1), "finetune_from": str(finetune_from) if finetune_from else None},
        "test_clips": {"float": _accuracy(float_pred, test_y), "int8": _accuracy(int8_pred, test_y),
                       "int8_agrees_with_float": float(np.mean(int8_pred == float_pred)) if len(test_y) else None,
                       "confusion_int8": conf.tolist()},
    }
    _curves_png(history, plots / "training_curves.png")
    _confusion_png(conf, corpus.classes, plots / "confusion_matrix.png")

    if cfg.is_wake_word:
        dep = streaming.Deployment(preset=preset.name, window_frames=cfg.model.window_frames,
                                   stride_hops=cfg.model.stride_hops, positive_class=0, classes=tuple(corpus.classes))
        inv_ms = dep.invocations_to_ms(1)
        refr = sorted({refractory_from_ms(ms, hop_ms=inv_ms) for ms in cfg.detector.refractory_ms})
        print(f"[calibrate] streaming validation audio through the deployed path ({cfg.detector.calibration_minutes:g} min of negatives)")
        val_streams = wake_streams(corpus.split("validation"), maker, int8, dep, minutes=cfg.detector.calibration_minutes,
                                   seed=cfg.train.seed, label="validation")
        cal = scoring.calibrate(val_streams, target_faph=cfg.detector.target_faph, windows=cfg.detector.windows,
                                refractories=refr)
        if cal is None:
            # Nothing reaches the target on this little audio: the strictest setting, said plainly.
            cal = {"threshold": 255, "window": max(cfg.detector.windows), "refractory": max(refr),
                   "note": "no setting met the target FAPH on the calibration audio"}
        dep = streaming.Deployment(**{**dep.to_json(), "threshold": int(cal["threshold"]), "window": int(cal["window"]),
                                      "refractory": int(cal["refractory"])})
        thresholds = {**dep.to_json(), "target_faph": cfg.detector.target_faph,
                      "refractory_ms": dep.invocations_to_ms(dep.refractory),
                      "calibration": {k: cal.get(k) for k in ("frr", "ci95", "faph", "faph_ci95", "false_accepts",
                                                               "negative_hours", "note") if k in cal},
                      "calibrated_on": "validation split: wake-word clips one by one, negatives re-augmented"}
        _write_json(staging / "thresholds.json", thresholds)
        print(f"          threshold {dep.threshold}, window {dep.window}, refractory {dep.refractory} invocations")
        print("[report] streaming test audio")
        test_streams = wake_streams(corpus.split("test"), maker, int8, dep, minutes=cfg.detector.calibration_minutes,
                                    seed=cfg.train.seed + 1, label="test")
        sw = scoring.sweep(test_streams, window=dep.window, refractory=dep.refractory)
        from kws.evaluate.detector import DetectorParams

        deployed = scoring.evaluate(test_streams, DetectorParams(dep.threshold, dep.window, dep.refractory))
        metrics["streaming_test"] = scoring.report_json(sw, evaluation=deployed)
        metrics["streaming_test"].pop("sweep", None)
        metrics["thresholds"] = thresholds
        from kws.evaluate import plots as eplots

        eplots.det_curve_png({"synthetic test split": sw}, plots / "det_curve.png",
                             title=f"{cfg.word!r}: DET on synthetic test audio", overwrite=True)
    _write_json(staging / "metrics.json", metrics)
    (staging / "config.json").write_text(json.dumps(_plain_cfg(cfg), indent=1))
    (staging / "MODEL_CARD.md").write_text(card.render(cfg, metrics))
    return metrics


def _voices(corpus) -> dict:
    """Distinct synthetic voices (engine:voice) and real sources of the wake-word clips."""
    src = {}
    for it in corpus.items:
        if it.label == 0 and it.pcm is not None:
            key = ":".join(it.source.split(":")[:3]) if it.source.startswith("synth:") else it.source.split(":")[0]
            src[key] = src.get(key, 0) + 1
    return {"distinct": len(src), "clips_by_source_kind": _by_kind(src)}


def _by_kind(src: dict) -> dict:
    out = {}
    for k, n in src.items():
        kind = k.split(":")[1] if k.startswith("synth:") else k
        out[kind] = out.get(kind, 0) + n
    return out


def _plain_cfg(cfg) -> dict:
    import dataclasses

    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(json.dumps(obj, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    os.replace(tmp, path)


def _curves_png(history: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    ep = [h["epoch"] for h in history]
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            vals = [h.get(prefix + key) for h in history]
            if any(v is not None for v in vals):
                ax.plot(ep, vals, style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _confusion_png(conf: np.ndarray, classes: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    ax.imshow(conf, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("int8 prediction")
    ax.set_ylabel("label")
    ax.set_title("test split, int8 model")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
