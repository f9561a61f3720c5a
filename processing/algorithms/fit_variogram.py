"""``gcnnrnn:fitvariogram``: experimental variogram and a fitted model file."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
)

from ..constants import DEFAULT_FIT_MODELS, GROUP_GEOSTATISTICS, VARIOGRAM_MODELS
from ..messages import round_numbers
from . import params as P
from .base import EngineAlgorithm, move_output, read_json

MODELS, DIRECTIONS, PLOT = "MODELS", "DIRECTIONS", "PLOT"
SELECT, ESTIMATOR, ANISOTROPY = "SELECT", "ESTIMATOR", "ANISOTROPY"
SELECT_CHOICES = P.SELECT_CHOICES  # index 1 was "loo": the same cross-validation rule
ESTIMATOR_CHOICES = (("matheron", "Matheron (classical)"), ("cressie", "Cressie-Hawkins (robust)"))
NUGGET, SILL, RANGE, MODEL_TEXT = "NUGGET", "SILL", "RANGE", "MODEL_TEXT"


def model_summary(model: dict) -> tuple[float, float, float]:
    """``(nugget, total sill, largest range)`` of a model dictionary."""
    structures = model.get("structures", []) if isinstance(model, dict) else []
    nugget = sum(float(s.get("psill", 0)) for s in structures if s.get("model") == "nug")
    sill = sum(float(s.get("psill", 0)) for s in structures)
    rng = max([float(s.get("range", s.get("range_", 0)) or 0) for s in structures] or [0.0])
    return nugget, sill, rng


class FitVariogram(EngineAlgorithm):
    ALG_ID = "fitvariogram"
    DISPLAY = "Fit variogram"
    GROUP = GROUP_GEOSTATISTICS
    ICON = "variogram"
    TAGS = ("variogram", "semivariogram", "variography", "spatial correlation", "gstat")
    NUMBERS_NOTE = ("NUGGET, SILL (nugget + partial sills) and RANGE (the largest range "
                    "parameter) summarise the fitted model; MODEL_TEXT is its gstat-like form.")
    DESCRIPTION = (
        "<p>Computes the experimental semivariogram of a numeric field (omnidirectional and, "
        "optionally, directional) and fits a nested model (nugget + the best of the candidate "
        "models) by weighted least squares with gstat's default weights N<sub>j</sub>/h<sub>j"
        "</sub><sup>2</sup>. Lags follow gstat's defaults (cutoff = one third of the bounding-box "
        "diagonal, 15 lags).</p><p>The model file (JSON) feeds 'Ordinary kriging', the hybrid "
        "algorithms and the Variogram explorer; its 'text' is the gstat-like form, e.g. "
        "<code>0.0507 Nug + 0.5906 Sph(897)</code>. Ranges follow gstat's conventions "
        "(spherical: the sill is reached at the range; exponential: practical range 3 × range; "
        "gaussian: √3 × range).</p>"
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input(variogram_file=False):
            self.addParameter(p)
        labels = [label for _, label in VARIOGRAM_MODELS]
        default = [i for i, (code, _) in enumerate(VARIOGRAM_MODELS) if code in DEFAULT_FIT_MODELS]
        self.addParameter(P.with_help(
            QgsProcessingParameterEnum(MODELS, "Candidate models", labels, allowMultiple=True,
                                       defaultValue=default),
            "Models tried for the structured part (a nugget is always included); the one with "
            "the lowest weighted squared error is kept.",
        ))
        self.addParameter(P.with_help(
            QgsProcessingParameterString(DIRECTIONS, "Directions (degrees, clockwise from north)",
                                         optional=True),
            "Comma-separated azimuths for directional experimental variograms, e.g. "
            "'0,45,90,135' (shown in the plot; used to judge anisotropy).",
            advanced=True,
        ))
        self.addParameter(P.with_help(
            QgsProcessingParameterEnum(SELECT, "Choose the model by",
                                       [label for _, label in SELECT_CHOICES], defaultValue=1),
            "How the best candidate is chosen: the kriging cross-validation RMSE with it "
            "(default; leave-one-out, 10-fold above 3000 samples; what matters for the map), "
            "or the weighted squared error of the fit.",
            advanced=True,
        ))
        self.addParameter(P.with_help(
            QgsProcessingParameterEnum(ESTIMATOR, "Estimator",
                                       [label for _, label in ESTIMATOR_CHOICES], defaultValue=0),
            "Experimental variogram estimator: Matheron's, or Cressie-Hawkins' (robust to "
            "outliers).",
            advanced=True,
        ))
        self.addParameter(P.flag_param(
            ANISOTROPY, "Fit geometric anisotropy", False,
            "Also fit a 2D geometric anisotropy (direction of the major axis and minor/major "
            "range ratio) from directional variograms."))
        self.addParameter(P.with_help(
            QgsProcessingParameterFileDestination(P.VARIOGRAM, "Variogram model file",
                                                  "Variogram model (*.json)"),
            "Where to write the fitted model (JSON with the experimental variogram, the model "
            "and its text form).",
        ))
        plot = QgsProcessingParameterFileDestination(PLOT, "Variogram plot", "PNG image (*.png)",
                                                     optional=True, createByDefault=False)
        self.addParameter(P.with_help(plot, "Optional PNG plot of the experimental variogram "
                                            "and the fitted model."))
        self.addOutput(QgsProcessingOutputNumber(NUGGET, "Nugget"))
        self.addOutput(QgsProcessingOutputNumber(SILL, "Total sill"))
        self.addOutput(QgsProcessingOutputNumber(RANGE, "Range (largest structure)"))
        self.addOutput(QgsProcessingOutputString(MODEL_TEXT, "Model (text form)"))

    def processAlgorithm(self, parameters, context, feedback):
        with self.work_folder() as work:
            args = self.point_args(parameters, context, feedback)
            chosen = self.parameterAsEnums(parameters, MODELS, context)
            if chosen:
                args += ["--models", ",".join(VARIOGRAM_MODELS[i][0] for i in chosen)]
            directions = self.parameterAsString(parameters, DIRECTIONS, context)
            if directions and directions.strip():
                args += ["--directions", directions.replace(" ", "")]
            select = self.parameterAsEnum(parameters, SELECT, context)
            args += ["--select", SELECT_CHOICES[select][0]]
            estimator = self.parameterAsEnum(parameters, ESTIMATOR, context)
            if estimator:
                args += ["--estimator", ESTIMATOR_CHOICES[estimator][0]]
            if self.parameterAsBoolean(parameters, ANISOTROPY, context):
                args += ["--anisotropy"]
            plot_dest = self.parameterAsFileOutput(parameters, PLOT, context)
            args += ["--output-json", str(work / "variogram.json")]
            if plot_dest:
                args += ["--plot", str(work / "variogram.png")]
            self.engine("variogram", args, feedback, work)
            data = read_json(work / "variogram.json")
            dest = self.parameterAsFileOutput(parameters, P.VARIOGRAM, context)
            move_output(work / "variogram.json", Path(dest))
            results = {P.VARIOGRAM: dest}
            if plot_dest and (work / "variogram.png").is_file():
                move_output(work / "variogram.png", Path(plot_dest))
                results[PLOT] = plot_dest
        model = data.get("model", {})
        nugget, sill, rng = model_summary(model)
        text = data.get("text") or (model if isinstance(model, str) else "")
        feedback.pushInfo(f"Fitted variogram: {round_numbers(str(text))}")
        results.update({NUGGET: nugget, SILL: sill, RANGE: rng, MODEL_TEXT: str(text)})
        return results
