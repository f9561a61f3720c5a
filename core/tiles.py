"""Grids of any size in bounded memory: results computed range by range (in-process or on a
Dask cluster) and streamed into tiled, compressed GeoTIFFs.

A *range* is a run ``[start, stop)`` of grid nodes in raster order (level, row, column): the
same chunks the in-process kriging has always used, so a streamed grid holds the very floats a
whole-grid computation would. :class:`RasterStreamWriter` assembles the ranges into stripes of
one row of GeoTIFF blocks and writes a stripe once it is complete, so every compressed block is
written exactly once (a block rewritten after a flush would be appended again and grow the
file) and the writer holds at most the stripes still being filled: with ranges in order, one or
two; out of order (a cluster), those of the ranges in flight.

The writer writes into exactly the path it is given (the command chooses a temporary or staging
name and renames it); on failure it removes what it wrote.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import EngineIOError, GridTooLargeError
from .grid import Grid
from .progress import ProgressFn, StopFn, check_cancel
from .raster import NODATA, RAMPS, _ramp_limits, _write_atomic_text, qml_pseudocolor

logger = logging.getLogger(__name__)

#: GeoTIFF block side; a stripe is this many rows of one level.
BLOCK = 256
#: Largest number of values kept for the ``.qml`` colour limits (2nd/98th percentiles). Up to
#: this many nodes the limits are exact (those of a whole-grid write); beyond, every k-th node
#: in raster order is kept, a deterministic sample.
QML_SAMPLE = 2_000_000
#: GDAL's block cache while streaming: complete blocks are flushed, never held for the grid.
GDAL_CACHE_MB = 64
#: Bytes written per node and output: float32, uncompressed (the worst case of DEFLATE).
DISK_BYTES_PER_NODE = 4
#: A COG is written as a tiled GeoTIFF first, then copied with its overviews (about 1/3 more).
COG_DISK_FACTOR = 2.34


def inside_mask(grid: Grid, start: int, stop: int) -> np.ndarray | None:
    """Which nodes ``start:stop`` (raster order: level, row, column) lie inside the grid's
    mask (the same 2D mask on every level); ``None`` when the grid has no mask (all do)."""
    if grid.mask is None:
        return None
    per_level = grid.nrows * grid.ncols
    return np.asarray(grid.mask, dtype=bool).ravel()[np.arange(start, stop) % per_level]


def flat_ranges(n_nodes: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` runs of at most ``size`` nodes covering ``n_nodes``."""
    size = max(1, int(size))
    return [(s, min(s + size, n_nodes)) for s in range(0, n_nodes, size)]


def check_disk(grid: Grid, n_outputs: int, directory: str | os.PathLike,
               cog: bool = False) -> int:
    """Refuse a grid whose ``n_outputs`` rasters may not fit the free space of ``directory``.

    Returns the bytes needed (uncompressed float32: an upper bound).

    Raises
    ------
    GridTooLargeError
        With the size needed and the space free.
    """
    need = grid.n_nodes * DISK_BYTES_PER_NODE * n_outputs
    if cog:
        need = int(need * COG_DISK_FACTOR)
    where = Path(directory).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        raise GridTooLargeError(
            f"the grid has {grid.n_nodes:,} nodes; its {n_outputs} raster(s) need up to "
            f"{_size(need)} of disk (float32, before compression"
            + (", with the COG copy" if cog else "")
            + f") but {str(where)!r} has {_size(free)} free; free space, choose "
            "another --output-dir, a coarser cell size or a smaller extent"
        )
    return need


def _size(n: float) -> str:
    """``n`` bytes in the largest unit that keeps it >= 1 (KiB ... TiB), 3 digits."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


#: Bytes per cell of a stripe buffer: the float32 values and the flush's masked copy (the
#: QGIS plugin's ``constants.STRIPE_BYTES_PER_CELL`` must equal it).
STRIPE_BYTES_PER_CELL = 5
#: Stripes of one output held at once: ranges in order straddle at most two.
STRIPES_HELD = 2
#: Bytes held per sample while a grid streams: coordinates, values, the k-d tree, the
#: transform and the reader's frame (measured: ``krige`` peak RSS 299 MiB with 2e4 samples and
#: 351 MiB with 4e5, 143 B/sample). The QGIS plugin's ``constants.BYTES_PER_SAMPLE`` must
#: equal it.
BYTES_PER_SAMPLE = 160


def stripe_bytes(grid: Grid) -> int:
    """Memory of one stripe of one output (float32 buffer and its fill mask)."""
    return BLOCK * grid.ncols * STRIPE_BYTES_PER_CELL


def held_bytes(grid: Grid, n_outputs: int, n_samples: int = 0) -> int:
    """What a streamed grid holds at once: the stripes being filled of every output and the
    samples. It does not grow with the number of rows or levels, only with the grid's width."""
    return n_outputs * STRIPES_HELD * stripe_bytes(grid) + n_samples * BYTES_PER_SAMPLE


class RasterStreamWriter:
    """Write a grid's values range by range into a tiled, DEFLATE-compressed float32 GeoTIFF.

    Parameters
    ----------
    path : path
        The file to write (exactly this name; the caller renames it when all is done).
    grid : Grid
        Geometry, CRS, mask (cells outside are nodata) and z levels (one band per level).
    description, kind, nodata, units
        As :func:`~gcnn_rnn.core.raster.write_raster`.
    cog : bool
        Finish as a Cloud-Optimized GeoTIFF (internal overviews, COG layout).
    qml_path : path, optional
        Where to write the ``.qml`` style on :meth:`close` (default: none).
    band_descriptions : list of str, optional
        One per band (level of ``grid``), instead of ``z=<level>``: the bands of a grid whose
        "levels" are realisations, say.
    """

    def __init__(self, path: str | os.PathLike, grid: Grid, description: str,
                 kind: str = "value", nodata: float = NODATA, units: str | None = None,
                 cog: bool = False, qml_path: str | os.PathLike | None = None,
                 band_descriptions: list[str] | None = None) -> None:
        import rasterio
        from rasterio.crs import CRS

        if kind not in RAMPS:
            raise ValueError(f"unknown raster kind {kind!r}; one of {sorted(RAMPS)}")
        self.path = Path(path)
        self.grid, self.description, self.kind = grid, description, kind
        self.nodata, self.units, self.cog = nodata, units, cog
        self.qml_path = Path(qml_path) if qml_path else None
        self.band_descriptions = band_descriptions
        self._per_level = grid.nrows * grid.ncols
        self._stripes: dict[tuple[int, int], list] = {}
        self._digests: dict[tuple[int, int], bytes] = {}  # what each stripe wrote (verify)
        self._stride = max(1, math.ceil(grid.n_nodes / QML_SAMPLE))
        self._sample: list[np.ndarray] = []
        self.vmin, self.vmax = math.inf, -math.inf
        self._tiff = self.path.with_name(self.path.name + ".tiles") if cog else self.path
        profile = {
            "driver": "GTiff", "width": grid.ncols, "height": grid.nrows,
            "count": len(grid.z_levels) if grid.z_levels else 1, "dtype": "float32",
            "crs": CRS.from_user_input(grid.crs) if grid.crs else None, "transform": grid.transform,
            "nodata": nodata, "compress": "deflate", "predictor": 3, "tiled": True,
            "blockxsize": BLOCK, "blockysize": BLOCK, "BIGTIFF": "IF_SAFER",
            # bands are written one after the other: each band's blocks are its own (pixel
            # interleave would rewrite, and append again, every block once per band)
            "interleave": "band",
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._ds = rasterio.open(self._tiff, "w", **profile)
        except (OSError, rasterio.errors.RasterioError) as exc:
            raise EngineIOError(f"cannot write raster {str(self.path)!r}: {exc}") from None

    # ----------------------------------------------------------------- writing
    def write(self, start: int, values: np.ndarray) -> None:
        """Values of nodes ``start : start + len(values)`` (raster order; NaN = nodata)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        stop = start + values.size
        self._observe(start, values)
        pos = start
        while pos < stop:
            level, rc = divmod(pos, self._per_level)
            row = rc // self.grid.ncols
            s = row // BLOCK
            first = level * self._per_level + s * BLOCK * self.grid.ncols
            rows = min(BLOCK, self.grid.nrows - s * BLOCK)
            end = min(stop, first + rows * self.grid.ncols)
            stripe = self._stripes.get((level, s))
            if stripe is None:
                stripe = [np.full(rows * self.grid.ncols, np.nan, dtype=np.float32),
                          0, rows * self.grid.ncols]
                self._stripes[(level, s)] = stripe
            with np.errstate(over="ignore"):  # beyond float32: inf, then nodata (counted)
                stripe[0][pos - first:end - first] = values[pos - start:end - start]
            stripe[1] += end - pos
            if stripe[1] >= stripe[2]:
                self._flush(level, s, stripe[0].reshape(rows, self.grid.ncols))
                del self._stripes[(level, s)]
            pos = end

    def _observe(self, start: int, values: np.ndarray) -> None:
        """Running range and the ``.qml`` sample (cells outside the mask excluded), of the
        float32 values the file holds (as :func:`~.raster.write_raster` styles them)."""
        with np.errstate(over="ignore"):
            stored = values.astype(np.float32)  # beyond float32's range: inf, so nodata
        keep = np.isfinite(stored)
        inside = inside_mask(self.grid, start, start + values.size)
        if inside is not None:
            keep &= inside
        if self._stride > 1:
            keep &= (np.arange(start, start + values.size) % self._stride) == 0
        finite = values[keep]
        if finite.size:
            self._sample.append(stored[keep])
            self.vmin, self.vmax = min(self.vmin, finite.min()), max(self.vmax, finite.max())

    def _flush(self, level: int, s: int, block: np.ndarray) -> None:
        from rasterio.windows import Window

        r0 = s * BLOCK
        if self.grid.mask is not None:
            block = np.where(self.grid.mask[r0:r0 + block.shape[0]], block, np.nan)
        with np.errstate(over="ignore"):  # beyond float32's range: nodata (counted upstream)
            out = np.where(np.isfinite(block), block, self.nodata).astype(np.float32)
        out[~np.isfinite(out)] = np.float32(self.nodata)
        try:
            self._ds.write(out, level + 1, window=Window(0, r0, self.grid.ncols, out.shape[0]))
        except Exception as exc:
            raise EngineIOError(f"cannot write raster {str(self.path)!r}: {exc}") from None
        self._digests[(level, s)] = hashlib.blake2b(out.tobytes(), digest_size=16).digest()

    def verify(self) -> None:
        """Reopen the finished file and compare every stripe with what was written (a short
        write, e.g. a full disk or a file-size limit, must not pass as a good raster)."""
        import rasterio
        from rasterio.windows import Window

        try:
            with rasterio.Env(CPL_DEBUG=False), rasterio.open(self.path) as ds:
                for (level, s), digest in self._digests.items():
                    r0 = s * BLOCK
                    rows = min(BLOCK, self.grid.nrows - r0)
                    got = ds.read(level + 1, window=Window(0, r0, self.grid.ncols, rows))
                    if hashlib.blake2b(got.astype(np.float32).tobytes(),
                                       digest_size=16).digest() != digest:
                        raise EngineIOError("the data read back differ")
        except (EngineIOError, rasterio.errors.RasterioError, OSError) as exc:
            self.abort()
            raise EngineIOError(
                f"the raster written to {str(self.path)!r} is damaged or cannot be read back "
                f"({exc}); disk full or a file-size limit?"
            ) from None

    @property
    def pending_bytes(self) -> int:
        return sum(s[0].nbytes for s in self._stripes.values())

    # ----------------------------------------------------------------- finishing
    def close(self) -> dict:
        """Finish the file (tags, band descriptions, COG copy, ``.qml``); returns
        ``{"range": [min, max] | None}``. Raises when some nodes were never written."""
        import rasterio

        try:
            if self._stripes:
                raise EngineIOError(f"{str(self.path)!r}: {len(self._stripes)} stripe(s) of the "
                                    "grid were never computed")
            ds = self._ds
            ds.update_tags(DESCRIPTION=self.description)
            for b in range(ds.count):
                z = self.grid.z_levels
                ds.set_band_description(
                    b + 1, self.band_descriptions[b] if self.band_descriptions
                    else f"z={z[b]:g}" if z else self.description)
                if self.units:
                    ds.update_tags(b + 1, UNITS=self.units)
            ds.close()
            if self.cog:
                from rasterio.shutil import copy

                copy(self._tiff, self.path, driver="COG", compress="DEFLATE", predictor="YES",
                     blocksize=512, BIGTIFF="IF_SAFER")
                self._tiff.unlink()
            if self.qml_path is not None:
                finite = np.concatenate(self._sample) if self._sample else np.empty(0)
                lo, hi = _ramp_limits(finite, self.kind)
                _write_atomic_text(self.qml_path, qml_pseudocolor(lo, hi, self.kind))
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError | rasterio.errors.RasterioError):
                raise EngineIOError(f"cannot write raster {str(self.path)!r}: {exc}") from None
            raise
        self._sample.clear()
        return {"range": [float(self.vmin), float(self.vmax)] if self.vmax >= self.vmin
                else None}

    def abort(self) -> None:
        """Close and remove everything written (safe to call twice)."""
        try:
            if not self._ds.closed:
                self._ds.close()
        except Exception:  # noqa: BLE001 - the file is removed anyway
            pass
        for p in {self._tiff, self.path}:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        self._stripes.clear()
        self._sample.clear()


def streaming_env():
    """The GDAL settings to stream under (a small block cache: complete blocks are flushed,
    never held for the whole grid); use as ``with streaming_env(): ...``."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024**2)


Tile = tuple[int, int]
#: ``fn(start, stop) -> result`` computed for one range (picklable for a cluster).
TileFn = Callable[[int, int], object]


def run_ranges(fn: TileFn, ranges: Iterable[Tile], on_result: Callable[[Tile, object], None],
               progress: ProgressFn | None = None, should_stop: StopFn | None = None,
               client=None, text: str = "kriging") -> None:
    """Compute ``fn`` on every range and hand each result to ``on_result`` as it is done.

    In-process the ranges run in order; with a Dask ``client`` they run on its workers and
    arrive in any order (:func:`gcnn_rnn.core.cluster.map_unordered`). Cancellation is checked
    between ranges (and cancels the cluster's tasks).
    """
    ranges = list(ranges)
    total = max(1, sum(b - a for a, b in ranges))
    done = 0
    if client is None and hasattr(fn, "prepare"):
        results: Iterator = _pipelined(fn, ranges, should_stop)
    elif client is None:
        results = ((r, fn(*r)) for r in ranges)
    else:
        from .cluster import map_unordered

        results = map_unordered(client, fn, ranges, should_stop)
    for r, res in _checked(results, should_stop):
        on_result(r, res)
        done += r[1] - r[0]
        if progress is not None:
            progress(done / total, text)
    check_cancel(should_stop)


def _pipelined(fn, ranges: list[Tile], should_stop: StopFn | None) -> Iterator:
    """``(range, fn.finish(*range, fn.prepare(*range)))`` in order, the next range's
    ``prepare`` running on a second thread meanwhile (with this thread's numba thread count,
    which is per thread). On a cancel or failure the pending ``prepare`` is not waited for."""
    import numba

    threads = numba.get_num_threads()

    def prepare(r: Tile):
        numba.set_num_threads(threads)
        return fn.prepare(*r)

    pool = ThreadPoolExecutor(1, thread_name_prefix="prepare")
    try:
        pending = pool.submit(prepare, ranges[0]) if ranges else None
        for i, r in enumerate(ranges):
            while True:  # a cancel must not wait for the whole range's features
                try:
                    prepared = pending.result(timeout=0.1)
                    break
                except FutureTimeout:
                    check_cancel(should_stop)
            check_cancel(should_stop)
            pending = pool.submit(prepare, ranges[i + 1]) if i + 1 < len(ranges) else None
            yield r, fn.finish(*r, prepared)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _checked(results: Iterator, should_stop: StopFn | None) -> Iterator:
    while True:
        check_cancel(should_stop)
        try:
            yield next(results)
        except StopIteration:
            return


@contextmanager
def all_or_nothing(paths: dict[str, Path], writers: dict[str, RasterStreamWriter]):
    """Temporary names for ``paths`` (yielded): renamed onto them when the block ends, and on
    any failure or cancel every writer in ``writers`` (filled in the block) aborted and every
    temporary file removed."""
    from .raster import temp_path_for

    tmp = {k: temp_path_for(p) for k, p in paths.items()}
    try:
        yield tmp
        for name, path in paths.items():
            os.replace(tmp[name], path)
    except BaseException:
        for w in writers.values():
            w.abort()
        for p in tmp.values():
            Path(p).unlink(missing_ok=True)
        raise


def stream_to_rasters(job: TileFn, ranges: Iterable[Tile], grid: Grid,
                      layers: dict[str, tuple[Path, str, str]],
                      convert: Callable[[Tile, object], dict[str, np.ndarray]],
                      cog: bool = False, client=None, progress: ProgressFn | None = None,
                      should_stop: StopFn | None = None,
                      text: str = "kriging") -> dict[str, list[float] | None]:
    """Compute ``job`` on ``ranges`` and stream ``convert(range, result)`` (layer name →
    values) into one GeoTIFF per layer (``layers``: name → (path, kind, description)).

    All or nothing: every file is written under a temporary name and renamed (with its
    ``.qml``) only when all are complete. Returns each layer's value range.
    """
    writers: dict[str, RasterStreamWriter] = {}

    def on_result(r, res) -> None:
        for name, values in convert(r, res).items():
            writers[name].write(r[0], values)

    paths = {k: p for k, (p, _, _) in layers.items()}
    with all_or_nothing(paths, writers) as tmp, streaming_env():
        for name, (path, kind, desc) in layers.items():
            writers[name] = RasterStreamWriter(tmp[name], grid, desc, kind, cog=cog,
                                               qml_path=path.with_suffix(".qml"))
        run_ranges(job, ranges, on_result, progress, should_stop, client, text)
        value_ranges = {k: w.close()["range"] for k, w in writers.items()}
        for w in writers.values():
            w.verify()
    return value_ranges
