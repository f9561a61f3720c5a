"""Input checks shared by the algorithms (run in ``checkParameterValues``, before the engine).

Each refuses, with a ``QgsProcessingException`` naming the value, what the engine would refuse
later (after minutes of work, possibly): a primary-key field, a 3D grid for 2D samples, a
template raster in another CRS, malformed Z levels / folds, a file that is not a variogram model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
)

#: Field names that are a feature id, never a measured value (GeoPackage's default key).
ID_FIELD_NAMES = ("fid",)


def key_field_indexes(layer, fields) -> set[int]:
    """Indexes in ``fields`` of the provider's primary key and of fields named ``fid``."""
    out = {i for i, f in enumerate(fields) if f.name().lower() in ID_FIELD_NAMES}
    provider = layer.dataProvider() if layer is not None else None
    if provider is not None:
        provider_fields = provider.fields()
        for idx in provider.pkAttributeIndexes() or []:
            if 0 <= idx < provider_fields.count():
                mine = fields.lookupField(provider_fields.at(idx).name())
                if mine >= 0:
                    out.add(mine)
    return out


#: Numeric fields that hold coordinates or identifiers, not a measured value (skipped when
#: choosing a default value field; still selectable).
NOT_A_VALUE_NAMES = ("x", "y", "z", "lon", "lat", "long", "longitude", "latitude", "easting",
                     "northing", "east", "north", "id", "objectid", "ogc_fid", "gid")


def preferred_value_field(layer) -> str:
    """The default value field of a point layer: its first numeric field that is neither the
    feature id / primary key nor a coordinate or identifier column (``fid``, ``x``, ``lat``...);
    else its first numeric non-key field; else ``""``."""
    if layer is None:
        return ""
    fields = layer.fields()
    return preferred_field_of(fields, key_field_indexes(layer, fields))


def preferred_field_of(fields, keys: set[int]) -> str:
    """:func:`preferred_value_field` of ``fields`` whose key fields are ``keys``."""
    numeric = [f.name() for i, f in enumerate(fields) if f.isNumeric() and i not in keys]
    for name in numeric:
        if name.lower() not in NOT_A_VALUE_NAMES:
            return name
    return numeric[0] if numeric else ""


def numeric_fields(fields, exclude=()) -> str:
    """The numeric field names a user may choose (key fields in ``exclude`` left out)."""
    names = [f.name() for i, f in enumerate(fields) if f.isNumeric() and i not in exclude]
    return ", ".join(names) if names else "(none)"


def check_value_field(fields, value: str, keys: set[int]) -> None:
    """``value`` must be a numeric field that is not the layer's key."""
    idx = fields.lookupField(value)
    if idx < 0:
        raise QgsProcessingException(f"the point layer has no field {value!r}; numeric "
                                     f"fields: {numeric_fields(fields, keys)}")
    if idx in keys:
        raise QgsProcessingException(
            f"field {value!r} is the layer's feature id (primary key), not a measured value; "
            f"numeric fields: {numeric_fields(fields, keys)}")
    if not fields.at(idx).isNumeric():
        raise QgsProcessingException(
            f"field {value!r} is not numeric ({fields.at(idx).typeName()}); numeric "
            f"fields: {numeric_fields(fields, keys)}")


def check_z_levels_need_3d(levels, has_z_field: bool, has_z_geometry: bool) -> None:
    """A 3D grid (Z levels) needs 3D samples: a Z field or points with Z."""
    if levels and not has_z_field and not has_z_geometry:
        raise QgsProcessingException(
            "Z levels were given but the samples are 2D (no Z / depth field and the points "
            "have no Z): choose the Z / depth field, use 3D points, or leave Z levels empty")


def same_crs(a: QgsCoordinateReferenceSystem, b: QgsCoordinateReferenceSystem,
             probe_points=(), tolerance: float = 0.0) -> bool:
    """Whether ``a`` and ``b`` give points the same coordinates.

    Equal definitions or authority ids are the same; otherwise ``probe_points`` (in ``a``)
    are transformed to ``b`` and must stay within ``tolerance``.
    """
    if a == b or (a.authid() and a.authid() == b.authid()):
        return True
    if not probe_points:
        return False
    try:
        tr = QgsCoordinateTransform(a, b, QgsProject.instance())
        for x, y in probe_points:
            p = tr.transform(QgsPointXY(x, y))
            if abs(p.x() - x) > tolerance or abs(p.y() - y) > tolerance:
                return False
    except Exception:  # QgsCsException: not even transformable
        return False
    return True


def check_template_crs(template, crs: QgsCoordinateReferenceSystem) -> None:
    """Refuse a template raster whose CRS differs from the samples' (``crs``).

    Its cells would otherwise be read as coordinates in the samples' CRS (degrees taken for
    metres, say): a silently wrong map.
    """
    if template is None or crs is None or not crs.isValid():
        return
    theirs = template.crs()
    if not theirs.isValid():
        return  # no CRS on the raster: the engine assumes the samples' CRS and says so
    ext = template.extent()
    corners = [(ext.xMinimum(), ext.yMinimum()), (ext.xMaximum(), ext.yMaximum()),
               (ext.center().x(), ext.center().y())]
    tolerance = 1e-6 * max(abs(template.rasterUnitsPerPixelX()), 1e-9)
    if same_crs(theirs, crs, corners, tolerance):
        return
    raise QgsProcessingException(
        f"the template raster {template.name()!r} is in CRS "
        f"{theirs.authid() or theirs.description()!r} but the points are in CRS "
        f"{crs.authid() or crs.description()!r}; reproject the template (Raster ▸ Projections "
        "▸ Warp) or the points so both share one CRS")


def check_degrees(source) -> None:
    """A layer said to be in degrees must have coordinates that can be degrees.

    A layer without a CRS is given EPSG:4326 by QGIS; its metre coordinates (181000, 333000)
    would then be read as degrees and "reprojected" to nonsense.
    """
    ext = source.sourceExtent()
    if ext.isEmpty() and ext.width() == 0 and ext.height() == 0 and ext.xMinimum() == 0:
        return
    if (-180.0 <= ext.xMinimum() and ext.xMaximum() <= 360.0 and -90.0 <= ext.yMinimum()
            and ext.yMaximum() <= 90.0):
        return
    crs = source.sourceCrs()
    raise QgsProcessingException(
        f"the point layer's CRS is {crs.authid() or crs.description()} (degrees), but its "
        f"coordinates ({ext.xMinimum():.6g} to {ext.xMaximum():.6g}, {ext.yMinimum():.6g} to "
        f"{ext.yMaximum():.6g}) cannot be degrees: the CRS is probably wrong or was missing "
        "(QGIS assumes EPSG:4326 for a layer without one). Set the layer's real projected CRS "
        "(Layer Properties ▸ Source ▸ Assigned CRS) and run again")


def utm_crs(source, context) -> QgsCoordinateReferenceSystem:
    """The WGS 84 / UTM CRS of the layer's centre (invalid when it cannot be computed)."""
    text = utm_suggestion(source, context)
    return QgsCoordinateReferenceSystem(text) if text.startswith("EPSG:") else \
        QgsCoordinateReferenceSystem()


def utm_suggestion(source, context) -> str:
    """``EPSG:326zz``/``EPSG:327zz`` for the UTM zone of the layer's centre."""
    try:
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        tr = QgsCoordinateTransform(source.sourceCrs(), wgs84, context.transformContext()
                                    if context is not None else QgsProject.instance())
        centre = tr.transform(QgsPointXY(source.sourceExtent().center()))
        zone = int(math.floor((centre.x() + 180.0) / 6.0)) % 60 + 1
        return f"EPSG:{32600 + zone if centre.y() >= 0 else 32700 + zone}"
    except Exception:
        return "the UTM zone of your data (EPSG:326xx north, EPSG:327xx south)"


def default_cell_size(width: float, height: float, n_samples: int) -> float:
    """A quarter of the mean sample spacing ``sqrt(area / n)``, rounded down to 1, 2, 2.5 or 5
    times a power of ten: about 16 cells per sample, fine enough to show the kriged surface and
    never finer than the data support (Meuse, 155 samples over 2.8 x 3.9 km: 50 m)."""
    area = max(width, 0.0) * max(height, 0.0)
    if area <= 0:
        area = max(width, height, 1e-9) ** 2
    raw = math.sqrt(area / max(n_samples, 1)) / 4.0
    power = 10.0 ** math.floor(math.log10(raw))
    for step in (5.0, 2.5, 2.0, 1.0):
        if raw >= step * power:
            return step * power
    return power


def parse_z_levels(text: str | None) -> list[float] | None:
    """``start:stop:step`` (or with commas) → levels; ``None`` when empty."""
    if not text or not text.strip():
        return None
    parts = text.strip().replace(",", ":").split(":")
    try:
        start, stop, step = (float(v) for v in parts)
    except ValueError:
        raise QgsProcessingException(
            f"Z levels must be start:stop:step, e.g. 0:10:2, not {text!r}") from None
    if step <= 0 or stop < start:
        raise QgsProcessingException(f"Z levels {text!r}: need step > 0 and start <= stop")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    if n > 10000:
        raise QgsProcessingException(f"Z levels {text!r} give {n} levels; at most 10000")
    return [start + i * step for i in range(n)]


def check_folds(text: str | None) -> None:
    if not text:
        return
    t = text.strip().lower()
    if t == "loo" or t == "spatial":
        return
    if t.startswith("spatial:"):
        try:
            size = float(t.split(":", 1)[1])
        except ValueError:
            size = -1.0
        if size > 0:
            return
        raise QgsProcessingException(f"folds {text!r}: the block size after 'spatial:' must be "
                                     "a positive distance")
    if t.isdigit() and int(t) >= 2:
        return
    raise QgsProcessingException(f"folds must be 'loo', a number K >= 2 or 'spatial:SIZE', "
                                 f"not {text!r}")


def check_variogram_file(path: str | None) -> None:
    """A variogram model file must exist and hold a model (``"model"`` or ``"structures"``)."""
    if not path:
        return
    p = Path(path)
    if not p.is_file():
        raise QgsProcessingException(f"variogram model file not found: {path!r}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QgsProcessingException(f"variogram model file {path!r} is not valid JSON "
                                     f"({exc})") from None
    if not isinstance(data, dict) or not (
        isinstance(data.get("model"), (dict, str)) or "structures" in data
    ):
        raise QgsProcessingException(f"{path!r} is not a variogram model file (no 'model')")


#: Coordinate drift terms the engine knows, and the lower-order terms each needs.
DRIFT_TERMS = {"x": (), "y": (), "z": (), "x2": ("x",), "y2": ("y",), "z2": ("z",),
               "xy": ("x", "y"), "xz": ("x", "z"), "yz": ("y", "z")}


def check_drift(text: str) -> list[str]:
    """The terms of a coordinate drift such as ``x,y`` (empty: none), or refuse them."""
    terms = [t.strip().lower() for t in (text or "").split(",") if t.strip()]
    for t in terms:
        if t not in DRIFT_TERMS:
            raise QgsProcessingException(
                f"unknown drift term {t!r}; use a comma list of {', '.join(DRIFT_TERMS)}")
        missing = [m for m in DRIFT_TERMS[t] if m not in terms]
        if missing:
            raise QgsProcessingException(
                f"drift term {t!r} needs the lower-order term(s) {', '.join(missing)} too")
    return terms


def check_block(text: str) -> str:
    """A block size ``DX,DY[,DZ]`` or ``cell`` (empty: point support), normalised, or refuse."""
    text = (text or "").strip().lower().replace(" ", "")
    if text in ("", "cell"):
        return text
    try:
        sizes = [float(v) for v in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) not in (2, 3) or not all(math.isfinite(v) and v >= 0 for v in sizes) \
            or not any(sizes):
        raise QgsProcessingException(
            f"block {text!r} must be 'cell' (the output cell) or sizes DX,DY[,DZ] in layer "
            "units, e.g. 40,40")
    return text
