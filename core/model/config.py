"""Frozen, JSON-round-tripping configurations of the hybrid model (architecture and training)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import InputDataError

LOSSES = ("huber", "mse")
TARGETS = ("residual", "standardised", "value")


def _from_dict(cls, data: dict):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputDataError(f"{cls.__name__}: unknown setting(s) {unknown!r}")
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the Conv1D → BiLSTM (+ static branch) → dense head ensemble.

    Attributes
    ----------
    members : int
        Ensemble size M; the members are trained together as one batched model.
    conv_filters : tuple of int
        Filters of each Conv1D block over the neighbour sequence (empty: no convolution).
    kernel_size : int
        Width of the convolution window (in neighbours).
    conv_strides : int
        Stride of each Conv1D block (2 halves the sequence the LSTM walks).
    lstm_units : int
        Units of each direction of the bidirectional LSTM.
    static_units : int
        Width of the static-feature branch's dense layer.
    head_units : tuple of int
        Hidden widths of the dense head.
    dropout : float
        Dropout rate before each head layer.
    l2 : float
        L2 penalty on the kernels.
    loss : {"huber", "mse"}
    huber_delta : float
        Huber threshold in units of the scaled target.
    target : {"residual", "standardised", "value"}
        Learn the residual from ordinary kriging (default), that residual divided by the
        kriging standard deviation, or the (transformed) value itself.
    linear_skip : bool
        Add a linear function of the static features to each member's output ("wide and
        deep": a ridge-like correction learnt jointly with the network).
    """

    members: int = 5
    conv_filters: tuple[int, ...] = (32,)
    kernel_size: int = 3
    conv_strides: int = 2
    lstm_units: int = 24
    static_units: int = 32
    head_units: tuple[int, ...] = (48,)
    dropout: float = 0.1
    l2: float = 1e-4
    loss: str = "huber"
    huber_delta: float = 1.0
    target: str = "residual"
    linear_skip: bool = False

    def __post_init__(self) -> None:
        for name in ("conv_filters", "head_units"):  # lists (from JSON) become tuples
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not 1 <= int(self.members) <= 64:
            raise InputDataError(f"ensemble size must be 1..64, not {self.members!r}")
        if self.loss not in LOSSES:
            raise InputDataError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if self.target not in TARGETS:
            raise InputDataError(f"target must be one of {TARGETS}, not {self.target!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputDataError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if self.l2 < 0:
            raise InputDataError(f"l2 must be >= 0, not {self.l2!r}")
        if min(self.lstm_units, self.static_units, self.kernel_size, self.conv_strides) < 1:
            raise InputDataError(
                "lstm_units, static_units, kernel_size and conv_strides must be >= 1"
            )
        if any(int(v) < 1 for v in (*self.conv_filters, *self.head_units)):
            raise InputDataError("conv_filters and head_units must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class TrainConfig:
    """How the ensemble is trained.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs (early stopping usually ends sooner).
    batch_size : int
    learning_rate : float
        Initial Adam learning rate.
    patience : int
        Epochs without improvement of a member's validation loss before it is considered
        converged; training ends when every member has converged.
    lr_patience, lr_factor :
        ReduceLROnPlateau on the summed validation loss.
    validation_folds : int
        Number of spatial groups of blocks; member ``m`` is validated on group ``m % folds``
        and not trained on it (at least 2). Its held-out predictions are out-of-fold and
        calibrate the intervals.
    block_size : float or None
        Side of the square spatial blocks that form the groups (default: a fifth of the larger
        side of the data's bounding box).
    seed : int
        Seeds Python, numpy and TensorFlow; with op determinism on, reruns are identical.
    augment : int
        Extra copies of the training samples whose leave-one-out features are computed with
        a random ``augment_drop`` fraction of the other samples also left out: sparser
        neighbourhoods, more varied examples, still never the sample's own value.
    augment_drop : float
    early_stopping : {"member", "mean"}
        Keep each member's own best epoch (default), or one epoch for all members: the one
        with the lowest mean validation loss.
    large_n : int
        Above this many training rows the large-data schedule applies (:func:`.train.schedule`;
        0 = never): the batch grows so that an epoch has at most ``max_steps`` optimizer steps,
        the validation losses are computed on a seeded subsample of ``validation_rows`` rows,
        a member's patience only restarts on a relative improvement of at least
        ``min_delta``, and the patiences are halved. Below it, training is as before.
    max_steps : int
        Optimizer steps per epoch in the large-data schedule.
    validation_rows : int
        Rows of the validation-loss subsample in the large-data schedule.
    min_delta : float
        Relative improvement of a validation loss that restarts the patience in the
        large-data schedule (a loss of 0.3000 must fall below 0.2997 with 1e-3): at 1e5
        samples the loss keeps falling by tiny amounts that are worth nothing.
    """

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 5e-3
    patience: int = 12
    lr_patience: int = 6
    lr_factor: float = 0.5
    validation_folds: int = 5
    block_size: float | None = None
    seed: int = 0
    augment: int = 0
    augment_drop: float = 0.25
    early_stopping: str = "member"
    large_n: int = 16384
    max_steps: int = 256
    validation_rows: int = 16384
    min_delta: float = 1e-3

    def __post_init__(self) -> None:
        if int(self.epochs) < 1:
            raise InputDataError(f"epochs must be >= 1, not {self.epochs!r}")
        if int(self.batch_size) < 1:
            raise InputDataError(f"batch size must be >= 1, not {self.batch_size!r}")
        if not self.learning_rate > 0:
            raise InputDataError(f"learning rate must be > 0, not {self.learning_rate!r}")
        if int(self.validation_folds) < 2:
            raise InputDataError(
                f"validation folds must be >= 2, not {self.validation_folds!r}"
            )
        if self.early_stopping not in ("member", "mean"):
            raise InputDataError(
                f"early_stopping must be 'member' or 'mean', not {self.early_stopping!r}"
            )
        if int(self.augment) < 0 or not 0.0 < self.augment_drop < 1.0:
            raise InputDataError(
                f"augment must be >= 0 and augment_drop in (0, 1), not {self.augment!r}, "
                f"{self.augment_drop!r}"
            )
        if self.block_size is not None and not self.block_size > 0:
            raise InputDataError(f"block size must be > 0, not {self.block_size!r}")
        if int(self.large_n) < 0 or int(self.max_steps) < 1 or int(self.validation_rows) < 1:
            raise InputDataError(
                "large_n must be >= 0, max_steps and validation_rows >= 1, not "
                f"{self.large_n!r}, {self.max_steps!r}, {self.validation_rows!r}"
            )
        if not 0.0 <= self.min_delta < 1.0:
            raise InputDataError(f"min_delta must be in [0, 1), not {self.min_delta!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return _from_dict(cls, data)
