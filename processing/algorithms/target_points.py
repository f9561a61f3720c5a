"""Predicting at points instead of a grid (the CLI's ``--points``): parameters and delivery.

``POINTS`` is a point layer of target locations; the engine writes one GeoPackage with the
targets' attributes plus the predicted columns, delivered to ``POINTS_OUTPUT`` (converted with
GDAL when the destination is not a GeoPackage) and loaded like any vector output.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterVectorDestination,
    QgsProcessingUtils,
)

from ..compat import TYPE_VECTOR_POINT
from . import params as P

POINTS, POINTS_OUTPUT = "POINTS", "POINTS_OUTPUT"


def target_point_params(columns: str) -> list:
    """``POINTS`` (input) and ``POINTS_OUTPUT`` (destination); ``columns`` says what is added."""
    return [
        P.with_help(
            QgsProcessingParameterFeatureSource(POINTS, "Predict at these points instead of a "
                                                        "grid", [TYPE_VECTOR_POINT],
                                                optional=True),
            "Optional point layer of target locations (same CRS as the samples). When given, "
            "the algorithm predicts at these points and writes 'Predictions at points' "
            "instead of the rasters; the grid parameters are then not used.",
        ),
        P.with_help(
            QgsProcessingParameterVectorDestination(POINTS_OUTPUT, "Predictions at points",
                                                    TYPE_VECTOR_POINT, optional=True,
                                                    createByDefault=False),
            f"The target points with their attributes and {columns} (only with 'Predict at "
            "these points').",
        ),
    ]


def wants_points(parameters) -> bool:
    return parameters.get(POINTS) not in (None, "")


def check_points_outputs(alg, parameters, context) -> None:
    """Target points must be readable; an explicit points destination needs target points."""
    if wants_points(parameters):
        if alg.parameterAsSource(parameters, POINTS, context) is None:
            raise QgsProcessingException("the target point layer (POINTS) cannot be read")
        return
    if P.destination_given(parameters, POINTS_OUTPUT):
        raise QgsProcessingException(
            "'Predictions at points' needs target points: choose a layer in 'Predict at these "
            "points instead of a grid', or skip that output")


def points_args(alg, parameters, context, feedback) -> list[str]:
    """``--points FILE [--points-layer L]`` for the target points."""
    path, layer = alg.parameterAsCompatibleSourceLayerPathAndLayerName(
        parameters, POINTS, context, ["gpkg", "shp", "geojson", "fgb"], "gpkg", feedback)
    if not path:
        raise QgsProcessingException("the target point layer (POINTS) cannot be exported")
    return ["--points", path] + (["--points-layer", layer] if layer else [])


def deliver_points(alg, parameters, context, produced: Path, label: str) -> dict:
    """Move (or convert) the engine's points GeoPackage to ``POINTS_OUTPUT``."""
    if not produced.is_file():
        raise QgsProcessingException(f"the engine did not write {produced.name!r}")
    dest = alg.parameterAsOutputLayer(parameters, POINTS_OUTPUT, context)
    if not dest:  # skipped: still deliver (the points were the reason of the run)
        dest = QgsProcessingUtils.generateTempFilename(produced.name)
        context.addLayerToLoadOnCompletion(
            dest, QgsProcessingContext.LayerDetails(label, context.project(), POINTS_OUTPUT))
    target = Path(dest.split("|")[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".gpkg":
        if target.exists():
            target.unlink()
        shutil.move(str(produced), str(target))
    else:
        from osgeo import gdal

        scratch = produced.parent / "points_convert"
        scratch.mkdir(exist_ok=True)
        converted = scratch / target.name
        ds = gdal.VectorTranslate(str(converted), str(produced))
        if ds is None:
            raise QgsProcessingException(
                f"GDAL could not write {target.name!r}: {gdal.GetLastErrorMsg()}")
        ds = None
        for path in scratch.iterdir():
            final = target.parent / path.name
            if final.exists():
                final.unlink()
            shutil.move(str(path), str(final))
    if context.willLoadLayerOnCompletion(dest):
        context.layerToLoadOnCompletionDetails(dest).name = label
    return {POINTS_OUTPUT: dest}
