"""Compiled (numba) kernel of local kriging with a drift (:mod:`.drift`), point or block.

One system per target, built and solved in parallel over targets by Gaussian elimination with
partial pivoting (the systems are indefinite: the drift rows have a zero block, so Cholesky
does not apply). A pivot below ``PIVOT_TOL`` times the matrix's largest entry marks the
target singular; :mod:`.drift` then solves it by least squares.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..variogram.kernels import gamma_nb

#: Relative pivot size below which a system counts as singular.
PIVOT_TOL = 1e-13


@njit(cache=True, inline="always")
def _dist(a, i, b, j, off, u):
    s = 0.0
    for d in range(a.shape[1]):
        x = a[i, d] - b[j, d] - (off[u, d] if off.shape[0] else 0.0)
        s += x * x
    return math.sqrt(s)


@njit(cache=True)
def _solve(a, rhs, q):
    """Solve ``a x = rhs`` in place (``rhs`` becomes ``x``); False when singular."""
    scale = 0.0
    for i in range(q):
        for j in range(q):
            scale = max(scale, abs(a[i, j]))
    for c in range(q):
        piv = c
        for r in range(c + 1, q):
            if abs(a[r, c]) > abs(a[piv, c]):
                piv = r
        if not abs(a[piv, c]) > PIVOT_TOL * scale:
            return False
        if piv != c:
            for j in range(q):
                a[c, j], a[piv, j] = a[piv, j], a[c, j]
            rhs[c], rhs[piv] = rhs[piv], rhs[c]
        for r in range(c + 1, q):
            f = a[r, c] / a[c, c]
            if f != 0.0:
                for j in range(c, q):
                    a[r, j] -= f * a[c, j]
                rhs[r] -= f * rhs[c]
    for c in range(q - 1, -1, -1):
        s = rhs[c]
        for j in range(c + 1, q):
            s -= a[c, j] * rhs[j]
        rhs[c] = s / a[c, c]
    for c in range(q):
        if not math.isfinite(rhs[c]):
            return False
    return True


@njit(parallel=True, cache=True)
def drift_kernel(data, values, fs, targets, ft, nbr, codes, params, shift, jump, offsets,
                 weights, target_variance, est, var, singular):
    """Local kriging with drift columns ``fs``/``ft`` (constant included) at every target.

    ``offsets``/``weights``: block discretisation (``offsets`` of shape ``(0, d)`` for point
    support); ``jump``: the nugget-like part left out of the covariance between data and
    target at distance 0 (``Err`` for points, every nugget for blocks). Fills ``est``,
    ``var`` and ``singular`` (targets left for the least-squares fallback).
    """
    m, k = nbr.shape
    p1 = fs.shape[1]
    q = k + p1
    n_disc = offsets.shape[0]
    none = offsets[:0]  # no offset: data to data, or point support
    for t in prange(m):
        a = np.zeros((q, q))
        rhs = np.empty(q)
        for i in range(k):
            ii = nbr[t, i]
            for j in range(i, k):
                jj = nbr[t, j]
                c = shift - gamma_nb(codes, params, _dist(data, ii, data, jj, none, 0))
                a[i, j] = c
                a[j, i] = c
            for col in range(p1):
                a[i, k + col] = fs[ii, col]
                a[k + col, i] = fs[ii, col]
            if n_disc == 0:
                h = _dist(data, ii, targets, t, none, 0)
                c0 = shift - gamma_nb(codes, params, h) - (jump if h == 0.0 else 0.0)
            else:
                c0 = 0.0
                for u in range(n_disc):
                    h = _dist(data, ii, targets, t, offsets, u)
                    c0 += weights[u] * (shift - gamma_nb(codes, params, h)
                                        - (jump if h == 0.0 else 0.0))
            rhs[i] = c0
        for col in range(p1):
            rhs[k + col] = ft[t, col]
        b = rhs.copy()
        if not _solve(a, rhs, q):
            singular[t] = True
            est[t] = math.nan
            var[t] = math.nan
            continue
        singular[t] = False
        e = 0.0
        s = 0.0
        for i in range(k):
            e += rhs[i] * values[nbr[t, i]]
        for i in range(q):
            s += rhs[i] * b[i]
        est[t] = e
        var[t] = target_variance - s
