"""``gcnnrnn:trainhybrid``: train the hybrid GCNN-RNN model and save its bundle folder."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingException, QgsProcessingParameterFolderDestination

from ..constants import GROUP_HYBRID
from . import params as P
from .base import EngineAlgorithm, move_folder

HYBRID_METHOD = (
    "<p>The hybrid GCNN-RNN model: for every location, the nearest samples ordered by distance "
    "form a sequence (their transformed values, offsets, distance, variogram covariance to the "
    "location and ordinary-kriging weight); a Conv1D block and a bidirectional LSTM read the "
    "sequence, static features (the kriging estimate and standard deviation, the Lagrange "
    "multiplier, distances, optional covariates) join it, and a dense head predicts the "
    "residual of kriging. At training samples every feature is computed without the sample "
    "itself (leave-one-out), so nothing leaks. An ensemble of networks gives the prediction "
    "spread; split-conformal calibration on out-of-fold residuals gives prediction intervals "
    "(90 % by default).</p>"
)


class TrainHybrid(EngineAlgorithm):
    ALG_ID = "trainhybrid"
    DISPLAY = "Train hybrid model"
    GROUP = GROUP_HYBRID
    ICON = "train"
    TAGS = ("deep learning", "lstm", "conv1d", "neural network", "hybrid", "training", "model")
    NUMBERS_NOTE = ("The training metrics and the interval calibration are in the model "
                    "folder's model.json; honest accuracy comes from 'Cross-validate'.")
    DESCRIPTION = (
        "<p>Trains the hybrid GCNN-RNN model on point samples and saves a model folder "
        "(<code>model.json</code> with the variogram, transform, feature set-up, scalers, "
        "training metrics and calibration, plus one <code>.keras</code> file per ensemble "
        "member). Use it with 'Predict with hybrid model'.</p>" + HYBRID_METHOD
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input():
            self.addParameter(p)
        self.addParameter(P.variogram_param())
        self.addParameter(P.neighbours_param(16, hybrid=True))
        for p in P.hybrid_params():
            self.addParameter(p)
        self.addParameter(P.with_help(
            QgsProcessingParameterFolderDestination(P.MODEL, "Model folder"),
            "Folder receiving the trained model bundle.",
        ))
        self.addParameter(P.select_param())
        self.addParameter(P.gate_param())
        self.addParameter(P.base_param())

    def processAlgorithm(self, parameters, context, feedback):
        with self.work_folder() as work:
            bundle = work / "model"
            args = self.point_args(parameters, context, feedback)
            args += self.variogram_args(parameters, context)
            args += self.hybrid_args(parameters, context)
            args += ["--model-dir", str(bundle)]
            self.engine("train", args, feedback, work)
            if not (bundle / "model.json").is_file():
                raise QgsProcessingException("the engine did not write a model bundle")
            dest = self.parameterAsString(parameters, P.MODEL, context)
            if not dest:
                raise QgsProcessingException("no model folder (MODEL) given")
            move_folder(bundle, Path(dest))
        return {P.MODEL: dest}
