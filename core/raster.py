"""GeoTIFF output (atomic, described, styled with a QGIS ``.qml`` sidecar) and raster input."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from .errors import EngineIOError, InputDataError
from .grid import Grid
from .input_files import require_readable_file
from .safe_write import remove_quietly as _remove_quietly
from .safe_write import temp_path_for, verify_raster, write_text_verified

logger = logging.getLogger(__name__)

NODATA = -9999.0

#: Colour ramps for the ``.qml`` sidecars, by kind of layer. Values are perceptually ordered
#: stops; "value" maps concentrations, "variance" uncertainty, "probability" 0..1 risks.
RAMPS: dict[str, list[str]] = {
    "value": ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"],  # viridis
    "variance": ["#000004", "#51127c", "#b73779", "#fc8961", "#fcfdbf"],  # magma
    "probability": ["#fff5f0", "#fcbba1", "#fb6a4a", "#cb181d", "#67000d"],  # reds
    "residual": ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"],  # diverging
}


def write_raster(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Grid,
    description: str,
    kind: str = "value",
    nodata: float = NODATA,
    units: str | None = None,
    qml: bool = True,
    band_descriptions: list[str] | None = None,
) -> Path:
    """Write ``data`` as a tiled, DEFLATE-compressed float32 GeoTIFF on ``grid``.

    Parameters
    ----------
    path : path
        Destination ``.tif``. Written under a temporary name and renamed when complete, so a
        failure (or cancel) never leaves a partial file at ``path``.
    data : ndarray, shape (nrows, ncols) or (nz, nrows, ncols)
        Values; NaN becomes ``nodata``, and so does every cell outside ``grid.mask``. A 3D
        grid gets one band per level, described ``z=<value>``.
    grid : Grid
        Geometry and CRS.
    description : str
        Band description (2D) and dataset description.
    kind : {"value", "variance", "probability", "residual"}
        Chooses the colour ramp of the ``.qml`` sidecar.
    nodata : float
        Nodata value written to the file.
    units : str, optional
        Unit string stored as band metadata.
    qml : bool
        Write ``<path>.qml`` (same stem) with a singleband pseudocolor style.
    band_descriptions : list of str, optional
        Any number of bands: ``data`` has shape ``(n_bands, nrows, ncols)`` and band ``b`` is
        described ``band_descriptions[b]`` (realisations of a simulation, say).

    Returns
    -------
    Path
        The final path.
    """
    import rasterio
    from rasterio.crs import CRS

    path = Path(path)
    arr = np.asarray(data, dtype=np.float64)
    want = grid.shape if band_descriptions is None else (
        len(band_descriptions), grid.nrows, grid.ncols)
    if arr.shape != want:
        raise ValueError(f"data shape {arr.shape} does not match {want}")
    bands = arr[None] if arr.ndim == 2 else arr
    if grid.mask is not None:
        bands = np.where(grid.mask[None], bands, np.nan)
    # Values beyond float32's range would become +-inf in the file: nodata instead.
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.where(np.isfinite(bands), bands, nodata).astype(np.float32)
    overflow = ~np.isfinite(out)
    if overflow.any():
        logger.warning("%s: %d value(s) beyond the float32 range are written as nodata",
                       path.name, int(overflow.sum()))
        out[overflow] = np.float32(nodata)
    if kind not in RAMPS:
        raise ValueError(f"unknown raster kind {kind!r}; one of {sorted(RAMPS)}")

    tmp = temp_path_for(path)
    qml_written = False
    profile = {
        "driver": "GTiff",
        "width": grid.ncols,
        "height": grid.nrows,
        "count": out.shape[0],
        "dtype": "float32",
        "crs": CRS.from_user_input(grid.crs) if grid.crs else None,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(out)
            ds.update_tags(DESCRIPTION=description)
            for b in range(out.shape[0]):
                band_desc = (band_descriptions[b] if band_descriptions is not None
                             else f"z={grid.z_levels[b]:g}" if grid.z_levels else description)
                ds.set_band_description(b + 1, band_desc)
                if units:
                    ds.update_tags(b + 1, UNITS=units)
        # A short write (full disk, file-size limit) is only a GDAL error state, not an
        # exception: read the file back before it may replace anything.
        verify_raster(tmp, out)
        if qml:
            finite = out[out != np.float32(nodata)]
            lo, hi = _ramp_limits(finite, kind)
            _write_atomic_text(path.with_suffix(".qml"), qml_pseudocolor(lo, hi, kind))
            qml_written = True
        os.replace(tmp, path)
    except BaseException as exc:
        _remove_quietly(tmp)
        if qml_written:  # no style without its raster
            _remove_quietly(path.with_suffix(".qml"))
        if isinstance(exc, OSError | rasterio.errors.RasterioError):
            raise EngineIOError(f"cannot write raster {str(path)!r}: {exc}") from None
        raise
    return path


def _ramp_limits(finite: np.ndarray, kind: str) -> tuple[float, float]:
    if kind == "probability":
        return 0.0, 1.0
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [2, 98])
    if kind == "residual":
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _write_atomic_text(path: Path, text: str) -> None:
    write_text_verified(path, text, "style file")


def qml_pseudocolor(vmin: float, vmax: float, kind: str = "value", band: int = 1) -> str:
    """A QGIS layer style (``.qml``) rendering ``band`` as singleband pseudocolor."""
    colours = RAMPS[kind]
    n = len(colours)
    items = []
    for i, c in enumerate(colours):
        v = vmin + (vmax - vmin) * i / (n - 1)
        items.append(
            f'          <item alpha="255" value="{v:.10g}" label="{v:.4g}" color="{c}"/>'
        )
    stops = ":".join(
        f"{i / (n - 1):.4g};{_rgba(c)}" for i, c in enumerate(colours[1:-1], start=1)
    )
    ramp_name = escape(kind)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="{band}" opacity="1" alphaBand="-1" classificationMin="{vmin:.10g}" classificationMax="{vmax:.10g}" nodataColor="">
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="{vmin:.10g}" maximumValue="{vmax:.10g}">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="{_rgba(colours[0])}"/>
              <Option type="QString" name="color2" value="{_rgba(colours[-1])}"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="{stops}"/>
            </Option>
            <prop k="color1" v="{_rgba(colours[0])}"/>
            <prop k="color2" v="{_rgba(colours[-1])}"/>
            <prop k="discrete" v="0"/>
            <prop k="rampType" v="gradient"/>
            <prop k="stops" v="{stops}"/>
          </colorramp>
{chr(10).join(items)}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
  <customproperties><Option type="Map"><Option type="QString" name="gcnn_rnn_ramp" value="{ramp_name}"/></Option></customproperties>
</qgis>
"""


def _rgba(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},255"


def read_raster(path: str | os.PathLike, band: int = 1) -> tuple[np.ndarray, Grid, float | None]:
    """Read one band as float64 with nodata as NaN; returns ``(array, grid, nodata)``."""
    import rasterio

    require_readable_file(path, "raster")
    try:
        with rasterio.open(path) as ds:
            arr = ds.read(band).astype(float)
            nodata = ds.nodata
            t = ds.transform
            grid = Grid(t.c, t.f, t.a, ds.width, ds.height, ds.crs.to_wkt() if ds.crs else None)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"raster {str(path)!r} cannot be opened ({exc})") from None
    if nodata is not None:
        arr[arr == nodata] = np.nan
    return arr, grid, nodata


def sample_raster(
    path: str | os.PathLike, coords: np.ndarray, crs: str | None = None, band: int = 1
) -> np.ndarray:
    """Values of ``band`` at ``coords`` (n, 2+) by nearest cell; NaN outside or on nodata.

    Raises
    ------
    InputDataError
        When the raster cannot be opened or its CRS differs from ``crs``.
    """
    import rasterio
    from pyproj import CRS

    require_readable_file(path, "raster")
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"raster {str(path)!r} cannot be opened ({exc})") from None
    with ds:
        if crs is not None and ds.crs is not None:
            if not CRS.from_user_input(crs).equals(CRS.from_wkt(ds.crs.to_wkt()), ignore_axis_order=True):
                raise InputDataError(
                    f"raster {str(path)!r} is in {ds.crs.to_string()!r}, not in the points' CRS "
                    f"{CRS.from_user_input(crs).name!r}; reproject it first"
                )
        from rasterio.windows import Window

        t = ds.transform
        cols = np.floor((coords[:, 0] - t.c) / t.a).astype(np.int64)
        rows = np.floor((coords[:, 1] - t.f) / t.e).astype(np.int64)
        inside = (cols >= 0) & (cols < ds.width) & (rows >= 0) & (rows < ds.height)
        out = np.full(len(coords), np.nan)
        if not inside.any():
            return out
        # only the window the points fall in is read: a range of grid nodes reads its own
        # rows, not the whole raster (bounded memory for grids of any size)
        r, c = rows[inside], cols[inside]
        r0, c0 = int(r.min()), int(c.min())
        window = Window(c0, r0, int(c.max()) - c0 + 1, int(r.max()) - r0 + 1)
        arr = ds.read(band, window=window).astype(float)
        if ds.nodata is not None:
            arr[arr == ds.nodata] = np.nan
        out[inside] = arr[r - r0, c - c0]
    return out
