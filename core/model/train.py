"""Training the batched ensemble: spatial inner validation, per-member early stopping.

The M members of :func:`~.build.build_model` are trained together, one optimizer step for
all of them. Each member has its own spatially separated validation group (blocks of space,
never random points): member ``m`` does not train on group ``m % folds`` and early-stops on
its loss there. Its predictions for that group are therefore out-of-fold and later calibrate
the prediction intervals (:mod:`.conformal`).

The loop is a small custom one around a compiled step (Keras' ``fit`` costs ~40 ms per epoch
in bookkeeping alone, more than a whole epoch of this model on two cores), but it drives
ordinary Keras callbacks: ``ReduceLROnPlateau`` on the summed validation loss,
``TerminateOnNaN``, and :class:`ProgressCallback`, which bridges to ``progress(fraction, text)``
and ``should_stop()``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import Cancelled, GcnnRnnError, InputDataError
from ..progress import ProgressFn, StopFn
from .config import ModelConfig, TrainConfig

logger = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - very old TensorFlow
        logger.debug("op determinism not available")


def spatial_groups(coords: np.ndarray, folds: int, block_size: float | None = None,
                   seed: int = 0) -> np.ndarray:
    """Assign samples to ``folds`` spatial groups made of whole square blocks.

    Parameters
    ----------
    coords : ndarray, shape (n, d)
    folds : int
    block_size : float, optional
        Side of the blocks; default a fifth of the larger side of the bounding box. Blocks are
        halved until there are at least twice as many occupied blocks as groups.
    seed : int

    Returns
    -------
    ndarray of int, shape (n,)
        Group per sample, ``0 .. folds - 1``; the blocks are dealt to the groups so that the
        group sizes are as even as the blocks allow.
    """
    xy = np.asarray(coords, dtype=float)[:, :2]
    span = np.ptp(xy, axis=0)
    size = float(block_size) if block_size else max(float(span.max()) / 5.0, 1e-9)
    while True:
        cells = np.floor((xy - xy.min(axis=0)) / size).astype(np.int64)
        _, block = np.unique(cells, axis=0, return_inverse=True)
        block = block.reshape(-1)
        n_blocks = int(block.max()) + 1
        # Too few occupied blocks to fill every group: make the blocks smaller.
        if n_blocks >= 2 * folds or n_blocks >= len(xy) or size < 1e-9 * max(span.max(), 1.0):
            break
        size /= 2.0
    rng = np.random.default_rng(seed)
    counts = np.bincount(block, minlength=n_blocks)
    order = rng.permutation(n_blocks)
    order = order[np.argsort(-counts[order], kind="stable")]  # big blocks first
    load = np.zeros(folds)
    group_of_block = np.empty(n_blocks, dtype=np.int64)
    for b in order:
        g = int(np.argmin(load + rng.random(folds) * 1e-6))
        group_of_block[b] = g
        load[g] += counts[b]
    return group_of_block[block]


@dataclass(frozen=True)
class TrainResult:
    """What happened during training.

    Attributes
    ----------
    history : dict of str to list of float
        Per epoch: ``loss`` (training), ``val_loss`` (mean of the members' validation
        losses), ``lr``.
    best_epochs : tuple of int
        The epoch (1-based) whose weights each member kept.
    best_val_losses : tuple of float
    epochs : int
        Epochs run.
    validation_member : ndarray of int, shape (n,)
        The member that held each sample out (-1: no member did).
    seconds : float
    """

    history: dict
    best_epochs: tuple[int, ...]
    best_val_losses: tuple[float, ...]
    epochs: int
    validation_member: np.ndarray
    seconds: float

    def to_dict(self) -> dict:
        return {
            "history": {k: [float(v) for v in vals] for k, vals in self.history.items()},
            "best_epochs": list(self.best_epochs),
            "best_val_losses": [float(v) for v in self.best_val_losses],
            "epochs": int(self.epochs),
            "seconds": float(self.seconds),
        }


def _progress_callback_class():
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        """Bridge Keras epochs to ``progress(fraction, text)`` and ``should_stop()``.

        Raises :class:`~gcnn_rnn.core.errors.Cancelled` at the end of an epoch when
        ``should_stop()`` is true.
        """

        def __init__(self, epochs: int, progress: ProgressFn | None, should_stop: StopFn | None):
            super().__init__()
            self.epochs = epochs
            self.progress = progress
            self.should_stop = should_stop

        def on_epoch_end(self, epoch, logs=None):
            if self.should_stop is not None and self.should_stop():
                raise Cancelled("cancelled by the user")
            if self.progress is not None:
                logs = logs or {}
                self.progress((epoch + 1) / self.epochs,
                              f"training epoch {epoch + 1} (val loss {logs.get('val_loss', 0):.4g})")

    return ProgressCallback


def _member_loss(kind: str, delta: float):
    import tensorflow as tf

    def elementwise(pred, target):
        err = pred - target
        if kind == "mse":
            return tf.square(err)
        a = tf.abs(err)
        quad = tf.minimum(a, delta)
        return 0.5 * tf.square(quad) + delta * (a - quad)

    return elementwise


class Runtime:
    """A built model with its optimizer and compiled functions, reusable across fits.

    Tracing the training step costs about a second on two cores; cross-validation fits the
    same architecture ten times, so the compiled functions (with a dynamic batch axis) are
    kept and every fit only resets the weights and the optimizer (:meth:`reset`).
    """

    def __init__(self, mcfg: ModelConfig, n_steps: int, n_sequence: int, n_static: int):
        import keras
        import tensorflow as tf

        from .build import build_model

        self.config = mcfg
        self.shapes = (int(n_steps), int(n_sequence), int(n_static))
        self.model = build_model(mcfg, *self.shapes)
        self.optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        self.model.compile(optimizer=self.optimizer, loss="mse")  # for the Keras callbacks
        variables = self.model.trainable_variables
        self.optimizer.build(variables)
        elementwise = _member_loss(mcfg.loss, float(mcfg.huber_delta))
        m = int(mcfg.members)
        model, optimizer = self.model, self.optimizer
        seq = tf.TensorSpec((None, n_steps, n_sequence), tf.float32)
        sta = tf.TensorSpec((None, n_static), tf.float32)
        col = tf.TensorSpec((None, 1), tf.float32)
        mem = tf.TensorSpec((None, m), tf.float32)

        @tf.function(input_signature=[seq, sta, col, mem])
        def train_step(xs, xt, yb, wb):
            with tf.GradientTape() as tape:
                pred = model({"sequence": xs, "static": xt}, training=True)
                per = elementwise(pred, yb) * wb
                loss = tf.reduce_sum(
                    tf.reduce_sum(per, 0) / tf.maximum(tf.reduce_sum(wb, 0), 1.0)
                )
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, variables)
            optimizer.apply(grads, variables)
            return loss / m

        @tf.function(input_signature=[seq, sta, col, mem])
        def member_losses(xs, xt, y, v):
            pred = model({"sequence": xs, "static": xt}, training=False)
            return tf.reduce_sum(elementwise(pred, y) * v, 0)

        @tf.function(input_signature=[seq, sta])
        def predict(xs, xt):
            return model({"sequence": xs, "static": xt}, training=False)

        self.train_step, self.member_losses, self.predict_fn = train_step, member_losses, predict

    def reset(self, learning_rate: float) -> None:
        """Fresh initial weights (from the current global seed) and a fresh optimizer state."""
        from .build import build_model

        fresh = build_model(self.config, *self.shapes)
        for dst, src in zip(self.model.weights, fresh.weights, strict=True):
            dst.assign(src.numpy())
        for layer in self.model.layers:
            if hasattr(layer, "reset_seed"):
                layer.reset_seed()
        for v in self.optimizer.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))
        self.optimizer.learning_rate.assign(float(learning_rate))

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.model.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for v, w in zip(self.model.weights, weights, strict=True):
            v.assign(w)

    def predict(self, inputs: dict[str, np.ndarray], batch: int = 4096) -> np.ndarray:
        """Member outputs ``(n, M)`` for scaled inputs, in fixed-size batches, through Keras.

        Prediction itself runs :mod:`.forward` (no TensorFlow); this is the Keras path it
        replaced, kept as the reference that tests and ``bench_predict_parts`` compare with.
        """
        n = len(inputs["static"])
        out = [
            self.predict_fn(inputs["sequence"][s : s + batch], inputs["static"][s : s + batch]
                            ).numpy()
            for s in range(0, n, batch)
        ]
        if not out:
            return np.zeros((0, int(self.config.members)), dtype=np.float32)
        return np.concatenate(out, axis=0)


_RUNTIMES: dict = {}
_MAX_RUNTIMES = 4


def get_runtime(mcfg: ModelConfig, n_steps: int, n_sequence: int, n_static: int) -> Runtime:
    """The cached :class:`Runtime` for this architecture and input shape (built if new)."""
    key = (mcfg, int(n_steps), int(n_sequence), int(n_static))
    rt = _RUNTIMES.pop(key, None)
    if rt is None:
        rt = Runtime(mcfg, n_steps, n_sequence, n_static)
    _RUNTIMES[key] = rt  # most recently used last
    while len(_RUNTIMES) > _MAX_RUNTIMES:
        _RUNTIMES.pop(next(iter(_RUNTIMES)))
    return rt


@dataclass(frozen=True)
class Schedule:
    """How one training run goes for its number of rows (:func:`schedule`)."""

    batch: int
    patience: int
    lr_patience: int
    min_delta: float
    validation_rows: np.ndarray
    large: bool


def schedule(n: int, cfg: TrainConfig) -> Schedule:
    """The batch, patiences and validation rows of a training run on ``n`` rows.

    Up to ``cfg.large_n`` rows: the configured batch and patiences, every row validated,
    any improvement restarts the patience. Above (the large-data schedule): the batch grows
    so that an epoch has at most ``cfg.max_steps`` steps (an epoch at 1e5 rows would otherwise
    be 1,563 steps of 64, 25 minutes for 60 epochs on two cores, and per-step overhead
    dominates small batches on a CPU); validation uses a seeded subsample of
    ``cfg.validation_rows`` rows (its loss is as steady as the full set's at that size); the
    patiences are halved (an epoch is then already ``max_steps`` updates of a larger batch,
    and the validation loss of thousands of rows is not noisy); and only a relative
    improvement of ``cfg.min_delta`` restarts a member's patience.
    """
    n = int(n)
    large = 0 < int(cfg.large_n) < n
    batch = min(int(cfg.batch_size), max(n, 1))
    if not large:
        return Schedule(batch, int(cfg.patience), int(cfg.lr_patience), 0.0,
                        np.arange(n), False)
    batch = max(batch, math.ceil(n / int(cfg.max_steps)))
    rows = np.arange(n)
    if n > int(cfg.validation_rows):
        rng = np.random.default_rng(int(cfg.seed) + 104729)
        rows = np.sort(rng.choice(n, int(cfg.validation_rows), replace=False))
    return Schedule(batch, max(2, int(cfg.patience) // 2), max(1, int(cfg.lr_patience) // 2),
                    float(cfg.min_delta), rows, True)


#: What TensorFlow, the compiled ensemble, its batches and the kriging behind the features
#: hold whatever the number of rows (measured: about 0.6 GB at 1e3 rows).
FIXED_BYTES = 1024**3


def training_bytes(n_rows: int, n_features: int, kriging_neighbours: int) -> int:
    """Peak memory of a fit on ``n_rows`` training rows of ``n_features`` values each
    (sequence and static together): the float64 features, the scaler's standardised copy and
    temporaries, the float32 inputs the network reads, the kriging details behind the features
    (neighbour ids, weights, distances, covariances) and :data:`FIXED_BYTES`."""
    per_row = n_features * (3 * 8 + 4) + max(int(kriging_neighbours), 1) * 5 * 8 + 256
    return int(FIXED_BYTES + n_rows * per_row)


def check_training_memory(n_rows: int, n_features: int, kriging_neighbours: int,
                          available: int | None) -> None:
    """Refuse, before any work, a fit that would not fit in ``available`` bytes.

    Raises
    ------
    InputDataError
        With the memory the fit needs and the number of rows that would fit.
    """
    need = training_bytes(n_rows, n_features, kriging_neighbours)
    if available is None or need <= available:
        return
    per_row = max(training_bytes(1, n_features, kriging_neighbours) - FIXED_BYTES, 1)
    fit = max(0, (available - FIXED_BYTES) // per_row)
    gib = 1024**3
    raise InputDataError(
        f"training the hybrid model on {n_rows:,} rows needs about {need / gib:.1f} GiB but "
        f"{available / gib:.1f} GiB are available: about {fit:,} rows fit; train on a "
        "spatially even subsample of the points, use fewer --neighbours or --augment, or use "
        "kriging for this many samples"
    )


def _member_mask(groups: np.ndarray, member_group: np.ndarray) -> np.ndarray:
    """``(rows, members)`` float32: 1 where the member validates on (does not train on) the row."""
    return (groups[:, None] == member_group[None, :]).astype(np.float32)


#: Rows per call of the validation losses (the whole set at once held every LSTM gate of
#: every member: 3 GB at 1e5 rows).
VALIDATION_BATCH = 8192


def _validation_losses(rt: Runtime, seq, sta, y, rows: np.ndarray, mask: np.ndarray
                       ) -> np.ndarray:
    """Each member's summed validation loss over ``rows``, in bounded batches."""
    total = np.zeros(mask.shape[1])
    for s in range(0, len(rows), VALIDATION_BATCH):
        r = rows[s : s + VALIDATION_BATCH]
        if len(rows) == len(seq) and s == 0 and len(r) == len(seq):
            xs, xt, yb = seq, sta, y  # the whole (small) set: no gather
        else:
            xs, xt, yb = seq[r], sta[r], y[r]
        total += rt.member_losses(xs, xt, yb, mask[s : s + VALIDATION_BATCH]).numpy()
    return total


def train_ensemble(
    inputs: dict[str, np.ndarray],
    target: np.ndarray,
    groups: np.ndarray,
    model_config: ModelConfig,
    train_config: TrainConfig,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> tuple[TrainResult, list[np.ndarray]]:
    """Train a batched ensemble and return each member's best weights.

    Parameters
    ----------
    inputs : dict
        ``{"sequence": (n, k, f), "static": (n, s)}``, already scaled.
    target : ndarray, shape (n,)
        Scaled target.
    groups : ndarray of int, shape (n,)
        Spatial validation group per sample (:func:`spatial_groups`).
    model_config, train_config :
    progress, should_stop : callable, optional

    Returns
    -------
    (TrainResult, list of ndarray)
        What happened, and the weights of the model (``Runtime.model.weights`` order) with
        every member at its best epoch.

    Raises
    ------
    GcnnRnnError
        The loss became NaN before any member had a valid epoch.
    Cancelled
        ``should_stop()`` turned true.
    """
    import keras

    t0 = time.perf_counter()
    # float32 once (no copy when the caller already scaled to float32); batches are gathered
    # from these arrays step by step, never held again as tensors of the whole set
    seq = np.ascontiguousarray(inputs["sequence"], dtype=np.float32)
    sta = np.ascontiguousarray(inputs["static"], dtype=np.float32)
    rt = get_runtime(model_config, seq.shape[1], seq.shape[2], sta.shape[1])
    set_seed(train_config.seed)  # after the (maybe cached) runtime: same draws either way
    rt.reset(train_config.learning_rate)
    rt.owner = None
    model, optimizer = rt.model, rt.optimizer
    variables = model.trainable_variables
    m = int(model_config.members)
    n = int(len(target))
    plan = schedule(n, train_config)
    folds = int(train_config.validation_folds)
    member_group = np.arange(m) % folds
    groups = np.asarray(groups)
    validation_member = np.full(n, -1, dtype=np.int64)
    for j in range(m - 1, -1, -1):
        validation_member[groups == member_group[j]] = j
    y_all = np.asarray(target, dtype=np.float32)[:, None]
    val_rows = plan.validation_rows
    val_mask = (groups[val_rows, None] == member_group[None, :]).astype(np.float32)
    v_count = np.maximum(val_mask.sum(axis=0), 1.0)

    progress_cls = _progress_callback_class()
    nan_guard = keras.callbacks.TerminateOnNaN()
    callbacks = keras.callbacks.CallbackList(
        [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=float(train_config.lr_factor),
                patience=plan.lr_patience, min_lr=1e-5, verbose=0,
            ),
            nan_guard,
            progress_cls(int(train_config.epochs), progress, should_stop),
        ],
        model=model,
    )

    batch = plan.batch
    steps = max(1, math.ceil(n / batch))
    rng = np.random.default_rng(int(train_config.seed))
    best_loss = np.full(m, np.inf)
    patience_loss = np.full(m, np.inf)
    best_epoch = np.zeros(m, dtype=np.int64)
    best_weights = [np.array(v.numpy()) for v in variables]
    waited = np.zeros(m, dtype=np.int64)
    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "lr": []}
    patience = plan.patience
    model.stop_training = False
    callbacks.on_train_begin()
    epoch = 0
    for epoch in range(int(train_config.epochs)):
        callbacks.on_epoch_begin(epoch)
        order = np.concatenate([rng.permutation(n), rng.permutation(n)])
        total = 0.0
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            loss = float(rt.train_step(seq[idx], sta[idx], y_all[idx], 1.0 - _member_mask(
                groups[idx], member_group)))
            total += loss
            callbacks.on_train_batch_end(s, {"loss": loss})
            if model.stop_training:
                break
            if should_stop is not None and s % 64 == 63 and should_stop():
                raise Cancelled("cancelled by the user")
        if model.stop_training and not math.isfinite(total):
            logger.warning("training stopped at epoch %d: the loss became NaN", epoch + 1)
            break
        val = _validation_losses(rt, seq, sta, y_all, val_rows, val_mask) / v_count
        if not np.isfinite(val).all():
            logger.warning("training stopped at epoch %d: a validation loss is NaN", epoch + 1)
            break
        improved = val < best_loss - 1e-7
        if train_config.early_stopping == "mean":  # one epoch for all members
            improved = np.full(m, float(val.mean()) < float(best_loss.mean()) - 1e-7)
        if improved.any():
            for j, v in enumerate(variables):
                best_weights[j][improved] = v.numpy()[improved]
        best_loss = np.where(improved, val, best_loss)
        best_epoch = np.where(improved, epoch + 1, best_epoch)
        # the patience restarts on an improvement worth having (large data: min_delta)
        if plan.min_delta > 0:
            worth = val < patience_loss * (1.0 - plan.min_delta)
            if train_config.early_stopping == "mean":
                worth = np.full(m, float(val.mean()) < float(patience_loss.mean())
                                * (1.0 - plan.min_delta))
            patience_loss = np.where(worth, val, patience_loss)
        else:
            worth = improved
        waited = np.where(worth, 0, waited + 1)
        lr = float(np.asarray(optimizer.learning_rate.numpy()))
        logs = {"loss": total / steps, "val_loss": float(val.mean()), "lr": lr}
        for key in history:
            history[key].append(logs[key])
        callbacks.on_epoch_end(epoch, logs)
        if (waited >= patience).all():
            logger.debug("all members converged at epoch %d", epoch + 1)
            break
    callbacks.on_train_end()
    if not np.isfinite(best_loss).any():
        raise GcnnRnnError(
            "training diverged (NaN loss) before any member had a valid epoch; try a lower "
            "learning rate or check the input values"
        )
    # Members that never produced a finite validation loss keep their initial weights.
    for j, v in enumerate(variables):
        v.assign(best_weights[j])
    weights = rt.get_weights()
    seconds = time.perf_counter() - t0
    logger.info(
        "trained %d member(s) in %.1f s: %d epochs, best epochs %s",
        m, seconds, epoch + 1, ", ".join(str(int(e)) for e in best_epoch),
    )
    result = TrainResult(
        history=history,
        best_epochs=tuple(int(e) for e in best_epoch),
        best_val_losses=tuple(float(v) for v in best_loss),
        epochs=epoch + 1,
        validation_member=validation_member,
        seconds=seconds,
    )
    return result, weights
