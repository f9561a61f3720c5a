"""Compiled pair loops of the experimental variogram: a cell grid, both cores, exact bins.

Only pairs closer than the cutoff matter, so the points are sorted into a grid of square
(cubic) cells about half the cutoff wide and each cell is paired with the cells that can hold
a point within the cutoff, never all ``n²`` pairs when the cutoff is shorter than the extent.
Every unordered pair is visited once (the cell itself with ``j > i``, and only the
"forward" half of the neighbouring cell offsets).

The per-pair arithmetic (:func:`_add_pair`) is the same for every caller, so the pair counts
do not depend on the visiting order: ``dx*dx + dy*dy`` does not change when a pair's two
points swap, and a pair is binned from that. Only the sums of distances and of the pair
statistic may differ in their last bits from another visiting order.

Work is split into a fixed number of chunks of points (:data:`N_CHUNKS`, independent of the
number of threads), each with its own accumulators, summed in chunk order: the result is the
same on one core or sixteen. The chunks are run in rounds so that the caller can report
progress and honour a cancel request between rounds.

Bins follow gstat (``src/sem.c``): lag ``b`` holds ``(b w, (b+1) w]``, the first also the
zero distances, so a pair at an exact multiple of the width goes to the lower bin.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numba import njit, prange

#: Chunks of cells; fixed, so that the result does not depend on the number of threads.
N_CHUNKS = 1024
#: Cells per point at most (a tiny cutoff on a wide extent would make most cells empty).
_CELLS_PER_POINT = 2
#: Row layout of a direction selector (see ``empirical._Selector.row``).
SELECTOR_WIDTH = 9


@njit(cache=True, inline="always")
def _add_pair(c, v, i, j, ndim, cutoff, cutoff2, width, n_bins, stat_code, sel, slot,
              sd, ss, sc, sign):
    """Bin the pair ``(i, j)`` into ``sd/ss/sc[slot]`` (``sign`` -1 removes it)."""
    dx = c[j, 0] - c[i, 0]
    dy = c[j, 1] - c[i, 1]
    dz = c[j, 2] - c[i, 2] if ndim == 3 else 0.0
    hor2 = dx * dx + dy * dy
    d2 = hor2 + dz * dz
    if d2 > cutoff2:  # cheap reject, conservative: cutoff2 carries a relative slack
        return
    dist = math.sqrt(d2)
    if dist > cutoff:
        return
    q = dist / width
    b = int(q)
    if dist > 0.0 and q == b:  # (lo, hi]: an exact multiple of the width goes down
        b -= 1
    if b >= n_bins:
        b = n_bins - 1
    diff = v[j] - v[i]
    stat = diff * diff if stat_code == 0 else math.sqrt(abs(diff))
    if sel.shape[0] == 1 and sel[0, 0] != 0.0:  # omnidirectional only: the common case
        sd[slot, 0, b] += sign * dist
        ss[slot, 0, b] += sign * stat
        sc[slot, 0, b] += int(sign)
        return
    for k in range(sel.shape[0]):
        if sel[k, 0] == 0.0:
            if sel[k, 1] != 0.0:
                length2 = d2
                along = dx * sel[k, 2] + dy * sel[k, 3] + dz * sel[k, 4]
            else:
                length2 = hor2
                along = dx * sel[k, 2] + dy * sel[k, 3]
            if length2 <= 0.0:
                continue
            a = abs(along)
            length = math.sqrt(length2)
            if a < length * sel[k, 5]:
                continue
            if sel[k, 8] != 0.0 and a <= length * sel[k, 7]:
                # on the cone's edge (within round-off): the clockwise edge only, so that a
                # pair between two adjacent directions is counted in one of them
                cross = dx * sel[k, 3] - dy * sel[k, 2]
                if along < 0.0:
                    cross = -cross
                if cross <= 0.0:
                    continue
            if length2 - along * along > sel[k, 6] * sel[k, 6]:
                continue
        sd[slot, k, b] += sign * dist
        ss[slot, k, b] += sign * stat
        sc[slot, k, b] += int(sign)


@njit(parallel=True, cache=True)
def _grid_pairs(c, v, starts, dims, offsets, chunk_points, chunk_cells, k0, k1, cutoff,
                cutoff2, width, n_bins, stat_code, sel, sd, ss, sc):
    """Every pair within the cutoff whose first (lower, in cell order) point is one of the
    points ``chunk_points[k]:chunk_points[k+1]`` of chunks ``k0..k1``; those points lie in
    cells ``chunk_cells[k, 0]:chunk_cells[k, 1]``.

    ``c``/``v`` are sorted by cell; cell ``q`` holds points ``starts[q]:starts[q+1]``.
    """
    ndim = c.shape[1]
    n_off = offsets.shape[0]
    for k in prange(k0, k1):
        # this chunk's own accumulators: no cache line shared with another thread's
        lsd = np.zeros((1, sd.shape[1], sd.shape[2]))
        lss = np.zeros((1, sd.shape[1], sd.shape[2]))
        lsc = np.zeros((1, sd.shape[1], sd.shape[2]), dtype=np.int64)
        for cell in range(chunk_cells[k, 0], chunk_cells[k, 1]):
            s1 = starts[cell + 1]
            # this chunk's share of the cell's points (a cell may span several chunks)
            p0 = max(starts[cell], chunk_points[k])
            p1 = min(s1, chunk_points[k + 1])
            if p0 >= p1:
                continue
            rest = cell
            iz = 0
            if ndim == 3:
                iz = rest % dims[2]
                rest //= dims[2]
            iy = rest % dims[1]
            ix = rest // dims[1]
            for i in range(p0, p1):  # pairs inside the cell
                for j in range(i + 1, s1):
                    _add_pair(c, v, i, j, ndim, cutoff, cutoff2, width, n_bins, stat_code,
                              sel, 0, lsd, lss, lsc, 1.0)
            for o in range(n_off):  # the forward half of the neighbouring cells
                jx = ix + offsets[o, 0]
                jy = iy + offsets[o, 1]
                if jx < 0 or jx >= dims[0] or jy < 0 or jy >= dims[1]:
                    continue
                other = jx * dims[1] + jy
                if ndim == 3:
                    jz = iz + offsets[o, 2]
                    if jz < 0 or jz >= dims[2]:
                        continue
                    other = other * dims[2] + jz
                t0 = starts[other]
                t1 = starts[other + 1]
                for i in range(p0, p1):
                    for j in range(t0, t1):
                        _add_pair(c, v, i, j, ndim, cutoff, cutoff2, width, n_bins,
                                  stat_code, sel, 0, lsd, lss, lsc, 1.0)
        sd[k] = lsd[0]
        ss[k] = lss[0]
        sc[k] = lsc[0]


@njit(cache=True)
def _point_pairs(c, v, points, held, cutoff, cutoff2, width, n_bins, stat_code, sel,
                 sd, ss, sc, sign):
    """The pairs of each of ``points`` with every other point, once each (a pair of two
    ``held`` points is counted from its lower index only), into slot 0 with ``sign``."""
    n, ndim = c.shape
    for p in range(points.shape[0]):
        i = points[p]
        for j in range(n):
            if j == i or (held[j] and j < i):
                continue
            _add_pair(c, v, i, j, ndim, cutoff, cutoff2, width, n_bins, stat_code, sel, 0,
                      sd, ss, sc, sign)


class CellGrid:
    """Points sorted into cells about ``cutoff / 2`` wide, and the forward neighbour offsets.

    Parameters
    ----------
    coords : ndarray, shape (n, 2) or (n, 3)
    cutoff : float
        Largest pair distance looked for.
    """

    def __init__(self, coords: np.ndarray, cutoff: float):
        n, ndim = coords.shape
        lo = coords.min(axis=0)
        span = coords.max(axis=0) - lo
        # a hair over half the cutoff: a point's cell, computed with round-off, can be one
        # off only within round-off of a cell edge, and cells ``ceil(cutoff / side) + 1``
        # apart are then still more than the cutoff apart
        side = cutoff / 2.0 * (1.0 + 1e-6)
        max_cells = max(64, _CELLS_PER_POINT * n)
        while np.prod(np.floor(span / side) + 1.0) > max_cells:
            side *= 1.5
        idx = np.minimum(np.floor((coords - lo) / side), np.floor(span / side)).astype(np.int64)
        self.dims = (np.floor(span / side).astype(np.int64) + 1)
        lin = np.ravel_multi_index(tuple(idx.T), tuple(self.dims))
        self.order = np.argsort(lin, kind="stable")
        n_cells = int(np.prod(self.dims))
        self.starts = np.searchsorted(lin[self.order], np.arange(n_cells + 1)).astype(np.int64)
        reach = int(math.ceil(cutoff / side))
        offs = []
        for o in itertools.product(range(-reach, reach + 1), repeat=ndim):
            if o <= (0,) * ndim:  # the backward half, and the cell itself
                continue
            gap = sum((max(abs(a) - 1, 0) * side) ** 2 for a in o)
            if gap <= cutoff * cutoff * (1.0 + 1e-9):
                offs.append(o)
        self.offsets = np.array(offs, dtype=np.int64).reshape(-1, ndim)
        # chunks of the same number of points (in cell order), whatever the cells hold: a
        # wide cutoff makes few, crowded cells, and a chunk of whole cells then took seconds
        # (a cancel waited for it); and the cells each chunk's points lie in
        self.chunk_points = np.linspace(0, n, N_CHUNKS + 1).astype(np.int64)
        first = np.searchsorted(self.starts, self.chunk_points[:-1], side="right") - 1
        last = np.searchsorted(self.starts, np.maximum(self.chunk_points[1:] - 1, 0),
                               side="right") - 1
        self.chunk_cells = np.column_stack([np.clip(first, 0, n_cells),
                                            np.clip(last + 1, 0, n_cells)]).astype(np.int64)


def grid_sums(coords, values, cutoff, width, n_bins, stat_code, sel, rounds, on_round):
    """Per selector and bin: sums of distances and of the pair statistic, and pair counts.

    ``on_round(fraction)`` is called between rounds of chunks (progress, cancellation).
    """
    grid = CellGrid(coords, cutoff)
    c = np.ascontiguousarray(coords[grid.order], dtype=float)
    v = np.ascontiguousarray(values[grid.order], dtype=float)
    shape = (N_CHUNKS, sel.shape[0], n_bins)
    sd, ss = np.zeros(shape), np.zeros(shape)
    sc = np.zeros(shape, dtype=np.int64)
    cutoff2 = cutoff * cutoff * (1.0 + 1e-12)
    edges = np.linspace(0, N_CHUNKS, max(1, rounds) + 1).astype(np.int64)
    for r in range(len(edges) - 1):
        _grid_pairs(c, v, grid.starts, grid.dims, grid.offsets, grid.chunk_points,
                    grid.chunk_cells, int(edges[r]), int(edges[r + 1]), cutoff, cutoff2,
                    width, n_bins, stat_code, sel, sd, ss, sc)
        on_round(float(edges[r + 1]) / N_CHUNKS)
    return sd.sum(axis=0), ss.sum(axis=0), sc.sum(axis=0)


def held_out_sums(coords, values, points, cutoff, width, n_bins, stat_code, sel):
    """Sums (as :func:`grid_sums`) of the pairs that involve at least one of ``points``."""
    c = np.ascontiguousarray(coords, dtype=float)
    v = np.ascontiguousarray(values, dtype=float)
    held = np.zeros(c.shape[0], dtype=np.bool_)
    pts = np.asarray(points, dtype=np.int64)
    held[pts] = True
    shape = (1, sel.shape[0], n_bins)
    sd, ss = np.zeros(shape), np.zeros(shape)
    sc = np.zeros(shape, dtype=np.int64)
    _point_pairs(c, v, pts, held, cutoff, cutoff * cutoff * (1.0 + 1e-12), width, n_bins,
                 stat_code, sel, sd, ss, sc, 1.0)
    return sd[0], ss[0], sc[0]
