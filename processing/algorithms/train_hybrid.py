"""``gcnnrnn:trainhybrid``: train the hybrid GCNN-RNN model and save its bundle folder."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFolderDestination,
)

from ..constants import GROUP_HYBRID, TRAIN_NUMBERS
from . import params as P
from .base import EngineAlgorithm, move_folder, read_json

HYBRID_OOF, OK_LOO = "HYBRID_OOF_RMSE", "OK_LOO_RMSE"

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
    NUMBERS_NOTE = ("The out-of-fold metrics of training, in transformed units (as in the "
                    "model folder's model.json): each sample predicted by the ensemble member "
                    "that held it out, against kriging's leave-one-out error. A comparison of "
                    "methods on identical folds comes from 'Cross-validate'.")
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
        for name, (_, label) in TRAIN_NUMBERS.items():
            self.addOutput(QgsProcessingOutputNumber(name, label))

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
            metrics = read_json(bundle / "model.json").get("metrics") or {}
            move_folder(bundle, Path(dest))
        results = {P.MODEL: dest}
        for name, (key, _) in TRAIN_NUMBERS.items():
            value = metrics.get(key) if isinstance(metrics, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                results[name] = float(value)
        if HYBRID_OOF in results and OK_LOO in results:
            feedback.pushInfo(
                f"Out-of-fold RMSE (transformed units): hybrid {results[HYBRID_OOF]:.4g}, "
                f"kriging {results[OK_LOO]:.4g}.")
        return results
