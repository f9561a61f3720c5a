"""The hybrid's classical base: ordinary kriging, or kriging with an external drift (KED).

The network learns the residual of a base predictor and the do-no-harm gate falls back to it,
so the base should be the strongest classical method the data allow. With covariate rasters
the candidates are OK and KED in the covariates (gstat's ``krige(z ~ cov)``; the residual
variogram fitted to the least-squares residuals, as the ``ked`` cross-validation method does);
``auto`` keeps the one with the lower leave-one-out RMSE on the training samples (KED only
when it is at least :data:`KED_MARGIN` better: a drift that does not clearly help costs
estimation variance). Everything here sees the training samples only, so it can sit inside
any outer cross-validation fold.

KED's drift may be a monotone shape of each covariate (:data:`SHAPES`): the relation of the
variable to a covariate is often curved (log zinc falls off with distance to the river roughly
as its square root), and a linear drift in the raw covariate then leaves that curvature to the
residual. For each non-negative covariate ``auto`` tries the identity, the square root and
``log(x + c)`` (``c`` = :data:`LOG_OFFSET` times the covariate's range on the training samples)
one covariate at a time, each with its own residual variogram, and keeps the shape with the
lowest leave-one-out KED RMSE if it is at least :data:`SHAPE_MARGIN` below that of the
covariate as given (a local KED adapts its drift coefficients to each neighbourhood, so a
shape must clearly help to be worth it); the chosen shapes (and offsets) are in the bundle, the log and
the report, and ``predict`` applies them to the covariate rasters (values below 0 taken as 0).

With a KED base the static features get three more columns: the base's estimate, its standard
deviation and the drift part (the least-squares trend ``[1, f] beta`` at the location; at a
training sample its leave-one-out value, so the sample's own value never reaches its
features).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputDataError

logger = logging.getLogger(__name__)

BASES = ("auto", "ok", "ked")
#: Relative leave-one-out RMSE gain KED needs over OK to be chosen by ``auto``.
KED_MARGIN = 0.01
LABELS = {"ok": "OK", "ked": "KED"}
STATIC_NAMES = ("base_estimate", "base_std", "base_drift")
#: Monotone shapes of a non-negative covariate tried for KED's drift (``identity`` for others).
SHAPES = ("identity", "sqrt", "log")
#: Relative leave-one-out RMSE gain a curved shape needs over the covariate as given.
SHAPE_MARGIN = 0.01
#: ``log(x + c)``: ``c`` is this fraction of the covariate's range on the training samples.
LOG_OFFSET = 0.1


def shape_columns(x: np.ndarray, shapes, offsets) -> np.ndarray:
    """The drift columns: covariate ``j`` of ``x (n, p)`` through ``shapes[j]`` (identity when
    ``shapes`` is shorter; negative values count as 0 for ``sqrt`` and ``log``; NaN stays)."""
    out = np.array(x, dtype=float, copy=True)
    for j, shape in enumerate(shapes):
        if shape == "sqrt":
            out[:, j] = np.sqrt(np.clip(out[:, j], 0.0, None))
        elif shape == "log":
            out[:, j] = np.log(np.clip(out[:, j], 0.0, None) + float(offsets[j]))
        elif shape != "identity":
            raise InputDataError(f"unknown drift shape {shape!r} (known: {', '.join(SHAPES)})")
    return out


def shape_text(shape: str, name: str, offset: float = 0.0) -> str:
    """``sqrt(dist.tif)``, ``log(dist.tif + 0.088)`` or the name itself."""
    if shape == "sqrt":
        return f"sqrt({name})"
    if shape == "log":
        return f"log({name} + {offset:.4g})"
    return name


@dataclass(frozen=True)
class Base:
    """The chosen base and what predicting with it needs.

    Attributes
    ----------
    name : {"ok", "ked"}
    model : VariogramModel or None
        KED's residual variogram (None for OK: the hybrid's variogram is used).
    n_drift : int
        Number of covariate columns in the drift (the first columns of the covariates).
    beta : tuple of float
        Least-squares trend coefficients on ``[1, covariates]`` (the drift part feature).
    scores : dict
        Leave-one-out RMSE (transformed units) of each candidate tried on the training data.
    shapes, offsets : tuple
        The drift's shape of each covariate (:data:`SHAPES`) and the ``log`` offsets.
    """

    name: str = "ok"
    model: object = None
    n_drift: int = 0
    beta: tuple[float, ...] = ()
    scores: dict = field(default_factory=dict)
    shapes: tuple[str, ...] = ()
    offsets: tuple[float, ...] = ()

    def drift_columns(self, extra: np.ndarray) -> np.ndarray:
        """KED's drift columns from the covariate columns ``extra (n, >= n_drift)``."""
        return shape_columns(np.asarray(extra)[:, :self.n_drift], self.shapes, self.offsets)

    def drift_terms(self, names) -> list[str]:
        """The drift terms in words, e.g. ``["sqrt(dist.tif)"]``."""
        shapes = tuple(self.shapes) + ("identity",) * self.n_drift
        offsets = tuple(self.offsets) + (0.0,) * self.n_drift
        return [shape_text(shapes[j], str(n), offsets[j]) for j, n in
                enumerate(list(names)[:self.n_drift])]

    @property
    def label(self) -> str:
        """``OK`` or ``KED`` (for messages)."""
        return LABELS[self.name]

    def to_dict(self) -> dict:
        """JSON-safe form (``model.json``'s ``base``)."""
        from ..variogram.serialise import model_to_dict

        return {"name": self.name, "label": self.label,
                "variogram": None if self.model is None else model_to_dict(self.model),
                "variogram_text": None if self.model is None else self.model.to_text(),
                "n_drift": self.n_drift, "beta": list(self.beta),
                "drift_shapes": list(self.shapes), "drift_offsets": list(self.offsets),
                "drift": self.drift_terms(f"covariate {j + 1}" for j in range(self.n_drift)),
                "loo_rmse": {k: float(v) for k, v in self.scores.items()}}

    @classmethod
    def from_dict(cls, d: dict | None) -> Base:
        """Inverse of :meth:`to_dict` (``None``: the OK base of older bundles)."""
        if not d:
            return cls()
        from ..variogram.serialise import model_from_dict

        name = str(d.get("name", "ok"))
        if name not in LABELS:
            raise InputDataError(f"unknown hybrid base {name!r} in the model bundle")
        vg = d.get("variogram")
        shapes = tuple(str(x) for x in d.get("drift_shapes", ()))
        if any(x not in SHAPES for x in shapes):
            raise InputDataError(f"unknown drift shape in the model bundle: {shapes!r}")
        offsets = tuple(float(x) for x in d.get("drift_offsets", ()))
        if len(offsets) != len(shapes) or not np.isfinite(offsets).all():
            raise InputDataError("the model bundle's drift offsets do not match its shapes")
        return cls(name, None if vg is None else model_from_dict(vg), int(d.get("n_drift", 0)),
                   tuple(float(b) for b in d.get("beta", ())), dict(d.get("loo_rmse", {})),
                   shapes, offsets)


def drift_design(drift: np.ndarray) -> np.ndarray:
    """``[1, drift]``: the regressors of the least-squares trend."""
    return np.column_stack([np.ones(len(drift)), drift])


def drift_part_loo(values: np.ndarray, drift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(leave-one-out fitted trend at each sample, beta on all samples)`` of the least-squares
    regression of ``values`` on ``[1, drift]`` (LOO by the hat-matrix identity)."""
    x = drift_design(drift)
    beta, *_ = np.linalg.lstsq(x, values, rcond=None)
    fitted = x @ beta
    h = np.einsum("ij,ji->i", x, np.linalg.pinv(x))  # leverages
    loo = (fitted - h * values) / np.maximum(1.0 - h, 1e-12)
    return loo, beta


def ked_at_samples(coords, values, drift, model, neighbours: int,
                   groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out KED at every sample (leave-group-out with ``groups``, e.g. drill holes)."""
    if groups is None:
        from ..kriging.model_cv import CandidateCV

        cv = CandidateCV(coords, values, neighbours, max_loo=len(values), drift=drift,
                         max_targets=len(values))
        return cv.predictions(model)
    from ..kriging.drift import krige_external_drift

    est, var = np.empty(len(values)), np.empty(len(values))
    for g in np.unique(groups):
        out = groups == g
        res = krige_external_drift(coords[~out], values[~out], drift[~out], coords[out],
                                   drift[out], model, neighbours=neighbours)
        est[out], var[out] = res.estimate, res.variance
    return est, var


def choose_base(requested: str, coords: np.ndarray, values: np.ndarray,
                drift: np.ndarray | None, ok_loo: np.ndarray, neighbours: int, select: str,
                groups: np.ndarray | None = None):
    """Choose the base on the training samples.

    Returns
    -------
    (Base, est, var, drift_part)
        ``est``/``var``: the base's leave-one-out estimate and variance at the samples for a
        KED base (None for OK, whose are already in the features); ``drift_part``: the
        leave-one-out trend (None for OK).

    Raises
    ------
    InputDataError
        ``ked`` without covariates, or an unknown base.
    """
    if requested not in BASES:
        raise InputDataError(f"--base must be one of {', '.join(BASES)}, not {requested!r}")
    rmse_ok = float(np.sqrt(np.mean((ok_loo - values) ** 2)))
    if drift is None or drift.shape[1] == 0:
        if requested == "ked":
            raise InputDataError("--base ked (kriging with an external drift) needs covariate "
                                 "rasters: give --covariates a.tif[,b.tif]")
        return Base("ok", scores={"ok": rmse_ok}), None, None, None
    if requested == "ok":
        return Base("ok", scores={"ok": rmse_ok}), None, None, None
    p = drift.shape[1]
    shapes, offsets = ["identity"] * p, [0.0] * p
    best = _ked_loo(coords, values, drift, neighbours, select, groups)
    scores = {"ok": rmse_ok, "ked": best[0]}
    if requested == "auto":  # a curved drift, one covariate at a time
        for j in range(p):
            col = drift[:, j]
            span = float(np.ptp(col))
            if not (np.isfinite(col).all() and col.min() >= 0.0 and span > 0.0):
                continue
            scores[f"ked:identity(covariate {j + 1})"] = best[0]
            straight = best[0]  # a curved shape must beat the straight one by SHAPE_MARGIN
            for shape in SHAPES[1:]:
                trial_shapes, trial_offsets = list(shapes), list(offsets)
                trial_shapes[j], trial_offsets[j] = shape, (LOG_OFFSET * span if shape == "log"
                                                            else 0.0)
                trial = _ked_loo(coords, values,
                                 shape_columns(drift, trial_shapes, trial_offsets),
                                 neighbours, select, groups)
                scores[f"ked:{shape}(covariate {j + 1})"] = trial[0]
                if trial[0] < min(best[0], (1.0 - SHAPE_MARGIN) * straight):
                    best, shapes, offsets = trial, trial_shapes, trial_offsets
    rmse_ked, model, est, var = best
    scores["ked"] = rmse_ked
    shaped = shape_columns(drift, shapes, offsets)
    loo_trend, beta = drift_part_loo(values, shaped)
    ked = Base("ked", model, int(p), tuple(float(b) for b in beta), scores, tuple(shapes),
               tuple(float(o) for o in offsets))
    terms = ", ".join(ked.drift_terms(f"covariate {j + 1}" for j in range(p)))
    if requested == "ked" or rmse_ked < (1.0 - KED_MARGIN) * rmse_ok:
        logger.info("hybrid base: KED in %s (leave-one-out RMSE %.4g against OK's %.4g, "
                    "transformed units; residual variogram %s)", terms, rmse_ked, rmse_ok,
                    model.to_text(4))
        return ked, est, var, loo_trend
    logger.info("hybrid base: OK (leave-one-out RMSE %.4g; KED in %s, %.4g, is not "
                "%g %% better)", rmse_ok, terms, rmse_ked, 100 * KED_MARGIN)
    return Base("ok", scores=scores), None, None, None


def _ked_loo(coords, values, drift, neighbours: int, select: str, groups):
    """``(LOO RMSE, residual variogram, LOO estimate, LOO variance)`` of KED in ``drift``."""
    from ..kriging.drift import drift_residuals
    from ..variogram.fit import auto_variogram
    from .estimator import AUTO_MODELS

    model = auto_variogram(coords, drift_residuals(values, drift), AUTO_MODELS, select=select,
                           neighbours=neighbours).model
    k = neighbours if neighbours == 0 else max(neighbours, drift.shape[1] + 2)
    est, var = ked_at_samples(coords, values, drift, model, k, groups)
    return float(np.sqrt(np.mean((est - values) ** 2))), model, est, var


def with_base(feats, est: np.ndarray, var: np.ndarray, drift_part: np.ndarray):
    """``feats`` with the base's estimate and variance in place of OK's (the network's target
    and the gate follow them) and the three base columns added to the static features."""
    sd = np.sqrt(np.clip(var, 0.0, None))
    static = np.column_stack([feats.static, est, sd, drift_part])
    return replace(feats, static=static, ok_estimate=np.asarray(est, dtype=float),
                   ok_variance=np.asarray(var, dtype=float), lagrange=np.zeros(len(est)),
                   static_names=(*feats.static_names, *STATIC_NAMES))
