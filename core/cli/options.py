"""Option groups shared by several subcommands (point input, output grid/targets)."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import InputDataError
from ..grid import Grid, parse_extent, parse_z_levels
from ..io import PointData, read_points

logger = logging.getLogger(__name__)


def add_point_input(parser: argparse.ArgumentParser, field_required: bool = True) -> None:
    """``--input F --field Z [--layer L] [--x-field X --y-field Y] [--z-field Z] [--crs EPSG:n]``."""
    g = parser.add_argument_group("point input")
    g.add_argument("--input", required=True, metavar="F",
                   help="point samples: GeoPackage, Shapefile, GeoJSON, ... or CSV")
    g.add_argument("--field", required=field_required, metavar="Z", help="numeric target field")
    g.add_argument("--layer", metavar="L", help="layer name inside the source (GeoPackage)")
    g.add_argument("--x-field", metavar="X", help="CSV column with x (default: detected)")
    g.add_argument("--y-field", metavar="Y", help="CSV column with y (default: detected)")
    g.add_argument("--z-field", metavar="Z", help="numeric z/depth field: makes the data 3D")
    g.add_argument("--crs", metavar="EPSG:n", help="CRS when the source has none (CSV)")
    g.add_argument("--reproject", metavar="EPSG:n",
                   help="reproject the points to this projected CRS first")
    g.add_argument("--duplicates", choices=("average", "error"), default="average",
                   help="samples at identical coordinates: average them (default) or fail")


def points_from_args(args: argparse.Namespace, extra_fields=()) -> PointData:
    return read_points(
        args.input,
        args.field,
        layer=args.layer,
        x_field=args.x_field,
        y_field=args.y_field,
        z_field=args.z_field,
        crs=args.crs,
        reproject=args.reproject,
        extra_fields=tuple(extra_fields),
        duplicates=args.duplicates,
    )


def add_grid_target(parser: argparse.ArgumentParser, points: bool = True) -> None:
    """``(--cell-size S [--extent ...] [--z-levels A:B:S] | --template R.tif | --points P)``."""
    g = parser.add_argument_group("output grid or target points")
    g.add_argument("--cell-size", type=float, metavar="S", help="cell size in CRS units")
    g.add_argument("--extent", metavar="xmin,ymin,xmax,ymax",
                   help="grid extent (default: the samples' bounding box)")
    g.add_argument("--z-levels", metavar="START:STOP:STEP", help="3D output: one band per level")
    g.add_argument("--template", metavar="R.tif",
                   help="take the grid from this raster; its nodata cells stay nodata")
    if points:
        g.add_argument("--points", metavar="P.gpkg", help="predict at these points instead")
        g.add_argument("--points-layer", metavar="L", help="layer of --points")
    g.add_argument("--max-memory-gb", type=float, default=2.0,
                   help="refuse grids whose outputs need more memory (default 2)")
    g.add_argument("--max-nodes", type=float, default=DEFAULT_MAX_NODES, metavar="N",
                   help="refuse grids of more nodes (default 2e9): a streamed grid needs "
                        "little memory but hours of work and gigabytes of disk")


#: Default of ``--max-nodes``: 2e9 nodes take roughly three hours and 15 GiB of disk per
#: raster. Above a 1e9-cell block model (issue 13: refused only for disk), below the
#: mistyped cell size that asks for billions of nodes (issue 11, rows 139/140).
DEFAULT_MAX_NODES = 2_000_000_000
#: Above this many nodes the run says how long it will roughly take before it starts.
LONG_GRID_NODES = 200_000_000
#: Rough kriging speed (nodes per second, 32 neighbours, this project's benchmarks) used only
#: to say how long a refused grid would take.
NOMINAL_NODES_PER_SECOND = 200_000


def check_node_count(grid: Grid, max_nodes: float, cell_size: float | None) -> None:
    """Refuse a grid of more than ``max_nodes`` nodes, with its size, disk, time and flags."""
    from ..errors import GridTooLargeError
    from ..tiles import DISK_BYTES_PER_NODE

    if not (math.isfinite(max_nodes) and max_nodes >= 1 and max_nodes == int(max_nodes)):
        raise InputDataError(f"--max-nodes must be a positive whole number, not {max_nodes!r}")
    n = grid.n_nodes
    seconds = n / NOMINAL_NODES_PER_SECOND
    gib = n * DISK_BYTES_PER_NODE / 1024**3
    when = (f"{seconds / 3600:.3g} hours" if seconds >= 3600 else
            f"{seconds / 60:.3g} minutes")
    if n <= max_nodes:
        if n > LONG_GRID_NODES:
            logger.warning("the grid has %s nodes: about %.3g GiB per raster and roughly %s "
                           "of kriging at %s nodes/s", f"{n:,}", gib, when,
                           f"{NOMINAL_NODES_PER_SECOND:,}")
        return
    size = (f"{grid.ncols:,} columns x {grid.nrows:,} rows"
            + (f" x {len(grid.z_levels)} levels" if grid.z_levels else ""))
    fix = "a smaller extent"
    if cell_size is not None:
        fix = (f"a cell size of at least {cell_size * math.sqrt(n / max_nodes):.4g} "
               f"(now --cell-size {cell_size:g}) or a smaller extent")
    raise GridTooLargeError(
        f"the grid would have {n:,} nodes ({size}), over --max-nodes {int(max_nodes):,}: "
        f"about {gib:,.3g} GiB per raster and roughly {when} of "
        f"kriging at {NOMINAL_NODES_PER_SECOND:,} nodes/s; use {fix}, or raise --max-nodes "
        "if you mean it"
    )


def grid_from_args(args: argparse.Namespace, crs: str | None, bounds,
                   streamed: bool = False, outputs: int = 2,
                   n_samples: int = 0) -> Grid | None:
    """The output grid the flags describe, or ``None`` when ``--points`` was given.

    ``bounds`` is the default extent ``(xmin, ymin, xmax, ymax)`` (the samples' box).
    ``streamed``: the command writes the grid range by range (:mod:`gcnn_rnn.core.tiles`), so
    ``--max-memory-gb`` bounds what is held at once (:func:`~gcnn_rnn.core.tiles.held_bytes`
    of its ``outputs`` rasters and ``n_samples`` samples), not the whole grid.
    """
    chosen = [args.cell_size is not None, bool(args.template),
              bool(getattr(args, "points", None))]
    if sum(chosen) != 1:
        raise InputDataError(
            "give exactly one of --cell-size, --template" + (" or --points" if hasattr(args, "points") else "")
        )
    if getattr(args, "points", None):
        return None
    levels = parse_z_levels(args.z_levels) if args.z_levels else None
    max_bytes = memory_limit_bytes(args)
    limit = max_bytes
    if streamed:  # the whole grid is never held: only a stripe of it (checked below)
        max_bytes = sys.maxsize
    bounds = None if bounds is None else tuple(float(b) for b in bounds)
    if args.template:
        if not Path(args.template).exists():
            raise InputDataError(f"template raster not found: {args.template!r}")
        grid = Grid.from_template(args.template, z_levels=levels, max_bytes=max_bytes)
        grid = _template_in_crs(grid, crs, args.template)
    else:
        if not args.extent and bounds is None:
            raise InputDataError("give the grid's extent with --extent xmin,ymin,xmax,ymax")
        if not args.extent and not (bounds[2] > bounds[0] and bounds[3] > bounds[1]):
            raise InputDataError(
                "the samples are collinear (they lie on one line, so their bounding box "
                f"{bounds} has no area); give the grid's extent with --extent "
                "xmin,ymin,xmax,ymax"
            )
        extent = parse_extent(args.extent) if args.extent else bounds
        grid = Grid.from_extent(extent, args.cell_size, crs=crs, z_levels=levels,
                                max_bytes=max_bytes)
    check_node_count(grid, getattr(args, "max_nodes", DEFAULT_MAX_NODES),
                     None if args.template else args.cell_size)
    if bounds is not None:
        warn_if_far(grid, bounds)
    return _check_stripe(grid, limit, outputs, n_samples) if streamed else grid


def memory_limit_bytes(args: argparse.Namespace) -> int:
    """``--max-memory-gb`` in bytes (a clear error for a negative, zero or NaN value)."""
    gb = args.max_memory_gb
    if not (math.isfinite(gb) and gb > 0):
        raise InputDataError(f"--max-memory-gb must be a positive number, not {gb!r}")
    return int(min(gb, 1e9) * 1024**3)


def warn_if_far(grid: Grid, bounds) -> None:
    """Warn when the grid lies far outside the samples' box: the map would be extrapolation
    (the kriging mean), which a user rarely intends."""
    xmin, ymin, xmax, ymax = grid.extent
    sx0, sy0, sx1, sy1 = bounds
    size = max(math.hypot(sx1 - sx0, sy1 - sy0), grid.cell_size)
    dx = max(sx0 - xmax, xmin - sx1, 0.0)
    dy = max(sy0 - ymax, ymin - sy1, 0.0)
    gap = math.hypot(dx, dy)
    if gap > size:
        logger.warning(
            "the output grid lies %.4g CRS units from the nearest sample (the samples span "
            "%.4g): every value there is extrapolation (close to the mean); check the extent, "
            "template and CRS", gap, size,
        )


def _template_in_crs(grid: Grid, crs: str | None, path: str) -> Grid:
    """Refuse a template in another CRS: its cells would be read as the points' coordinates."""
    if crs is None:
        return grid
    if grid.crs is None:
        logger.warning("template raster %r has no CRS; assuming the points' CRS", path)
        return replace(grid, crs=crs)
    from pyproj import CRS

    theirs, ours = CRS.from_user_input(grid.crs), CRS.from_user_input(crs)
    if not theirs.equals(ours, ignore_axis_order=True):
        raise InputDataError(
            f"template raster {path!r} is in CRS {theirs.name!r} but the points are in "
            f"{ours.name!r}; reproject the template (or the points) so both share one CRS"
        )
    return grid


def parse_csv_list(text: str | None) -> list[str]:
    """``"a,b, c"`` → ``["a", "b", "c"]``; ``None``/empty → ``[]``."""
    if not text:
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def _check_stripe(grid: Grid, max_bytes: int, outputs: int, n_samples: int) -> Grid:
    """A streamed grid holds stripes of 256 rows per output and the samples at once: refuse
    only that (the disk space is checked by :func:`~gcnn_rnn.core.tiles.check_disk`)."""
    from ..errors import GridTooLargeError
    from ..tiles import held_bytes

    need = held_bytes(grid, outputs, n_samples)
    if need > max_bytes:
        raise GridTooLargeError(
            f"the grid has {grid.ncols:,} columns: the stripes of 256 rows of its {outputs} "
            f"outputs and the {n_samples:,} samples held at once need "
            f"{need / 1024**3:.2f} GiB, over --max-memory-gb {max_bytes / 1024**3:.2f}; use a "
            "coarser cell size or a narrower extent"
        )
    return grid


def target_points_from_args(args: argparse.Namespace, pts: PointData):
    """``(GeoDataFrame, coords)`` of ``--points`` in the samples' CRS, with as many coordinates
    as the samples have (a 3D run needs target points with z)."""
    from ..model.outputs import read_target_points

    gdf, targets = read_target_points(args.points, args.points_layer, pts.crs)
    if targets.shape[1] < pts.ndim:
        raise InputDataError(f"the samples are 3D but the target points {args.points!r} "
                             "have no z coordinate")
    return gdf, targets[:, : pts.ndim]
