"""Global kriging (every sample in every system): one factorisation, BLAS for the targets.

With a global neighbourhood all targets share the same covariance matrix ``C`` (``n x n``),
so it is factorised once (LAPACK Cholesky) and each chunk of targets is solved with one
triangular solve against the matrix of target covariances ``C0`` (``n x m``): with
``T = L^-1 C0``, ``u = L^-1 1`` and ``v = L^-1 z`` the formulas of :mod:`.solver` hold
column by column. This is much faster than a per-target kernel when ``n`` is large.

Memory: one ``n x n`` float64 matrix, filled block by block of columns and factorised in
place (LAPACK ``dpotrf`` on the Fortran-ordered array; only its lower triangle is read
afterwards), plus chunks of targets far smaller than it (:data:`MATRIX_FACTOR` in all).
"""

from __future__ import annotations

import os

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtrs
from scipy.spatial.distance import cdist

from .solver import PIVOT_TOL

#: Peak memory of a global system, in units of one ``n x n`` float64 matrix (the matrix and
#: at most half of it again for target chunks and temporaries).
MATRIX_FACTOR = 1.5
#: Matrix entries computed per block while the matrix is filled (32 MB of temporaries).
_FILL_ENTRIES = 4 * 1024**2


def global_bytes(n: int) -> int:
    """Peak memory (bytes) of a global kriging system of ``n`` samples."""
    return int(MATRIX_FACTOR * 8 * n * n)


def available_bytes() -> int | None:
    """Memory the system can give now (``MemAvailable``), None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def max_global_samples(memory: int) -> int:
    """The most samples whose global system fits in ``memory`` bytes."""
    return int((memory / (MATRIX_FACTOR * 8)) ** 0.5)


def target_chunk(n: int, details: bool) -> int:
    """Targets per chunk so that the chunk's ``n x m`` temporaries (about eight, three times
    as many with details) stay within half the ``n x n`` matrix (or 16 MB when that is more)."""
    entries = max(0.5 * n * n, 2.0 * 1024**2)
    return max(1, int(entries / (8 * (3 if details else 1) * max(n, 1))))


def _trsm(lo: np.ndarray, b: np.ndarray, trans: int = 0) -> np.ndarray:
    """``L^-1 b`` (``trans=1``: ``L^-T b``) reading only the lower triangle of ``lo``."""
    x, info = dtrtrs(lo, b, lower=1, trans=trans)
    if info != 0:
        raise SingularSystem
    return x


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
        n = data.shape[0]
        cov = np.empty((n, n), order="F")
        # blocks of columns whose temporaries (about four) stay within a quarter of the matrix
        step = max(1, min(_FILL_ENTRIES, n * n // 16) // max(n, 1))
        for a in range(0, n, step):  # columns a:b, temporaries of n x step only
            cov[:, a:a + step] = self.shift - gamma(cdist(data, data[a:a + step]))
        lo, info = dpotrf(cov, lower=1, clean=0, overwrite_a=1)
        del cov  # the factor lives in the same memory when LAPACK could work in place
        if info != 0:
            raise SingularSystem
        self.lo = lo
        if not np.all(np.diagonal(lo) ** 2 > PIVOT_TOL * self.shift):
            raise SingularSystem
        self.u = _trsm(lo, np.ones(n))
        self.v = _trsm(lo, np.ascontiguousarray(z, dtype=float))
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
        t = _trsm(self.lo, c0)
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
        w = _trsm(self.lo, t - self.u[:, None] * mu_c[None, :], trans=1).T
        dist = d0.T
        order = np.argsort(dist, axis=1, kind="stable")
        take = np.take_along_axis
        w = take(w, order, axis=1)
        zero = take(dist, order, axis=1) == 0.0
        if exact.any():  # weight 1 (shared by coincident samples) on the sample itself
            w[exact] = zero[exact] / zero[exact].sum(axis=1, keepdims=True)
        return est, var, lag, exact, (order.astype(np.int64), w, take(dist, order, axis=1),
                                      take(c0.T, order, axis=1))
