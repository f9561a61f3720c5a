"""``gcnnrnn:predicthybrid``: rasters from a trained hybrid model bundle."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsRectangle,
)

from ..compat import FILE_BEHAVIOUR_FOLDER
from ..constants import GROUP_HYBRID, HYBRID_RASTERS
from . import params as P
from .base import EngineAlgorithm
from .target_points import (
    check_points_outputs,
    deliver_points,
    points_args,
    target_point_params,
    wants_points,
)
from .train_hybrid import HYBRID_METHOD


def bundle_info(folder: str | None) -> dict:
    """``model.json`` of a bundle folder (empty dict when unreadable)."""
    if not folder:
        return {}
    try:
        data = json.loads((Path(folder) / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

def bundle_crs(info: dict) -> QgsCoordinateReferenceSystem:
    crs = info.get("crs")
    if isinstance(crs, dict):
        crs = crs.get("wkt") or crs.get("authid")
    if not isinstance(crs, str) or not crs:
        return QgsCoordinateReferenceSystem()
    out = QgsCoordinateReferenceSystem.fromWkt(crs)
    return out if out.isValid() else QgsCoordinateReferenceSystem(crs)

def bundle_samples(info: dict) -> tuple[QgsRectangle | None, int]:
    """``(extent, count)`` of a bundle's training samples (for the default cell size)."""
    data = info.get("training_data")
    coords = data.get("coords") if isinstance(data, dict) else None
    if isinstance(data, dict) and "file" in data:  # format 3: samples in a binary file
        extent, n = data.get("extent"), data.get("n")
        try:
            box = [float(v) for v in extent]
            if len(box) == 4 and isinstance(n, int) and n >= 2:
                return QgsRectangle(box[0], box[1], box[2], box[3]), n
        except (TypeError, ValueError):
            pass
        return None, 0
    if not isinstance(coords, list) or len(coords) < 2:
        return None, 0
    xs = [float(c[0]) for c in coords]
    ys = [float(c[1]) for c in coords]
    return QgsRectangle(min(xs), min(ys), max(xs), max(ys)), len(coords)


def bundle_field(info: dict) -> str:
    for key in ("field", "target", "target_field"):
        if isinstance(info.get(key), str):
            return info[key]
    data = info.get("data")
    if isinstance(data, dict) and isinstance(data.get("field"), str):
        return data["field"]
    return ""

#: What each hybrid raster holds and in which units (its destination's help).
HYBRID_RASTER_HELP = {
    "PREDICTION": "the hybrid prediction, in the field's original units",
    "KRIGING_ESTIMATE": "the ordinary-kriging estimate the model starts from, in the field's "
                        "original units",
    "KRIGING_VARIANCE": "the ordinary-kriging variance, in squared units of the field (ppm² "
                        "for a field in ppm; back-transformed with a transform)",
    "PREDICTION_STD": "the standard deviation of the prediction, in the field's original units",
    "INTERVAL_LOWER": "the lower bound of the calibrated prediction interval, in the field's "
                      "original units",
    "INTERVAL_UPPER": "the upper bound of the calibrated prediction interval, in the field's "
                      "original units",
    "EXCEEDANCE": "the probability (0-1) that the value exceeds the threshold; written whenever "
                  "a threshold is set (to a temporary file when no destination is chosen), "
                  "refused without one",
}


def add_hybrid_raster_outputs(alg) -> None:
    """The raster destinations, all optional: QGIS 3.22's qgis_process demands every
    non-optional destination on the command line, and predicting at points writes none."""
    for name, (_, _kind, label) in HYBRID_RASTERS.items():
        param = QgsProcessingParameterRasterDestination(
            name, label, optional=True, createByDefault=name != "EXCEEDANCE")
        alg.addParameter(P.with_help(
            param, f"GeoTIFF (or the format of the file's extension) with "
                   f"{HYBRID_RASTER_HELP[name]}; nodata -9999."))


def check_threshold_outputs(alg, parameters, context) -> None:
    """An exceedance destination needs a threshold (the map is of P(value > threshold))."""
    if parameters.get(P.THRESHOLD) not in (None, ""):
        return
    if P.destination_given(parameters, "EXCEEDANCE"):
        raise QgsProcessingException(
            "'Probability of exceeding' needs a threshold: set 'Threshold (probability of "
            "exceeding)' or skip that output")


class PredictHybrid(EngineAlgorithm):
    ALG_ID = "predicthybrid"
    DISPLAY = "Predict with hybrid model"
    GROUP = GROUP_HYBRID
    ICON = "predict"
    TAGS = ("deep learning", "prediction", "uncertainty", "prediction interval",
            "exceedance probability", "hybrid", "raster")
    NUMBERS_NOTE = "Accuracy numbers come from 'Cross-validate' or 'Hybrid interpolation'."
    DESCRIPTION = (
        "<p>Predicts a grid with a model folder from 'Train hybrid model': the hybrid "
        "prediction, the ordinary-kriging estimate and variance it starts from, the prediction "
        "standard deviation, the bounds of the calibrated prediction interval and, with a "
        "threshold, the probability of exceeding it.</p>" + HYBRID_METHOD
    )

    def initAlgorithm(self, config=None):
        self.addParameter(P.with_help(
            QgsProcessingParameterFile(P.MODEL, "Model folder", FILE_BEHAVIOUR_FOLDER),
            "A model folder written by 'Train hybrid model' (contains model.json).",
        ))
        for p in P.grid_params(with_distance_parent=False):
            self.addParameter(p)
        self.addParameter(P.threshold_param())
        add_hybrid_raster_outputs(self)
        for p in target_point_params("the predicted columns (prediction, kriging estimate and "
                                     "variance, standard deviation, interval bounds and, with "
                                     "a threshold, the exceedance probability)"):
            self.addParameter(p)

    def validate(self, parameters, context):
        super().validate(parameters, context)
        folder = self.parameterAsFile(parameters, P.MODEL, context)
        if not folder or not (Path(folder) / "model.json").is_file():
            raise QgsProcessingException(
                f"{folder!r} is not a model folder from 'Train hybrid model' (no model.json)")
        check_threshold_outputs(self, parameters, context)
        check_points_outputs(self, parameters, context)
        if wants_points(parameters):
            return
        info = bundle_info(folder)
        outputs = 6 if parameters.get(P.THRESHOLD) in (None, "") else 7  # predict's layers
        self.check_grid(parameters, context, bundle_crs(info), *bundle_samples(info),
                        outputs=outputs)

    def processAlgorithm(self, parameters, context, feedback):
        folder = self.parameterAsFile(parameters, P.MODEL, context)
        info = bundle_info(folder)
        field = bundle_field(info)
        mask = self.parameterAsSource(parameters, P.MASK, context)
        with self.work_folder() as work:
            args = ["--model-dir", folder]
            points = wants_points(parameters)
            if points:
                args += points_args(self, parameters, context, feedback)
            else:
                args += self.grid_args(parameters, context, bundle_crs(info),
                                       bundle_samples(info), feedback)
            args += self.threshold_args(parameters, context)
            args += ["--output-dir", str(work)]
            self.engine("predict", args, feedback, work)
            if points:
                return deliver_points(self, parameters, context, work / "prediction_points.gpkg",
                                      f"Hybrid prediction at points{f' ({field})' if field else ''}")
            required = tuple(n for n in HYBRID_RASTERS if n != "EXCEEDANCE")
            return self.deliver_rasters(HYBRID_RASTERS, parameters, context, work, feedback,
                                        f" ({field})" if field else "", mask, required,
                                        run_label=f"Hybrid prediction ({field or 'model'})")
