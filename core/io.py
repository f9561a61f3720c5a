"""Reading point samples from any vector source into a small, validated object.

Every check here produces an :class:`~gcnn_rnn.core.errors.InputDataError` whose message names
the source, the field and the offending value, so the CLI and QGIS can show it verbatim.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import EngineIOError, InputDataError
from .input_files import require_readable_file

logger = logging.getLogger(__name__)

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
X_CANDIDATES = ("x", "easting", "east", "lon", "longitude", "long")
Y_CANDIDATES = ("y", "northing", "north", "lat", "latitude")
MIN_POINTS = 3
#: GeoPackage version of the files the engine writes: GDAL >= 3.7 writes 1.4 by default, which
#: GDAL 3.6 (QGIS 3.22 on Debian 12) reads with a "may only be partially supported" warning
#: on every open; 1.2 has every feature these point layers use and no warning anywhere.
GPKG_OPTIONS = {"VERSION": "1.2"}


@dataclass(frozen=True)
class PointData:
    """Validated point samples.

    Attributes
    ----------
    coords : ndarray, shape (n_points, 2) or (n_points, 3)
        Projected coordinates (x, y[, z]).
    values : ndarray, shape (n_points,)
        The target field, finite floats.
    crs : str
        The coordinate reference system as WKT (``pyproj.CRS.to_wkt()``).
    field : str
        Name of the target field.
    source : str
        Where the points came from (path, and ``|layername=`` when a layer was named).
    dropped : dict
        What was removed or merged and why, e.g. ``{"null": 2, "coincident": 1}``.
    attributes : pandas.DataFrame
        Extra columns asked for with ``extra_fields`` (one row per point, same order).
    epsg : int or None
        The EPSG code of ``crs`` when it has one.
    """

    coords: np.ndarray
    values: np.ndarray
    crs: str
    field: str
    source: str
    dropped: dict = field(default_factory=dict)
    attributes: pd.DataFrame = field(default_factory=pd.DataFrame)
    epsg: int | None = None

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def ndim(self) -> int:
        return int(self.coords.shape[1])

    def subset(self, index: np.ndarray) -> PointData:
        """The same data restricted to ``index`` (boolean mask or integer positions)."""
        idx = np.asarray(index)
        attrs = self.attributes.iloc[idx] if len(self.attributes.columns) else self.attributes
        return PointData(
            coords=self.coords[idx],
            values=self.values[idx],
            crs=self.crs,
            field=self.field,
            source=self.source,
            dropped=dict(self.dropped),
            attributes=attrs.reset_index(drop=True) if len(attrs.columns) else attrs,
            epsg=self.epsg,
        )


def _describe(source: str, layer: str | None) -> str:
    return f"{source}|layername={layer}" if layer else source


def _numeric_columns(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    cols = []
    for name in frame.columns:
        if name in exclude or name == "geometry":
            continue
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
            frame[name]
        ):
            cols.append(str(name))
    return cols


def _parse_crs(value, what: str):
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise InputDataError(f"{what}: cannot understand the CRS {value!r} ({exc})") from None


def suggest_utm(lon: float, lat: float) -> str:
    """EPSG code (as ``EPSG:n``) of the WGS 84 / UTM zone containing ``(lon, lat)``."""
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _find_column(frame: pd.DataFrame, wanted: str | None, candidates, what: str, source: str):
    if wanted:
        if wanted not in frame.columns:
            raise InputDataError(
                f"{source}: no column {wanted!r} for {what}; columns are {list(map(str, frame.columns))}"
            )
        return wanted
    lower = {str(c).lower(): c for c in frame.columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    raise InputDataError(
        f"{source}: cannot tell which column holds {what}; name it with "
        f"--{what}-field (columns are {list(map(str, frame.columns))})"
    )


def _read_csv(path: Path, x_field, y_field, z_field, crs):
    src = str(path)
    sep = "\t" if path.suffix.lower() == ".tsv" else None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if not head.strip():
            raise InputDataError(f"{src}: the file is empty")
    except OSError as exc:
        raise InputDataError(f"{src}: cannot read ({exc})") from None
    try:
        frame = pd.read_csv(path, sep=sep, engine="python")
    except Exception as exc:  # pandas raises many kinds here
        raise InputDataError(f"{src}: cannot read as CSV ({exc})") from None
    xcol = _find_column(frame, x_field, X_CANDIDATES, "x", src)
    ycol = _find_column(frame, y_field, Y_CANDIDATES, "y", src)
    for col in (xcol, ycol):
        if not pd.api.types.is_numeric_dtype(frame[col]):
            raise InputDataError(f"{src}: coordinate column {col!r} is not numeric")
    if crs is None:
        prj = path.with_suffix(".prj")
        if prj.exists():
            crs = prj.read_text().strip()
    xyz = [frame[xcol].to_numpy(float), frame[ycol].to_numpy(float)]
    if z_field:
        zcol = _find_column(frame, z_field, (), "z", src)
        xyz.append(_numeric_z(frame[zcol], zcol, src))
    coords = np.column_stack(xyz)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise InputDataError(
            f"{src}: {int(bad.sum())} row(s) have missing or non-numeric coordinates "
            f"(first at data row {int(np.argmax(bad)) + 1})"
        )
    exclude = (xcol, ycol) + ((z_field,) if z_field else ())
    return frame, coords, crs, exclude


def _numeric_z(column: pd.Series, name: str, source: str) -> np.ndarray:
    """The z field as floats; text in it is an error (as in ``--field``), NULLs stay NaN."""
    converted = pd.to_numeric(column, errors="coerce")
    bad = column[converted.isna() & column.notna()]
    if len(bad):
        raise InputDataError(f"{source}: z field {name!r} is not numeric (e.g. value "
                             f"{bad.iloc[0]!r})")
    return converted.to_numpy(dtype=float, na_value=np.nan)


def read_csv_points(path: Path):
    """A CSV of points (coordinate columns detected as for the samples) as a GeoDataFrame
    without CRS; the caller assigns one."""
    import geopandas as gpd

    frame, coords, _, _ = _read_csv(Path(path), None, None, None, None)
    z = coords[:, 2] if coords.shape[1] > 2 else None
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(coords[:, 0], coords[:, 1], z))


def _read_vector(path: Path, layer, z_field, source):
    import geopandas as gpd
    import pyogrio

    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:
        raise InputDataError(f"{source}: cannot open as a vector source ({exc})") from None
    if layer is not None and layer not in names:
        raise InputDataError(f"{path}: no layer {layer!r}; layers are {names}")
    if layer is None and len(names) > 1:
        layer = names[0]
        logger.warning("%s has %d layers %s; using the first, %r (choose one with --layer)",
                       path, len(names), names, layer)
    try:
        gdf = gpd.read_file(path, layer=layer)
    except Exception as exc:
        raise InputDataError(f"{source}: cannot open as a vector source ({exc})") from None
    if len(gdf) == 0:
        raise InputDataError(f"{source}: the layer is empty (no features)")
    geoms = gdf.geometry
    if geoms.isna().any() or geoms.is_empty.any():
        n_bad = int((geoms.isna() | geoms.is_empty).sum())
        raise InputDataError(f"{source}: {n_bad} feature(s) have no geometry")
    types = set(geoms.geom_type.unique())
    if not types <= {"Point", "MultiPoint"}:
        raise InputDataError(
            f"{source}: expected point geometries, found {sorted(types)}; "
            "convert to points first (e.g. centroids)"
        )
    if "MultiPoint" in types:
        n_parts = geoms.apply(lambda g: len(g.geoms) if g.geom_type == "MultiPoint" else 1)
        if (n_parts > 1).any():
            raise InputDataError(
                f"{source}: {int((n_parts > 1).sum())} multipoint feature(s) have several "
                "parts; split them into single points first"
            )
        geoms = geoms.apply(lambda g: g.geoms[0] if g.geom_type == "MultiPoint" else g)
    xy = [geoms.x.to_numpy(float), geoms.y.to_numpy(float)]
    exclude: tuple[str, ...] = ()
    if z_field:
        zcol = _find_column(gdf, z_field, (), "z", source)
        xy.append(_numeric_z(gdf[zcol], zcol, source))
        exclude = (zcol,)
    elif bool(geoms.has_z.all()):
        z = geoms.z.to_numpy(float)
        if np.all(z == 0):  # 2D points saved with a Z of 0 (common): not a 3D data set
            logger.warning("%s: every point has z = 0; treating the data as 2D (give --z-field "
                           "for 3D)", source)
        else:
            xy.append(z)
    coords = np.column_stack(xy)
    crs = gdf.crs.to_wkt() if gdf.crs is not None else None
    return pd.DataFrame(gdf.drop(columns="geometry")), coords, crs, exclude


def read_points(
    source: str | os.PathLike,
    field: str,
    layer: str | None = None,
    x_field: str | None = None,
    y_field: str | None = None,
    z_field: str | None = None,
    crs: str | None = None,
    reproject: str | None = None,
    extra_fields: tuple[str, ...] | list[str] = (),
    duplicates: str = "average",
    geographic: str = "error",
) -> PointData:
    """Read and validate point samples.

    Parameters
    ----------
    source : path
        Any vector file geopandas reads (GeoPackage, Shapefile, GeoJSON, ...), or a CSV/TXT/TSV
        with coordinate columns.
    field : str
        Numeric field holding the target values.
    layer : str, optional
        Layer name inside a multi-layer source (GeoPackage).
    x_field, y_field : str, optional
        Coordinate columns of a CSV (default: detected from ``x``/``y``, ``easting``/...).
    z_field : str, optional
        A numeric z/depth field making the data 3D. Without it, a Z geometry is 3D too.
    crs : str, optional
        CRS to assume (``EPSG:n``, WKT, PROJ) when the source has none; overrides it for CSV.
    reproject : str, optional
        Reproject the points to this projected CRS (e.g. when the source is geographic).
    extra_fields : sequence of str
        Further columns to carry along in ``PointData.attributes`` (co-variables).
    duplicates : {"average", "error"}
        What to do with samples at identical coordinates.
    geographic : {"error", "allow"}
        Whether a geographic (degree) CRS is refused. Distances in degrees make variograms
        meaningless, so the default refuses and suggests a projected CRS.

    Returns
    -------
    PointData

    Raises
    ------
    InputDataError
        For every problem with the data, naming source, field and value.
    """
    path = Path(source)
    src = _describe(str(source), layer)
    if not path.exists():
        raise InputDataError(f"input file not found: {str(source)!r}")
    require_readable_file(path)
    if duplicates not in ("average", "error"):
        raise InputDataError(f"duplicates must be 'average' or 'error', not {duplicates!r}")

    try:
        if path.suffix.lower() in CSV_SUFFIXES:
            if layer is not None:
                raise InputDataError(f"{src}: a CSV file has no layers (got layer {layer!r})")
            frame, coords, src_crs, exclude = _read_csv(path, x_field, y_field, z_field, crs)
            if crs is not None:
                src_crs = crs
        else:
            frame, coords, src_crs, exclude = _read_vector(path, layer, z_field, src)
            if crs is not None and src_crs is None:
                src_crs = crs
    except OSError as exc:
        raise EngineIOError(f"{src}: cannot read ({exc})") from None

    numeric = _numeric_columns(frame, exclude)
    if field not in frame.columns:
        raise InputDataError(
            f"{src}: no field {field!r}; numeric fields are {numeric or 'none'}"
        )
    column = frame[field]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        converted = pd.to_numeric(column, errors="coerce")
        bad = column[converted.isna() & column.notna()]
        if len(bad):
            raise InputDataError(
                f"{src}: field {field!r} is not numeric (e.g. value {bad.iloc[0]!r}); "
                f"numeric fields are {numeric or 'none'}"
            )
        column = converted
    values = column.to_numpy(dtype=float, na_value=np.nan)

    for name in extra_fields:
        if name not in frame.columns:
            raise InputDataError(f"{src}: no field {name!r}; fields are {list(frame.columns)}")

    if src_crs is None:
        raise InputDataError(
            f"{src}: has no coordinate reference system; give one with --crs EPSG:n"
        )
    crs_obj = _parse_crs(src_crs, src)
    if crs_obj.is_geographic:
        finite = np.isfinite(coords[:, :2]).all(axis=1)
        xs, ys = coords[finite, 0], coords[finite, 1]
        if xs.size and (np.abs(xs).max() > 360 or np.abs(ys).max() > 90):
            raise InputDataError(
                f"{src}: the CRS {crs_obj.name!r} is geographic, but the coordinates are not "
                f"degrees (e.g. x={xs[np.argmax(np.abs(xs))]:g}, y={ys[np.argmax(np.abs(ys))]:g}):"
                " the CRS is wrong; give the one the coordinates are in (e.g. --crs EPSG:n of a "
                "projected system)"
            )
    if reproject:
        target = _parse_crs(reproject, "--reproject")
        if target.is_geographic:
            raise InputDataError(f"--reproject {reproject!r} is geographic; choose a projected CRS")
        from pyproj import Transformer

        tr = Transformer.from_crs(crs_obj, target, always_xy=True)
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        coords = coords.copy()
        coords[:, 0], coords[:, 1] = x, y
        crs_obj = target
    elif crs_obj.is_geographic and geographic == "error":
        finite = np.isfinite(coords[:, :2]).all(axis=1)
        lon, lat = np.nanmean(coords[finite, 0]), np.nanmean(coords[finite, 1])
        raise InputDataError(
            f"{src}: CRS {crs_obj.name!r} is geographic (degrees); distances would be "
            f"meaningless. Reproject to a projected CRS, e.g. --reproject {suggest_utm(lon, lat)} "
            "(the UTM zone of the data centre)"
        )

    dropped: dict[str, int] = {}
    finite = np.isfinite(values) & np.isfinite(coords).all(axis=1)
    n_bad = int((~finite).sum())
    if n_bad:
        dropped["null"] = n_bad
        logger.warning(
            "%s: dropped %d of %d feature(s) with NULL/NaN/inf in field %r or in coordinates",
            src, n_bad, len(values), field,
        )
    coords, values = coords[finite], values[finite]
    attrs = frame.loc[finite, list(extra_fields)].reset_index(drop=True)

    if len(values) == 0:
        raise InputDataError(f"{src}: field {field!r} has no usable (non-NULL, finite) values")

    coords, values, attrs = _merge_coincident(coords, values, attrs, duplicates, src, field, dropped)

    if len(values) < MIN_POINTS:
        raise InputDataError(
            f"{src}: only {len(values)} usable point(s) in field {field!r}; at least "
            f"{MIN_POINTS} are needed"
        )
    if np.ptp(values) == 0:
        raise InputDataError(
            f"{src}: all {len(values)} values of field {field!r} are equal ({float(values[0])!r}); "
            "there is no spatial variation to model"
        )
    # Squared differences (variograms) overflow or underflow beyond these magnitudes.
    big, spread = float(np.max(np.abs(values))), float(np.ptp(values))
    if big > 1e150 or spread < 1e-150:
        raise InputDataError(
            f"{src}: field {field!r} has values of magnitude {big:.3g} (spread {spread:.3g}), "
            "beyond what variograms can square without overflow or underflow; rescale the "
            "field (e.g. change its units) first"
        )
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med)))
    worst = int(np.argmax(np.abs(values - med)))
    if mad > 0 and abs(values[worst] - med) > 1e3 * mad:  # a typo or a unit error, usually
        logger.warning(
            "%s: field %r has an extreme value %.6g (median %.6g): it dominates the variogram "
            "and the kriging variance; check it", src, field, float(values[worst]), med,
        )
    epsg = crs_obj.to_epsg()
    return PointData(
        coords=np.ascontiguousarray(coords, dtype=float),
        values=np.ascontiguousarray(values, dtype=float),
        crs=crs_obj.to_wkt(),
        field=field,
        source=src,
        dropped=dropped,
        attributes=attrs,
        epsg=epsg,
    )


def _merge_coincident(coords, values, attrs, duplicates, src, field, dropped):
    _, first, inverse, counts = np.unique(
        coords, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    if (counts == 1).all():
        return coords, values, attrs
    n_dup = int(len(values) - len(counts))
    where = coords[first[np.argmax(counts)]]
    if duplicates == "error":
        raise InputDataError(
            f"{src}: {n_dup} sample(s) share coordinates with another (e.g. at "
            f"{tuple(float(v) for v in where)}); average them (the default) or remove them"
        )
    order = np.sort(first)  # keep the original order of first occurrences
    rank = np.empty(len(first), dtype=int)
    rank[np.argsort(first)] = np.arange(len(first))
    group = rank[inverse]
    sums = np.bincount(group, weights=values, minlength=len(order))
    cnt = np.bincount(group, minlength=len(order))
    merged = sums / cnt
    logger.warning(
        "%s: %d sample(s) at coincident locations were averaged into %d point(s) "
        "(field %r; e.g. at %s)",
        src, n_dup + int((counts > 1).sum()), int((counts > 1).sum()), field,
        tuple(float(v) for v in where),
    )
    dropped["coincident"] = n_dup
    # one row per merged point: the first sample's attributes, numeric ones averaged
    new_attrs = attrs.iloc[order].reset_index(drop=True)
    for name in attrs.columns:
        if pd.api.types.is_numeric_dtype(attrs[name]):
            s = np.bincount(group, weights=attrs[name].to_numpy(float), minlength=len(order))
            new_attrs[name] = s / cnt
    return coords[order], merged, new_attrs


def write_points(gdf, path: str | os.PathLike, layer: str) -> Path:
    """Write a GeoDataFrame as a GeoPackage layer atomically (temporary name, then rename).

    Raises
    ------
    EngineIOError
        The file cannot be written; nothing is left at ``path`` or beside it.
    """
    from .safe_write import replace_verified, temp_path_for

    path = Path(path)
    tmp = temp_path_for(path).with_suffix(".gpkg")
    try:
        gdf.to_file(tmp, layer=layer, driver="GPKG", **GPKG_OPTIONS)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) or type(exc).__name__ == "DataSourceError":
            raise EngineIOError(f"cannot write {str(path)!r}: {exc}") from None
        raise

    def _readable(p: Path) -> None:  # a short write must not replace a good file
        import pyogrio

        try:
            info = pyogrio.read_info(p, layer=layer)
        except Exception as exc:
            raise EngineIOError(f"cannot write {str(path)!r}: the file cannot be read back "
                                f"({exc}); disk full or a file-size limit?") from None
        if int(info["features"]) != len(gdf):
            raise EngineIOError(f"cannot write {str(path)!r}: {info['features']} of {len(gdf)} "
                                "features read back; disk full or a file-size limit?")

    return replace_verified(tmp, path, _readable, "GeoPackage")
