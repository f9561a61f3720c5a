"""Regular output grids: from an extent and a cell size, or from a template raster.

A grid is north-up with square cells. Its origin is snapped to a multiple of the cell size so
that grids made from different extents with the same cell size line up cell for cell.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .errors import GridTooLargeError, InputDataError

#: Bytes per node at the peak of kriging a whole grid, measured (``krige``, 2 M nodes: 62.7
#: B/node above the baseline): estimate, variance and Lagrange multiplier (24, float64), the
#: back-transformed estimate and variance (16), and the raster writer's masked, float32 and
#: style copies (~22). Coordinates and solver buffers are per chunk, bounded apart.
#: ``tests/core/reliability/test_memory_guard.py`` keeps this within 1.5x of the measured peak.
BYTES_PER_NODE = 64
#: Default ceiling for the output grid's memory (2 GiB), safely below a 24 GiB machine and
#: the memory QGIS itself needs.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Most z levels of a 3D grid (parsed before anything is allocated).
MAX_Z_LEVELS = 10_000


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid, optionally with z levels (one band per level).

    Attributes
    ----------
    xmin, ymax : float
        Upper-left corner of the upper-left cell.
    cell_size : float
        Cell width and height in CRS units.
    ncols, nrows : int
        Number of columns and rows.
    crs : str or None
        CRS as WKT.
    z_levels : tuple of float, optional
        Elevations of the horizontal slices of a 3D grid; ``None`` for 2D.
    """

    xmin: float
    ymax: float
    cell_size: float
    ncols: int
    nrows: int
    crs: str | None = None
    z_levels: tuple[float, ...] | None = None
    #: Cells to fill, shape ``(nrows, ncols)``, True = active; ``None`` = all. A template's
    #: nodata cells stay nodata in every output, as gstat leaves cells outside its grid empty.
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.cell_size > 0 and math.isfinite(self.cell_size)):
            raise InputDataError(f"cell size must be a positive number, not {self.cell_size!r}")
        if self.ncols < 1 or self.nrows < 1:
            raise InputDataError(f"grid must have at least one cell, got {self.ncols} x {self.nrows}")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_extent(
        cls,
        extent: tuple[float, float, float, float],
        cell_size: float,
        crs: str | None = None,
        z_levels: tuple[float, ...] | list[float] | None = None,
        snap: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Grid:
        """Grid covering ``extent = (xmin, ymin, xmax, ymax)`` with square cells.

        With ``snap`` the edges are moved outwards to multiples of ``cell_size``.
        The size is checked against ``max_bytes`` before anything is allocated.
        """
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in extent)
        except (TypeError, ValueError):
            raise InputDataError(f"extent must be xmin,ymin,xmax,ymax, not {extent!r}") from None
        cell_size = float(cell_size)
        if not (cell_size > 0 and math.isfinite(cell_size)):
            raise InputDataError(f"cell size must be a positive number, not {cell_size!r}")
        box = (xmin, ymin, xmax, ymax)
        if not all(math.isfinite(v) for v in box):
            raise InputDataError(f"extent {box!r} must consist of finite numbers")
        if not (xmax > xmin and ymax > ymin):
            raise InputDataError(
                f"extent {box!r} is empty: need xmin < xmax and ymin < ymax"
            )
        # Cell counts are checked as floats first: a tiny cell size would overflow integers.
        cols_f, rows_f = (xmax - xmin) / cell_size + 1, (ymax - ymin) / cell_size + 1
        if not cols_f * rows_f < 1e15:
            check_size(cols_f, rows_f, len(z_levels) if z_levels else 1, cell_size, max_bytes)
        if snap:
            x0 = math.floor(xmin / cell_size) * cell_size
            y1 = math.ceil(ymax / cell_size) * cell_size
        else:
            x0, y1 = xmin, ymax
        ncols = max(1, math.ceil((xmax - x0) / cell_size - 1e-9))
        nrows = max(1, math.ceil((y1 - ymin) / cell_size - 1e-9))
        levels = _levels(z_levels)
        check_size(ncols, nrows, len(levels) if levels else 1, cell_size, max_bytes)
        return cls(x0, y1, cell_size, ncols, nrows, crs, levels)

    @classmethod
    def from_template(
        cls,
        path: str | os.PathLike,
        z_levels: tuple[float, ...] | list[float] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Grid:
        """The grid of an existing raster: its transform, size, CRS and, as ``mask``, the cells
        where its first band has data."""
        import rasterio

        from .input_files import require_readable_file

        require_readable_file(path, "template raster")
        try:
            with rasterio.open(path) as ds:
                t = ds.transform
                crs = ds.crs.to_wkt() if ds.crs else None
                width, height = ds.width, ds.height
                valid = ds.read_masks(1) > 0
                mask = None if valid.all() else valid
        except rasterio.errors.RasterioIOError as exc:
            raise InputDataError(f"template raster {str(path)!r} cannot be opened ({exc})") from None
        if t.b != 0 or t.d != 0 or t.e >= 0:
            raise InputDataError(f"template raster {str(path)!r} is rotated or not north-up")
        if not math.isclose(t.a, -t.e, rel_tol=1e-9):
            raise InputDataError(
                f"template raster {str(path)!r} has non-square cells ({t.a} x {-t.e})"
            )
        levels = _levels(z_levels)
        check_size(width, height, len(levels) if levels else 1, t.a, max_bytes)
        if mask is not None and not mask.any():
            raise InputDataError(f"template raster {str(path)!r} has no cell with data")
        return cls(t.c, t.f, t.a, width, height, crs, levels, mask)

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        """``(nrows, ncols)`` or ``(nz, nrows, ncols)``."""
        if self.z_levels:
            return (len(self.z_levels), self.nrows, self.ncols)
        return (self.nrows, self.ncols)

    @property
    def n_nodes(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_inside(self) -> int:
        """Nodes inside the mask (a template's own nodata cells excluded), all levels."""
        if self.mask is None:
            return self.n_nodes
        return int(np.count_nonzero(self.mask)) * (self.n_nodes // self.mask.size)

    @property
    def ndim(self) -> int:
        return 3 if self.z_levels else 2

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (
            self.xmin,
            self.ymax - self.nrows * self.cell_size,
            self.xmin + self.ncols * self.cell_size,
            self.ymax,
        )

    @property
    def transform(self):
        """The affine transform (rasterio convention)."""
        from affine import Affine

        return Affine(self.cell_size, 0.0, self.xmin, 0.0, -self.cell_size, self.ymax)

    def x_centres(self) -> np.ndarray:
        return self.xmin + (np.arange(self.ncols) + 0.5) * self.cell_size

    def y_centres(self) -> np.ndarray:
        return self.ymax - (np.arange(self.nrows) + 0.5) * self.cell_size

    def node_coords(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Coordinates of nodes ``start:stop`` in raster order (level, row, column).

        Returns an array of shape ``(stop - start, 2)`` or ``(stop - start, 3)``.
        """
        stop = self.n_nodes if stop is None else min(stop, self.n_nodes)
        return self.coords_of(np.arange(start, stop))

    def coords_of(self, flat: np.ndarray) -> np.ndarray:
        """Coordinates of the nodes with raster indices ``flat`` (the same floats as
        :meth:`node_coords`), shape ``(len(flat), 2)`` or ``(len(flat), 3)``."""
        flat = np.asarray(flat, dtype=np.int64)
        per_level = self.nrows * self.ncols
        rc = flat % per_level
        row, col = np.divmod(rc, self.ncols)
        x = self.xmin + (col + 0.5) * self.cell_size
        y = self.ymax - (row + 0.5) * self.cell_size
        if not self.z_levels:
            return np.column_stack([x, y])
        z = np.asarray(self.z_levels, dtype=float)[flat // per_level]
        return np.column_stack([x, y, z])

    def chunks(self, size: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` ranges of at most ``size`` nodes covering the grid."""
        for start in range(0, self.n_nodes, size):
            yield start, min(start + size, self.n_nodes)

    def to_dict(self) -> dict:
        return {
            "xmin": self.xmin,
            "ymax": self.ymax,
            "cell_size": self.cell_size,
            "ncols": self.ncols,
            "nrows": self.nrows,
            "z_levels": list(self.z_levels) if self.z_levels else None,
        }


def _levels(z_levels) -> tuple[float, ...] | None:
    if z_levels is None:
        return None
    levels = tuple(float(z) for z in z_levels)
    if not levels:
        raise InputDataError("z levels are empty; give START:STOP:STEP with START <= STOP")
    return levels


def parse_z_levels(text: str) -> tuple[float, ...]:
    """Parse ``START:STOP:STEP`` (STOP included when it falls on a step)."""
    try:
        start, stop, step = (float(v) for v in text.split(":"))
    except ValueError:
        raise InputDataError(f"z levels must be START:STOP:STEP, not {text!r}") from None
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise InputDataError(f"z levels {text!r}: START, STOP and STEP must be finite numbers")
    if step <= 0 or stop < start:
        raise InputDataError(f"z levels {text!r}: need STEP > 0 and START <= STOP")
    n_f = math.floor((stop - start) / step + 1e-9) + 1
    # Counted before any level is built: a huge range must not fill the memory first.
    if n_f > MAX_Z_LEVELS:
        raise GridTooLargeError(
            f"z levels {text!r} make {n_f:,.0f} levels, more than {MAX_Z_LEVELS:,}; use a larger "
            "STEP or a smaller range"
        )
    return tuple(start + i * step for i in range(int(n_f)))


def parse_extent(text: str) -> tuple[float, float, float, float]:
    """Parse ``xmin,ymin,xmax,ymax`` (a trailing ``[EPSG:n]`` as QGIS writes it is ignored)."""
    core = text.split("[")[0].strip()
    try:
        vals = tuple(float(v) for v in core.replace(" ", "").split(","))
    except ValueError:
        raise InputDataError(f"extent must be xmin,ymin,xmax,ymax, not {text!r}") from None
    if len(vals) != 4:
        raise InputDataError(f"extent must have 4 numbers xmin,ymin,xmax,ymax, not {text!r}")
    return vals  # type: ignore[return-value]


def check_size(ncols: float, nrows: float, nz: int, cell_size: float, max_bytes: int) -> None:
    """Refuse grids whose outputs would not fit ``max_bytes``, saying what would fit."""
    n = ncols * nrows * nz
    need = n * BYTES_PER_NODE
    if not math.isfinite(need):
        raise GridTooLargeError(f"cell size {cell_size:g} is far too small for the extent")
    if need <= max_bytes:
        return
    factor = math.sqrt(need / max_bytes)
    fits = cell_size * factor * 1.01
    raise GridTooLargeError(
        f"the grid would have {n:,.0f} nodes ({ncols:,.0f} columns x {nrows:,.0f} rows"
        + (f" x {nz} levels" if nz > 1 else "")
        + f") and need about {need / 1024**3:.1f} GiB, over the limit of "
        f"{max_bytes / 1024**3:.1f} GiB; use a cell size of at least {fits:.4g} "
        f"(now {cell_size:g}) or a smaller extent"
    )
