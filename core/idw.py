"""Inverse distance weighting (IDW): the baseline most QGIS users compare kriging against.

``z(u) = sum_i w_i z_i / sum_i w_i`` with ``w_i = 1 / d_i^p`` over all samples (QGIS's IDW
interpolation, gstat ``idw`` with ``nmax = Inf``) or the ``neighbours`` nearest; a target on a
sample takes its value (the mean of coincident samples). Registered as the cross-validation
method ``idw``.
"""

from __future__ import annotations

import numpy as np

from .cv import register_cv_method, transformed_extras
from .errors import InputDataError
from .io import PointData
from .progress import ProgressFn, StopFn, check_cancel

#: Default power ``p`` (QGIS's and gstat's default).
DEFAULT_POWER = 2.0
#: Target rows per chunk (bounds the ``(rows, k)`` distance arrays).
_CHUNK = 16384


def idw(
    coords: np.ndarray,
    values: np.ndarray,
    targets: np.ndarray,
    power: float = DEFAULT_POWER,
    neighbours: int = 0,
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> np.ndarray:
    """IDW estimates at ``targets``.

    Parameters
    ----------
    coords : ndarray, shape (n, d)
        Sample coordinates (Euclidean distance; no anisotropy).
    values : ndarray, shape (n,)
        Sample values.
    targets : ndarray, shape (m, d)
        Target coordinates.
    power : float
        Distance power ``p > 0`` (default 2).
    neighbours : int
        Nearest samples used per target; 0 means all.
    progress, should_stop : callable, optional
        Progress and cancellation, per chunk of targets.

    Returns
    -------
    ndarray, shape (m,)

    Raises
    ------
    InputDataError
        Non-positive power, shape mismatch, non-finite input.
    """
    from scipy.spatial import cKDTree

    from .kriging.neighbours import find_neighbours

    if not (np.isfinite(power) and power > 0):
        raise InputDataError(f"the IDW power must be a number > 0, not {power!r}")
    if isinstance(neighbours, bool) or int(neighbours) != neighbours or neighbours < 0:
        raise InputDataError(f"IDW neighbours must be an integer >= 0, not {neighbours!r}")
    coords = np.asarray(coords, dtype=float)
    targets = np.asarray(targets, dtype=float)
    values = np.asarray(values, dtype=float).ravel()
    if coords.ndim != 2 or coords.shape[0] != values.size or coords.shape[0] == 0:
        raise InputDataError(f"{values.size} values for coordinates of shape {coords.shape!r}")
    if targets.ndim != 2 or targets.shape[1] != coords.shape[1]:
        raise InputDataError(f"targets of shape {targets.shape!r} for {coords.shape[1]}D samples")
    if not (np.isfinite(coords).all() and np.isfinite(values).all()
            and np.isfinite(targets).all()):
        raise InputDataError("IDW needs finite coordinates and values")
    n, m = values.size, targets.shape[0]
    k = n if neighbours == 0 else min(int(neighbours), n)
    tree = cKDTree(coords)
    out = np.empty(m)
    for start in range(0, m, _CHUNK):
        check_cancel(should_stop)
        stop = min(m, start + _CHUNK)
        idx, dist = find_neighbours(tree, targets[start:stop], k)
        out[start:stop] = _weighted(values, idx, dist, power)
        if progress is not None:
            progress(stop / m, "inverse distance weighting")
    return out


def _weighted(values, idx, dist, power) -> np.ndarray:
    valid = idx >= 0
    z = np.where(valid, values[np.maximum(idx, 0)], 0.0)
    zero = valid & (dist == 0.0)
    with np.errstate(divide="ignore"):
        w = np.where(valid & ~zero, dist ** -float(power), 0.0)
    on = zero.any(axis=1)  # on a sample: its value (mean of coincident samples)
    est = np.empty(idx.shape[0])
    est[~on] = (w[~on] * z[~on]).sum(axis=1) / w[~on].sum(axis=1)
    est[on] = np.where(zero[on], z[on], 0.0).sum(axis=1) / zero[on].sum(axis=1)
    return est


def _power(options: dict) -> float:
    p = options.get("idw_power")
    return DEFAULT_POWER if p is None else float(p)


@register_cv_method("idw")
def idw_method(train: PointData, test: PointData, options: dict,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict:
    """IDW of the test points from the training points, in data units.

    Options: ``idw_power`` (default 2), ``idw_neighbours`` (default 0, all),
    ``output_units``. In transformed units the transform (fitted on the training values)
    is applied before weighting; in data units IDW averages the data themselves, as QGIS
    does, and the same predictions are also reported in transformed units.
    """
    from .transforms import fit_transform, parse_transform

    kind = parse_transform(options.get("transform"))
    ft = fit_transform(train.values, kind)
    nb = int(options.get("idw_neighbours") or 0)
    if options.get("output_units", "original") == "transformed":
        pred = idw(train.coords, ft.forward(train.values), test.coords, _power(options), nb,
                   should_stop=should_stop)
        return {"prediction": pred, "observed": ft.forward(test.values)}
    pred = idw(train.coords, train.values, test.coords, _power(options), nb,
               should_stop=should_stop)
    out = {"prediction": pred, "observed": np.asarray(test.values, dtype=float)}
    if kind.value != "none":
        out.update(transformed_extras(ft, ft.forward(pred), None, test.values))
    return out


def _describe(options: dict) -> str:
    nb = int(options.get("idw_neighbours") or 0)
    where = "all samples" if nb == 0 else f"{nb} nearest samples"
    units = options.get("output_units", "original")
    return (f"inverse distance weighting, power {_power(options):g}, {where}; "
            f"{'transformed' if units == 'transformed' else 'data'} values weighted")


idw_method.describe = _describe  # type: ignore[attr-defined]
