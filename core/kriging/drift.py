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

Block kriging replaces the target's covariances by their averages over the points
discretising the block, ``c0_i = sum_j v_j C(x_i - u_j)`` and ``C(0)`` by
``sum_jk v_j v_k C(u_j - u_k)``, without any nugget-like jump (a block mean has no micro-scale
variation). A measurement error (``Err``) is on the diagonal of ``C`` but not in ``c0`` at a
datum's own location nor in ``C(0)``. Both follow gstat (checked to 1e-6 in
tests/core/oracle/test_gstat_universal.py); with ``p = 0`` (no covariate) the system is
ordinary kriging, which is how :mod:`.universal` serves block and ``Err`` kriging.

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
from ..progress import ProgressFn, StopFn, check_cancel
from .api import bounding_corners, covariance_shift
from .drift_kernel import drift_kernel

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
    *,
    block: np.ndarray | None = None,
    block_weights: np.ndarray | None = None,
    progress: ProgressFn | None = None,
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
        Variogram of the residuals from the drift (anisotropy honoured). A measurement-error
        part (``Err``) is on the diagonal of the data covariances but not in the covariance
        between a datum and a target at its location, so the estimate smooths the data.
    neighbours : int
        Nearest samples per target (by anisotropic distance); 0 = all (global).
    should_stop : callable, optional
    block : ndarray, shape (n_disc, d), optional
        Block kriging: offsets of the points discretising a block around each target (see
        :func:`block_discretisation`). Covariances with the target become (weighted) averages
        over the block, the variance is that of the block mean. ``target_drift`` must then be
        the drift's block average (for covariates, their value at the block centre, as gstat).
    block_weights : ndarray, shape (n_disc,), optional
        Weights of the block points (summing to 1); default equal.
    progress : callable, optional
        ``progress(fraction, text)`` between batches.

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
    cov = _TargetCovariance(model, shift, block, block_weights, coords.shape[1])
    fs_full = np.hstack([np.ones((n, 1)), f_s])
    ft_full = np.hstack([np.ones((len(targets), 1)), f_t])
    if k == n:
        return _finish(*_global(red_s, red_t, values, fs_full, ft_full, model, shift, cov,
                                should_stop, progress))
    m = len(targets)
    _, nbr_all = cKDTree(red_s).query(red_t, k=k)
    nbr_all = np.ascontiguousarray(np.asarray(nbr_all, dtype=np.int64).reshape(m, k))
    est, var = np.empty(m), np.empty(m)
    singular = np.zeros(m, dtype=np.bool_)
    codes, params = model.kernel_arrays()
    d = coords.shape[1]
    offsets = np.empty((0, d)) if cov.offsets is None else np.ascontiguousarray(cov.offsets)
    weights = np.empty(0) if cov.weights is None else np.ascontiguousarray(cov.weights)
    red_s, red_t = np.ascontiguousarray(red_s), np.ascontiguousarray(red_t)
    step = 8 * BATCH
    for start in range(0, m, step):
        check_cancel(should_stop)
        stop = min(start + step, m)
        drift_kernel(red_s, values, fs_full, red_t[start:stop], ft_full[start:stop],
                     nbr_all[start:stop], codes, params, shift, cov.jump, offsets, weights,
                     cov.target_variance, est[start:stop], var[start:stop],
                     singular[start:stop])
        if progress is not None:
            progress(stop / m, "kriging")
    bad = np.flatnonzero(singular)
    for start in range(0, len(bad), BATCH):
        rows = bad[start:start + BATCH]
        est[rows], var[rows] = _least_squares(red_s, red_t[rows], values, fs_full,
                                              ft_full[rows], nbr_all[rows], model, shift, cov)
    return _finish(est, var, int(bad.size))


def _least_squares(red_s, red_t, values, fs_full, ft_full, nbr, model, shift, cov):
    """Estimates and variances of targets with a singular system, by least squares."""
    b, k = nbr.shape
    q = k + fs_full.shape[1]
    xs = red_s[nbr]  # (b, k, d)
    d_ss = np.sqrt(((xs[:, :, None, :] - xs[:, None, :, :]) ** 2).sum(-1))
    a = np.zeros((b, q, q))
    a[:, :k, :k] = model.covariance(d_ss, shift)
    fn = fs_full[nbr]  # (b, k, p + 1)
    a[:, :k, k:] = fn
    a[:, k:, :k] = np.swapaxes(fn, 1, 2)
    rhs = np.empty((b, q))
    rhs[:, :k] = cov.to_targets(xs, red_t)
    rhs[:, k:] = ft_full
    sol = np.stack([np.linalg.lstsq(a[i], rhs[i], rcond=None)[0] for i in range(b)])
    return ((sol[:, :k] * values[nbr]).sum(axis=1),
            cov.target_variance - (sol * rhs).sum(axis=1))


def block_discretisation(size, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points discretising a rectangular block around its centre, and their weights.

    Parameters
    ----------
    size : sequence of float
        Block size along x, y (and z); a side of 0 gets one point, at the centre.
    n : int, optional
        ``None``: gstat's default, Gauss-Legendre quadrature with 4 points per side (weights
        the products of the Gauss weights). An integer: ``n`` equally spaced points per side,
        the centres of ``n`` equal parts, with equal weights (gstat's
        ``set = list(nblockdiscr = n)``).

    Returns
    -------
    offsets : ndarray, shape (n_disc, d)
        From the block's centre.
    weights : ndarray, shape (n_disc,)
        Summing to 1.
    """
    size = [float(s) for s in size]
    if (n is not None and int(n) < 1) or not all(np.isfinite(s) and s >= 0 for s in size):
        raise InputDataError(
            f"a block needs sizes >= 0 and a discretisation >= 1, not {size!r} and {n!r}"
        )
    if n is None:
        nodes, w = np.polynomial.legendre.leggauss(GAUSS_POINTS)
        nodes, w = nodes / 2.0, w / 2.0  # on [-1/2, 1/2], weights summing to 1
    else:
        nodes, w = (np.arange(int(n)) + 0.5) / int(n) - 0.5, np.full(int(n), 1.0 / int(n))
    axes = [(nodes * s, w) if s > 0 else (np.zeros(1), np.ones(1)) for s in size]
    pts = np.meshgrid(*[a for a, _ in axes], indexing="ij")
    wts = np.meshgrid(*[b for _, b in axes], indexing="ij")
    weights = np.prod([g.ravel() for g in wts], axis=0)
    return np.column_stack([g.ravel() for g in pts]), weights


#: Gauss-Legendre points per block side in gstat's default block discretisation.
GAUSS_POINTS = 4


class _TargetCovariance:
    """Covariances between data and targets (points or blocks), and the target's own variance.

    A measurement-error part ``Err`` of the model is not in the covariance between a datum and
    a point at the same location (it is noise of the datum only), nor in the target variance:
    the estimate is of the noise-free value (gstat's ``Err`` semantics). For blocks, no
    nugget-like part enters the averages (a block mean has no micro-scale variation), as gstat.
    """

    def __init__(self, model, shift: float, block: np.ndarray | None,
                 weights: np.ndarray | None, ndim: int):
        self.model, self.shift = model, shift
        if block is None:
            self.offsets = self.weights = None
            self.n_disc = 1
            self.jump = model.measurement_error
            self.target_variance = shift - self.jump
            return
        offsets = np.asarray(block, dtype=float)
        if offsets.ndim != 2 or offsets.shape[1] != ndim or not np.isfinite(offsets).all():
            raise InputDataError(
                f"block discretisation must have shape (n, {ndim}), not {offsets.shape!r}"
            )
        w = (np.full(len(offsets), 1.0 / len(offsets)) if weights is None
             else np.asarray(weights, dtype=float).ravel())
        if w.shape != (len(offsets),) or not np.isfinite(w).all() or abs(w.sum() - 1) > 1e-9:
            raise InputDataError("block weights must be one finite weight per point, summing to 1")
        self.offsets, self.weights = model.reduce(offsets), w
        self.n_disc = len(offsets)
        self.jump = model.nugget
        self.target_variance = float(w @ self._cov(cdist(self.offsets, self.offsets)) @ w)

    def _cov(self, d: np.ndarray) -> np.ndarray:
        c = self.model.covariance(d, self.shift)
        return c - self.jump * (d == 0.0) if self.jump else c

    def to_targets(self, xs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``xs`` (b, k, d) data per target, ``t`` (b, d) targets -> covariances (b, k)."""
        if self.offsets is None:
            return self._cov(np.sqrt(((xs - t[:, None, :]) ** 2).sum(-1)))
        pts = t[:, None, :] + self.offsets[None, :, :]  # (b, n_disc, d)
        d = np.sqrt(((xs[:, :, None, :] - pts[:, None, :, :]) ** 2).sum(-1))
        return self._cov(d) @ self.weights

    def data_to_targets(self, xs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """All data ``xs`` (n, d) to targets ``t`` (b, d) -> covariances (n, b)."""
        if self.offsets is None:
            return self._cov(cdist(xs, t))
        out = np.zeros((len(xs), len(t)))
        for u, w in zip(self.offsets, self.weights, strict=True):
            out += w * self._cov(cdist(xs, t + u))
        return out


def _global(red_s, red_t, values, fs_full, ft_full, model, shift, cov, should_stop, progress):
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
    m = len(red_t)
    est, var = np.empty(m), np.empty(m)
    batch = max(16, BATCH // cov.n_disc)
    for start in range(0, m, batch):
        check_cancel(should_stop)
        stop = min(start + batch, m)
        rhs = np.vstack([cov.data_to_targets(red_s, red_t[start:stop]),
                         ft_full[start:stop].T])  # (q, b)
        sol = pinv @ rhs if singular else lu_solve(lu, rhs)
        est[start:stop] = values @ sol[:n]
        var[start:stop] = cov.target_variance - (sol * rhs).sum(axis=0)
        if progress is not None:
            progress(stop / m, "kriging")
    return est, var, (m if singular else 0)


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
