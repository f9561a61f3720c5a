"""Compiled sequential Gaussian simulation along random paths (numba, parallel over groups).

Realisations come in groups that share one random path (gstat does the same for all its
``nsim``): along a shared path every realisation has simulated the same nodes before the
current one, so the conditioning *locations*, and with them the kriging weights, are the same
for the whole group; only the conditioning *values* and the normal draws differ. One
kriging system per node then serves the whole group. Groups run in parallel.

At a node, the conditioning set is the ``k`` nearest (anisotropic distance) among the data and
the nodes already simulated: the data's nearest ``k`` are searched per call for the nodes of
the path positions it simulates (:func:`~gcnn_rnn.core.kriging.neighbours.find_neighbours`,
whose canonical finish makes them independent of which nodes are searched together), the
simulated nodes are found by
walking a template of grid offsets sorted by distance (GSLIB's spiral search) until ``k`` are
found or the offsets get farther than the ``(k - found)``-th datum. Simple kriging of the
normal scores (mean 0, covariance ``C = sill - gamma``) gives weights ``w = C^-1 c`` and
variance ``s^2 = C(0) - c'w``, and realisation ``b`` gets ``w'y_b + s * N(0, 1)``. The system
is factorised by the kriging kernel's own Cholesky routine and semivariogram
(:mod:`gcnn_rnn.core.kriging.solver`): with ``C = L L'``, ``u = L^-1 c``, ``s^2 = C(0) - u'u``
and ``w = L'^-1 u``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..kriging.solver import _EXP, _GAU, _MAT, _NUG, _SPH, PIVOT_TOL, _cholesky, _dist, _gamma

_FM = {"reassoc", "contract"}


@njit(cache=True)
def _fast_models(codes) -> bool:
    for i in range(codes.shape[0]):
        c = codes[i]
        if c != _NUG and c != _SPH and c != _EXP and c != _GAU and c != _MAT:
            return False
    return True


@njit(parallel=True, cache=True, fastmath=_FM)
def sgs_kernel(pts, n_data, y_data, dnbr, ddist, flat, lut, offs, odist, paths, starts,
               normals, codes, params, shift, k, p0, p1, sims):
    """Simulate path positions ``p0:p1`` of every group of realisations (``sims`` in place).

    Parameters
    ----------
    pts : ndarray, shape (n_data + n_nodes, d)
        Reduced coordinates of the data, then of the grid nodes.
    n_data : int
        Number of data (rows of ``pts`` before the nodes).
    y_data : ndarray, shape (n_data,)
        Normal scores of the data.
    dnbr, ddist : ndarray, shape (n_groups, p1 - p0, kd)
        Per group, the nearest data of the node at each path position ``p0:p1`` (indices,
        ``-1`` padded) and their reduced distances, ascending.
    flat : ndarray of int32 or int64, shape (n_nodes,)
        Raster index (level, row, column in C order) of each node.
    lut : ndarray of int32 or int64, shape (n_levels, n_rows, n_cols)
        Node index of each cell, ``-1`` for inactive cells.
    offs, odist : ndarray, shape (n_offsets, 3) and (n_offsets,)
        Search template: (level, row, column) offsets sorted by their reduced distance.
    paths : ndarray of int64, shape (n_groups, n_path)
        Per group, the node visited at each path position.
    starts : ndarray of int64, shape (n_groups + 1,)
        Group ``g`` is realisations (rows of ``normals`` and ``sims``) ``starts[g]:starts[g+1]``.
    normals : ndarray, shape (n_real, p1 - p0)
        Per realisation, the standard normal draw at each path position ``p0:p1``.
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
    n_groups = paths.shape[0]
    n_off = offs.shape[0]
    nz, nr, nc = lut.shape
    kd = dnbr.shape[2]
    per_level = nr * nc
    fast = _fast_models(codes)
    c00 = shift - _gamma(codes, params, 0.0, fast)
    for g in prange(n_groups):
        first = starts[g]
        nidx = np.empty(k, dtype=np.int64)
        ndst = np.empty(k)
        idx = np.empty(k, dtype=np.int64)
        dst = np.empty(k)
        u = np.empty(k)
        w = np.empty(k)
        low = np.empty((k, k))
        for p in range(p0, p1):
            node = paths[g, p]
            q = p - p0  # row of this position in dnbr, ddist and normals
            nd = 0
            while nd < kd and dnbr[g, q, nd] >= 0:
                nd += 1
            bound = ddist[g, q, nd - 1] if nd == k else np.inf
            f = np.int64(flat[node])
            lv = f // per_level
            rw = (f - lv * per_level) // nc
            cl = f - lv * per_level - rw * nc
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
                if j < 0 or math.isnan(sims[first, j]):
                    continue
                nidx[nn] = j
                ndst[nn] = odist[t]
                nn += 1
                if nn == k:
                    break
                # the nn nodes and the k - nn nearest data make k values: nothing farther
                # than the (k - nn)-th datum can be among the k nearest
                if k - nn - 1 < nd:
                    bound = ddist[g, q, k - nn - 1]
            # merge the two distance-sorted lists, keeping the k nearest; idx indexes pts
            kk = 0
            i_d = 0
            i_n = 0
            while kk < k and (i_d < nd or i_n < nn):
                if i_n >= nn or (i_d < nd and ddist[g, q, i_d] <= ndst[i_n]):
                    idx[kk] = dnbr[g, q, i_d]
                    dst[kk] = ddist[g, q, i_d]
                    i_d += 1
                else:
                    idx[kk] = n_data + nidx[i_n]
                    dst[kk] = ndst[i_n]
                    i_n += 1
                kk += 1
            if kk > 0 and dst[0] == 0.0:  # on a datum: its value, no noise
                j = idx[0]
                for b in range(first, starts[g + 1]):
                    sims[b, node] = y_data[j] if j < n_data else sims[b, j - n_data]
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
            var = c00
            if not ok:
                kk = 0
            for i in range(kk):  # u = L^-1 c
                s = shift - _gamma(codes, params, dst[i], fast)
                for j in range(i):
                    s -= low[i, j] * u[j]
                u[i] = s / low[i, i]
                var -= u[i] * u[i]
            for i in range(kk - 1, -1, -1):  # w = L'^-1 u, the simple-kriging weights
                s = u[i]
                for j in range(i + 1, kk):
                    s -= low[j, i] * w[j]
                w[i] = s / low[i, i]
            sd = math.sqrt(var if var > 0.0 else 0.0)
            for b in range(first, starts[g + 1]):
                mean = 0.0
                for i in range(kk):
                    j = idx[i]
                    mean += w[i] * (y_data[j] if j < n_data else sims[b, j - n_data])
                sims[b, node] = mean + sd * normals[b, q]
