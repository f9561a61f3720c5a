"""``simulate`` in bounded output memory: realisations written as their batch finishes, the
summaries (E-type mean, conditional variance, exceedance probability) computed stripe by
stripe from the written realisations.

What is held per grid node. SGS is sequential along each realisation's random path and
conditions every node on nodes simulated anywhere before it, so the normal score of every
node of each realisation being simulated is held until its path ends (float64, 8 bytes), and
with it the reduced node coordinates (8 bytes per axis), the node's raster index, lookup
entry and place among the free nodes, and the path of each group of 16 realisations that
share one (4 bytes each below 2**31 nodes). In 2D with one path group of 16 realisations
that is 160 bytes per node, 208 with the passing copies (:mod:`.memory`; measured 179 at
1e6 nodes, BENCHMARKS.md). The data neighbours and normal draws are held for a few
:data:`~.sgs.PATH_STEP` path positions only, so they do not grow with the grid. The batch
(one path group per thread) shrinks to fewer groups, then to part of a group, when it does
not fit ``--max-memory-gb`` (:func:`~.memory.plan_batch`): the same floats, more time.
Batches run in-process or as tasks on a Dask cluster, in any order, with the same floats (a
realisation depends only on the seed and its number).

With ``--path slabs`` (:mod:`.slabs`) nothing is held per grid node: each batch of path
groups is simulated slab after slab, and each finished slab of each realisation is
back-transformed and written at once (every band top to bottom, so the writer holds one
stripe per band of the batch). On a Dask cluster each path group is a chain of tasks, one
per slab (:func:`~gcnn_rnn.core.cluster.map_chains`): a task returns the slab's rows of its
realisations and the state the next slab starts from (the generators and the halo's
scores), which the client passes on, so the client holds a slab per running chain and a
retried task gives the same floats.

A realisation is written piece by piece (stripes of the raster), never copied whole; the
summaries read all realisations of as many rows at once as fit (:func:`~.memory.summary_rows`,
at most 256).

The summaries are the numpy reductions of :class:`~.sgs.SimulationResult` over the
realisation axis, applied to each stripe of rows: the same operations per node, so the same floats as over
the whole array.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid
from ..progress import ProgressFn, StopFn, check_cancel


@dataclass
class StreamedSimulation:
    """What the ``simulate`` summary needs."""

    score_mean: np.ndarray
    score_var: np.ndarray
    etype_range: list[float] | None


def _stack_grid(grid: Grid, n_bands: int) -> Grid:
    """``grid`` with ``n_bands`` "levels": the bands of every realisation, level-major."""
    return Grid(grid.xmin, grid.ymax, grid.cell_size, grid.ncols, grid.nrows, grid.crs,
                tuple(float(b) for b in range(n_bands)), mask=grid.mask)


def simulate_to_rasters(job, grid: Grid, batch: int, files: dict[str, tuple[Path, str, str]],
                        band_names: list[str], threshold: float | None = None, client=None,
                        progress: ProgressFn | None = None,
                        should_stop: StopFn | None = None) -> StreamedSimulation:
    """Simulate ``job`` (:class:`~.sgs.SGSJob` or :class:`~.slabs.SlabJob`) on ``grid`` into the rasters ``files``
    (``realisations``, ``etype_mean``, ``conditional_variance`` and, with ``threshold``,
    ``exceedance_probability``: name → (path, kind, description)), ``batch`` realisations
    at a time (:meth:`~.sgs.SGSJob.batches`, :func:`~.memory.plan_batch`).

    All or nothing: every file is written under a temporary name and renamed only when all
    are complete and verified.
    """
    from ..tiles import BLOCK, RasterStreamWriter, all_or_nothing, streaming_env
    from .memory import summary_rows
    from .slabs import SlabJob

    n_real = job.realisations
    nz = len(grid.z_levels) if grid.z_levels else 1
    per_real = grid.n_nodes  # nodes of one realisation (all its levels), in raster order
    writers: dict[str, RasterStreamWriter] = {}
    score_mean = np.full(n_real, np.nan)
    score_var = np.full(n_real, np.nan)
    batches = job.batches(batch)
    slabs = isinstance(job, SlabJob)
    total = n_real * max(job.n_free if slabs else job.free.size, 1)
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(0.9 * done[0] / total, "simulating")

    paths = {k: p for k, (p, _, _) in files.items()}
    with all_or_nothing(paths, writers) as tmp, streaming_env():
        path, kind, desc = files["realisations"]
        writers["realisations"] = RasterStreamWriter(
            tmp["realisations"], _stack_grid(grid, n_real * nz), desc, kind,
            qml_path=path.with_suffix(".qml"), band_descriptions=band_names)
        if slabs and client is not None:
            _slabs_on_cluster(client, job, writers["realisations"], grid, nz, score_mean,
                              score_var, progress, should_stop)
            results = iter(())
        elif slabs:
            # one batch of path groups at a time, slab after slab: every band is written top
            # to bottom, so the writer holds one stripe per band of the batch
            for r0, r1 in batches:
                def on_slab(a, b, cells, values_of, r0=r0, r1=r1) -> None:
                    for i in range(r1 - r0):
                        _write_slab(writers["realisations"], (r0 + i) * per_real, cells,
                                    values_of(i), grid, nz, a, b)

                score_mean[r0:r1], score_var[r0:r1] = job.run(r0, r1, on_slab, step,
                                                              should_stop)
            results = iter(())
        elif client is None:
            results = ((b, job.run(*b, step, should_stop)) for b in batches)
        else:
            from ..cluster import map_unordered

            results = map_unordered(client, job, batches, should_stop)
        for i, ((r0, r1), (real, s_mean, s_var)) in enumerate(results):
            score_mean[r0:r1], score_var[r0:r1] = s_mean, s_var
            for r in range(r0, r1):
                _write_active(writers["realisations"], r * per_real, job.flat, real[r - r0],
                              per_real, BLOCK * grid.ncols)
            del real
            check_cancel(should_stop)
            if client is not None and progress is not None:
                progress(0.9 * (i + 1) / len(batches), "simulating")
        summaries = [k for k in ("etype_mean", "conditional_variance",
                                 "exceedance_probability") if k in files]
        for name in summaries:
            path, kind, desc = files[name]
            writers[name] = RasterStreamWriter(tmp[name], grid, desc, kind,
                                               qml_path=path.with_suffix(".qml"))
        writers["realisations"].close()
        writers["realisations"].verify()
        _summarise(tmp["realisations"], grid, n_real, nz, summary_rows(grid, n_real, BLOCK),
                   threshold, writers, should_stop)
        ranges = {k: writers[k].close()["range"] for k in summaries}
        for name in summaries:
            writers[name].verify()
    return StreamedSimulation(score_mean, score_var, ranges.get("etype_mean"))


def _slabs_on_cluster(client, job, writer, grid: Grid, nz: int, score_mean: np.ndarray,
                      score_var: np.ndarray, progress: ProgressFn | None,
                      should_stop: StopFn | None) -> None:
    """Slab-mode realisations on a Dask cluster (:meth:`~.slabs.SlabJob.run_on_cluster`),
    each slab written as it arrives (a band's slabs arrive in order, so every band is still
    written top to bottom)."""
    from .sgs import PATH_GROUP

    total = len(job.slabs()) * len(job.batches(PATH_GROUP))
    for i, (r0, r1, (a, b, cells, values)) in enumerate(
            job.run_on_cluster(client, score_mean, score_var, should_stop)):
        for k in range(r1 - r0):
            _write_slab(writer, (r0 + k) * grid.n_nodes, cells, values[k], grid, nz, a, b)
        del values, cells
        check_cancel(should_stop)
        if progress is not None:
            progress(0.9 * (i + 1) / total, "simulating")


def _write_slab(writer, start: int, cells: np.ndarray, values: np.ndarray, grid: Grid,
                nz: int, row0: int, row1: int) -> None:
    """Rows ``row0:row1`` (every level) of one realisation (``values`` of the active nodes
    ``cells``, ascending raster indices) into ``writer`` at ``start``: float32, NaN on
    inactive cells."""
    per_level = grid.nrows * grid.ncols
    for level in range(nz):
        c0, c1 = level * per_level + row0 * grid.ncols, level * per_level + row1 * grid.ncols
        lo, hi = np.searchsorted(cells, [c0, c1])
        part = np.full(c1 - c0, np.nan, dtype=np.float32)
        part[cells[lo:hi] - c0] = values[lo:hi]
        writer.write(start + c0, part)


def _write_active(writer, start: int, flat: np.ndarray, values: np.ndarray, n_cells: int,
                  piece: int) -> None:
    """One realisation (``values`` of the active nodes ``flat``, ascending raster indices)
    into ``writer`` at ``start``, ``piece`` cells at a time: float32, NaN on inactive cells,
    as a whole row would be written, without the grid-sized copies of it."""
    lo = 0
    for c0 in range(0, n_cells, piece):
        c1 = min(n_cells, c0 + piece)
        hi = int(np.searchsorted(flat, c1))
        part = np.full(c1 - c0, np.nan, dtype=np.float32)
        part[flat[lo:hi].astype(np.int64) - c0] = values[lo:hi]
        writer.write(start + c0, part)
        lo = hi


def _summarise(path: Path, grid: Grid, n_real: int, nz: int, rows_per: int,
               threshold: float | None, writers: dict, should_stop: StopFn | None) -> None:
    """E-type mean, conditional variance and exceedance probability, stripe by stripe of
    the written realisations (the reductions of :class:`~.sgs.SimulationResult`)."""
    import rasterio
    from rasterio.windows import Window

    per_level = grid.nrows * grid.ncols
    with rasterio.open(path) as ds:
        for level in range(nz):
            bands = [r * nz + level + 1 for r in range(n_real)]
            for r0 in range(0, grid.nrows, rows_per):
                check_cancel(should_stop)
                rows = min(rows_per, grid.nrows - r0)
                real = ds.read(bands, window=Window(0, r0, grid.ncols, rows), masked=True)
                real = real.filled(np.nan).reshape(n_real, -1)
                start = level * per_level + r0 * grid.ncols
                writers["etype_mean"].write(start, real.mean(axis=0, dtype=np.float64))
                writers["conditional_variance"].write(start,
                                                      real.var(axis=0, dtype=np.float64))
                if "exceedance_probability" in writers:
                    prob = (real > threshold).mean(axis=0, dtype=np.float64)
                    writers["exceedance_probability"].write(
                        start, np.where(np.isnan(real[0]), np.nan, prob))
