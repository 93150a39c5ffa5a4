"""The training loop: Keras fit over windows made on the fly, under a tf.distribute strategy, with a
checkpoint per epoch that a rerun resumes from, TensorBoard logs, and a seed that fixes everything.

Resumption is exact: the batch order and every augmentation draw are keyed by (seed, epoch, batch),
and each checkpoint holds the optimizer state, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from kws import config
from kws.errors import KwsError
from kws.train import dataset

STRATEGIES = ("default", "mirrored", "multiworker")
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def configure_devices(cpu_devices: int | None) -> None:
    """Split the CPU into n logical devices (before TensorFlow uses it): mirrored training on one machine."""
    import tensorflow as tf

    if cpu_devices and cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError as exc:
            raise KwsError(f"--cpu-devices {cpu_devices}: TensorFlow is already initialised ({exc})") from None


def make_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multiworker":       # workers and this one's index come from TF_CONFIG
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise KwsError(f"--strategy {name!r} is unknown (known: {', '.join(STRATEGIES)})")


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights, mean 1 over the examples: float32 [num_classes]."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return w.astype(np.float32)


class WindowBatches:
    """Augmented training batches, each a pure function of (seed, epoch, batch index):
    (x float32 [b, *input], y int32 [b], w float32 [b] class-balancing weights)."""

    def __init__(self, items, maker: dataset.WindowMaker, *, batch_size: int, seed: int, arch: str,
                 num_classes: int, balance: bool):
        self.items, self.maker, self.batch_size, self.seed, self.arch = items, maker, batch_size, seed, arch
        self.labels = np.array([it.label for it in items], dtype=np.int32)
        self.num_classes = num_classes
        self.weights = class_weights(self.labels, num_classes) if balance else np.ones(num_classes, np.float32)

    def __len__(self) -> int:
        return math.ceil(len(self.items) / self.batch_size)

    def batch(self, epoch: int, idx: int):
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.items))
        ids = order[idx * self.batch_size: (idx + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, epoch, idx])
        q = np.stack([self.maker.features(self.items[i], rng) for i in ids])
        y = self.labels[ids]
        return dataset.to_model_input(q, self.maker.preset, self.arch), one_hot(y, self.num_classes), self.weights[y]

    def dataset(self, start_epoch: int, epochs: int):
        """tf.data over epochs start_epoch..epochs-1, in order (a generator: nothing runs ahead of its turn
        except the prefetched batches of that same order)."""
        import tensorflow as tf

        shape = dataset.input_shape(self.maker.preset, self.maker.window_frames, self.arch)

        def gen():
            for e in range(start_epoch, epochs):
                for i in range(len(self)):
                    yield self.batch(e, i)

        sig = (tf.TensorSpec((None, *shape), tf.float32), tf.TensorSpec((None, self.num_classes), tf.float32),
               tf.TensorSpec((None,), tf.float32))
        return tf.data.Dataset.from_generator(gen, output_signature=sig).prefetch(2)


def one_hot(y: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[y]


def compile_model(model, learning_rate, label_smoothing: float) -> None:
    """Adam, cross-entropy on one-hot targets with label smoothing, accuracy weighted like the loss."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def make_sequence(items, maker: dataset.WindowMaker, **kw) -> WindowBatches:
    return WindowBatches(items, maker, **kw)


def fixed_windows(items, maker: dataset.WindowMaker) -> tuple[np.ndarray, np.ndarray]:
    """Unaugmented windows: int8 [n, frames, bins], labels int32 [n]."""
    if not items:
        return np.zeros((0, maker.window_frames, maker.preset.row_size), np.int8), np.zeros(0, np.int32)
    return (np.stack([maker.features(it, None) for it in items]),
            np.array([it.label for it in items], dtype=np.int32))


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob("epoch-*.keras"))


def latest_checkpoint(ckpt_dir: Path) -> tuple[int, Path | None]:
    ck = _checkpoints(ckpt_dir)
    if not ck:
        return 0, None
    return int(ck[-1].stem.split("-")[1]), ck[-1]


def load_model(path: Path):
    """A saved .keras model, or KwsError naming the file when it cannot be read."""
    import keras

    try:
        return keras.models.load_model(path, compile=True)
    except Exception as exc:   # zip, h5 and deserialization errors all mean "unusable checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KwsError(f"{path}: corrupt or unreadable checkpoint ({first[:160]}); move it away to "
                       "resume from the one before, or remove the work folder to start over") from None


def fit(*, build_model, train_seq, val: tuple[np.ndarray, np.ndarray], work: Path, epochs: int,
        learning_rate: float, strategy, seed: int = 0, label_smoothing: float = 0.0, verbose: int | None = None) -> tuple[object, list[dict]]:
    """Train (or resume) into work/: checkpoints/epoch-NNN.keras, history.json, tensorboard/.
    build_model() makes the fresh keras.Model (called inside the strategy scope). Returns the model
    and the per-epoch history."""
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()   # same seed, same weights (CPU kernels allow it)
    ckpt_dir = work / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    hist_path = work / "history.json"
    start, last = latest_checkpoint(ckpt_dir)
    history = json.loads(hist_path.read_text())[:start] if last and hist_path.is_file() else []
    with strategy.scope():
        if last is not None:
            print(f"      resuming from {last} (epoch {start} of {epochs})")
            model = load_model(last)
        else:
            model = build_model()
            steps = max(1, len(train_seq)) * epochs
            schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
            compile_model(model, schedule, label_smoothing)
    if start >= epochs:
        return model, history

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            history.append(entry)
            path = ckpt_dir / f"epoch-{epoch + 1:03d}.keras"
            tmp = ckpt_dir / f".tmp-{os.getpid()}-{path.name}"
            try:
                self.model.save(tmp)
                os.replace(tmp, path)
                _write_json(hist_path, history)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                if exc.errno in _NO_SPACE:
                    raise KwsError(f"{ckpt_dir}: no space left writing the epoch {epoch + 1} checkpoint "
                                   f"({exc.strerror}); earlier checkpoints are intact") from None
                raise KwsError(f"{path}: cannot write checkpoint ({exc.strerror or exc})") from None

    class Reseed(keras.callbacks.Callback):
        """Dropout's random state is not in a checkpoint: set it from (seed, epoch) at every epoch start,
        so a resumed run draws exactly what the uninterrupted run drew."""

        def on_epoch_begin(self, epoch, logs=None):
            for i, layer in enumerate(self.model.layers):
                for j, sg in enumerate(getattr(layer, "_seed_generators", []) or []):
                    sg.state.assign(np.array([(seed * 1000003 + epoch * 7919 + i * 131 + j) % (1 << 31), 0], dtype=np.int64))

    callbacks = [Reseed(), Checkpoint(), keras.callbacks.TensorBoard(log_dir=str(work / "tensorboard"), write_graph=False)]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    x_val, y_val = val
    try:
        model.fit(train_seq.dataset(start, epochs), steps_per_epoch=len(train_seq),
                  validation_data=(x_val, one_hot(y_val, model.output_shape[-1])) if len(y_val) else None, epochs=epochs,
                  initial_epoch=start, callbacks=callbacks, verbose=verbose, shuffle=False)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise KwsError(f"{work}: no space left on device during training ({exc.strerror})") from None
        raise
    return model, history


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def input_spec(cfg: config.TrainConfig) -> tuple[config.FrontendPreset, tuple[int, int, int]]:
    preset = config.frontend_preset(cfg.frontend)
    return preset, dataset.input_shape(preset, cfg.model.window_frames, cfg.model.arch)
