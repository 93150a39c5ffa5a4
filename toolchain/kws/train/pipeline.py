"""`kws train`: config -> data -> float model -> int8 model -> calibrated thresholds -> model folder.

Every step reads and writes files. The work folder (build/train/<name>-<fingerprint>/) holds the
per-epoch checkpoints, so a rerun with the same config and data resumes; the model folder is
assembled under a temporary name and renamed into place only when everything succeeded, so a
failed run never replaces an existing model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from kws import config
from kws.errors import KwsError


def synth_cache_dir(cfg: config.TrainConfig, *, root: Path = Path("data/cache")) -> Path:
    """Where the synthetic data of `cfg` lives: one folder per distinct set of parameters."""
    from kws.data.synth import RECIPE_VERSION, label_for

    key = json.dumps({"word": cfg.word, "count": cfg.data.synth_count,
                      "negatives": cfg.data.synth_negatives, "seed": cfg.data.seed,
                      "recipe": RECIPE_VERSION}, sort_keys=True)
    return root / f"synth-{label_for(cfg.word)}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def prepare_data(cfg: config.TrainConfig, *, cache_root: Path = Path("data/cache")) -> Path:
    """Synthesize (or reuse) and validate the training data; returns its folder."""
    from kws.data import manifest, synth, validate

    data_dir = synth_cache_dir(cfg, root=cache_root)
    if (data_dir / config.MANIFEST_NAME).is_file():
        print(f"[data] reusing {data_dir} (same word, counts and seed)")
    else:
        print(f"[data] synthesizing {cfg.data.synth_count} x {cfg.word!r} and "
              f"{cfg.data.synth_negatives} negatives into {data_dir}")
        synth.synth(word=cfg.word, count=cfg.data.synth_count, out=data_dir,
                    negatives=cfg.data.synth_negatives, seed=cfg.data.seed)
    manifest.check_files(data_dir, manifest.read(data_dir / config.MANIFEST_NAME))
    print("[data] validating")
    report = validate.validate(data_dir, quarantine=True)
    print(f"       {report.summary_line()}")
    if report.errors_remaining:
        raise KwsError(f"{data_dir}: validation left {report.errors_remaining} errors; see {data_dir / '_report' / 'report.md'}")
    return data_dir


def config_from_args(*, config_path: str | None, word: str | None, out: str | None) -> config.TrainConfig:
    if config_path and word:
        raise KwsError("kws train: give either --config or --word, not both")
    if config_path:
        cfg = config.load_train_config(config_path)
        return dataclasses.replace(cfg, out=out) if out else cfg
    if word:
        return config.check_train_config(config.TrainConfig(word=word, out=out or config.default_out(word)), "--word")
    raise KwsError("kws train: give --config FILE or --word WORD (see kws train --help)")


def _fingerprint(cfg: config.TrainConfig, data_dirs: list[Path], finetune_from: Path | None) -> str:
    """Hash of everything that decides the trained weights: config, data listings, starting model."""
    doc = dataclasses.asdict(cfg)
    doc.pop("out")          # where the model goes does not change it
    h = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode())
    for d in data_dirs:
        mf = d / config.MANIFEST_NAME
        if mf.is_file():
            h.update(mf.read_bytes())
        else:
            for f in sorted(p for p in d.rglob("*") if p.is_file()):
                h.update(f"{f.relative_to(d)}:{f.stat().st_size}\n".encode())
    if finetune_from is not None:
        h.update((finetune_from / "model.keras").read_bytes())
    return h.hexdigest()


def run_cli(*, config_path: str | None, word: str | None, out: str | None, strategy: str = "default",
            cpu_devices: int | None = None, finetune_from: str | None = None, epochs: int | None = None,
            force: bool = False) -> int:
    cfg = config_from_args(config_path=config_path, word=word, out=out)
    if epochs is not None:
        if epochs < 1:
            raise KwsError("--epochs must be >= 1")
        field = "finetune_epochs" if finetune_from else "epochs"
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **{field: epochs}))
    train(cfg, strategy=strategy, cpu_devices=cpu_devices,
          finetune_from=Path(finetune_from) if finetune_from else None, force=force)
    return 0


def _check_out(out: Path, fingerprint: str, force: bool) -> bool:
    """True when out already holds this exact model (nothing to do)."""
    if not out.exists():
        return False
    meta = out / "metrics.json"
    if meta.is_file():
        try:
            if json.loads(meta.read_text()).get("fingerprint") == fingerprint:
                return True
        except ValueError:
            pass
    if not force:
        raise KwsError(f"{out}: exists and holds another model (or other files); choose another output, "
                       "or pass --force to build anew (the old folder is kept beside it as .old-<time>)")
    return False


def train(cfg: config.TrainConfig, *, strategy: str = "default", cpu_devices: int | None = None,
          finetune_from: Path | None = None, force: bool = False, work_root: Path = Path("build/train")) -> Path:
    """The whole recipe; returns the model folder."""
    t0 = time.monotonic()
    out = Path(cfg.out)
    if finetune_from is not None and not (finetune_from / "model.keras").is_file():
        raise KwsError(f"--finetune-from {finetune_from}: no model.keras there (a folder kws train wrote)")
    if cfg.is_wake_word:
        data_dirs = ([prepare_data(cfg)] if cfg.data.synth_count > 0 else []) + [Path(d) for d in cfg.data.dirs]
    else:
        data_dirs = [Path(cfg.commands.dataset), *map(Path, cfg.data.dirs)]
    fp = _fingerprint(cfg, data_dirs, finetune_from)
    if _check_out(out, fp, force):
        print(f"{out}: already built from this config and data (fingerprint {fp[:10]}); nothing to do")
        return out

    from kws.train import dataset, loop, augment, report

    loop.configure_devices(cpu_devices)
    print("[data] loading clips")
    corpus = dataset.build(cfg, data_dirs=data_dirs)
    if cfg.data.dirs and cfg.data.dirs_repeat > 1:
        extra = [it for it in corpus.items if it.split == "train" and any(it.name.startswith(str(d)) for d in cfg.data.dirs)]
        corpus.items += extra * (cfg.data.dirs_repeat - 1)
    for split in ("train", "validation", "test"):
        print(f"       {split:10s} " + ", ".join(f"{k} {v}" for k, v in corpus.counts(split).items()))
    preset, shape = loop.input_spec(cfg)
    n_classes = len(corpus.classes)
    positive = frozenset(range(n_classes - 2))
    maker = dataset.WindowMaker(preset=preset, window_frames=cfg.model.window_frames,
                                augmenter=augment.Augmenter(cfg.augment, noise_pool=corpus.noise),
                                positive_labels=positive, silence_label=n_classes - 2, shift_ms=cfg.augment.shift_ms,
                                context_pool=[it.pcm for it in corpus.split("train")
                                              if it.pcm is not None and it.label == n_classes - 1])
    seq = loop.make_sequence(corpus.split("train"), maker, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                             arch=cfg.model.arch, num_classes=n_classes, balance=cfg.train.balance)
    val_q, val_y = loop.fixed_windows(corpus.split("validation"), maker)
    test_q, test_y = loop.fixed_windows(corpus.split("test"), maker)

    work = work_root / f"{corpus.classes[0] if cfg.is_wake_word else 'commands'}-{fp[:10]}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1, default=str))
    strat = loop.make_strategy(strategy)
    print(f"[train] {cfg.model.arch} on {len(seq)} batches/epoch, strategy {strategy} "
          f"({strat.num_replicas_in_sync} replica(s)), work folder {work}")

    from kws.train import models

    if finetune_from is not None:
        src_meta = json.loads((finetune_from / "metrics.json").read_text()) if (finetune_from / "metrics.json").is_file() else {}
        if src_meta.get("classes") and src_meta["classes"] != corpus.classes:
            raise KwsError(f"--finetune-from {finetune_from}: its classes {src_meta['classes']} differ from {corpus.classes}")

        def build_model():
            import keras

            m = keras.models.load_model(finetune_from / "model.keras", compile=False)
            loop.compile_model(m, cfg.train.finetune_learning_rate, cfg.train.label_smoothing)
            return m
        epochs, lr = cfg.train.finetune_epochs, cfg.train.finetune_learning_rate
    else:
        def build_model():
            return models.build(cfg.model, input_shape=shape, num_classes=n_classes, seed=cfg.train.seed)
        epochs, lr = cfg.train.epochs, cfg.train.learning_rate
    import keras

    keras.utils.set_random_seed(cfg.train.seed)
    model, history = loop.fit(build_model=build_model, train_seq=seq,
                              val=(dataset.to_model_input(val_q, preset, cfg.model.arch), val_y),
                              work=work, epochs=epochs, learning_rate=lr, strategy=strat,
                              seed=cfg.train.seed, label_smoothing=cfg.train.label_smoothing)
    train_s = time.monotonic() - t0

    print("[quantize] int8 post-training quantization")
    from kws.train import quantize

    rep_items = corpus.split("train")
    rep_rng = np.random.default_rng(cfg.train.seed)
    rep_q = np.stack([maker.features(rep_items[i], None)
                      for i in rep_rng.choice(len(rep_items), size=min(400, len(rep_items)), replace=False)])
    tflite = quantize.to_int8_tflite(model, dataset.to_model_input(quantize.with_extremes(rep_q), preset, cfg.model.arch))
    quantize.check_input_matches(tflite, preset)

    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        report.finish(cfg=cfg, model=model, tflite=tflite, corpus=corpus, maker=maker, history=history,
                      test=(test_q, test_y), val=(val_q, val_y), staging=staging, fingerprint=fp,
                      train_seconds=train_s, finetune_from=finetune_from, data_dirs=data_dirs)
        if out.exists():
            old = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(out, old)
            print(f"kept the previous model as {old}")
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"\n{out}: done in {time.monotonic() - t0:.0f} s. See {out / 'MODEL_CARD.md'}", file=sys.stderr)
    return out
