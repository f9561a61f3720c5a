"""Sequential Gaussian simulation (SGS) of a point field onto a 2D or 3D grid.

Steps: normal-score transform of the data (:mod:`gcnn_rnn.core.transforms`); every grid cell
that holds a sample takes that datum (the one nearest the cell centre); the other active
nodes are simulated along a random path per realisation by simple kriging of the normal
scores (mean 0) from the ``neighbours`` nearest data and previously simulated nodes
(:mod:`.kernel`), optionally visiting coarse sub-grids first (multigrid); the scores are
back-transformed with the normal-score table and its linear tails. Groups of
:data:`PATH_GROUP` realisations share one path and so one kriging system per node, as all
of gstat's ``nsim`` realisations do. With ``path="slabs"`` (:mod:`.slabs`) the path runs slab
after slab of raster rows instead, holding only a slab and the rows above it that the
search reaches.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputDataError
from ..grid import Grid
from ..progress import ProgressFn, StopFn, check_cancel
from ..transforms import FittedTransform, Transform, fit_transform

logger = logging.getLogger(__name__)

#: Most offsets in the search template of previously simulated nodes.
TEMPLATE_MAX = 20_000
#: Path positions simulated per compiled call (between progress reports and cancel checks);
#: the data neighbours and normal draws of these positions are all that is held of them.
PATH_STEP = 8192
#: Path chunks whose data neighbours are searched together (one search of more nodes shares
#: more tree queries of its tiles).
NEIGHBOUR_STEPS = 8
#: Nodes whose reduced coordinates are computed at once (grids up to this size in one call).
COORD_CHUNK = 1 << 20
#: Realisations sharing one random path and so one kriging system per node (a fixed number:
#: results must not depend on the number of threads); groups run in parallel.
PATH_GROUP = 16
#: Relative departure of the normal-score model's sill from 1 that earns a warning.
SILL_TOLERANCE = 0.2
#: How the nodes of a realisation are visited (:class:`SimulationConfig` ``path``).
PATH_MODES = ("random", "slabs")
#: Nodes (all columns and levels of its rows) a default slab holds about
#: (:func:`default_slab_rows`).
SLAB_NODES = 1 << 20


@dataclass(frozen=True)
class SimulationConfig:
    """How to simulate.

    Parameters
    ----------
    realisations : int
        Number of realisations (>= 1).
    seed : int
        Seed; realisation ``r`` depends only on ``(seed, r)``, not on how many are run.
        Realisations ``16 g`` to ``16 g + 15`` share a random path (:data:`PATH_GROUP`).
    neighbours : int
        Most conditioning values (data and simulated nodes) per node (gstat ``nmax``).
    max_distance : float or None
        Search radius (anisotropic distance) for data and simulated nodes; ``None``: data
        at any distance, simulated nodes within the model's practical range.
    multigrid : int
        Coarse levels visited first: nodes on every ``2**L``-th row and column (and
        level) before the finer ones (0: one random path over all nodes).
    n_jobs : int
        Threads (0: all cores); realisations run in parallel.
    path : {"random", "slabs"}
        ``random``: one random path over the whole grid per path group (every node of the
        realisations being simulated is held). ``slabs``: the grid is simulated slab after
        slab of ``slab_rows`` raster rows, top to bottom, each slab along its own random path
        conditioned also on the last rows of the slabs above (:mod:`.slabs`): memory grows
        with the slab, not with the grid. One slab covering the grid gives the floats of
        ``random``.
    slab_rows : int or None
        Raster rows per slab with ``path="slabs"`` (``None``: :func:`default_slab_rows`, a
        rule of the grid and the variogram only, never of the memory or threads).
    """

    realisations: int = 1
    seed: int = 0
    neighbours: int = 16
    max_distance: float | None = None
    multigrid: int = 0
    n_jobs: int = 0
    path: str = "random"
    slab_rows: int | None = None

    def __post_init__(self) -> None:
        if self.path not in PATH_MODES:
            raise InputDataError(f"path must be one of {', '.join(PATH_MODES)}, "
                                 f"not {self.path!r}")
        if self.slab_rows is not None:
            v = self.slab_rows
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise InputDataError(f"slab_rows must be an integer >= 1, not {v!r}")
            object.__setattr__(self, "slab_rows", int(v))
        for name, low in (("realisations", 1), ("neighbours", 1), ("multigrid", 0),
                          ("n_jobs", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InputDataError(f"{name} must be an integer >= {low}, not {value!r}")
            object.__setattr__(self, name, int(value))
        if self.max_distance is not None:
            d = float(self.max_distance)
            if not (d > 0 and math.isfinite(d)):
                raise InputDataError(f"max_distance must be > 0, not {self.max_distance!r}")
            object.__setattr__(self, "max_distance", d)

    def to_dict(self) -> dict:
        """JSON-safe dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class SimulationResult:
    """Realisations on a grid and the summaries derived from them.

    Attributes
    ----------
    realisations : ndarray of float32, shape (n_real, *grid.shape)
        Simulated values in data units; NaN on inactive (masked) cells.
    transform : FittedTransform
        The normal-score transform fitted on the data.
    n_sample_cells : int
        Nodes set to a datum (the data honoured on the grid).
    search_radius : float
        Reduced distance within which simulated nodes condition a node.
    score_mean, score_var : ndarray, shape (n_real,)
        Mean and variance of each realisation's simulated normal scores (the nodes not set
        to a datum): about 0 and 1 when the histogram is reproduced.
    path : str
        How the nodes were visited (:class:`SimulationConfig` ``path``).
    slab_rows, halo_rows : int or None
        With ``path="slabs"``: rows per slab, and rows of the slabs above a slab conditions on.
    """

    realisations: np.ndarray
    transform: FittedTransform
    n_sample_cells: int
    search_radius: float
    score_mean: np.ndarray
    score_var: np.ndarray
    path: str = "random"
    slab_rows: int | None = None
    halo_rows: int | None = None

    def etype_mean(self) -> np.ndarray:
        """Mean over the realisations (the E-type estimate), grid shape."""
        return self.realisations.mean(axis=0, dtype=np.float64)

    def conditional_variance(self) -> np.ndarray:
        """Variance over the realisations (divisor ``n_real``), grid shape."""
        return self.realisations.var(axis=0, dtype=np.float64)

    def exceedance_probability(self, threshold: float) -> np.ndarray:
        """Fraction of realisations above ``threshold`` (NaN on inactive cells)."""
        real = self.realisations
        prob = (real > threshold).mean(axis=0, dtype=np.float64)
        return np.where(np.isnan(real[0]), np.nan, prob)


def practical_range(model) -> float:
    """Distance at which a bounded model reaches 95 % of its sill (largest range if not)."""
    if not model.bounded or model.sill <= model.nugget:
        return max(model.max_range, 0.0)
    h = np.linspace(0.0, 10.0 * max(model.max_range, 1e-12), 4001)[1:]
    reach = np.flatnonzero(model.gamma(h) >= model.nugget + 0.95 * (model.sill - model.nugget))
    return float(h[reach[0]]) if reach.size else model.max_range


def _level_step(grid: Grid) -> float:
    levels = grid.z_levels
    if not levels or len(levels) < 2:
        return grid.cell_size
    steps = np.diff(np.asarray(levels, dtype=float))
    if not np.allclose(steps, steps[0], rtol=1e-9, atol=0.0):
        raise InputDataError("simulation needs equally spaced z levels (START:STOP:STEP)")
    return float(steps[0])


def index_dtype(n: int) -> type:
    """The narrowest of int32 and int64 that holds indices up to ``n`` (and ``-1``)."""
    return np.int32 if n < 2**31 - 1 else np.int64


def _nodes(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Active nodes: their flat raster indices and the lookup table cell -> node (``-1``:
    inactive), both int32 below 2**31 cells (the level, row and column of a node are
    computed from its raster index where needed)."""
    nz = len(grid.z_levels) if grid.z_levels else 1
    shape = (nz, grid.nrows, grid.ncols)
    if grid.mask is None:
        flat = np.arange(grid.n_nodes, dtype=index_dtype(grid.n_nodes))
    else:
        active = np.broadcast_to(np.asarray(grid.mask, dtype=bool)[None], shape)
        flat = np.flatnonzero(active.ravel()).astype(index_dtype(grid.n_nodes))
    lut = np.full(shape, -1, dtype=index_dtype(flat.size))
    lut.ravel()[flat] = np.arange(flat.size, dtype=lut.dtype)
    return flat, lut


def _node_points(grid: Grid, flat: np.ndarray, model, out: np.ndarray) -> None:
    """Reduced coordinates of the nodes ``flat`` into ``out``, :data:`COORD_CHUNK` at a time
    (the whole grid's coordinates are never held in float64 twice)."""
    for i0 in range(0, flat.size, COORD_CHUNK):
        i1 = min(flat.size, i0 + COORD_CHUNK)
        out[i0:i1] = model.reduce(grid.coords_of(flat[i0:i1]))


def _sample_cells(coords: np.ndarray, grid: Grid, lut: np.ndarray, step: float):
    """``(node, datum)`` pairs: each active cell holding samples gets the nearest to its centre.

    In 3D a sample belongs to the level within half a level step (or half a cell size).
    """
    cell, datum = sample_raster_cells(coords, grid, step)
    return lut.ravel()[cell], datum


def sample_raster_cells(coords: np.ndarray, grid: Grid, step: float):
    """``(raster index, datum)`` pairs, ascending raster indices: each active cell holding
    samples gets the nearest to its centre (no per-cell table: a grid of any size).

    In 3D a sample belongs to the level within half a level step (or half a cell size).
    """
    col = np.floor((coords[:, 0] - grid.xmin) / grid.cell_size).astype(np.int64)
    row = np.floor((grid.ymax - coords[:, 1]) / grid.cell_size).astype(np.int64)
    cx = grid.xmin + (col + 0.5) * grid.cell_size
    cy = grid.ymax - (row + 0.5) * grid.cell_size
    d2 = (coords[:, 0] - cx) ** 2 + (coords[:, 1] - cy) ** 2
    if grid.z_levels:
        levels = np.asarray(grid.z_levels, dtype=float)
        lev = np.rint((coords[:, 2] - levels[0]) / step).astype(np.int64)
        near = np.abs(coords[:, 2] - (levels[0] + lev * step)) <= 0.5 * step * (1 + 1e-9)
        d2 = d2 + (coords[:, 2] - (levels[0] + lev * step)) ** 2
    else:
        lev = np.zeros(len(coords), dtype=np.int64)
        near = np.ones(len(coords), dtype=bool)
    nz = len(grid.z_levels) if grid.z_levels else 1
    nr, nc = grid.nrows, grid.ncols
    inside = near & (col >= 0) & (col < nc) & (row >= 0) & (row < nr) & (lev >= 0) & (lev < nz)
    idx = np.flatnonzero(inside)
    if grid.mask is not None:
        idx = idx[np.asarray(grid.mask, dtype=bool)[row[idx], col[idx]]]
    cell = (lev[idx] * nr + row[idx]) * nc + col[idx]
    order = np.lexsort((d2[idx], cell))  # per cell, the nearest sample first
    idx, cell = idx[order], cell[order]
    first = np.r_[True, cell[1:] != cell[:-1]] if cell.size else np.zeros(0, dtype=bool)
    return cell[first], idx[first]


def _template(model, grid: Grid, step: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid offsets (level, row, col) within ``radius`` (reduced), nearest first, capped."""
    dim = 3 if grid.z_levels else 2
    # the reduced distance is at least s_min times the plain one: a box of radius / s_min
    s_min = float(np.linalg.svd(model.reduce(np.eye(dim)), compute_uv=False).min())
    reach = radius / max(s_min, 1e-12)
    nz = len(grid.z_levels) if grid.z_levels else 1
    hw_c = min(int(math.ceil(reach / grid.cell_size)), max(grid.ncols, grid.nrows))
    hw_l = min(int(math.ceil(reach / step)), nz - 1) if dim == 3 else 0
    budget = 4 * TEMPLATE_MAX
    while (2 * hw_c + 1) ** 2 * (2 * hw_l + 1) > budget and hw_c > 1:
        hw_c -= 1
        hw_l = max(0, min(hw_l, hw_c * int(math.ceil(grid.cell_size / step))))
    dl, dr, dc = np.meshgrid(np.arange(-hw_l, hw_l + 1), np.arange(-hw_c, hw_c + 1),
                             np.arange(-hw_c, hw_c + 1), indexing="ij")
    offs = np.column_stack([dl.ravel(), dr.ravel(), dc.ravel()]).astype(np.int64)
    offs = offs[np.any(offs != 0, axis=1)]
    xyz = np.column_stack([offs[:, 2] * grid.cell_size, -offs[:, 1] * grid.cell_size])
    if dim == 3:
        xyz = np.column_stack([xyz, offs[:, 0] * step])
    dist = np.sqrt((model.reduce(xyz) ** 2).sum(axis=1))
    keep = dist <= radius
    offs, dist = offs[keep], dist[keep]
    order = np.argsort(dist, kind="stable")[:TEMPLATE_MAX]
    return np.ascontiguousarray(offs[order]), np.ascontiguousarray(dist[order])


def halo_rows(offs: np.ndarray) -> int:
    """Rows of previously simulated nodes the template ``offs`` reaches (its largest |row
    offset|): a slab needs that many rows of the slabs above it."""
    return int(np.abs(offs[:, 1]).max()) if offs.shape[0] else 0


def default_slab_rows(grid: Grid, halo: int) -> int:
    """Rows of a default slab: about :data:`SLAB_NODES` nodes (all columns and levels of its
    rows), at least ``halo`` rows (a slab no thinner than the rows it borrows from above) and
    one, a multiple of the rasters' 256-row stripes when taller than one, at most the grid's
    rows. A rule of the grid and the variogram only: the realisations
    never depend on ``--max-memory-gb`` or the threads."""
    from ..tiles import BLOCK

    nz = len(grid.z_levels) if grid.z_levels else 1
    rows = max(1, halo, SLAB_NODES // max(1, grid.ncols * nz))
    if rows > BLOCK:  # whole stripes of the rasters: none waits in memory for the next slab
        rows = max(halo, rows - rows % BLOCK)
    return min(grid.nrows, rows)


def search_template(grid: Grid, model, config: SimulationConfig):
    """``(offsets, distances, radius)``: the template of previously simulated nodes of a run
    of ``config`` on ``grid`` (:func:`_template`)."""
    radius = config.max_distance if config.max_distance else practical_range(model)
    offs, odist = _template(model, grid, _level_step(grid), radius)
    return offs, odist, radius


def _prepare_data(coords, values, grid: Grid, model, config: SimulationConfig) -> dict:
    """The checks and the data side shared by both path modes: normal scores, reduced data
    coordinates and their k-d tree, the template of simulated nodes, the model arrays."""
    from scipy.spatial import cKDTree

    coords = np.ascontiguousarray(np.asarray(coords, dtype=float))
    values = np.asarray(values, dtype=float).ravel()
    if coords.ndim != 2 or coords.shape[1] not in (2, 3) or coords.shape[0] != values.size:
        raise InputDataError(
            f"{values.size} values for coordinates of shape {coords.shape!r}")
    if not (np.isfinite(coords).all() and np.isfinite(values).all()):
        raise InputDataError("simulation needs finite sample coordinates and values")
    if grid.ndim != coords.shape[1]:
        raise InputDataError(
            f"the grid is {grid.ndim}D but the samples are {coords.shape[1]}D"
            + ("; give z levels for 3D samples" if coords.shape[1] == 3 else ""))
    if not model.bounded:
        raise InputDataError(f"simulation needs a bounded variogram (a covariance); "
                             f"{model.to_text()!r} is unbounded")
    if abs(model.sill - 1.0) > SILL_TOLERANCE:
        logger.warning("the variogram's sill is %.3g, not about 1 as for normal scores: "
                       "the realisations will not reproduce the data histogram",
                       model.sill)
    ft = fit_transform(values, Transform.NSCORE)
    y = ft.forward(values)
    step = _level_step(grid)
    data_pts = model.reduce(coords)
    offs, odist, radius = search_template(grid, model, config)
    codes, params = model.kernel_arrays()
    return {"coords": coords, "values": values, "ft": ft, "y": y, "n": values.size,
            "step": step, "data_pts": data_pts, "tree": cKDTree(data_pts), "offs": offs,
            "odist": odist, "radius": radius, "codes": codes, "params": params}


def _path(rng: np.random.Generator, free: np.ndarray, flat: np.ndarray, shape: tuple,
          multigrid: int, dim: int, row0: int = 0) -> np.ndarray:
    """Free nodes in random order; with multigrid, coarser sub-grids first.

    The permutation of ``free`` is the same whatever its integer type (the shuffle's draws
    depend only on its length). ``flat`` and ``shape`` may describe a window of the grid
    whose first row is the grid's row ``row0``: the multigrid levels are those of the grid's
    own rows, so coarse nodes line up across windows."""
    perm = rng.permutation(free)
    if multigrid <= 0:
        return perm
    level = np.zeros(perm.size, dtype=np.int16 if multigrid < 2**15 else np.int64)
    cell = flat[perm].astype(np.int64)
    per_level = shape[1] * shape[2]
    # level, row and column of every node on the path (np.unravel_index's values)
    sub = [cell // per_level, cell % per_level // shape[2] + row0, cell % shape[2]]
    del cell
    axes = (0, 1, 2) if dim == 3 else (1, 2)
    for g in range(1, multigrid + 1):
        on = np.ones(perm.size, dtype=bool)
        for ax in axes:
            on &= sub[ax] % (2**g) == 0
        level[on] = g
    del sub
    return perm[np.argsort(-level, kind="stable")]


def realisation_batches(realisations: int, size: int) -> list[tuple[int, int]]:
    """``(r0, r1)`` runs of ``size`` realisations: whole path groups (one per thread, run in
    parallel) when ``size >= PATH_GROUP``, else parts of one group (each part follows the
    group's path again: the same floats, in less memory)."""
    size = max(1, size)
    if size >= PATH_GROUP:
        size -= size % PATH_GROUP
        return [(r0, min(realisations, r0 + size)) for r0 in range(0, realisations, size)]
    return [(r0, min(realisations, g0 + PATH_GROUP, r0 + size))
            for g0 in range(0, realisations, PATH_GROUP)
            for r0 in range(g0, min(realisations, g0 + PATH_GROUP), size)]


def _score_moments(sims: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``sims``, the mean and variance over the columns ``free``: the floats of
    ``sims[:, free].mean(axis=1)`` and ``.var(axis=1)`` (what the batch's moments always
    were), from blocks of two rows so that only two rows are copied at a time. The fancy
    index lays a block out column by column and numpy then sums each row column after
    column, whatever the number of rows (two or more); a single row is contiguous and summed
    pairwise, as a batch of one realisation always was."""
    n_rows = sims.shape[0]
    mean, var = np.empty(n_rows), np.empty(n_rows)
    for b in range(0, n_rows, 2):
        lo = max(0, min(b, n_rows - 2))
        block = sims[lo:lo + 2, free]
        mean[lo:lo + 2], var[lo:lo + 2] = block.mean(axis=1), block.var(axis=1)
        del block
    return mean, var


def _threads(n_jobs: int) -> int:
    import numba

    avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = max(1, min(n_jobs or avail or 1, avail or 1, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def simulate_grid(
    coords: np.ndarray,
    values: np.ndarray,
    grid: Grid,
    model,
    config: SimulationConfig | None = None,
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    client=None,
) -> SimulationResult:
    """Sequential Gaussian simulation conditioned on point data.

    Parameters
    ----------
    coords : ndarray, shape (n, 2) or (n, 3)
        Sample coordinates (3D needs a grid with z levels).
    values : ndarray, shape (n,)
        Sample values in data units.
    grid : Grid
        Output grid; masked cells stay NaN.
    model : VariogramModel
        Variogram of the *normal scores* (bounded; sill about 1).
    config : SimulationConfig, optional
        Realisations, seed, neighbourhood, multigrid, threads.
    progress, should_stop : callable, optional
        Progress ``(fraction, text)`` and cancellation, checked every :data:`PATH_STEP` nodes.
    client : distributed.Client, optional
        Run the batches of path groups as tasks on this Dask cluster (same floats: each
        realisation depends only on the seed and its number); in slab mode, a chain of slab
        tasks per path group (:func:`~gcnn_rnn.core.cluster.map_chains`).

    Returns
    -------
    SimulationResult

    Raises
    ------
    InputDataError
        Bad shapes, non-finite values, an unbounded model, a grid/sample dimension mismatch.
    Cancelled
        When ``should_stop()`` turns true.

    Notes
    -----
    At node ``u`` with conditioning values ``y_i`` (data scores and simulated nodes), simple
    kriging gives ``m = c' C^-1 y`` and ``s^2 = C(0) - c' C^-1 c`` (``C = sill - gamma``),
    and the node gets ``m + s * N(0, 1)`` (Deutsch & Journel 1998, GSLIB ``sgsim``;
    gstat ``krige(..., nsim)`` with ``beta = 0``). Data are honoured at their cells.

    References
    ----------
    Deutsch, C. V., Journel, A. G. (1998). *GSLIB: Geostatistical Software Library and
    User's Guide*, 2nd ed., Oxford University Press, section V.2.3.
    """
    config = SimulationConfig() if config is None else config
    if config.path == "slabs":
        from .slabs import simulate_slabs

        return simulate_slabs(coords, values, grid, model, config, progress, should_stop,
                              client)
    job = SGSJob.prepare(coords, values, grid, model, config)
    threads = _threads(config.n_jobs)
    n_real = config.realisations
    out = np.full((n_real, grid.n_nodes), np.nan, dtype=np.float32)
    score_mean = np.full(n_real, np.nan)
    score_var = np.full(n_real, np.nan)
    batches = job.batches(PATH_GROUP * threads)
    if client is None:
        total = n_real * max(job.free.size, 1)
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0] / total, "simulating")

        results = ((b, job.run(*b, step, should_stop)) for b in batches)
    else:
        from ..cluster import map_unordered

        results = map_unordered(client, job, batches, should_stop)
    for i, ((r0, r1), (real, s_mean, s_var)) in enumerate(results):
        for r in range(r0, r1):
            out[r, job.flat] = real[r - r0]
        score_mean[r0:r1], score_var[r0:r1] = s_mean, s_var
        del real
        if client is not None and progress is not None:
            progress((i + 1) / len(batches), "simulating")
        check_cancel(should_stop)
    check_cancel(should_stop)
    return SimulationResult(out.reshape((n_real, *grid.shape)), job.ft,
                            int(job.fixed_nodes.size), float(job.radius), score_mean, score_var)


@dataclass
class SGSJob:
    """Everything the simulation kernel needs, built once (:meth:`prepare`); a call
    simulates realisations ``r0:r1`` (:meth:`batches`). Realisation ``r`` depends only on
    ``(seed, r)`` (its path on ``(seed, r // PATH_GROUP)``), so batches can run in any order,
    in-process or as tasks on a Dask cluster, with the same floats.

    Held for the whole grid (per active node): the reduced node coordinates (8 bytes per
    axis), the node's raster index, its cell's lookup entry and, for free nodes, its place
    among them (4 bytes each below 2**31 cells). A call adds its path groups' paths (4 bytes
    per node each) and its realisations' normal scores (8 bytes per node each); the data
    neighbours and normal draws are held for :data:`PATH_STEP` path positions only."""

    pts: np.ndarray
    n: int
    y: np.ndarray
    tree: object
    tiling: object
    max_distance: float | None
    shape: tuple
    lut: np.ndarray
    offs: np.ndarray
    odist: np.ndarray
    codes: np.ndarray
    params: np.ndarray
    sill: float
    k: int
    flat: np.ndarray
    free: np.ndarray
    fixed_nodes: np.ndarray
    fixed_data: np.ndarray
    values: np.ndarray
    ft: FittedTransform
    radius: float
    n_nodes: int
    ndim: int
    realisations: int
    seed: int
    multigrid: int

    @classmethod
    def prepare(cls, coords, values, grid: Grid, model, config: SimulationConfig) -> SGSJob:
        """Check the inputs and build the search structures (see :func:`simulate_grid`)."""
        from ..kriging.neighbours import whole_tiling

        c = _prepare_data(coords, values, grid, model, config)
        coords, values, n = c["coords"], c["values"], c["n"]
        flat, lut = _nodes(grid)
        pts = np.empty((n + flat.size, coords.shape[1]))
        pts[:n] = c["data_pts"]
        _node_points(grid, flat, model, pts[n:])
        tree = c["tree"]
        # the tiles a search of the whole grid would use: the data neighbours found per path
        # chunk are then those (and the floats) of one search of all nodes
        tiling = whole_tiling(tree, pts[n:], min(config.neighbours, n),
                              max_distance=config.max_distance)
        fixed_nodes, fixed_data = _sample_cells(coords, grid, lut, c["step"])
        is_free = np.ones(flat.size, dtype=bool)
        is_free[fixed_nodes] = False
        free = np.flatnonzero(is_free).astype(lut.dtype)
        del is_free
        return cls(pts, n, c["y"], tree, tiling, config.max_distance, lut.shape, lut,
                   c["offs"], c["odist"], c["codes"], c["params"], float(model.sill),
                   config.neighbours, flat, free, fixed_nodes, fixed_data, values, c["ft"],
                   float(c["radius"]), grid.n_nodes, grid.ndim, config.realisations,
                   config.seed, config.multigrid)

    def batches(self, size: int) -> list[tuple[int, int]]:
        """``(r0, r1)`` runs of ``size`` realisations: whole path groups (one per thread,
        run in parallel) when ``size >= PATH_GROUP``, else parts of one group (each part
        follows the group's path again: the same floats, in less memory)."""
        return realisation_batches(self.realisations, size)

    def __call__(self, r0: int, r1: int):
        return self.run(r0, r1)

    def _data_neighbours(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest data of ``nodes`` (any shape), shape ``(*nodes.shape, kd)``: the same
        neighbours and distances as a search over the whole grid (canonical tie-breaking)."""
        from ..kriging.neighbours import search_part

        targets = self.pts[self.n + nodes.ravel().astype(np.int64)]
        idx, dist = search_part(self.tree, targets, min(self.k, self.n), self.tiling,
                                max_distance=self.max_distance)
        shape = (*nodes.shape, idx.shape[1])
        return (np.ascontiguousarray(idx).reshape(shape),
                np.ascontiguousarray(dist).reshape(shape))

    def run(self, r0: int, r1: int, step=None, should_stop: StopFn | None = None):
        """Realisations ``r0:r1`` (in groups of :data:`PATH_GROUP` sharing a path): ``(values of
        the active nodes, shape (r1 - r0, len(flat)), float64, in data units; score means;
        score variances)``. ``step(n)`` is told of every ``n`` node-realisations simulated.
        """
        from .kernel import sgs_kernel

        free, m = self.free, self.flat.size
        groups = [(lo, min(r1, (lo // PATH_GROUP + 1) * PATH_GROUP))
                  for lo in range(r0, r1) if lo == r0 or lo % PATH_GROUP == 0]
        # the path of group g depends on (seed, g), the draws of realisation r on (seed, r):
        # results do not depend on the number of threads, realisations or batches
        paths = np.empty((len(groups), free.size), dtype=free.dtype)
        for i, (lo, _) in enumerate(groups):
            paths[i] = _path(np.random.default_rng([self.seed, 1, lo // PATH_GROUP]), free,
                             self.flat, self.shape, self.multigrid, self.ndim)
        # drawn PATH_STEP at a time: the same stream as one call for the whole path
        draws = [np.random.default_rng([self.seed, 0, r]) for r in range(r0, r1)]
        starts = np.array([lo - r0 for lo, _ in groups] + [r1 - r0], dtype=np.int64)
        sims = np.full((r1 - r0, m), np.nan)
        block = NEIGHBOUR_STEPS * PATH_STEP
        for p0 in range(0, free.size, PATH_STEP):
            check_cancel(should_stop)
            p1 = min(free.size, p0 + PATH_STEP)
            normals = np.stack([d.standard_normal(p1 - p0) for d in draws])
            if p0 % block == 0:  # the data neighbours of the next NEIGHBOUR_STEPS chunks
                b0 = p0
                near = self._data_neighbours(paths[:, b0:min(free.size, b0 + block)])
            dnbr, ddist = (np.ascontiguousarray(a[:, p0 - b0:p1 - b0]) for a in near)
            sgs_kernel(self.pts, self.n, self.y, dnbr, ddist, self.flat, self.lut,
                       self.offs, self.odist, paths, starts, normals, self.codes, self.params,
                       self.sill, self.k, p0, p1, sims)
            if step is not None:
                step((p1 - p0) * (r1 - r0))
        del paths
        score_mean = np.full(r1 - r0, np.nan)
        score_var = np.full(r1 - r0, np.nan)
        if free.size:
            score_mean[:], score_var[:] = _score_moments(sims, free)
        for b in range(r1 - r0):  # one realisation at a time: no copy of the batch
            sims[b] = self.ft.inverse(sims[b])
            sims[b, self.fixed_nodes] = self.values[self.fixed_data]  # the datum itself
        return sims, score_mean, score_var
