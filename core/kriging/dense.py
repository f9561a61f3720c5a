"""Global kriging (every sample in every system): one factorisation, BLAS for the targets.

With a global neighbourhood all targets share the same covariance matrix ``C`` (``n x n``),
so it is factorised once (LAPACK Cholesky) and each chunk of targets is solved with one
triangular solve against the matrix of target covariances ``C0`` (``n x m``): with
``T = L^-1 C0``, ``u = L^-1 1`` and ``v = L^-1 z`` the formulas of :mod:`.solver` hold
column by column. This is much faster than a per-target kernel when ``n`` is large.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.spatial.distance import cdist

from .solver import PIVOT_TOL


class SingularSystem(Exception):
    """The global covariance matrix is not (numerically) positive definite."""


class DenseSystem:
    """The factorised global system of one data set.

    Parameters
    ----------
    data : ndarray, shape (n, d)
        Reduced sample coordinates.
    z : ndarray, shape (n,)
        Centred values (on the known mean for simple kriging).
    gamma : callable
        Semivariogram of reduced distances.
    shift : float
        Covariance constant (the sill for bounded models).
    simple : bool
        Simple kriging.

    Raises
    ------
    SingularSystem
        When the Cholesky factorisation fails or a pivot is below ``PIVOT_TOL`` (duplicate
        samples, ...); the caller then uses the per-target kernel and its fallback.
    """

    def __init__(self, data: np.ndarray, z: np.ndarray, gamma, shift: float, simple: bool):
        self.data = data
        self.gamma = gamma
        self.shift = float(shift)
        self.simple = simple
        cov = self.shift - gamma(cdist(data, data))
        try:
            self.lo = cholesky(cov, lower=True, check_finite=False)
        except LinAlgError:
            raise SingularSystem from None
        if not np.all(np.diag(self.lo) ** 2 > PIVOT_TOL * self.shift):
            raise SingularSystem
        self.u = solve_triangular(self.lo, np.ones(len(z)), lower=True, check_finite=False)
        self.v = solve_triangular(self.lo, z, lower=True, check_finite=False)
        self.sum_b = float(self.u @ self.u)
        self.bz = float(self.u @ self.v)
        self.c00 = self.shift - float(gamma(0.0))

    def solve(self, targets: np.ndarray, details: bool = False):
        """Krige ``targets`` (reduced, ``(m, d)``).

        Returns
        -------
        est, var, lag : ndarray, shape (m,)
            Centred estimate, variance (clipped at 0), Lagrange multiplier (variogram sign).
        exact : ndarray of bool, shape (m,)
            Targets on a sample (their estimate is set by the caller from the raw values).
        extra : tuple or None
            With ``details``: ``(neighbours, weights, distances, cov_target)``, each
            ``(m, n)`` and ordered by distance.
        """
        d0 = cdist(self.data, targets)  # (n, m)
        c0 = self.shift - self.gamma(d0)
        t = solve_triangular(self.lo, c0, lower=True, check_finite=False)
        tt = np.einsum("ij,ij->j", t, t)
        c0b = self.u @ t
        c0beta = self.v @ t
        if self.simple:
            mu_c = np.zeros(targets.shape[0])
            est = c0beta
            var = self.c00 - tt
        else:
            mu_c = (c0b - 1.0) / self.sum_b
            est = c0beta - mu_c * self.bz
            var = self.c00 - tt + (c0b - 1.0) ** 2 / self.sum_b
        var = np.clip(var, 0.0, None)
        lag = -mu_c
        exact = (d0 == 0.0).any(axis=0)
        var[exact] = 0.0
        lag[exact] = 0.0
        if not details:
            return est, var, lag, exact, None
        w = solve_triangular(self.lo.T, t - self.u[:, None] * mu_c[None, :], lower=False,
                             check_finite=False).T
        dist = d0.T
        order = np.argsort(dist, axis=1, kind="stable")
        take = np.take_along_axis
        w = take(w, order, axis=1)
        zero = take(dist, order, axis=1) == 0.0
        if exact.any():  # weight 1 (shared by coincident samples) on the sample itself
            w[exact] = zero[exact] / zero[exact].sum(axis=1, keepdims=True)
        return est, var, lag, exact, (order.astype(np.int64), w, take(dist, order, axis=1),
                                      take(c0.T, order, axis=1))
