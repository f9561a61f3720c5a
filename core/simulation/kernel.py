"""Compiled sequential Gaussian simulation along random paths (numba, parallel over realisations).

Each realisation visits its free grid nodes in its own random order. At a node, the
conditioning set is the ``k`` nearest (anisotropic distance) among the data and the nodes
that realisation has already simulated: the data's nearest ``k`` are precomputed per node
(:func:`~gcnn_rnn.core.kriging.neighbours.find_neighbours`), the simulated nodes are found by
walking a template of grid offsets sorted by distance (GSLIB's spiral search) until ``k`` are
found or the offsets get farther than the ``(k - found)``-th datum. Simple kriging of the normal scores
(mean 0, covariance ``C = sill - gamma``) on that set gives a mean and variance, and the node
gets ``mean + sqrt(variance) * N(0, 1)``. The system is factorised by the kriging kernel's own
Cholesky routine and semivariogram (:mod:`gcnn_rnn.core.kriging.solver`); with ``C = L L'``,
``u = L^-1 c`` and ``v = L^-1 y``, the simple-kriging mean is ``u'v`` and the variance
``C(0) - u'u``: two triangular solves, no inverse (a random path shares no neighbour sets
between consecutive nodes, so the kriging kernel's inverse updates would not pay).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..kriging.solver import _EXP, _GAU, _NUG, _SPH, PIVOT_TOL, _cholesky, _dist, _gamma

_FM = {"reassoc", "contract"}


@njit(cache=True)
def _fast_models(codes) -> bool:
    for i in range(codes.shape[0]):
        c = codes[i]
        if c != _NUG and c != _SPH and c != _EXP and c != _GAU:
            return False
    return True


@njit(parallel=True, cache=True, fastmath=_FM)
def sgs_kernel(pts, n_data, y_data, dnbr, ddist, node_lrc, lut, offs, odist, paths, normals,
               codes, params, shift, k, p0, p1, sims):
    """Simulate path positions ``p0:p1`` of every realisation in ``sims`` (in place).

    Parameters
    ----------
    pts : ndarray, shape (n_data + n_nodes, d)
        Reduced coordinates of the data, then of the grid nodes.
    n_data : int
        Number of data (rows of ``pts`` before the nodes).
    y_data : ndarray, shape (n_data,)
        Normal scores of the data.
    dnbr, ddist : ndarray, shape (n_nodes, kd)
        Each node's nearest data (indices, ``-1`` padded) and reduced distances, ascending.
    node_lrc : ndarray of int64, shape (n_nodes, 3)
        Level, row and column of each node.
    lut : ndarray of int64, shape (n_levels, n_rows, n_cols)
        Node index of each cell, ``-1`` for inactive cells.
    offs, odist : ndarray, shape (n_offsets, 3) and (n_offsets,)
        Search template: (level, row, column) offsets sorted by their reduced distance.
    paths, normals : ndarray, shape (n_real, n_path)
        Per realisation, the node visited at each path position and its standard normal draw.
    codes, params : ndarray
        Variogram model arrays (:meth:`VariogramModel.kernel_arrays`).
    shift : float
        The model's sill (``C(h) = shift - gamma(h)``).
    k : int
        Most conditioning values per node.
    p0, p1 : int
        Path positions to simulate now (calls continue where the last stopped).
    sims : ndarray, shape (n_real, n_nodes)
        Normal scores, NaN where not simulated yet; updated in place.
    """
    n_real = paths.shape[0]
    n_off = offs.shape[0]
    nz, nr, nc = lut.shape
    kd = dnbr.shape[1]
    fast = _fast_models(codes)
    c00 = shift - _gamma(codes, params, 0.0, fast)
    for b in prange(n_real):
        nidx = np.empty(k, dtype=np.int64)
        ndst = np.empty(k)
        idx = np.empty(k, dtype=np.int64)
        dst = np.empty(k)
        zs = np.empty(k)
        u = np.empty(k)
        v = np.empty(k)
        low = np.empty((k, k))
        for p in range(p0, p1):
            node = paths[b, p]
            nd = 0
            while nd < kd and dnbr[node, nd] >= 0:
                nd += 1
            bound = ddist[node, nd - 1] if nd == k else np.inf
            lv, rw, cl = node_lrc[node, 0], node_lrc[node, 1], node_lrc[node, 2]
            nn = 0
            for t in range(n_off):
                if odist[t] > bound:
                    break
                ll = lv + offs[t, 0]
                rr = rw + offs[t, 1]
                cc = cl + offs[t, 2]
                if ll < 0 or ll >= nz or rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                    continue
                j = lut[ll, rr, cc]
                if j < 0 or math.isnan(sims[b, j]):
                    continue
                nidx[nn] = j
                ndst[nn] = odist[t]
                nn += 1
                if nn == k:
                    break
                # the nn nodes and the k - nn nearest data make k values: nothing farther
                # than the (k - nn)-th datum can be among the k nearest
                if k - nn - 1 < nd:
                    bound = ddist[node, k - nn - 1]
            # merge the two distance-sorted lists, keeping the k nearest
            kk = 0
            i_d = 0
            i_n = 0
            while kk < k and (i_d < nd or i_n < nn):
                if i_n >= nn or (i_d < nd and ddist[node, i_d] <= ndst[i_n]):
                    j = dnbr[node, i_d]
                    idx[kk] = j
                    dst[kk] = ddist[node, i_d]
                    zs[kk] = y_data[j]
                    i_d += 1
                else:
                    j = nidx[i_n]
                    idx[kk] = n_data + j
                    dst[kk] = ndst[i_n]
                    zs[kk] = sims[b, j]
                    i_n += 1
                kk += 1
            if kk > 0 and dst[0] == 0.0:  # on a datum: its value
                sims[b, node] = zs[0]
                continue
            ok = False
            while kk > 0 and not ok:  # singular (collinear, no nugget): drop the farthest
                for i in range(kk):
                    for j in range(i + 1):
                        low[i, j] = shift - _gamma(
                            codes, params, _dist(pts, idx[i], pts, idx[j]), fast)
                ok = _cholesky(low, kk, PIVOT_TOL)
                if not ok:
                    kk -= 1
            mean = 0.0
            var = c00
            if ok:
                for i in range(kk):  # forward substitution: u = L^-1 c, v = L^-1 y
                    su = shift - _gamma(codes, params, dst[i], fast)
                    sv = zs[i]
                    for j in range(i):
                        su -= low[i, j] * u[j]
                        sv -= low[i, j] * v[j]
                    u[i] = su / low[i, i]
                    v[i] = sv / low[i, i]
                    mean += u[i] * v[i]
                    var -= u[i] * u[i]
            sims[b, node] = mean + math.sqrt(var if var > 0.0 else 0.0) * normals[b, p]
