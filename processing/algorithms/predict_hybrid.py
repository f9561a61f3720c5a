"""``gcnnrnn:predicthybrid``: rasters from a trained hybrid model bundle."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
)

from ..compat import FILE_BEHAVIOUR_FOLDER
from ..constants import GROUP_HYBRID, HYBRID_RASTERS
from . import params as P
from .base import EngineAlgorithm
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

def bundle_field(info: dict) -> str:
    for key in ("field", "target", "target_field"):
        if isinstance(info.get(key), str):
            return info[key]
    data = info.get("data")
    if isinstance(data, dict) and isinstance(data.get("field"), str):
        return data["field"]
    return ""

def add_hybrid_raster_outputs(alg) -> None:
    for name, (_, _kind, label) in HYBRID_RASTERS.items():
        optional = name == "EXCEEDANCE"
        param = QgsProcessingParameterRasterDestination(
            name, label, optional=optional, createByDefault=not optional)
        alg.addParameter(P.with_help(
            param,
            f"GeoTIFF with the {label.lower()}"
            + (" (only with a threshold)" if optional else "")
            + ", in the field's original units.",
        ))

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

    def validate(self, parameters, context):
        super().validate(parameters, context)
        folder = self.parameterAsFile(parameters, P.MODEL, context)
        if not folder or not (Path(folder) / "model.json").is_file():
            raise QgsProcessingException(
                f"{folder!r} is not a model folder from 'Train hybrid model' (no model.json)")
        info = bundle_info(folder)
        self.check_grid(parameters, context, bundle_crs(info), None)

    def processAlgorithm(self, parameters, context, feedback):
        folder = self.parameterAsFile(parameters, P.MODEL, context)
        info = bundle_info(folder)
        field = bundle_field(info)
        mask = self.parameterAsSource(parameters, P.MASK, context)
        with self.work_folder() as work:
            args = ["--model-dir", folder]
            args += self.grid_args(parameters, context, bundle_crs(info))
            args += self.threshold_args(parameters, context)
            args += ["--output-dir", str(work)]
            self.engine("predict", args, feedback, work)
            required = tuple(n for n in HYBRID_RASTERS if n != "EXCEEDANCE")
            return self.deliver_rasters(HYBRID_RASTERS, parameters, context, work, feedback,
                                        f" ({field})" if field else "", mask, required)
