"""The hybrid's classical base: ordinary kriging, or kriging with an external drift (KED).

The network learns the residual of a base predictor and the do-no-harm gate falls back to it,
so the base should be the strongest classical method the data allow. With covariate rasters
the candidates are OK and KED in the covariates (gstat's ``krige(z ~ cov)``; the residual
variogram fitted to the least-squares residuals, as the ``ked`` cross-validation method does);
``auto`` keeps the one with the lower leave-one-out RMSE on the training samples (KED only
when it is at least :data:`KED_MARGIN` better: a drift that does not clearly help costs
estimation variance). Everything here sees the training samples only, so it can sit inside
any outer cross-validation fold.

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
    """

    name: str = "ok"
    model: object = None
    n_drift: int = 0
    beta: tuple[float, ...] = ()
    scores: dict = field(default_factory=dict)

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
        return cls(name, None if vg is None else model_from_dict(vg), int(d.get("n_drift", 0)),
                   tuple(float(b) for b in d.get("beta", ())), dict(d.get("loo_rmse", {})))


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

        cv = CandidateCV(coords, values, neighbours, max_loo=len(values), drift=drift)
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
    from ..kriging.drift import drift_residuals
    from ..variogram.fit import auto_variogram
    from .estimator import AUTO_MODELS

    model = auto_variogram(coords, drift_residuals(values, drift), AUTO_MODELS, select=select,
                           neighbours=neighbours).model
    k = neighbours if neighbours == 0 else max(neighbours, drift.shape[1] + 2)
    est, var = ked_at_samples(coords, values, drift, model, k, groups)
    rmse_ked = float(np.sqrt(np.mean((est - values) ** 2)))
    loo_trend, beta = drift_part_loo(values, drift)
    scores = {"ok": rmse_ok, "ked": rmse_ked}
    ked = Base("ked", model, int(drift.shape[1]), tuple(float(b) for b in beta), scores)
    if requested == "ked" or rmse_ked < (1.0 - KED_MARGIN) * rmse_ok:
        logger.info("hybrid base: KED (leave-one-out RMSE %.4g against OK's %.4g, transformed "
                    "units; residual variogram %s)", rmse_ked, rmse_ok, model.to_text(4))
        return ked, est, var, loo_trend
    logger.info("hybrid base: OK (leave-one-out RMSE %.4g; KED in the covariates %.4g is not "
                "%g %% better)", rmse_ok, rmse_ked, 100 * KED_MARGIN)
    return Base("ok", scores=scores), None, None, None


def with_base(feats, est: np.ndarray, var: np.ndarray, drift_part: np.ndarray):
    """``feats`` with the base's estimate and variance in place of OK's (the network's target
    and the gate follow them) and the three base columns added to the static features."""
    sd = np.sqrt(np.clip(var, 0.0, None))
    static = np.column_stack([feats.static, est, sd, drift_part])
    return replace(feats, static=static, ok_estimate=np.asarray(est, dtype=float),
                   ok_variance=np.asarray(var, dtype=float), lagrange=np.zeros(len(est)),
                   static_names=(*feats.static_names, *STATIC_NAMES))
