"""Writing the hybrid model's predictions: GeoTIFF layers on a grid, or a GeoPackage of points.

The file names are the ``predict`` command's contract: ``prediction.tif``,
``kriging_estimate.tif``, ``kriging_variance.tif``, ``prediction_std.tif``,
``interval_lower.tif``, ``interval_upper.tif`` and, with a threshold,
``exceedance_probability.tif`` (each with a ``.qml`` style); or ``prediction_points.gpkg``
with columns of the same names.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..grid import Grid
from ..io import write_points
from ..progress import ProgressFn, StopFn, check_cancel, scaled

logger = logging.getLogger(__name__)

#: Layer name → (raster kind for the .qml ramp, band description).
LAYERS = {
    "prediction": ("value", "hybrid GCNN-RNN prediction"),
    "kriging_estimate": ("value", "ordinary kriging estimate"),
    "kriging_variance": ("variance", "ordinary kriging variance"),
    "prediction_std": ("variance", "hybrid prediction standard deviation"),
    "interval_lower": ("value", "lower bound of the prediction interval"),
    "interval_upper": ("value", "upper bound of the prediction interval"),
    "exceedance_probability": ("probability", "probability of exceeding the threshold"),
}
POINTS_FILE = "prediction_points.gpkg"
#: Every file ``predict`` may write (its all-or-nothing output set, ``core/output_set.py``).
OUTPUT_FILES = tuple(f"{n}.{ext}" for n in LAYERS for ext in ("tif", "qml")) + (POINTS_FILE,)


def layer_descriptions(estimator) -> dict[str, str]:
    """Band descriptions; ``kriging_estimate``/``kriging_variance`` name the hybrid's base
    (ordinary kriging, or kriging with an external drift in the covariates)."""
    out = {name: desc for name, (_, desc) in LAYERS.items()}
    base = estimator._base() if hasattr(estimator, "_base") else None
    if base is not None and base.name == "ked":
        covs = ", ".join(base.drift_terms(Path(p).name
                                          for p in estimator.feature_config_.covariates))
        what = f"kriging with external drift (KED) in {covs}"
        out["kriging_estimate"] = f"{what}: estimate (the hybrid's base)"
        out["kriging_variance"] = f"{what}: variance (the hybrid's base)"
    else:
        out["kriging_estimate"] = "ordinary kriging (OK) estimate (the hybrid's base)"
        out["kriging_variance"] = "ordinary kriging (OK) variance (the hybrid's base)"
    return out


def _same_crs(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return True
    from pyproj import CRS

    return CRS.from_user_input(a).equals(CRS.from_user_input(b), ignore_axis_order=True)


def predict_grid(estimator, grid: Grid, output_dir: str | os.PathLike,
                 threshold: float | None = None, crs: str | None = None,
                 progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None, *, client=None,
                 model_dir: str | None = None, cog: bool = False) -> dict[str, str]:
    """Predict at every node of ``grid`` and write one GeoTIFF per layer into ``output_dir``.

    The grid is predicted and written range by range (:mod:`.predict_stream`); with a Dask
    ``client`` the ranges run on its workers, which load the bundle from ``model_dir``.

    Returns
    -------
    dict
        Layer name → path written.

    Raises
    ------
    InputDataError
        The grid is in another CRS than the model, or 2D/3D does not match.
    """
    if grid.crs and crs and not _same_crs(grid.crs, crs):
        raise InputDataError(
            "the output grid's CRS differs from the model's; use a template in the CRS the "
            "model was trained in"
        )
    if grid.crs is None and crs:
        from dataclasses import replace

        grid = replace(grid, crs=crs)
    if grid.ndim != estimator.coords_.shape[1]:
        raise InputDataError(
            f"the model was trained on {estimator.coords_.shape[1]}D samples but the grid is "
            f"{grid.ndim}D" + ("; give --z-levels" if estimator.coords_.shape[1] == 3 else "")
        )
    names = [n for n in LAYERS if n != "exceedance_probability" or threshold is not None]
    descriptions = layer_descriptions(estimator)  # the base (OK, KED) named in its layers
    layers = {n: (LAYERS[n][0], descriptions[n]) for n in names}
    if threshold is not None:
        kind, desc = layers["exceedance_probability"]
        layers["exceedance_probability"] = (kind, f"{desc} {threshold:g}")
    from .predict_stream import stream_predictions

    # Streamed range by range (bounded memory), on a Dask cluster when ``client`` is given.
    written, n_nan, masked = stream_predictions(estimator, grid, Path(output_dir), layers,
                                                threshold, model_dir, client, cog, progress,
                                                should_stop)
    if n_nan + masked == grid.n_nodes:
        for p in written.values():  # all or nothing: no map without a single value
            Path(p).unlink(missing_ok=True)
            Path(p).with_suffix(".qml").unlink(missing_ok=True)
        raise InputDataError(
            f"no cell of the {grid.nrows} x {grid.ncols} grid gets a prediction: a covariate "
            "has no data there (does the grid overlap the covariate rasters and the samples?)"
        )
    if masked:
        logger.info("%d of %d cells are nodata in the template raster and stay nodata",
                    masked, grid.n_nodes)
    if n_nan:
        logger.warning("%d of %d cells have no prediction (nodata): a covariate is missing there",
                       n_nan, grid.n_nodes)
    return written


def read_target_points(path: str | os.PathLike, layer: str | None = None,
                       crs: str | None = None):
    """Target points for prediction: ``(GeoDataFrame, coords (n, 2|3))`` in the model's CRS.

    Raises
    ------
    InputDataError
        Missing file or layer, non-point geometries, no CRS (and none given), empty layer.
    """
    import geopandas as gpd

    from ..io import CSV_SUFFIXES, read_csv_points

    src = str(path) + (f"|layername={layer}" if layer else "")
    if not Path(path).exists():
        raise InputDataError(f"target points not found: {str(path)!r}")
    from ..input_files import require_readable_file

    require_readable_file(path, "target points")
    if Path(path).suffix.lower() in CSV_SUFFIXES:
        gdf = read_csv_points(Path(path))
    else:
        try:
            gdf = gpd.read_file(path, layer=layer)
        except Exception as exc:
            raise InputDataError(f"{src}: cannot read the target points ({exc})") from None
    if len(gdf) == 0:
        raise InputDataError(f"{src}: the layer is empty")
    n_null = int((gdf.geometry.isna() | gdf.geometry.is_empty).sum())
    if n_null:
        raise InputDataError(f"{src}: {n_null} target feature(s) have no geometry")
    types = set(gdf.geometry.geom_type.unique())
    if types == {"Point", "MultiPoint"} or types == {"MultiPoint"}:
        single = gdf.geometry.apply(lambda g: g.geom_type == "Point" or len(g.geoms) == 1)
        if bool(single.all()):  # single-part multipoints, as accepted for the samples
            gdf = gdf.set_geometry(gdf.geometry.apply(
                lambda g: g if g.geom_type == "Point" else g.geoms[0]))
            types = {"Point"}
    if not types <= {"Point"}:
        raise InputDataError(f"{src}: target geometries must be points, found {sorted(types)}")
    if gdf.crs is None:
        if crs is None:
            raise InputDataError(f"{src}: has no CRS")
        logger.warning("%s: the target points have no CRS; assuming the samples' CRS", src)
        gdf = gdf.set_crs(crs)
    elif crs and not _same_crs(gdf.crs.to_wkt(), crs):
        logger.warning("%s: reprojecting the target points to the model's CRS", src)
        gdf = gdf.to_crs(crs)
    xy = [gdf.geometry.x.to_numpy(float), gdf.geometry.y.to_numpy(float)]
    if bool(gdf.geometry.has_z.all()):
        xy.append(gdf.geometry.z.to_numpy(float))
    return gdf, np.column_stack(xy)


def predict_points(estimator, points: str | os.PathLike, output_dir: str | os.PathLike,
                   layer: str | None = None, threshold: float | None = None,
                   crs: str | None = None, progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None,
                   max_bytes: int | None = None) -> dict[str, str]:
    """Predict at target points and write ``output_dir/prediction_points.gpkg``.

    The co-fields named at training are read from the target points' own columns.
    ``max_bytes``: refuse (:mod:`.predict_memory`) before any feature array is built.
    """
    gdf, coords = read_target_points(points, layer, crs)
    if max_bytes is not None:
        from .predict_memory import check_predict_memory

        check_predict_memory(estimator, len(coords), max_bytes)
    if coords.shape[1] != estimator.coords_.shape[1]:
        coords = coords[:, : estimator.coords_.shape[1]]
        if coords.shape[1] != estimator.coords_.shape[1]:
            raise InputDataError(
                f"the model needs {estimator.coords_.shape[1]}D target points; "
                f"{str(points)!r} is 2D"
            )
    attrs = None
    if estimator.feature_config_.co_fields:
        attrs = gdf.drop(columns=gdf.geometry.name)
    pred = estimator.predict_full(coords, attributes=attrs, threshold=threshold,
                                  progress=scaled(progress, 0.0, 0.9), should_stop=should_stop)
    check_cancel(should_stop)
    out = gdf.copy()
    for name in LAYERS:
        values = getattr(pred, name)
        if values is not None:
            out[name] = np.asarray(values, dtype=float)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_points(out, out_dir / POINTS_FILE, "prediction_points")
    if progress is not None:
        progress(1.0, "written")
    return {"points": str(path)}
