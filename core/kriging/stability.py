"""Numerical safety around :func:`~.api.krige` and :func:`~.api.krige_grid` (a decorator).

Kriging systems can be badly conditioned without being singular: a Gaussian (or a power
model near alpha 2) without nugget, samples a fraction of a millimetre apart, sills of 1e300.
The solver then returns weights summing to 1 but of size 1e6, and estimates of 1e38 or
``inf`` — silently. This module keeps such garbage out of the results, without touching the
solver:

* **scale-free**: a model whose partial sills are extreme (beyond 1e±30) is divided by a power
  of two first (kriging weights do not change; variances and Lagrange multipliers are
  multiplied back), so sills of 1e300 or 1e308 no longer overflow;
* **a-priori warning**: a smooth (Gaussian-like) structure with a nugget under 1 % of the
  sill is reported, once per model, with the usual remedy (a small nugget, as gstat users do);
* **a-posteriori check**: an estimate that is not finite or lies more than half the data range
  outside the data's range is *unstable*; so is, when the model or the samples make trouble
  likely (:func:`suspect`: a smooth structure without nugget, samples a millionth of the range
  apart), a target whose absolute weights sum to more than :data:`MAX_WEIGHT_SUM`. Unstable
  targets are kriged again with an added nugget (1e-6, 1e-4, 1e-2, then 1e-1 of the sill:
  regularisation relative to the sill, so scale-free; near-duplicate samples are then averaged
  by the nugget instead of driving the weights to 1e6); those still unstable are left empty
  (NaN). Both counts are in ``KrigingResult.n_unstable`` / ``n_unresolved`` and in one warning
  per call (a streamed grid sums its ranges' counts and warns once).

What a stable system still cannot help — a Gaussian model extrapolating to negative zinc — is
flagged in output units by :mod:`.checks` (implausible estimates: nodata, counted).

Exact kriging at well-conditioned targets is untouched (no change to any estimate that passes
the check), so the agreement with gstat is kept.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from dataclasses import replace

import numpy as np

from ..progress import check_cancel

logger = logging.getLogger(__name__)

#: Partial sills beyond this (or below its inverse) are normalised before solving.
EXTREME_SCALE = 1e30
#: Estimates more than this many data ranges outside the data's range are unstable.
RANGE_FACTOR = 0.5
#: Nuggets (fractions of the sill) tried, in turn, on unstable targets. With 1e-1, a Gaussian
#: model's absolute weights stay under 5 (Meuse, 32 neighbours): a stable system.
REGULARISATION = (1e-6, 1e-4, 1e-2, 1e-1)
#: Smooth structures whose systems are ill-conditioned without a nugget.
_SMOOTH = {"gau"}

_warned: set[str] = set()


def _power_of_two(x: float) -> float:
    return 2.0 ** round(math.log2(x))


def normalise(model):
    """``(model with partial sills divided by f, f)``; ``f`` is 1 unless the sills are extreme.

    ``f`` is a power of two, so the division is exact.
    """
    from ..variogram.models import Structure, VariogramModel

    top = max(s.psill for s in model.structures)
    if top <= 0 or (1.0 / EXTREME_SCALE <= top <= EXTREME_SCALE):
        return model, 1.0
    f = _power_of_two(top)
    scaled = tuple(Structure(s.model, s.psill / f, s.range_, s.extra) for s in model.structures)
    return VariogramModel(scaled, model.anisotropy), f


def with_nugget(model, fraction: float):
    """``model`` plus a nugget of ``fraction`` of its total partial sill."""
    from ..variogram.models import Structure, VariogramModel

    total = sum(s.psill for s in model.structures) or 1.0
    return VariogramModel(model.structures + (Structure("nug", fraction * total),),
                          model.anisotropy)


def warn_ill_conditioned(model) -> None:
    """Warn (once per model) about a smooth structure with (almost) no nugget."""
    text = model.to_text()
    smooth = sum(s.psill for s in model.structures
                 if s.model in _SMOOTH or (s.model == "pow" and (s.extra or 0) > 1.5))
    if not smooth or text in _warned:
        return
    if model.nugget < 0.01 * sum(s.psill for s in model.structures):
        _warned.add(text)
        logger.warning(
            "the variogram %r has a Gaussian-like structure and a nugget under 1 %% of the sill: "
            "its kriging systems are ill-conditioned; unstable targets are re-solved with an "
            "added nugget, but consider adding a nugget of at least 1 %% of the sill", text,
        )


def unstable(estimate: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mask of estimates that are not finite or far outside the data's range."""
    lo, hi = float(np.min(values)), float(np.max(values))
    span = (hi - lo) or max(abs(hi), 1.0)
    margin = RANGE_FACTOR * span
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(estimate) | (estimate < lo - margin) | (estimate > hi + margin)


def suspect(model, coords: np.ndarray) -> bool:
    """Whether the model or the samples make ill-conditioned systems likely: a smooth
    structure with a nugget under 1 % of the sill, or samples closer than 1e-6 of the range."""
    total = sum(s.psill for s in model.structures)
    smooth = any(s.model in _SMOOTH or (s.model == "pow" and (s.extra or 0) > 1.5)
                 for s in model.structures if s.psill > 0)
    if smooth and model.nugget < 0.01 * total:
        return True
    if model.nugget >= 0.01 * total or len(coords) < 2:
        return False
    from scipy.spatial import cKDTree

    red = model.reduce(np.asarray(coords, dtype=float))
    d, _ = cKDTree(red).query(red, k=2)
    close = d[:, 1]
    near = (close > 0) & (close < 1e-6)  # reduced units: fractions of the range
    n_near = int(near.sum())
    key = f"near:{len(coords)}:{n_near}:{model.to_text()}"
    if n_near and key not in _warned:
        _warned.add(key)
        logger.warning(
            "%d of %d samples lie within a millionth of the variogram's range of another "
            "sample (near-duplicates) and the model has no nugget: their systems are "
            "ill-conditioned and are re-solved with an added nugget; merge or average such "
            "samples, or add a nugget", n_near, len(coords),
        )
    return bool(n_near)


def stabilised(func):
    """Decorate ``krige`` / ``krige_grid`` with the checks of this module."""
    sig = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        model = a["model"]
        warn_ill_conditioned(model)
        scaled, f = normalise(model)
        a["model"] = scaled
        values = np.asarray(a["values"], dtype=float).ravel()
        # a leave-out (exclude_self, or a self_index per target) is never re-solved: the
        # re-solve would krige the target from all samples, its own included
        leave_out = bool(a.get("exclude_self")) or a.get("self_index") is not None
        if (not leave_out and values.size and np.isfinite(values).all()
                and suspect(scaled, np.asarray(a["coords"], dtype=float))):
            res = func(*bound.args, **bound.kwargs)  # counts; every target re-checked below
            res = _rescale(res, f) if f != 1.0 else res
            return _repair(a, res, scaled, f, values, by_weights=True)
        res = func(*bound.args, **bound.kwargs)
        if f != 1.0:
            res = _rescale(res, f)
        if leave_out or values.size == 0:
            return res  # leave-one-out: targets are the samples; not re-solved
        return _repair(a, res, scaled, f, values, by_weights=False)

    wrapper.__wrapped_unchecked__ = func
    return wrapper


def stable_solve(first, coords: np.ndarray, values: np.ndarray, targets: np.ndarray, config,
                 scaled, factor: float, is_suspect: bool, should_stop=None):
    """The checks of this module on ``first``, a result solved with ``scaled`` (the model from
    :func:`normalise`, whose factor is ``factor``) at ``targets`` (a range of a streamed grid):
    rescaled, unstable targets re-solved. ``is_suspect``: :func:`suspect` of the model and
    samples. No warning: the caller sums the counts and calls :func:`warn_unstable` once."""
    res = _rescale(first, factor) if factor != 1.0 else first
    a = {"coords": coords, "targets": targets, "config": config, "should_stop": should_stop}
    return _repair(a, res, scaled, factor, np.asarray(values, dtype=float).ravel(),
                   by_weights=is_suspect, warn=False)


def warn_unstable(n_unstable: int, n_unresolved: int, n: int, values: np.ndarray) -> None:
    """The one warning about unstable systems (counts of a whole call or a whole grid)."""
    if n_unstable:
        logger.warning(
            "%d of %d target(s) had an unstable kriging system (weights far from a weighted "
            "average, or an estimate far outside the data's range %.4g..%.4g): %d re-solved "
            "with an added nugget (at most 10 %% of the sill), %d left empty (nodata)",
            n_unstable, n, float(np.min(values)), float(np.max(values)),
            n_unstable - n_unresolved, n_unresolved,
        )


def _rescale(res, f: float):
    with np.errstate(over="ignore"):
        return replace(
            res, variance=res.variance * f,
            lagrange=None if res.lagrange is None else res.lagrange * f,
            cov_target=None if res.cov_target is None else res.cov_target * f,
        )


#: Targets kriged per call while checking weights (bounds the details' memory).
_CHUNK = 4096
#: Sum of absolute kriging weights above which a system is ill-conditioned (a stable ordinary
#: kriging system stays near 1-3; garbage ones reach 1e3-1e6).
MAX_WEIGHT_SUM = 10.0


def _check(inner, a, model, f, values, targets, by_weights):
    """Krige ``targets`` (in chunks); returns (est, var, lag, details, bad-mask)."""
    m = len(targets)
    est, var, lag = np.empty(m), np.empty(m), np.empty(m)
    want = bool(a.get("return_details"))
    det = None
    bad = np.zeros(m, dtype=bool)
    implausible = np.zeros(m, dtype=bool)
    from .api import quiet_reports

    for start in range(0, m, _CHUNK):
        stop = min(m, start + _CHUNK)
        check_cancel(a.get("should_stop"))
        with quiet_reports():  # the first solve reported the singular systems once
            sub = inner(a["coords"], values, targets[start:stop], model, a.get("config"),
                        return_details=by_weights or want, should_stop=a.get("should_stop"))
        if f != 1.0:
            sub = _rescale(sub, f)
        est[start:stop], var[start:stop] = sub.estimate, sub.variance
        lag[start:stop] = sub.lagrange if sub.lagrange is not None else 0.0
        empty = np.isnan(sub.estimate) & np.isnan(sub.variance)  # no neighbours: on purpose
        flag = unstable(sub.estimate, values) & ~empty
        if by_weights:
            flag |= (np.abs(sub.weights).sum(axis=1) > MAX_WEIGHT_SUM) & ~empty
        implausible[start:stop] = unstable(sub.estimate, values) & ~empty
        bad[start:stop] = flag
        if want:
            if det is None:
                k = sub.neighbours.shape[1]
                det = [np.full((m, k), -1, dtype=np.int64), np.zeros((m, k)),
                       np.full((m, k), np.inf), np.zeros((m, k))]
            for dst, src in zip(det, (sub.neighbours, sub.weights, sub.distances,
                                      sub.cov_target), strict=True):
                dst[start:stop, : src.shape[1]] = src
    return est, var, lag, det, bad, implausible


def _repair(a: dict, res, scaled, f: float, values: np.ndarray, by_weights: bool,
            warn: bool = True):
    from .api import krige

    inner = getattr(krige, "__wrapped_unchecked__", krige)
    est = res.estimate.reshape(-1).copy()
    var = res.variance.reshape(-1).copy()
    lag = None if res.lagrange is None else res.lagrange.reshape(-1).copy()
    details = [None if x is None else x.copy() for x in
               (res.neighbours, res.weights, res.distances, res.cov_target)]
    if by_weights:  # every target checked by its weights (ill-conditioning expected)
        idx = np.arange(est.size)
    else:  # only implausible estimates (cheap check of every result)
        idx = np.flatnonzero(unstable(est, values) & ~(np.isnan(est) & np.isnan(var)))
        if idx.size == 0:
            return res
    grid = a.get("grid")
    targets_of = (lambda i: _grid_nodes(grid, i)) if grid is not None else (
        lambda i: np.asarray(a["targets"], dtype=float)[i])
    n_unstable = None
    for fraction in (0.0, *REGULARISATION):
        if idx.size == 0:
            break
        model = scaled if fraction == 0.0 else with_nugget(scaled, fraction)
        e, v, mu, det, bad, implausible = _check(inner, a, model, f, values, targets_of(idx),
                                                 by_weights)
        # The last, most regularised solve is kept where its estimate is plausible.
        good = ~(implausible if fraction == REGULARISATION[-1] else bad)
        if fraction == 0.0 and not by_weights:
            good[:] = False  # the plain solve is the one that failed; go on to nuggets
        rows = idx[good]
        est[rows], var[rows] = e[good], v[good]
        if lag is not None:
            lag[rows] = mu[good]
        if det is not None:
            for dst, src in zip(details, det, strict=True):
                if dst is not None:
                    dst[rows] = src[good]
        if n_unstable is None:
            n_unstable = int(idx.size if not by_weights else bad.sum())
        idx = idx[~good]
    n_unstable = n_unstable or 0
    n_unresolved = int(idx.size)
    est[idx] = np.nan
    var[idx] = np.nan
    if lag is not None:
        lag[idx] = np.nan
    if warn:
        warn_unstable(n_unstable, n_unresolved, est.size, values)
    shape = res.estimate.shape
    return replace(res, estimate=est.reshape(shape), variance=var.reshape(shape),
                   lagrange=None if lag is None else lag.reshape(shape),
                   neighbours=details[0], weights=details[1], distances=details[2],
                   cov_target=details[3], n_unstable=n_unstable, n_unresolved=n_unresolved)


def _grid_nodes(grid, idx: np.ndarray) -> np.ndarray:
    """Coordinates of the grid nodes ``idx`` (raster order), without the whole grid's."""
    per_level = grid.nrows * grid.ncols
    row, col = np.divmod(idx % per_level, grid.ncols)
    x = grid.xmin + (col + 0.5) * grid.cell_size
    y = grid.ymax - (row + 0.5) * grid.cell_size
    if not grid.z_levels:
        return np.column_stack([x, y])
    return np.column_stack([x, y, np.asarray(grid.z_levels, dtype=float)[idx // per_level]])
