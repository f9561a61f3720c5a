"""Robust solution of kriging systems the Cholesky kernel could not factorise.

Coincident neighbours (identical reduced coordinates) are merged into one point carrying
their mean value; the remaining system is solved in variogram form (ordinary kriging) or
covariance form (simple kriging) by least squares with a pseudo-inverse cut-off
(:func:`numpy.linalg.lstsq`), which gives the minimum-norm weights of a rank-deficient
system instead of failing.
"""

from __future__ import annotations

import numpy as np


def solve_singular(
    data: np.ndarray,
    z: np.ndarray,
    target: np.ndarray,
    nbr: np.ndarray,
    gamma,
    shift: float,
    simple: bool,
) -> tuple[float, float, float, np.ndarray]:
    """Krige one target from neighbours whose system is singular or ill-conditioned.

    Parameters
    ----------
    data : ndarray, shape (n, d)
        Reduced sample coordinates.
    z : ndarray, shape (n,)
        Centred sample values.
    target : ndarray, shape (d,)
        Reduced target coordinates.
    nbr : ndarray of int64, shape (k,)
        Neighbour indices (``-1`` padding allowed at the end).
    gamma : callable
        Semivariogram of reduced distances (``VariogramModel.gamma``).
    shift : float
        Covariance constant (the sill for bounded models); used for simple kriging.
    simple : bool
        Simple kriging (``z`` centred on the known mean) instead of ordinary kriging.

    Returns
    -------
    estimate, variance, lagrange : float
        In centred units; ``lagrange`` in the variogram convention (0 for simple kriging).
    weights : ndarray, shape (k,)
        Weights aligned with ``nbr`` (a merged group shares its weight equally).
    """
    valid = nbr[nbr >= 0]
    pts = data[valid]
    uniq, group = np.unique(pts, axis=0, return_inverse=True)
    group = group.ravel()
    counts = np.bincount(group, minlength=uniq.shape[0])
    zu = np.bincount(group, weights=z[valid], minlength=uniq.shape[0]) / counts
    nu = uniq.shape[0]
    diff = uniq[:, None, :] - uniq[None, :, :]
    g = gamma(np.sqrt((diff * diff).sum(axis=-1)))
    g0 = gamma(np.sqrt(((uniq - target) ** 2).sum(axis=-1)))
    if simple:
        cov = shift - g
        c0 = shift - g0
        wu = np.linalg.lstsq(cov, c0, rcond=1e-12)[0]
        est = float(wu @ zu)
        var = float(shift - wu @ c0)
        lag = 0.0
    else:
        a = np.ones((nu + 1, nu + 1))
        a[:nu, :nu] = g
        a[nu, nu] = 0.0
        rhs = np.append(g0, 1.0)
        sol = np.linalg.lstsq(a, rhs, rcond=1e-12)[0]
        wu, lag = sol[:nu], float(sol[nu])
        est = float(wu @ zu)
        var = float(wu @ g0 + lag)
    weights = np.zeros(nbr.shape[0])
    weights[: valid.size] = wu[group] / counts[group]
    return est, max(var, 0.0), lag, weights
