"""What ``simulate`` holds at once, and the guard that refuses a run that cannot fit.

Sequential Gaussian simulation conditions every node on nodes simulated anywhere earlier on
its random path, so the normal score of every node of every realisation being simulated
is held (float64: the kriging uses them as they are) until its path ends. Per grid node
(the active ones; counted for every node as an upper bound), :class:`~.sgs.SGSJob` holds

* for the whole run: the reduced coordinates (8 bytes per axis), the raster index, the
  lookup entry and the place among the free nodes (4 bytes each below 2**31 nodes, else 8);
* per path group of the batch (16 realisations sharing one path, one group per thread):
  its path (4 bytes, or 8);
* per realisation of the batch: its normal scores (8 bytes), back-transformed in place;
* passing copies while a path is built (multigrid levels) and the score moments and
  back-transform are computed (two rows at a time): :data:`TRANSIENT` bytes.

So a 2D run of 16 realisations (one path group) holds 16 + 12 + 4 + 128 + 48 = 208 bytes
per node at most (measured: 179, BENCHMARKS.md). The data neighbours and normal draws are
held for a few :data:`~.sgs.PATH_STEP` path positions per group only, the rasters stripe by
stripe: bounded apart from the grid.
When the batch of one path group per thread does not fit ``--max-memory-gb``, fewer groups
are simulated at once (fewer threads busy), then fewer realisations of one group (each
walks the group's path again): the same realisations, more time (a part of one realisation
has its normal-score mean and variance summed pairwise rather than column by column: the
last bits of those two numbers in ``simulation.json`` may differ). When even one realisation
at a time does not fit, the run is refused with the largest grid that would (``--path
auto``, the default, then simulates slab by slab instead).

With ``--path slabs`` (:mod:`.slabs`) the same arrays are held for the *window* of one slab
and its halo only, ``(slab rows + halo rows) x ncols x nz`` nodes, plus
:data:`SLAB_TRANSIENT` bytes per window node (its raster indices and the slab's, while a
window is built) and one stripe of the realisations raster per band of the batch (each band
is written top to bottom): nothing grows with the number of rows (:func:`slab_run_bytes`,
:func:`plan_slab_batch`). Such a run is refused only when one slab cannot fit, or for disk.
"""

from __future__ import annotations

import logging
import math

from ..errors import GridTooLargeError
from ..grid import Grid

logger = logging.getLogger(__name__)

#: Bytes per node of the copies made while a path is built or a batch finished: multigrid
#: levels (the raster index, level/row/column and the sort order of the path, 8 each) or
#: two rows of scores and their deviations (32).
TRANSIENT = 48
#: Bytes per value while the summaries are computed from the written realisations: the
#: float32 read, its mask and filled copy, and float64 deviations (``var``).
SUMMARY_BYTES_PER_VALUE = 20
#: Most bytes for one read of the summaries (all realisations of a few rows): the rows per
#: read shrink to fit it, down to one.
SUMMARY_BUDGET = 256 * 1024**2


#: Bytes per window node of slab mode besides the random path's: the raster indices of the
#: window's nodes and of its slab's, and their level/row arithmetic (8 each).
SLAB_TRANSIENT = 32


def index_bytes(n_nodes: int) -> int:
    """Bytes of one node index (int32 below 2**31 nodes)."""
    return 4 if n_nodes < 2**31 - 1 else 8


def bytes_per_node(grid: Grid, groups: int, realisations: int) -> int:
    """Bytes held per node while ``groups`` path groups of ``realisations`` in all run."""
    ib = index_bytes(grid.n_nodes)
    return 8 * grid.ndim + 3 * ib + groups * ib + 8 * realisations + TRANSIENT


def summary_rows(grid: Grid, n_real: int, block: int) -> int:
    """Rows of all realisations read at once for the summaries (at most ``block``)."""
    per_row = n_real * grid.ncols * SUMMARY_BYTES_PER_VALUE
    return max(1, min(block, SUMMARY_BUDGET // max(per_row, 1)))


def fixed_bytes(grid: Grid, n_samples: int, neighbours: int, groups: int) -> int:
    """What does not grow with the number of rows: the samples, the data neighbours and
    draws of one path chunk per group, the template, the stripes of the rasters."""
    from ..tiles import held_bytes
    from .sgs import NEIGHBOUR_STEPS, PATH_GROUP, PATH_STEP, TEMPLATE_MAX

    k = min(neighbours, max(n_samples, 1))
    # per position and group searched at once: neighbour indices and distances with the
    # search's copies (48 k), the node coordinates, the tile order; per position simulated
    # at once: the normal draws of 16 realisations
    positions = min(grid.n_nodes, NEIGHBOUR_STEPS * PATH_STEP)
    searched = groups * positions * (48 * k + 8 * grid.ndim + 64)
    drawn = groups * min(grid.n_nodes, PATH_STEP) * 8 * PATH_GROUP
    return (searched + drawn + TEMPLATE_MAX * 32
            + held_bytes(grid, 4, n_samples))


def _summary_phase(grid: Grid, n_real: int) -> tuple[int, int]:
    """Bytes held while the summaries are made: the job's per-node arrays, and one read."""
    from ..tiles import BLOCK

    base = (8 * grid.ndim + 3 * index_bytes(grid.n_nodes)) * grid.n_nodes
    rows = summary_rows(grid, n_real, BLOCK)
    return base, rows * grid.ncols * n_real * SUMMARY_BYTES_PER_VALUE


def run_bytes(grid: Grid, n_samples: int, n_real: int, neighbours: int, size: int) -> int:
    """Peak bytes of a ``simulate`` run of ``n_real`` realisations ``size`` at a time: the
    larger of the simulation of a batch and the summaries."""
    from .sgs import PATH_GROUP

    groups = max(1, size // PATH_GROUP)
    run = bytes_per_node(grid, groups, min(n_real, size)) * grid.n_nodes + fixed_bytes(
        grid, n_samples, neighbours, groups)
    base, summary = _summary_phase(grid, n_real)
    return max(run, base + summary + fixed_bytes(grid, n_samples, neighbours, 0))


def _largest_batch(n_real: int, threads: int, need, max_bytes: int) -> int | None:
    """The most realisations to simulate at once for which ``need(size)`` bytes fit
    ``max_bytes``: one path group per thread, else fewer groups, else part of one group
    (warned: each part walks its group's path again); ``None`` when not even one fits."""
    from .sgs import PATH_GROUP

    most = max(1, min(threads, math.ceil(n_real / PATH_GROUP)))
    sizes = [PATH_GROUP * g for g in range(most, 0, -1)] + list(
        range(min(n_real, PATH_GROUP) - 1, 0, -1))
    for size in sizes:
        if need(size) <= max_bytes:
            if size < sizes[0]:
                logger.warning("simulating %d realisations at once instead of %d to stay "
                               "within --max-memory-gb%s", min(n_real, size),
                               min(n_real, sizes[0]),
                               "" if size >= PATH_GROUP else
                               " (each walks its group's random path again: slower)")
            return size
    return None


def plan_batch(grid: Grid, n_samples: int, n_real: int, neighbours: int, threads: int,
               max_bytes: int) -> int:
    """Realisations to simulate at once so that the run fits ``max_bytes``: one path group
    per thread when that fits, else fewer groups, else part of one group (each part walks
    the group's path again: the same floats, more time). Refuses the run when even one
    realisation at a time does not fit.

    Raises
    ------
    GridTooLargeError
        With the bytes needed and the largest grid that fits.
    """

    n = grid.n_nodes
    base, summary = _summary_phase(grid, n_real)
    gib = 1024**3
    if base + summary > max_bytes:
        raise GridTooLargeError(
            f"the summaries of {n_real:,} realisations read one row of {grid.ncols:,} cells of "
            f"every realisation at once: with the grid's coordinates and indices about "
            f"{(base + summary) / gib:.2f} GiB, over --max-memory-gb {max_bytes / gib:.2f}; "
            "run fewer realisations (several runs with different --seed) or a coarser grid")

    def need(size: int) -> int:
        return run_bytes(grid, n_samples, n_real, neighbours, size)

    size = _largest_batch(n_real, threads, need, max_bytes)
    if size is not None:
        return size
    per_node = bytes_per_node(grid, 1, 1)
    fits = max(0, (max_bytes - fixed_bytes(grid, n_samples, neighbours, 1)) // per_node)
    raise GridTooLargeError(
        f"simulating {n:,} nodes holds, even one realisation at a time, the normal score of "
        f"every node (8 bytes) and its coordinates, indices and path: {per_node} bytes per "
        f"node, about {need(1) / gib:.2f} GiB, over --max-memory-gb {max_bytes / gib:.2f}; "
        f"at most about {fits:,} nodes fit (SGS conditions each node on nodes simulated "
        "anywhere before it, so the grid is not streamed): use a cell size of at least "
        f"{grid.cell_size * math.sqrt(n / max(fits, 1)) * 1.01:.4g} (now "
        f"{grid.cell_size:g}) or a smaller extent, or raise --max-memory-gb, or simulate "
        "slab by slab (--path slabs: memory grows with a slab of rows, not the grid)")


def slab_bytes_per_node(grid: Grid, window_nodes: int, groups: int, realisations: int) -> int:
    """Bytes held per window node while ``groups`` path groups of ``realisations`` in all
    run slab by slab."""
    ib = index_bytes(window_nodes)
    return (8 * grid.ndim + 3 * ib + groups * ib + 8 * realisations + TRANSIENT
            + SLAB_TRANSIENT)


def slab_run_bytes(grid: Grid, n_samples: int, n_real: int, neighbours: int, size: int,
                   window_nodes: int) -> int:
    """Peak bytes of a slab-mode ``simulate`` run, ``size`` realisations at a time with
    windows of ``window_nodes`` nodes: the larger of a batch's slabs and the summaries."""
    from ..tiles import stripe_bytes
    from .sgs import PATH_GROUP

    groups = max(1, size // PATH_GROUP)
    real = min(n_real, size)
    nz = len(grid.z_levels) if grid.z_levels else 1
    run = (slab_bytes_per_node(grid, window_nodes, groups, real) * window_nodes
           + fixed_bytes(grid, n_samples, neighbours, groups)
           + real * nz * stripe_bytes(grid))
    _, summary = _summary_phase(grid, n_real)
    return max(run, summary + fixed_bytes(grid, n_samples, neighbours, 0))


def plan_slab_batch(grid: Grid, n_samples: int, n_real: int, neighbours: int, threads: int,
                    max_bytes: int, slab_rows: int, halo: int) -> int:
    """Realisations to simulate at once slab by slab (as :func:`plan_batch`, for windows of
    ``slab_rows + halo`` rows). Refuses the run when even one realisation of one slab does
    not fit.

    Raises
    ------
    GridTooLargeError
        With the bytes needed, the slab and halo rows, and what to change.
    """

    nz = len(grid.z_levels) if grid.z_levels else 1
    row_nodes = grid.ncols * nz

    def window(rows: int) -> int:
        return min(grid.nrows, rows + halo) * row_nodes

    def need(size: int, rows: int = slab_rows) -> int:
        return slab_run_bytes(grid, n_samples, n_real, neighbours, size, window(rows))

    gib = 1024**3
    _, summary = _summary_phase(grid, n_real)
    if summary + fixed_bytes(grid, n_samples, neighbours, 0) > max_bytes:
        raise GridTooLargeError(
            f"the summaries of {n_real:,} realisations read one row of {grid.ncols:,} cells "
            f"of every realisation at once: about {summary / gib:.2f} GiB, over "
            f"--max-memory-gb {max_bytes / gib:.2f}; run fewer realisations (several runs "
            "with different --seed) or a narrower grid")
    size = _largest_batch(n_real, threads, need, max_bytes)
    if size is not None:
        return size
    fits = [r for r in (slab_rows // 2**i for i in range(1, 64)) if r >= 1]
    rows_ok = next((r for r in fits if need(1, r) <= max_bytes), None)
    advice = (f"use --slab-rows {rows_ok} or fewer" if rows_ok is not None else
              f"even one row and the {halo} halo rows do not fit: use a coarser cell size "
              f"(now {grid.cell_size:g}), a narrower extent or a shorter --max-distance")
    raise GridTooLargeError(
        f"one slab of {slab_rows:,} rows and its {halo} halo rows (rows above it that its "
        f"nodes are conditioned on) hold {window(slab_rows):,} nodes of {grid.ncols:,} "
        f"columns{f' x {nz} levels' if nz > 1 else ''}: even one realisation at a time needs "
        f"about {need(1) / gib:.2f} GiB, over --max-memory-gb {max_bytes / gib:.2f}; "
        f"{advice}, or raise --max-memory-gb")
