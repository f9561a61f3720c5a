"""Neighbour search for local kriging: nearest ``k``, maximum distance, sectors, leave-self-out.

The search runs in the anisotropy-reduced space (:meth:`VariogramModel.reduce`), where the
Euclidean distance is the anisotropic distance, with :class:`scipy.spatial.cKDTree`. Sector
membership is decided on the offsets in the original coordinates (as gstat and GSLIB do).

Many targets (a grid) are searched by tiles (:func:`_tiled`): one tree query per small tile
gives candidates from which each target picks its nearest, with a distance argument proving
the result equal to a direct query (targets for which it does not hold are queried
directly). Both searches end the same way (:func:`_canonical`): the candidates' squared
distances are recomputed in one fixed order of operations and the nearest ``k`` are taken by
distance, then sample index. So a target's neighbours and distances do not depend on which
search found them (the tiled one for big chunks, the direct one for small chunks and
leftovers), and kriging a grid gives the same floats whatever its chunk size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy.spatial import cKDTree

#: Candidates asked from the tree per wanted neighbour when sectors are used (doubled until
#: every sector is full, the candidates run out or the maximum distance is reached).
_SECTOR_CANDIDATES = 4
#: Fewest targets for which the tiled search is tried.
_TILED_MIN_TARGETS = 4096
#: Tile side as a fraction of the typical k-th neighbour distance.
_TILE_FRACTION = 0.25
#: Candidates beyond ``k`` examined so that samples tied with the k-th (equidistant, or
#: within rounding) are all seen and the lowest sample index wins.
_TIE_EXTRA = 2
#: Relative gap in squared distance under which two candidates may be tied (the tree's and
#: the tiles' distances differ from the canonical ones by rounding only).
_TIE_GAP = 1e-12


@njit(cache=True)
def _insert(d2, idx, cnt, s, j) -> None:
    """Insert ``(s, j)`` into the first ``cnt`` entries, kept sorted by distance then index."""
    pos = cnt
    while pos > 0 and (d2[pos - 1] > s or (d2[pos - 1] == s and idx[pos - 1] > j)):
        d2[pos] = d2[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    d2[pos] = s
    idx[pos] = j


@njit(cache=True)
def _sqdist(data, j, targets, r) -> float:
    """The canonical squared distance (plain loop, no fast-math reassociation)."""
    s = 0.0
    for q in range(data.shape[1]):
        dd = data[j, q] - targets[r, q]
        s += dd * dd
    return s


@njit(parallel=True, cache=True)
def _canonical(data, targets, cand, k, max_d, can_grow, out_i, out_d, complete):
    """The nearest ``k`` of each row's candidates by canonical distance, then sample index.

    ``cand`` entries ``>= n`` (the tree's padding beyond a distance bound) are skipped.
    ``complete[r]`` is False when the row's candidates were cut while a sample tied with the
    k-th may lie beyond them (the caller asks for more candidates; ``can_grow``: it can).
    """
    m, kc = cand.shape
    n = data.shape[0]
    for r in prange(m):
        d2 = np.empty(kc)
        idx = np.empty(kc, dtype=np.int64)
        cnt = 0
        for c in range(kc):
            j = cand[r, c]
            if j < 0 or j >= n:
                continue
            _insert(d2, idx, cnt, _sqdist(data, j, targets, r), j)
            cnt += 1
        got = 0
        for c in range(k):
            if c < cnt and np.sqrt(d2[c]) <= max_d:
                out_i[r, c] = idx[c]
                out_d[r, c] = np.sqrt(d2[c])
                got += 1
            else:
                out_i[r, c] = -1
                out_d[r, c] = np.inf
        complete[r] = not (can_grow and cnt == kc and got == k
                           and d2[cnt - 1] <= d2[k - 1] * (1.0 + _TIE_GAP))


def _buffers(out, m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(m, k)`` index and distance arrays: views of the caller's ``out`` buffers when they
    are large enough (chunk after chunk reuses the same memory), else new."""
    if out is not None and out[0].size >= m * k and out[1].size >= m * k:
        return out[0].ravel()[: m * k].reshape(m, k), out[1].ravel()[: m * k].reshape(m, k)
    return np.empty((m, k), dtype=np.int64), np.empty((m, k))


def _direct(tree, targets, k, max_distance, bound, workers, out=None):
    """Nearest ``k`` of each target by a tree query, finished by :func:`_canonical` (more
    candidates for the few rows whose candidates end inside a tie)."""
    n = tree.n
    m = targets.shape[0]
    max_d = np.inf if max_distance is None else float(max_distance)
    out_i, out_d = _buffers(out, m, k)
    data = np.ascontiguousarray(tree.data, dtype=float)
    rows = np.arange(m)
    kc = min(n, k + _TIE_EXTRA)
    while rows.size:
        pts = np.ascontiguousarray(targets[rows])
        _, cand = _query(tree, pts, kc, bound, workers)
        sub_i = np.empty((rows.size, k), dtype=np.int64)
        sub_d = np.empty((rows.size, k))
        complete = np.empty(rows.size, dtype=np.bool_)
        _canonical(data, pts, cand, k, max_d, kc < n, sub_i, sub_d, complete)
        out_i[rows], out_d[rows] = sub_i, sub_d
        rows = rows[~complete]
        kc = min(n, 4 * kc)
    return out_i, out_d


def sector_cap(k: int, sectors: int) -> int:
    """Most neighbours one sector may contribute."""
    return max(1, k // sectors) if sectors else k


@njit(cache=True)
def _sector_of(off: np.ndarray, sectors: int) -> int:
    dim = off.shape[0]
    if sectors == 4 or (sectors == 8 and dim == 2):
        if sectors == 4:
            return (1 if off[0] < 0.0 else 0) + (2 if off[1] < 0.0 else 0)
        ang = math.atan2(off[1], off[0])
        if ang < 0.0:
            ang += 2.0 * math.pi
        s = int(ang / (math.pi / 4.0))
        return 7 if s > 7 else s
    return (1 if off[0] < 0.0 else 0) + (2 if off[1] < 0.0 else 0) + (4 if off[2] < 0.0 else 0)


@njit(cache=True)
def _select(cand, cand_d, n_data, data, targets, self_idx, k, sectors, cap, out_i, out_d,
            need_more):
    """Walk each row's candidates in distance order and keep up to ``k`` of them.

    Skips the row's own sample (``self_idx[r] >= 0``) and missing entries (``== n_data``),
    honours the per-sector cap, and flags rows whose candidates ran out before they were
    complete (``need_more``).
    """
    m, kc = cand.shape
    nsec = sectors if sectors > 0 else 1
    off = np.empty(data.shape[1])
    for r in range(m):
        counts = np.zeros(nsec, dtype=np.int64)
        got = 0
        exhausted = True
        for c in range(kc):
            j = cand[r, c]
            if j >= n_data:
                exhausted = False  # the distance bound was reached: nothing further exists
                break
            if j == self_idx[r]:
                continue
            if sectors > 0:
                for q in range(data.shape[1]):
                    off[q] = data[j, q] - targets[r, q]
                s = _sector_of(off, sectors)
                if counts[s] >= cap:
                    continue
                counts[s] += 1
            out_i[r, got] = j
            out_d[r, got] = cand_d[r, c]
            got += 1
            if got == k:
                exhausted = False
                break
        if sectors > 0 and got < k and exhausted:
            full = True
            for s in range(nsec):
                if counts[s] < cap:
                    full = False
            exhausted = not full
        need_more[r] = exhausted and kc < n_data
        for c in range(got, k):
            out_i[r, c] = -1
            out_d[r, c] = np.inf


def find_neighbours(
    tree: cKDTree,
    targets_reduced: np.ndarray,
    k: int,
    **kwargs: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest samples of each target, rows in target order.

    See :func:`search` for the parameters; this returns ``(idx, dist)`` only.
    """
    idx, dist, order = search(tree, targets_reduced, k, **kwargs)
    if order is not None:
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        idx, dist = idx[inv], dist[inv]
    return idx, dist


def search(
    tree: cKDTree,
    targets_reduced: np.ndarray,
    k: int,
    *,
    max_distance: float | None = None,
    sectors: int = 0,
    data: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    self_index: np.ndarray | None = None,
    workers: int = -1,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Nearest samples of each target, rows possibly reordered for speed.

    Parameters
    ----------
    tree : cKDTree
        Built on the reduced sample coordinates.
    targets_reduced : ndarray, shape (m, d)
        Reduced target coordinates.
    k : int
        Neighbours wanted per target (at most the number of samples).
    max_distance : float, optional
        Keep samples at reduced distance ``<= max_distance`` only.
    sectors : {0, 4, 8}
        Sector search (needs ``data`` and ``targets``, the original coordinates).
    data, targets : ndarray, optional
        Original coordinates of samples ``(n, d)`` and targets ``(m, d)`` for the sectors.
    self_index : ndarray of int64, shape (m,), optional
        Sample index each target must not use (``-1``: none); for leave-one-out.
    workers : int
        Threads for the tree query (``-1``: all).
    out : (ndarray, ndarray), optional
        Buffers of at least ``(m, k)`` (int64, float64) the tiled search may write into, so
        that chunk after chunk reuses the same memory.

    Returns
    -------
    idx : ndarray of int64, shape (m, k)
        Sample indices ordered by distance, ``-1`` where fewer were found.
    dist : ndarray, shape (m, k)
        Reduced distances, ``inf`` at padding.
    order : ndarray of int64, shape (m,), or None
        Row ``p`` belongs to target ``order[p]`` (``None``: target order). Many targets are
        searched tile by tile (:func:`_tiled`), and kriging them in that order keeps memory
        access local.
    """
    n = tree.n
    m = targets_reduced.shape[0]
    k = min(int(k), n)
    bound = _bound(max_distance)
    if sectors == 0 and self_index is None:
        if m >= _TILED_MIN_TARGETS:
            found = _tiled(tree, targets_reduced, k, max_distance, bound, workers, out)
            if found is not None:
                return found
        return (*_direct(tree, targets_reduced, k, max_distance, bound, workers), None)
    if sectors:
        if data is None or targets is None:
            raise ValueError("sector search needs the original data and target coordinates")
    else:
        data = np.zeros((n, 1))
        targets = np.zeros((m, 1))
    own = np.full(m, -1, dtype=np.int64) if self_index is None else np.asarray(self_index, np.int64)
    out_i = np.empty((m, k), dtype=np.int64)
    out_d = np.empty((m, k))
    rows = np.arange(m)
    kc = min(n, k + 1 if not sectors else _SECTOR_CANDIDATES * k + 1)
    while rows.size:
        d, i = _query(tree, targets_reduced[rows], kc, bound, workers)
        sub_i = np.empty((rows.size, k), dtype=np.int64)
        sub_d = np.empty((rows.size, k))
        need = np.zeros(rows.size, dtype=np.bool_)
        _select(i, d, n, np.ascontiguousarray(data, dtype=float),
                np.ascontiguousarray(targets[rows], dtype=float), own[rows], k, sectors,
                sector_cap(k, sectors), sub_i, sub_d, need)
        out_i[rows] = sub_i
        out_d[rows] = sub_d
        rows = rows[need]
        kc = min(n, 4 * kc)
    return (*_finish(out_i, out_d, n, max_distance), None)


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _tile_select(data, targets, order, starts, anchors, cand, cand_d, k, max_d, out_i, out_d,
                 ok):
    """Nearest ``k`` of each target among its tile anchor's candidates, with a proof of it.

    A sample outside the anchor's candidate list is at least ``D - rho`` from a target, where
    ``D`` is the anchor's last candidate distance and ``rho`` the target-anchor distance; so
    the selection is exact when the radius the target needs (its k-th distance, or
    ``max_d``) is within ``D - rho``. ``ok[p]`` is False otherwise (the caller queries the
    tree for it). Row ``p`` of the outputs belongs to target ``order[p]`` (tile order).
    """
    n_tiles = starts.shape[0] - 1
    kc = cand.shape[1]
    dim = data.shape[1]
    n = data.shape[0]
    for g in prange(n_tiles):
        last = cand_d[g, kc - 1]
        big = kc >= n  # every sample is a candidate
        cx = np.empty((kc, dim))
        for c in range(kc):
            for q in range(dim):
                cx[c, q] = data[cand[g, c], q]
        # candidates kept sorted by distance to the current target; consecutive targets are
        # close, so re-sorting the previous order by insertion is nearly linear
        perm = np.arange(kc)
        d2 = np.empty(kc)
        kk = min(kc, k + _TIE_EXTRA)
        cd2 = np.empty(kk)
        cidx = np.empty(kk, dtype=np.int64)
        for p in range(starts[g], starts[g + 1]):
            t = order[p]
            rho = 0.0
            for q in range(dim):
                dd = targets[t, q] - anchors[g, q]
                rho += dd * dd
            rho = np.sqrt(rho)
            for c in range(kc):
                s = 0.0
                j = perm[c]
                for q in range(dim):
                    dd = cx[j, q] - targets[t, q]
                    s += dd * dd
                d2[c] = s
            for c in range(1, kc):
                v = d2[c]
                if v >= d2[c - 1]:
                    continue
                j = perm[c]
                pos = c
                while pos > 0 and d2[pos - 1] > v:
                    d2[pos] = d2[pos - 1]
                    perm[pos] = perm[pos - 1]
                    pos -= 1
                d2[pos] = v
                perm[pos] = j
            got = min(k, kc)
            need = np.sqrt(d2[k - 1]) if got == k else np.inf
            if need > max_d:
                need = max_d
            ok[p] = big or need * (1.0 + _TIE_GAP) <= last - rho
            # the canonical finish (as :func:`_canonical`) over the nearest kk candidates
            for c in range(kk):
                j = cand[g, perm[c]]
                _insert(cd2, cidx, c, _sqdist(data, j, targets, t), j)
            if got == k and kk < kc and d2[kk - 1] <= cd2[k - 1] * (1.0 + 2.0 * _TIE_GAP):
                ok[p] = False  # a candidate beyond kk may tie with the k-th
            for c in range(k):
                if c < got and np.sqrt(cd2[c]) <= max_d:
                    out_i[p, c] = cidx[c]
                    out_d[p, c] = np.sqrt(cd2[c])
                else:
                    out_i[p, c] = -1
                    out_d[p, c] = np.inf


@dataclass(frozen=True)
class Tiling:
    """Where the tiles of a tiled search lie: the targets' lower corner ``lo``, the tile
    ``side`` and the candidates asked per tile anchor ``kc``. A target's neighbours depend
    only on the tiling and its own tile, so searching the targets in any groups with one
    tiling gives the same floats as searching them all at once."""

    lo: np.ndarray
    side: float
    kc: int

    def cells(self, targets: np.ndarray) -> np.ndarray:
        """Tile cell (integer index per axis) of each target."""
        return np.floor((targets - self.lo) / self.side).astype(np.int64)


def _tiling(tree, probe, lo, k, max_distance, workers) -> Tiling | None:
    """The tiling of targets with lower corner ``lo``, sized by the k-th neighbour distance
    of the ``probe`` targets (``None``: no positive distance to size tiles by)."""
    n = tree.n
    dim = lo.size
    d, _ = tree.query(probe, k=[k], workers=workers)
    r = float(np.median(d[:, -1]))
    if max_distance is not None:
        r = min(r, float(max_distance))
    if not (np.isfinite(r) and r > 0):
        return None
    side = _TILE_FRACTION * r
    rho = 0.5 * side * np.sqrt(dim)
    # enough candidates for a typical target of the tile (rare misses are queried directly)
    kc = min(n, int(np.ceil(k * ((r + 1.5 * rho) / r) ** dim)) + 2)
    return Tiling(lo, side, kc)


def _probe(targets: np.ndarray) -> np.ndarray:
    m = targets.shape[0]
    return targets[np.linspace(0, m - 1, min(m, 256)).astype(np.int64)]


def _tile_ids(cells: np.ndarray, span: np.ndarray) -> np.ndarray:
    tile = cells[:, 0].copy()
    for q in range(1, cells.shape[1]):
        tile = tile * span[q] + cells[:, q]
    return tile


def _tiled(tree, targets, k, max_distance, bound, workers, out=None):
    """Exact k-nearest search for many targets through one tree query per small tile.

    Targets are grouped in square (cubic) tiles about a quarter of the typical k-th
    neighbour distance wide; the tile centre (anchor) is queried for enough candidates to
    cover all its targets, each target picks its nearest among them, and the few targets
    for which that cannot be proven exact are queried directly. Returns ``(idx, dist,
    order)`` with rows in tile order (row ``p`` is target ``order[p]``), or ``None`` when the
    targets are too sparse for tiles to pay off.
    """
    tiling = _tiling(tree, _probe(targets), targets.min(axis=0), k, max_distance, workers)
    if tiling is None:
        return None
    cells = tiling.cells(targets)
    span = cells.max(axis=0) + 1
    if float(np.prod(span.astype(float))) > 2.0**62:
        return None
    tile = _tile_ids(cells, span)
    if targets.shape[0] < 4 * np.unique(tile).size:
        return None
    return _tile_search(tree, targets, tiling, cells, tile, k, max_distance, bound, workers,
                        out)


def _tile_search(tree, targets, tiling, cells, tile, k, max_distance, bound, workers,
                 out=None):
    """The tiled search of ``targets`` (their ``cells`` and ``tile`` ids) with ``tiling``."""
    m = targets.shape[0]
    order = np.argsort(tile, kind="stable")  # tile by tile, targets in their given order
    st = tile[order]
    starts = np.flatnonzero(np.r_[True, st[1:] != st[:-1], True]).astype(np.int64)
    anchors = tiling.lo + (cells[order[starts[:-1]]] + 0.5) * tiling.side
    kc = tiling.kc
    cd, ci = tree.query(anchors, k=kc, workers=workers)
    if kc == 1:
        cd, ci = cd[:, None], ci[:, None]
    out_i, out_d = _buffers(out, m, k)
    ok = np.empty(m, dtype=np.bool_)
    max_d = np.inf if max_distance is None else float(max_distance)
    _tile_select(tree.data, np.ascontiguousarray(targets), order, starts,
                 np.ascontiguousarray(anchors), np.ascontiguousarray(ci, dtype=np.int64),
                 np.ascontiguousarray(cd), k, max_d, out_i, out_d, ok)
    redo = np.flatnonzero(~ok)
    if redo.size:
        ii, dd = _direct(tree, targets[order[redo]], k, max_distance, bound, workers)
        out_i[redo], out_d[redo] = ii, dd
    return out_i, out_d, order


def _bound(max_distance: float | None) -> float:
    return np.inf if max_distance is None else float(max_distance) * (1 + 1e-12) + 1e-300


def whole_tiling(tree: cKDTree, targets: np.ndarray, k: int,
                 max_distance: float | None = None, workers: int = -1,
                 chunk: int = 1 << 20) -> Tiling | None:
    """The tiling :func:`search` uses for all ``targets`` at once (no sectors, no
    leave-out), found ``chunk`` targets at a time; ``None``: it searches them directly.

    With it, :func:`search_part` finds the neighbours of any subset of the targets with the
    floats the whole search gives them, without holding the whole search's result.
    """
    m = targets.shape[0]
    k = min(int(k), tree.n)
    if m < _TILED_MIN_TARGETS:
        return None
    lo = targets[:chunk].min(axis=0)
    for i0 in range(chunk, m, chunk):
        lo = np.minimum(lo, targets[i0:i0 + chunk].min(axis=0))
    tiling = _tiling(tree, _probe(targets), lo, k, max_distance, workers)
    if tiling is None:
        return None
    span = tiling.cells(targets[:chunk]).max(axis=0) + 1
    for i0 in range(chunk, m, chunk):
        span = np.maximum(span, tiling.cells(targets[i0:i0 + chunk]).max(axis=0) + 1)
    if float(np.prod(span.astype(float))) > 2.0**62:
        return None
    seen = np.zeros(0, dtype=np.int64)
    for i0 in range(0, m, chunk):
        seen = np.union1d(seen, _tile_ids(tiling.cells(targets[i0:i0 + chunk]), span))
    if m < 4 * seen.size:
        return None
    return tiling


def search_part(tree: cKDTree, targets: np.ndarray, k: int, tiling: Tiling | None,
                max_distance: float | None = None,
                workers: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Nearest samples of ``targets``, rows in target order, as the search of a larger
    set whose :func:`whole_tiling` is ``tiling`` gives them (``None``: a direct search)."""
    k = min(int(k), tree.n)
    bound = _bound(max_distance)
    if tiling is None:
        return _direct(tree, targets, k, max_distance, bound, workers)
    cells = tiling.cells(targets)
    idx, dist, order = _tile_search(tree, targets, tiling, cells,
                                    _tile_ids(cells, cells.max(axis=0) + 1), k,
                                    max_distance, bound, workers)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return idx[inv], dist[inv]


def _query(tree, pts, k, bound, workers):
    d, i = tree.query(pts, k=k, distance_upper_bound=bound, workers=workers)
    if k == 1:
        d, i = d[:, None], i[:, None]
    return np.ascontiguousarray(d), np.ascontiguousarray(i, dtype=np.int64)


def _finish(idx, dist, n, max_distance):
    idx = np.where(idx >= n, -1, idx)
    if max_distance is not None:
        far = dist > max_distance
        if far.any():
            idx[far] = -1
            dist = np.where(far, np.inf, dist)
    dist = np.where(idx < 0, np.inf, dist)
    return idx, dist
