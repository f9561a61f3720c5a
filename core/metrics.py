"""Accuracy metrics of predictions against observations (cross-validation, test sets)."""

from __future__ import annotations

import math

import numpy as np

from .errors import InputDataError

#: Metric names in the order reports list them.
METRIC_NAMES = ("me", "mae", "rmse", "r2", "msdr", "ccc")


def metrics(
    observed: np.ndarray,
    predicted: np.ndarray,
    variance: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Standard accuracy metrics over the pairs where the prediction is finite.

    Parameters
    ----------
    observed, predicted : ndarray, shape (n,)
        Observations and predictions in the same units.
    variance : ndarray, shape (n,), optional
        Prediction (kriging) variance; needed for ``msdr``.

    Returns
    -------
    dict
        ``me`` mean error ``mean(observed - predicted)`` (gstat's residual sign: positive means
        under-prediction); ``mae``; ``rmse``; ``r2 = 1 - SSE / SST`` (SST about the mean of the
        observations; can be negative); ``msdr`` mean squared deviation ratio
        ``mean((observed - predicted)^2 / variance)`` (about 1 when the variance is right;
        pairs with zero variance are skipped; ``None`` without a variance); ``ccc`` Lin's
        concordance correlation coefficient
        ``2 s_op / (s_o^2 + s_p^2 + (mean_o - mean_p)^2)`` with 1/n moments; ``n`` pairs used
        and ``n_missing`` predictions that were not finite. Undefined values are ``None``.

    Raises
    ------
    InputDataError
        When the arrays differ in length.

    References
    ----------
    Lin, L. I.-K. (1989). A concordance correlation coefficient to evaluate reproducibility.
    *Biometrics* 45, 255-268.
    """
    obs = np.asarray(observed, dtype=float).ravel()
    pred = np.asarray(predicted, dtype=float).ravel()
    if obs.shape != pred.shape:
        raise InputDataError(
            f"observed ({obs.size}) and predicted ({pred.size}) differ in length"
        )
    var = None
    if variance is not None:
        var = np.asarray(variance, dtype=float).ravel()
        if var.shape != obs.shape:
            raise InputDataError(
                f"variance ({var.size}) and observed ({obs.size}) differ in length"
            )
    ok = np.isfinite(obs) & np.isfinite(pred)
    out: dict[str, float | int | None] = dict.fromkeys(METRIC_NAMES)
    out["n"] = int(ok.sum())
    out["n_missing"] = int(obs.size - ok.sum())
    if not ok.any():
        return out
    o, p = obs[ok], pred[ok]
    res = o - p
    out["me"] = float(res.mean())
    out["mae"] = float(np.abs(res).mean())
    out["rmse"] = float(math.sqrt((res * res).mean()))
    sst = float(((o - o.mean()) ** 2).sum())
    out["r2"] = float(1.0 - (res * res).sum() / sst) if sst > 0 else None
    if var is not None:
        v = var[ok]
        good = np.isfinite(v) & (v > 0)
        if good.any():
            out["msdr"] = float((res[good] ** 2 / v[good]).mean())
    mo, mp = o.mean(), p.mean()
    so2, sp2 = ((o - mo) ** 2).mean(), ((p - mp) ** 2).mean()
    denom = so2 + sp2 + (mo - mp) ** 2
    if denom > 0:
        out["ccc"] = float(2.0 * ((o - mo) * (p - mp)).mean() / denom)
    return out
