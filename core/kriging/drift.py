"""Kriging with an external drift (KED): universal kriging whose trend is linear in covariates.

The classical geostatistical use of a covariate (gstat's ``krige(z ~ cov, ...)``): the mean of
the field at ``x`` is ``b0 + b1 f1(x) + ... + bp fp(x)`` with unknown coefficients, estimated
implicitly by the kriging system

.. math::

    \\begin{pmatrix} C & F \\\\ F^T & 0 \\end{pmatrix}
    \\begin{pmatrix} w \\\\ \\mu \\end{pmatrix} =
    \\begin{pmatrix} c_0 \\\\ f_0 \\end{pmatrix}, \\qquad
    \\sigma^2 = C(0) - w^T c_0 - \\mu^T f_0,

where ``C`` holds the covariances of the (residual) variogram between the neighbours, ``F``
the drift columns ``[1, f1, ..., fp]`` at the neighbours and ``c0``, ``f0`` the same at the
target. The variogram must be that of the residuals from the trend (fit it to least-squares
residuals, as gstat's ``variogram(z ~ cov)`` does). It is the baseline a covariate-using model
has to beat, which is why cross-validation offers it (method ``ked``).

The systems are small and solved in batches with numpy (no compiled kernel): KED serves
cross-validation and moderate grids; ordinary kriging (:func:`~.api.krige`) stays the fast path.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from ..errors import InputDataError
from ..progress import StopFn, check_cancel
from .api import bounding_corners, covariance_shift

logger = logging.getLogger(__name__)

#: Targets per batched solve (``batch × (k + p + 1)²`` doubles).
BATCH = 2048
#: Most samples of a global (dense) system.
MAX_GLOBAL = 5000


@dataclass(frozen=True)
class DriftResult:
    """Estimates and variances of kriging with an external drift.

    Attributes
    ----------
    estimate, variance : ndarray, shape (n_targets,)
        Variance never negative.
    n_singular : int
        Targets whose system was singular (e.g. a covariate constant over the neighbourhood)
        and were solved by least squares (pseudo-inverse).
    """

    estimate: np.ndarray
    variance: np.ndarray
    n_singular: int = 0


def krige_external_drift(
    coords: np.ndarray,
    values: np.ndarray,
    drift: np.ndarray,
    targets: np.ndarray,
    target_drift: np.ndarray,
    model,
    neighbours: int = 32,
    should_stop: StopFn | None = None,
) -> DriftResult:
    """Kriging with an external drift at ``targets``.

    Parameters
    ----------
    coords : ndarray, shape (n, d)
    values : ndarray, shape (n,)
    drift : ndarray, shape (n, p)
        Covariate values at the samples (the constant term is added here).
    targets : ndarray, shape (m, d)
    target_drift : ndarray, shape (m, p)
        The same covariates at the targets.
    model : VariogramModel
        Variogram of the residuals from the drift (anisotropy honoured).
    neighbours : int
        Nearest samples per target (by anisotropic distance); 0 = all (global).
    should_stop : callable, optional

    Raises
    ------
    InputDataError
        Mismatched shapes, non-finite covariates, or fewer neighbours than drift terms + 1.
    """
    coords = np.asarray(coords, dtype=float)
    targets = np.asarray(targets, dtype=float)
    values = np.asarray(values, dtype=float).ravel()
    f_s = np.asarray(drift, dtype=float).reshape(len(coords), -1)
    f_t = np.asarray(target_drift, dtype=float).reshape(len(targets), -1)
    n, p = f_s.shape
    if len(values) != n or f_t.shape[1] != p or targets.shape[1] != coords.shape[1]:
        raise InputDataError(
            f"external drift: {n} samples with {p} covariate(s) and {len(values)} values, "
            f"targets with {f_t.shape[1]} covariate(s); the shapes must agree"
        )
    if not (np.isfinite(f_s).all() and np.isfinite(f_t).all()):
        raise InputDataError("external drift: a covariate is NULL or not finite somewhere")
    k = n if int(neighbours) <= 0 else min(int(neighbours), n)
    if k < p + 2:
        raise InputDataError(
            f"kriging with {p} external drift term(s) needs at least {p + 2} neighbours, "
            f"not {k}"
        )
    if k == n and n > MAX_GLOBAL:
        raise InputDataError(
            f"global kriging with external drift is limited to {MAX_GLOBAL} samples (it solves "
            f"one dense {n} x {n} system); use a local neighbourhood, e.g. 32 neighbours"
        )
    red_s, red_t = model.reduce(coords), model.reduce(targets)
    shift = covariance_shift(model, bounding_corners(coords, targets))
    fs_full = np.hstack([np.ones((n, 1)), f_s])
    ft_full = np.hstack([np.ones((len(targets), 1)), f_t])
    if k == n:
        return _finish(*_global(red_s, red_t, values, fs_full, ft_full, model, shift,
                                should_stop))
    m = len(targets)
    _, nbr_all = cKDTree(red_s).query(red_t, k=k)
    nbr_all = np.asarray(nbr_all, dtype=np.int64).reshape(m, k)
    est = np.empty(m)
    var = np.empty(m)
    n_singular = 0
    q = k + p + 1
    for start in range(0, m, BATCH):
        check_cancel(should_stop)
        stop = min(start + BATCH, m)
        b = stop - start
        nbr = nbr_all[start:stop]
        xs = red_s[nbr]  # (b, k, d)
        d_ss = np.sqrt(((xs[:, :, None, :] - xs[:, None, :, :]) ** 2).sum(-1))
        d_s0 = np.sqrt(((xs - red_t[start:stop, None, :]) ** 2).sum(-1))
        a = np.zeros((b, q, q))
        a[:, :k, :k] = model.covariance(d_ss, shift)
        fn = fs_full[nbr]  # (b, k, p + 1)
        a[:, :k, k:] = fn
        a[:, k:, :k] = np.swapaxes(fn, 1, 2)
        rhs = np.empty((b, q))
        rhs[:, :k] = model.covariance(d_s0, shift)
        rhs[:, k:] = ft_full[start:stop]
        try:
            sol = np.linalg.solve(a, rhs[..., None])[..., 0]
            bad = ~np.isfinite(sol).all(axis=1)
        except np.linalg.LinAlgError:
            sol = np.full((b, q), np.nan)
            bad = np.ones(b, dtype=bool)
        for i in np.flatnonzero(bad):
            sol[i] = np.linalg.lstsq(a[i], rhs[i], rcond=None)[0]
        n_singular += int(bad.sum())
        w = sol[:, :k]
        est[start:stop] = (w * values[nbr]).sum(axis=1)
        var[start:stop] = shift - (sol * rhs).sum(axis=1)
    return _finish(est, var, n_singular)


def _global(red_s, red_t, values, fs_full, ft_full, model, shift, should_stop):
    """All samples for every target: one system, factorised once, many right-hand sides."""
    from scipy.linalg import LinAlgError, LinAlgWarning, lu_factor, lu_solve

    n, q = len(values), len(values) + fs_full.shape[1]
    a = np.zeros((q, q))
    a[:n, :n] = model.covariance(cdist(red_s, red_s), shift)
    a[:n, n:] = fs_full
    a[n:, :n] = fs_full.T
    try:
        with warnings.catch_warnings():  # singularity is detected and reported below
            warnings.simplefilter("ignore", LinAlgWarning)
            lu = lu_factor(a, check_finite=True)
        singular = not np.isfinite(lu[0]).all() or np.abs(np.diag(lu[0])).min() <= (
            1e-13 * np.abs(np.diag(lu[0])).max())
    except (LinAlgError, ValueError):
        lu, singular = None, True
    pinv = np.linalg.pinv(a) if singular else None
    est, var = np.empty(len(red_t)), np.empty(len(red_t))
    for start in range(0, len(red_t), BATCH):
        check_cancel(should_stop)
        stop = min(start + BATCH, len(red_t))
        rhs = np.vstack([model.covariance(cdist(red_s, red_t[start:stop]), shift),
                         ft_full[start:stop].T])  # (q, b)
        sol = pinv @ rhs if singular else lu_solve(lu, rhs)
        est[start:stop] = values @ sol[:n]
        var[start:stop] = shift - (sol * rhs).sum(axis=0)
    return est, var, (len(red_t) if singular else 0)


def _finish(est, var, n_singular) -> DriftResult:
    m = len(est)
    if n_singular:
        logger.warning(
            "kriging with external drift: %d of %d target(s) had a singular system (a "
            "covariate constant or collinear over the neighbourhood?) and were solved by "
            "least squares", n_singular, m,
        )
    return DriftResult(est, np.clip(var, 0.0, None), n_singular)


def drift_residuals(values: np.ndarray, drift: np.ndarray) -> np.ndarray:
    """Least-squares residuals of ``values`` on ``[1, drift]``: what the KED variogram is
    fitted to (gstat's ``variogram(z ~ cov)``)."""
    f = np.column_stack([np.ones(len(values)), np.asarray(drift, dtype=float)
                         .reshape(len(values), -1)])
    beta = np.linalg.lstsq(f, values, rcond=None)[0]
    return np.asarray(values, dtype=float) - f @ beta
