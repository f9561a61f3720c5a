"""Compiled per-target kriging kernel (numba, parallel over blocks of targets).

Each target's system is written in covariance form, ``C`` being ``shift - Gamma`` on its
neighbours (``shift`` = the sill for bounded models, a large constant for unbounded ones,
which ordinary kriging ignores). The kernel keeps ``A = C^-1`` (from a Cholesky
factorisation), ``b = A 1`` and the values ``z``; for a target with covariances ``c0`` and
``q = A c0``:

* ordinary kriging: ``mu_c = (1'q - 1) / 1'b``, weights ``w = q - mu_c b``, estimate
  ``w'z = q'z - mu_c b'z``, variance ``C(0) - q'c0 + (1'q - 1)^2 / 1'b``; the Lagrange
  multiplier reported is the variogram convention's ``mu = -mu_c``;
* simple kriging (values centred on the known mean): estimate ``q'z``, variance
  ``C(0) - q'c0``.

``A`` depends only on the neighbour *set*. Consecutive targets (raster order) usually share
their set or differ by one or two samples, so a block of targets keeps one ``A``: an equal set
reuses it; a set differing by at most ``MAX_SWAP`` samples updates it in place (a leaving
sample's slot is removed by a rank-one downdate, an entering sample fills the free slot by
bordering, O(k^2) each instead of O(k^3)); anything else recomputes it; after ``MAX_UPDATES``
updates it is recomputed to bound round-off. Blocks have a fixed size, so results do not
depend on the number of threads. A target at a sample location gets that sample's value and
variance 0 (several coincident samples: their mean). A failed factorisation or bordering
(pivot below ``PIVOT_TOL`` times ``C(0)``) is flagged for the Python fallback.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..variogram.kernels import gamma_nb, matern_row_nb
from ..variogram.models import MODELS

#: Relative pivot below which a Cholesky factorisation is declared singular.
PIVOT_TOL = 1e-12
#: Targets per parallel work item (``A`` is reused and updated within a block).
BLOCK = 256
#: Most samples swapped by updating ``A`` instead of recomputing it.
MAX_SWAP = 4
#: Consecutive updates after which ``A`` is recomputed from scratch (bounds round-off).
MAX_UPDATES = 256

#: Floating-point licences of the compiled loops: reassociation (vectorised dot products) and
#: fused multiply-add only; NaN and infinity semantics are kept.
_FM = {"reassoc", "contract"}

STATUS_OK, STATUS_MISSING, STATUS_SINGULAR, STATUS_EXACT = 0, 1, 2, 3

#: Codes of the models :func:`_gamma_fast` evaluates inline (the common ones; Matérn by its
#: table, :mod:`..variogram.matern_table`).
_NUG, _SPH, _EXP, _GAU, _MAT = (MODELS[name].code for name in ("nug", "sph", "exp", "gau", "mat"))


@njit(cache=True, inline="always", fastmath=_FM)
def _gamma_fast(codes, params, h):
    """Nugget/spherical/exponential/gaussian/Matérn semivariogram, same values as ``gamma_nb``.

    The generic :func:`gamma_nb` dispatches over every model and is not inlined by LLVM;
    this small version of the four common models is, which makes it several times faster
    in the inner loops. Tested against ``VariogramModel.gamma``.
    """
    if h <= 0.0:
        return 0.0
    total = 0.0
    for i in range(codes.shape[0]):
        c = codes[i]
        p = params[i, 0]
        if c == _NUG:
            total += p
            continue
        x = h / params[i, 1]
        if c == _SPH:
            total += p if x >= 1.0 else p * x * (1.5 - 0.5 * x * x)
        elif c == _EXP:
            total -= p * math.expm1(-x)
        elif c == _GAU:
            total -= p * math.expm1(-x * x)
        elif c == _MAT:
            total += p * matern_row_nb(params, i, x)
    return total


@njit(cache=True, inline="always", fastmath=_FM)
def _gamma(codes, params, h, fast):
    if fast:
        return _gamma_fast(codes, params, h)
    return gamma_nb(codes, params, h)


@njit(cache=True, inline="always", fastmath=_FM)
def _dist(a, i, b, j):
    s = 0.0
    for q in range(a.shape[1]):
        d = a[i, q] - b[j, q]
        s += d * d
    return math.sqrt(s)


@njit(cache=True, fastmath=_FM)
def _cholesky(a, n, tol):
    """In-place lower Cholesky of ``a[:n, :n]``; False when a pivot is too small."""
    for j in range(n):
        s = a[j, j]
        diag = s
        for p in range(j):
            s -= a[j, p] * a[j, p]
        if not (s > tol * diag):
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, n):
            s2 = a[i, j]
            for p in range(j):
                s2 -= a[i, p] * a[j, p]
            a[i, j] = s2 / d
    return True


@njit(cache=True, fastmath=_FM)
def _inverse_fresh(data, idx, kk, codes, params, shift, fast, a, work):
    """``a[:kk, :kk] = C^-1`` for the samples ``idx[:kk]``; False when ``C`` is singular."""
    for i in range(kk):
        for j in range(i + 1):
            work[i, j] = shift - _gamma(codes, params, _dist(data, idx[i], data, idx[j]), fast)
    if not _cholesky(work, kk, PIVOT_TOL):
        return False
    for i in range(kk):  # work <- L^-1, row by row
        d = 1.0 / work[i, i]
        for j in range(i):
            s = 0.0
            for p in range(j, i):
                s += work[i, p] * work[p, j]
            work[i, j] = -s * d
        work[i, i] = d
    for i in range(kk):  # A = L^-T L^-1
        for j in range(i + 1):
            s = 0.0
            for p in range(i, kk):
                s += work[p, i] * work[p, j]
            a[i, j] = s
            a[j, i] = s
    return True


@njit(cache=True, fastmath=_FM)
def _update(data, stamp, slots, kk, new, codes, params, shift, fast, c00, a, col, row, keep,
            add):
    """Turn ``A`` of the set ``slots[:kk]`` into that of ``new[:kk]`` (downdates, bordering).

    ``stamp[j]`` is ``slot + 1`` for samples in the set, else 0. Returns 2 when the sets are
    equal, 1 after an update, -1 when more than ``MAX_SWAP`` samples differ and 0 when a
    bordering step was singular (both: the caller recomputes). ``slots`` and ``stamp`` are
    kept in step.
    """
    n_add = 0
    for s in range(kk):
        keep[s] = False
    for c in range(kk):
        j = new[c]
        if stamp[j] > 0:
            keep[stamp[j] - 1] = True
        else:
            if n_add == MAX_SWAP:
                return -1
            add[n_add] = j
            n_add += 1
    if n_add == 0:
        return 2
    for p in range(kk):  # remove the leaving samples: A <- A - a_p a_p' / a_pp
        if keep[p]:
            continue
        inv = 1.0 / a[p, p]
        for i in range(kk):
            col[i] = a[i, p]
        for i in range(kk):
            f = col[i] * inv
            for j in range(kk):
                a[i, j] -= f * col[j]
        for i in range(kk):
            a[i, p] = 0.0
            a[p, i] = 0.0
        stamp[slots[p]] = 0
    q = 0
    for p in range(kk):  # the entering samples fill the free slots
        if keep[p]:
            continue
        j = add[q]
        q += 1
        for i in range(kk):
            row[i] = 0.0 if not keep[i] else shift - _gamma(
                codes, params, _dist(data, j, data, slots[i]), fast)
        s = c00
        for i in range(kk):
            acc = 0.0
            for m in range(kk):
                acc += a[i, m] * row[m]
            col[i] = acc
            s -= row[i] * acc
        if not (s > PIVOT_TOL * c00):
            return 0
        inv = 1.0 / s
        for i in range(kk):
            f = col[i] * inv
            for m in range(kk):
                a[i, m] += f * col[m]
        for i in range(kk):
            a[i, p] = -col[i] * inv
            a[p, i] = -col[i] * inv
        a[p, p] = inv
        slots[p] = j
        stamp[j] = p + 1
        keep[p] = True
    return 1


@njit(parallel=True, cache=True, fastmath=_FM)
def krige_kernel(data, z, targets, nbr_rows, pos, dist_rows, codes, params, shift, simple,
                 min_nb, details, n_workers, est, var, lag, status, w_out, c_out):
    """Krige ``targets`` from their neighbour lists (``-1`` padded, distance order).

    Target ``r``'s neighbours are ``nbr_rows[pos[r]]`` at reduced distances
    ``dist_rows[pos[r]]`` (the search may return rows in another order than the targets,
    which are kriged in their own order). ``data``/``targets`` are reduced coordinates, ``z``
    the centred values (on the known mean for simple kriging). Writes ``est``, ``var``,
    ``lag``, ``status`` and, with ``details``, the weights ``w_out`` and target covariances
    ``c_out`` (row ``r``, aligned with the neighbour list). ``n_workers`` work items (a few
    per thread) each take every ``n_workers``-th block.
    """
    m, k = nbr_rows.shape
    n_data = data.shape[0]
    nblocks = (m + BLOCK - 1) // BLOCK
    n_workers = max(1, min(nblocks, n_workers))
    fast = True
    for i in range(codes.shape[0]):  # other models go through the generic gamma_nb
        c = codes[i]
        if c != _NUG and c != _SPH and c != _EXP and c != _GAU and c != _MAT:
            fast = False
    c00 = shift - _gamma(codes, params, 0.0, fast)
    for wkr in prange(n_workers):
        stamp = np.zeros(n_data, dtype=np.int32)
        a = np.empty((k, k))
        work = np.empty((k, k))
        slots = np.empty(k, dtype=np.int64)  # sample index of each row of A
        keep = np.empty(k, dtype=np.bool_)
        add = np.empty(k, dtype=np.int64)
        row = np.empty(k)
        col = np.empty(k)
        zs = np.empty(k)
        b = np.empty(k)
        c0 = np.empty(k)
        q = np.empty(k)
        n_slots = 0
        for blk in range(wkr, nblocks, n_workers):
            # every block starts afresh, so results do not depend on the worker layout
            for s in range(n_slots):
                stamp[slots[s]] = 0
            n_slots = 0
            valid = False
            updates = 0
            sum_b = 0.0
            bz = 0.0
            for r in range(blk * BLOCK, min(m, (blk + 1) * BLOCK)):
                nbr_r = nbr_rows[pos[r]]
                dist_r = dist_rows[pos[r]]
                kk = 0
                while kk < k and nbr_r[kk] >= 0:
                    kk += 1
                if details:
                    for c in range(k):
                        w_out[r, c] = 0.0
                        c_out[r, c] = 0.0
                    for c in range(kk):
                        c_out[r, c] = shift - _gamma(codes, params, dist_r[c], fast)
                if kk < min_nb or kk == 0:
                    est[r] = np.nan
                    var[r] = np.nan
                    lag[r] = np.nan
                    status[r] = STATUS_MISSING
                    continue
                if dist_r[0] == 0.0:
                    # a target on a sample: its value (mean of coincident ones), variance 0
                    n_zero = 0
                    zsum = 0.0
                    while n_zero < kk and dist_r[n_zero] == 0.0:
                        zsum += z[nbr_r[n_zero]]
                        n_zero += 1
                    est[r] = zsum / n_zero
                    var[r] = 0.0
                    lag[r] = 0.0
                    status[r] = STATUS_EXACT
                    if details:
                        for c in range(n_zero):
                            w_out[r, c] = 1.0 / n_zero
                    continue
                fresh = True
                changed = False
                if valid and kk == n_slots and updates < MAX_UPDATES:
                    res = _update(data, stamp, slots, kk, nbr_r, codes, params, shift, fast,
                                  c00, a, col, row, keep, add)
                    if res == 2 or res == 1:
                        fresh = False
                        changed = res == 1
                        updates += res == 1
                if fresh:
                    for s in range(n_slots):
                        if slots[s] >= 0:
                            stamp[slots[s]] = 0
                    for c in range(kk):
                        slots[c] = nbr_r[c]
                        stamp[slots[c]] = c + 1
                    n_slots = kk
                    updates = 0
                    valid = _inverse_fresh(data, slots, kk, codes, params, shift, fast, a, work)
                    changed = valid
                if not valid:
                    est[r] = np.nan
                    var[r] = np.nan
                    lag[r] = np.nan
                    status[r] = STATUS_SINGULAR
                    continue
                if changed:  # refresh b = A 1, 1'b and b'z
                    sum_b = 0.0
                    bz = 0.0
                    for i in range(kk):
                        zs[i] = z[slots[i]]
                    for i in range(kk):
                        acc = 0.0
                        for j in range(kk):
                            acc += a[i, j]
                        b[i] = acc
                        sum_b += acc
                        bz += acc * zs[i]
                for c in range(kk):
                    c0[stamp[nbr_r[c]] - 1] = shift - _gamma(codes, params, dist_r[c], fast)
                sq = 0.0
                qz = 0.0
                qc = 0.0
                for i in range(kk):
                    acc = 0.0
                    for j in range(kk):
                        acc += a[i, j] * c0[j]
                    q[i] = acc
                    sq += acc
                    qz += acc * zs[i]
                    qc += acc * c0[i]
                if simple:
                    e = qz
                    var_r = c00 - qc
                    mu_c = 0.0
                else:
                    mu_c = (sq - 1.0) / sum_b
                    e = qz - mu_c * bz
                    var_r = c00 - qc + (sq - 1.0) * (sq - 1.0) / sum_b
                est[r] = e
                var[r] = var_r if var_r > 0.0 else 0.0
                lag[r] = -mu_c
                status[r] = STATUS_OK
                if details:
                    for c in range(kk):
                        i = stamp[nbr_r[c]] - 1
                        w_out[r, c] = q[i] - mu_c * b[i]
