"""`kws train`: config -> data -> (model, quantization, calibration: issue 4).

Today it runs the data stages for real (synthesis into a cache keyed by its parameters, then
validation with quarantine) and says what comes next.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

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
        print(f"[1/2] data: reusing {data_dir} (same word, counts and seed)")
    else:
        print(f"[1/2] data: synthesizing {cfg.data.synth_count} x {cfg.word!r} and "
              f"{cfg.data.synth_negatives} negatives into {data_dir}")
        synth.synth(word=cfg.word, count=cfg.data.synth_count, out=data_dir,
                    negatives=cfg.data.synth_negatives, seed=cfg.data.seed)
    manifest.check_files(data_dir, manifest.read(data_dir / config.MANIFEST_NAME))
    print("[2/2] data: validating")
    report = validate.validate(data_dir, quarantine=True)
    print(f"      {report.summary_line()}")
    if report.errors_remaining:
        raise KwsError(f"{data_dir}: validation left {report.errors_remaining} errors; see {data_dir / '_report' / 'report.md'}")
    return data_dir


def run_cli(*, config_path: str | None, word: str | None, out: str | None) -> int:
    if config_path and (word or out):
        raise KwsError("kws train: give either --config or --word/--out, not both")
    if config_path:
        cfg = config.load_train_config(config_path)
    elif word:
        cfg = config.TrainConfig(word=word, out=out or f"models/{'_'.join(word.lower().split())}")
    else:
        raise KwsError("kws train: give --config FILE or --word WORD (see kws train --help)")
    data_dir = prepare_data(cfg)
    print(f"\nData for {cfg.word!r} is ready and validated in {data_dir}.", file=sys.stderr)
    print("Next: model training, int8 quantization and threshold calibration into "
          f"{cfg.out} arrive with issue 4; `make train` stops here until then.", file=sys.stderr)
    return 0
