"""Sequential Gaussian simulation slab by slab: memory that grows with a slab, not the grid.

The random path of :class:`~.sgs.SGSJob` visits the whole grid in one random order, so every
node of every realisation being simulated is held until the path ends. Here the grid is cut
into *slabs* of ``slab_rows`` consecutive raster rows (all columns; in 3D all levels of those
rows), simulated in order from the top. Inside a slab the free nodes go in random order
(with multigrid, the coarse sub-grids first, their levels defined on the grid's own row,
column and level indices so coarse nodes line up across slabs). A node is conditioned
exactly as on the random path: by its nearest data (the same global search and floats) and
by the previously simulated nodes the distance-sorted template finds. The template reaches
at most ``H`` rows (:func:`~.sgs.halo_rows`), so a slab needs only the last ``H`` rows of the
slabs above it (the *halo*, already simulated and only read). What is held at once is the
*window* of the slab and its halo: ``(slab_rows + H) x ncols x nz`` nodes, whatever the
number of rows of the grid.

The random draws are those of the random path, slab after slab: the path generator of group
``g`` (``default_rng([seed, 1, g])``) permutes the free nodes of one slab after the other,
and the normal draws of realisation ``r`` (``default_rng([seed, 0, r])``) continue across
slabs. So one slab covering the whole grid gives the floats of the random path, node for
node; with several slabs the realisations are another, equally valid, sequential
simulation (a node sees the simulated nodes above it and those of its own slab visited
before it). A realisation depends only on the seed, its number, the settings and the slab
height, never on the threads, the batch or ``--max-memory-gb``.

The normal-score mean and variance of each realisation are combined over the slabs (Chan,
Golub & LeVeque's pairwise update): with several slabs their last bits may differ from those
of one pass over all nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..grid import Grid
from ..progress import StopFn, check_cancel
from ..transforms import FittedTransform
from .sgs import (
    COORD_CHUNK,
    NEIGHBOUR_STEPS,
    PATH_GROUP,
    SimulationConfig,
    _path,
    _prepare_data,
    _score_moments,
    default_slab_rows,
    halo_rows,
    index_dtype,
    realisation_batches,
    sample_raster_cells,
)

logger = logging.getLogger(__name__)

#: ``on_slab(row0, row1, cells, values_of)``: a finished slab (its rows), the grid's raster
#: indices of its active nodes (ascending) and a function giving realisation ``i`` of the
#: batch there (data units).
SlabFn = Callable[[int, int, np.ndarray, Callable[[int], np.ndarray]], None]


class ActiveCells:
    """The active nodes of a grid (inside its 2D mask on every level), numbered in raster
    order, mapped to raster indices without a table per cell: the mask's per-row counts."""

    def __init__(self, grid: Grid) -> None:
        self.nz = len(grid.z_levels) if grid.z_levels else 1
        self.nrows, self.ncols = grid.nrows, grid.ncols
        self.per_level = grid.nrows * grid.ncols
        if grid.mask is None:
            self.mask = None
            self.count = self.per_level
        else:
            self.mask = np.ascontiguousarray(np.asarray(grid.mask, dtype=bool))
            self.row_count = self.mask.sum(axis=1).astype(np.int64)
            self.cum = np.cumsum(self.row_count)
            self.count = int(self.cum[-1]) if self.cum.size else 0
        self.n = self.nz * self.count

    def _level_range(self, a: int, b: int) -> np.ndarray:
        """Raster indices within one level of its active nodes ``a:b``."""
        if self.mask is None:
            return np.arange(a, b, dtype=np.int64)
        lo = int(np.searchsorted(self.cum, a, side="right"))
        hi = int(np.searchsorted(self.cum, b - 1, side="right"))
        before = int(self.cum[lo] - self.row_count[lo])
        cols = np.flatnonzero(self.mask[lo:hi + 1].ravel()) + lo * self.ncols
        return cols[a - before:b - before].astype(np.int64)

    def range(self, i0: int, i1: int) -> np.ndarray:
        """Raster indices of the active nodes ``i0:i1``."""
        parts = []
        for level in range(i0 // max(self.count, 1), self.nz):
            a, b = max(i0, level * self.count), min(i1, (level + 1) * self.count)
            if a >= b:
                break
            parts.append(self._level_range(a - level * self.count, b - level * self.count)
                         + level * self.per_level)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def take(self, nodes: np.ndarray) -> np.ndarray:
        """Raster indices of the active nodes ``nodes`` (a few, any order)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        if self.mask is None:
            return nodes.copy()
        return np.array([self.range(int(i), int(i) + 1)[0] for i in nodes], dtype=np.int64)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Raster indices, ascending, of the active nodes of rows ``r0:r1`` on every level."""
        if self.mask is None:
            one = np.arange(r0 * self.ncols, r1 * self.ncols, dtype=np.int64)
        else:
            one = np.flatnonzero(self.mask[r0:r1].ravel()).astype(np.int64) + r0 * self.ncols
        if self.nz == 1:
            return one
        return (np.arange(self.nz, dtype=np.int64)[:, None] * self.per_level
                + one[None]).ravel()


class NodePoints:
    """Reduced coordinates of the active nodes, computed when asked (an array-like of shape
    ``(n_active, d)`` for :func:`~gcnn_rnn.core.kriging.neighbours.whole_tiling`): the same
    floats as the random path's array, which is computed :data:`~.sgs.COORD_CHUNK` nodes at
    a time from the first."""

    def __init__(self, grid: Grid, model, active: ActiveCells) -> None:
        self.grid, self.model, self.active = grid, model, active
        self.shape = (active.n, grid.ndim)

    def _chunk(self, i0: int, i1: int) -> np.ndarray:
        return self.model.reduce(self.grid.coords_of(self.active.range(i0, i1)))

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            i0, i1, stride = key.indices(self.shape[0])
            if stride != 1:
                raise IndexError("NodePoints takes slices of step 1")
            # pieces on the COORD_CHUNK grid of the random path: the same floats per node
            parts = [self._chunk(max(i0, c), min(i1, c + COORD_CHUNK))
                     for c in range(i0 - i0 % COORD_CHUNK, i1, COORD_CHUNK)]
            return np.concatenate(parts) if parts else np.empty((0, self.shape[1]))
        nodes = np.asarray(key, dtype=np.int64)
        if self.model.anisotropy is None:  # reduce() is a copy: any grouping, same floats
            return self.model.reduce(self.grid.coords_of(self.active.take(nodes)))
        # a matrix product: computed within each node's own chunk, as the random path does
        out = np.empty((nodes.size, self.shape[1]))
        for c in np.unique(nodes // COORD_CHUNK):
            sel = np.flatnonzero(nodes // COORD_CHUNK == c)
            lo = int(c) * COORD_CHUNK
            block = self._chunk(lo, min(self.shape[0], lo + COORD_CHUNK))
            out[sel] = block[nodes[sel] - lo]
        return out


@dataclass
class _Window:
    """The nodes of rows ``w0:w1`` of the grid: window raster indices (level, row - w0,
    column), their lookup table, and the data then node reduced coordinates."""

    w0: int
    w1: int
    flat: np.ndarray
    lut: np.ndarray
    pts: np.ndarray


@dataclass
class SlabJob:
    """Slab-mode SGS (see the module): everything but the grid's nodes, built once
    (:meth:`prepare`); :meth:`run` simulates realisations ``r0:r1`` slab after slab."""

    grid: Grid
    model: object
    active: ActiveCells
    data_pts: np.ndarray
    n: int
    y: np.ndarray
    tree: object
    tiling: object
    max_distance: float | None
    offs: np.ndarray
    odist: np.ndarray
    codes: np.ndarray
    params: np.ndarray
    sill: float
    k: int
    fixed_cells: np.ndarray
    fixed_data: np.ndarray
    values: np.ndarray
    ft: FittedTransform
    radius: float
    realisations: int
    seed: int
    multigrid: int
    slab_rows: int
    halo: int

    @classmethod
    def prepare(cls, coords, values, grid: Grid, model, config: SimulationConfig) -> SlabJob:
        """Check the inputs and build the search structures (see
        :func:`~.sgs.simulate_grid`); nothing per grid node is held."""
        from ..kriging.neighbours import whole_tiling

        c = _prepare_data(coords, values, grid, model, config)
        active = ActiveCells(grid)
        # the tiling of the random path's search of all nodes: the same data neighbours
        tiling = whole_tiling(c["tree"], NodePoints(grid, model, active),
                              min(config.neighbours, c["n"]), max_distance=config.max_distance)
        cells, data = sample_raster_cells(c["coords"], grid, c["step"])
        halo = halo_rows(c["offs"])
        rows = config.slab_rows or default_slab_rows(grid, halo)
        return cls(grid, model, active, c["data_pts"], c["n"], c["y"], c["tree"], tiling,
                   config.max_distance, c["offs"], c["odist"], c["codes"], c["params"],
                   float(model.sill), config.neighbours, cells, data, c["values"], c["ft"],
                   float(c["radius"]), config.realisations, config.seed, config.multigrid,
                   min(int(rows), grid.nrows), halo)

    # ------------------------------------------------------------------ layout
    @property
    def fixed_nodes(self) -> np.ndarray:
        """Raster indices of the nodes set to a datum (their number is what callers use)."""
        return self.fixed_cells

    @property
    def n_free(self) -> int:
        """Active nodes not set to a datum: the nodes simulated per realisation."""
        return self.active.n - int(self.fixed_cells.size)

    def slabs(self) -> list[tuple[int, int]]:
        """``(first row, end row)`` of every slab, top to bottom."""
        nr = self.grid.nrows
        return [(a, min(nr, a + self.slab_rows)) for a in range(0, nr, self.slab_rows)]

    def window_nodes(self) -> int:
        """Most nodes of a window (a slab and its halo), counted for every cell."""
        nz = self.active.nz
        return min(self.grid.nrows, self.slab_rows + self.halo) * self.grid.ncols * nz

    def batches(self, size: int) -> list[tuple[int, int]]:
        """As :meth:`~.sgs.SGSJob.batches`."""
        return realisation_batches(self.realisations, size)

    def _window(self, cells: np.ndarray, w0: int, w1: int) -> _Window:
        """The window of rows ``w0:w1`` whose active nodes are ``cells`` (raster indices)."""
        g = self.grid
        wrows, per_level = w1 - w0, self.active.per_level
        lev = cells // per_level
        flat = (cells - lev * (per_level - wrows * g.ncols) - w0 * g.ncols).astype(
            index_dtype(self.active.nz * wrows * g.ncols))
        del lev
        lut = np.full((self.active.nz, wrows, g.ncols), -1, dtype=index_dtype(cells.size))
        lut.ravel()[flat] = np.arange(cells.size, dtype=lut.dtype)
        pts = np.empty((self.n + cells.size, self.data_pts.shape[1]))
        pts[:self.n] = self.data_pts
        # the random path's COORD_CHUNK pieces: one window of the whole grid has its floats
        for i0 in range(0, cells.size, COORD_CHUNK):
            i1 = min(cells.size, i0 + COORD_CHUNK)
            pts[self.n + i0:self.n + i1] = self.model.reduce(g.coords_of(cells[i0:i1]))
        return _Window(w0, w1, flat, lut, pts)

    def _local(self, win: _Window, cells: np.ndarray) -> np.ndarray:
        """Window node indices of ``cells`` (raster indices inside the window's rows)."""
        per_level, wrows = self.active.per_level, win.w1 - win.w0
        lev = cells // per_level
        local = cells - lev * (per_level - wrows * self.grid.ncols) - win.w0 * self.grid.ncols
        return win.lut.ravel()[local].astype(np.int64)

    def _data_neighbours(self, pts: np.ndarray, nodes: np.ndarray):
        """The nearest data of window ``nodes`` (as :meth:`~.sgs.SGSJob._data_neighbours`)."""
        from ..kriging.neighbours import search_part

        targets = pts[self.n + nodes.ravel().astype(np.int64)]
        idx, dist = search_part(self.tree, targets, min(self.k, self.n), self.tiling,
                                max_distance=self.max_distance)
        shape = (*nodes.shape, idx.shape[1])
        return (np.ascontiguousarray(idx).reshape(shape),
                np.ascontiguousarray(dist).reshape(shape))

    # ------------------------------------------------------------------ running
    def start(self, r0: int, r1: int) -> SlabState:
        """The state before the first slab of realisations ``r0:r1``: one generator per path
        group for the paths and one per realisation for the draws, continued from slab to
        slab (one slab of the whole grid is the random path itself)."""
        lows = [lo for lo in range(r0, r1) if lo == r0 or lo % PATH_GROUP == 0]
        nb = r1 - r0
        return SlabState(0, [np.random.default_rng([self.seed, 1, lo // PATH_GROUP])
                             for lo in lows],
                         [np.random.default_rng([self.seed, 0, r]) for r in range(r0, r1)],
                         np.zeros(1), np.full(nb, np.nan), np.full(nb, np.nan), None)

    def run(self, r0: int, r1: int, on_slab: SlabFn, step=None,
            should_stop: StopFn | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Simulate realisations ``r0:r1`` slab after slab; ``on_slab(row0, row1, cells, values_of)``
        gets each finished slab (:data:`SlabFn`; ``values_of(i)``, float64 in data units, the datum
        at a sample cell). ``step(n)`` is told of every ``n`` node-realisations simulated.
        Returns the score means and variances of the realisations' simulated nodes."""
        state = self.start(r0, r1)
        for _ in self.slabs():
            state = self.run_slab(r0, r1, state, on_slab, step, should_stop)
        check_cancel(should_stop)
        return state.mean, state.var

    def run_slab(self, r0: int, r1: int, state: SlabState, on_slab: SlabFn, step=None,
                 should_stop: StopFn | None = None) -> SlabState:
        """Simulate slab ``state.index`` of realisations ``r0:r1`` (see :meth:`run`) and
        return the state the next slab starts from: the generators where this slab left
        them, the running score moments and the scores of the next slab's halo rows."""
        from . import sgs
        from .kernel import sgs_kernel

        g = self.grid
        nb = r1 - r0
        groups = [(lo, min(r1, (lo // PATH_GROUP + 1) * PATH_GROUP))
                  for lo in range(r0, r1) if lo == r0 or lo % PATH_GROUP == 0]
        starts = np.array([lo - r0 for lo, _ in groups] + [nb], dtype=np.int64)
        path_step = sgs.PATH_STEP  # read at run time (tests shorten it)
        block = NEIGHBOUR_STEPS * path_step
        slabs = self.slabs()
        a, b = slabs[state.index]
        check_cancel(should_stop)
        w0 = max(0, a - self.halo)
        cells = self.active.rows(w0, b)
        halo_at = np.flatnonzero((cells % self.active.per_level) < a * g.ncols)
        win = self._window(cells, w0, b)
        slab_nodes = np.flatnonzero((cells % self.active.per_level) >= a * g.ncols)
        slab_cells = cells[slab_nodes]
        del cells
        fc = self.fixed_cells
        fc_row = (fc % self.active.per_level) // g.ncols
        in_slab = (fc_row >= a) & (fc_row < b)
        fixed_local = self._local(win, fc[in_slab])
        fixed_data = self.fixed_data[in_slab]
        is_free = np.zeros(win.flat.size, dtype=bool)
        is_free[slab_nodes] = True
        is_free[fixed_local] = False
        free = np.flatnonzero(is_free).astype(win.lut.dtype)
        del is_free
        sims = np.full((nb, win.flat.size), np.nan)
        if state.halo is not None and halo_at.size:
            sims[:, halo_at] = state.halo
        del halo_at
        state.halo = None  # the last window's rows go before this one's work
        shape = win.lut.shape
        paths = np.empty((len(groups), free.size), dtype=free.dtype)
        for i, rng in enumerate(state.path_rngs):
            paths[i] = _path(rng, free, win.flat, shape, self.multigrid, g.ndim, row0=w0)
        near = None
        for p0 in range(0, free.size, path_step):
            check_cancel(should_stop)
            p1 = min(free.size, p0 + path_step)
            normals = np.stack([d.standard_normal(p1 - p0) for d in state.draws])
            if p0 % block == 0:
                b0 = p0
                near = self._data_neighbours(win.pts, paths[:, b0:min(free.size, b0 + block)])
            dnbr, ddist = (np.ascontiguousarray(x[:, p0 - b0:p1 - b0]) for x in near)
            sgs_kernel(win.pts, self.n, self.y, dnbr, ddist, win.flat, win.lut,
                       self.offs, self.odist, paths, starts, normals, self.codes,
                       self.params, self.sill, self.k, p0, p1, sims)
            if step is not None:
                step((p1 - p0) * nb)
        del paths, near
        if free.size:
            _combine(state.count, state.mean, state.var, free.size, *_score_moments(sims, free))
        pos = np.searchsorted(slab_nodes, fixed_local)  # the sample cells in the slab
        data_vals = self.values[fixed_data]

        def values_of(i: int, _nodes=slab_nodes, _pos=pos, _vals=data_vals) -> np.ndarray:
            out = self.ft.inverse(sims[i, _nodes])
            out[_pos] = _vals  # the datum itself
            return out

        on_slab(a, b, slab_cells, values_of)
        del values_of, slab_cells, slab_nodes
        state.index += 1
        if state.index < len(slabs):  # the rows of this window the next one reads
            halo_cells = self.active.rows(max(0, b - self.halo), b)
            state.halo = sims[:, self._local(win, halo_cells)] if halo_cells.size else None
        return state


    def run_on_cluster(self, client, score_mean: np.ndarray, score_var: np.ndarray,
                       should_stop: StopFn | None = None):
        """All realisations on a Dask cluster, one chain of slab tasks per path group
        (:func:`slab_task`, :func:`~gcnn_rnn.core.cluster.map_chains`): yields ``(r0, r1,
        (row0, row1, cells, values))`` per finished slab (a chain's slabs in order) and sets
        ``score_mean``/``score_var`` of realisations ``r0:r1`` when their last slab is done."""
        from ..cluster import map_chains

        n_slabs = len(self.slabs())
        chains = {b: (self.start(*b), n_slabs) for b in self.batches(PATH_GROUP)}
        for (r0, r1), state, out in map_chains(client, self, slab_task, chains, should_stop):
            if state.index == n_slabs:
                score_mean[r0:r1], score_var[r0:r1] = state.mean, state.var
            yield r0, r1, out


@dataclass
class SlabState:
    """What a slab hands to the next (:meth:`SlabJob.run_slab`); picklable, so that on a
    cluster each slab is a task with all its inputs (a retried task gives the same floats).

    Attributes
    ----------
    index : int
        The slab to simulate next.
    path_rngs, draws : list of numpy.random.Generator
        The path generator of each path group and the draws of each realisation, where the
        slabs before left them.
    count, mean, var : ndarray
        Simulated nodes so far (shape (1,)) and the running normal-score mean and variance
        of each realisation.
    halo : ndarray or None
        Scores ``(realisations, nodes)`` of the halo rows of slab ``index`` (the active nodes
        of its rows within the search's reach above it, in raster order).
    """

    index: int
    path_rngs: list
    draws: list
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    halo: np.ndarray | None


def slab_task(job: SlabJob, r0: int, r1: int, state: SlabState):
    """One slab of realisations ``r0:r1`` as a cluster task: ``(next state, (row0, row1,
    cells, values))`` with ``values`` float32 ``(realisations, cells)`` in data units (what
    the realisations raster stores)."""
    out = []

    def keep(a, b, cells, values_of) -> None:
        out.append((a, b, cells, np.stack([np.asarray(values_of(i), dtype=np.float32)
                                           for i in range(r1 - r0)])))

    state = job.run_slab(r0, r1, state, keep)
    return state, out[0]


def _combine(count: np.ndarray, mean: np.ndarray, var: np.ndarray, n: int,
             m: np.ndarray, v: np.ndarray) -> None:
    """Fold the mean ``m`` and variance ``v`` (divisor ``n``) of ``n`` more values into the
    running ``count``, ``mean`` and ``var`` (in place; the first fold copies them, so one slab
    keeps the single-pass floats)."""
    c = float(count[0])
    if c == 0:
        mean[:], var[:] = m, v
    else:
        total = c + n
        delta = m - mean
        m2 = var * c + v * n + delta * delta * (c * n / total)
        mean += delta * (n / total)
        var[:] = m2 / total
    count[0] = c + n


def slab_layout(grid: Grid, model, config: SimulationConfig) -> tuple[int, int]:
    """``(slab rows, halo rows)`` of a slab-mode run of ``config`` (the template's reach;
    cheap: no nodes)."""
    from .sgs import search_template

    offs, _, _ = search_template(grid, model, config)
    halo = halo_rows(offs)
    rows = config.slab_rows or default_slab_rows(grid, halo)
    return min(int(rows), grid.nrows), halo


def simulate_slabs(coords, values, grid: Grid, model, config: SimulationConfig, progress=None,
                   should_stop: StopFn | None = None, client=None):
    """:func:`~.sgs.simulate_grid` with ``config.path == "slabs"`` (all realisations in
    memory: the API's result; ``simulate`` streams them, :mod:`.stream`)."""
    from .sgs import SimulationResult, _threads

    job = SlabJob.prepare(coords, values, grid, model, config)
    threads = _threads(config.n_jobs)
    n_real = config.realisations
    out = np.full((n_real, grid.n_nodes), np.nan, dtype=np.float32)
    score_mean, score_var = np.full(n_real, np.nan), np.full(n_real, np.nan)
    total = n_real * max(job.n_free, 1)
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0] / total, "simulating")

    if client is not None:  # a chain of slab tasks per path group, as ``simulate`` runs
        for r0, r1, (_, _, cells, values) in job.run_on_cluster(client, score_mean, score_var,
                                                                should_stop):
            out[r0:r1, cells] = values
    for r0, r1 in job.batches(PATH_GROUP * threads) if client is None else ():
        def on_slab(a, b, cells, values_of, r0=r0, r1=r1) -> None:
            for i in range(r1 - r0):
                out[r0 + i, cells] = values_of(i)

        score_mean[r0:r1], score_var[r0:r1] = job.run(r0, r1, on_slab, step, should_stop)
    check_cancel(should_stop)
    return SimulationResult(out.reshape((n_real, *grid.shape)), job.ft,
                            int(job.fixed_cells.size), float(job.radius), score_mean, score_var,
                            "slabs", job.slab_rows, job.halo)
