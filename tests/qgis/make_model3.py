"""Rebuild ``fit_and_krige.model3`` (fitvariogram → ordinarykriging) with the PyQGIS model API.

Usage: QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis/make_model3.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)

HERE = Path(__file__).resolve().parent


def build() -> QgsProcessingModelAlgorithm:
    model = QgsProcessingModelAlgorithm("Fit variogram and krige", "GCNN-RNN tests")
    for name, definition in (
        ("points", QgsProcessingParameterFeatureSource("points", "Point samples", [0])),
        ("field", QgsProcessingParameterField("field", "Value field", None, "points", 0)),
        ("cellsize", QgsProcessingParameterNumber("cellsize", "Cell size", 1, 100.0)),
    ):
        model.addModelParameter(definition, QgsProcessingModelParameter(name))

    fit = QgsProcessingModelChildAlgorithm("gcnnrnn:fitvariogram")
    fit.setChildId("fit")
    fit.setDescription("Fit variogram")
    fit.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("points")])
    fit.addParameterSources("FIELD", [QgsProcessingModelChildParameterSource.fromModelParameter("field")])
    fit.addParameterSources("TRANSFORM", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    model.addChildAlgorithm(fit)

    krige = QgsProcessingModelChildAlgorithm("gcnnrnn:ordinarykriging")
    krige.setChildId("krige")
    krige.setDescription("Ordinary kriging")
    krige.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("points")])
    krige.addParameterSources("FIELD", [QgsProcessingModelChildParameterSource.fromModelParameter("field")])
    krige.addParameterSources("TRANSFORM", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    krige.addParameterSources("CELL_SIZE", [QgsProcessingModelChildParameterSource.fromModelParameter("cellsize")])
    krige.addParameterSources("VARIOGRAM", [QgsProcessingModelChildParameterSource.fromChildOutput("fit", "VARIOGRAM")])
    outputs = {}
    for name in ("ESTIMATE", "VARIANCE"):
        out = QgsProcessingModelOutput(name.lower(), name.capitalize())
        out.setChildId("krige")
        out.setChildOutputName(name)
        outputs[name.lower()] = out
    krige.setModelOutputs(outputs)
    model.addChildAlgorithm(krige)
    model.updateDestinationParameters()
    return model


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(HERE))
    import qgis_helpers  # noqa: F401  (puts the gcnn_rnn package on sys.path)

    from gcnn_rnn.processing.provider import GcnnRnnProvider

    provider = GcnnRnnProvider()  # keep a reference, or it is garbage-collected
    QgsApplication.processingRegistry().addProvider(provider)
    m = build()
    assert m.toFile(str(HERE / "fit_and_krige.model3"))
    print([p.name() for p in m.parameterDefinitions()])
