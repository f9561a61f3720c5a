"""``gcnnrnn:hybridinterpolation``: variogram → CV → train → predict → report, end to end."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingUtils,
)

from ..constants import CV_METHODS, CV_NUMBER_LABELS, CV_NUMBERS, GROUP_HYBRID, HYBRID_RASTERS
from . import params as P
from .base import EngineAlgorithm, move_folder, move_output, read_json
from .predict_hybrid import add_hybrid_raster_outputs, check_threshold_outputs
from .report_paths import rewrite_report_paths
from .train_hybrid import HYBRID_METHOD


def find_one(work: Path, name: str) -> Path | None:
    """``work/name``, or the shallowest file of that name below ``work``."""
    direct = work / name
    if direct.exists():
        return direct
    found = sorted(work.rglob(name), key=lambda p: len(p.parts))
    return found[0] if found else None


def find_report(work: Path, outputs: dict) -> Path | None:
    for key in ("report", "report_html", "html"):
        value = outputs.get(key)
        if isinstance(value, str) and value.lower().endswith((".html", ".htm")):
            p = Path(value)
            if p.is_file():
                return p
    found = sorted(work.rglob("*.html"), key=lambda p: len(p.parts))
    return found[0] if found else None


def find_metrics(work: Path, outputs: dict) -> dict:
    """The ``metrics`` dictionary of the run's cross-validation, wherever the engine put it."""
    for source in (outputs, outputs.get("cv") if isinstance(outputs.get("cv"), dict) else {}):
        if isinstance(source.get("metrics"), dict):
            return source["metrics"]
    for path in sorted(work.rglob("*.json"), key=lambda p: len(p.parts)):
        if path.name == "model.json":
            continue
        data = read_json(path)
        if isinstance(data.get("metrics"), dict):
            return data["metrics"]
    return {}


CV_METHODS_PARAM = "CV_METHODS"


class HybridInterpolation(EngineAlgorithm):
    ALG_ID = "hybridinterpolation"
    DISPLAY = "Hybrid interpolation (end to end)"
    GROUP = GROUP_HYBRID
    ICON = "hybrid"
    TAGS = ("deep learning", "kriging", "hybrid", "interpolation", "report", "uncertainty",
            "cross-validation", "lstm")
    NUMBERS_NOTE = ("The cross-validation metrics of ordinary kriging (_OK) and of the hybrid "
                    "model (_HYBRID) on identical folds, as in the report.")
    DESCRIPTION = (
        "<p>The whole GCNN-RNN workflow in one step: fits the variogram (unless a model file is "
        "given), cross-validates ordinary kriging against the hybrid model on identical folds, "
        "trains the hybrid model on all samples, predicts the grid with calibrated uncertainty "
        "and writes an HTML report (data summary, variogram, CV scatter plots and metrics, "
        "residual map, training curves, maps and every parameter and version needed to "
        "reproduce the run).</p>" + HYBRID_METHOD
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input():
            self.addParameter(p)
        self.addParameter(P.variogram_param())
        self.addParameter(P.neighbours_param(16, hybrid=True))
        for p in P.grid_params():
            self.addParameter(p)
        for p in P.hybrid_params():
            self.addParameter(p)
        self.addParameter(P.folds_param("", optional=True, advanced=True))
        self.addParameter(P.with_help(
            QgsProcessingParameterEnum(CV_METHODS_PARAM, "Methods compared in the report",
                                       [label for _, label in CV_METHODS], allowMultiple=True,
                                       optional=True),
            "Methods cross-validated on identical folds for the report; empty: the engine's "
            "default (kriging and the hybrid model, and kriging with external drift when "
            "covariate rasters are given).",
            advanced=True,
        ))
        self.addParameter(P.threshold_param())
        add_hybrid_raster_outputs(self)
        self.addParameter(P.with_help(
            QgsProcessingParameterFileDestination(P.REPORT, "Report", "HTML files (*.html)",
                                                  optional=True, createByDefault=True),
            "Self-contained HTML report of the run (opens in the Results Viewer). Optional "
            "(qgis_process runs without it).",
        ))
        self.addParameter(P.with_help(
            QgsProcessingParameterFolderDestination(P.MODEL, "Model folder", optional=True,
                                                    createByDefault=False),
            "Optional folder receiving the trained model bundle (for 'Predict with hybrid "
            "model').",
        ))
        self.addParameter(P.select_param())
        self.addParameter(P.gate_param())
        self.addParameter(P.base_param())
        for name, label in CV_NUMBER_LABELS.items():
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def validate(self, parameters, context):
        super().validate(parameters, context)
        check_threshold_outputs(self, parameters, context)
        source = self.parameterAsSource(parameters, P.INPUT, context)
        self.check_grid(parameters, context, self.working_crs(parameters, context, source),
                        self.sample_extent(parameters, context, source), source.featureCount(),
                        streamed=False)  # run's report reads the maps back whole

    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, P.INPUT, context)
        crs = self.working_crs(parameters, context, source)
        field = self.value_field(parameters, context)
        mask = self.parameterAsSource(parameters, P.MASK, context)
        with self.work_folder() as work:
            out_dir = work / "run"
            args = self.point_args(parameters, context, feedback)
            args += self.variogram_args(parameters, context)
            args += self.hybrid_args(parameters, context)
            self.warn_extrapolation(parameters, context, source, feedback)
            args += self.grid_args(parameters, context, crs,
                                   (self.sample_extent(parameters, context, source),
                                    source.featureCount()), feedback)
            args += self.threshold_args(parameters, context)
            folds = self.parameterAsString(parameters, P.FOLDS, context)
            if folds and folds.strip():
                args += ["--folds", folds.strip()]
            methods = (self.parameterAsEnums(parameters, CV_METHODS_PARAM, context)
                       if parameters.get(CV_METHODS_PARAM) not in (None, "", []) else [])
            if methods:
                args += ["--cv-methods", ",".join(CV_METHODS[i][0] for i in methods)]
            args += ["--output-dir", str(out_dir)]
            outputs = self.engine("run", args, feedback, work)
            # the contract names the rasters; they may sit in a sub-folder of the run
            flat = work / "rasters"
            flat.mkdir()
            engine_paths = {}
            for name, (fname, _, _) in HYBRID_RASTERS.items():
                found = find_one(out_dir, fname)
                if found is not None:
                    engine_paths[name] = str(found)
                    move_output(found, flat / fname)
            required = tuple(n for n in HYBRID_RASTERS if n != "EXCEEDANCE")
            results = self.deliver_rasters(HYBRID_RASTERS, parameters, context, flat, feedback,
                                           f" ({field})", mask, required,
                                           run_label=f"Hybrid interpolation ({field})")
            final = {engine_paths[n]: os.path.abspath(results[n])
                     for n in results if n in engine_paths}
            model_dest = self.parameterAsString(parameters, P.MODEL, context)
            model_json = find_one(out_dir, "model.json")
            if model_dest and model_json is not None:
                final[str(model_json.parent)] = os.path.abspath(model_dest)
                move_folder(model_json.parent, Path(model_dest))
                results[P.MODEL] = model_dest
            report = find_report(out_dir, outputs)
            dest = self.parameterAsFileOutput(parameters, P.REPORT, context)
            if report is not None and dest:
                final[str(report)] = os.path.abspath(dest)
                final[str(out_dir)] = os.path.dirname(os.path.abspath(dest))
                input_path = args[args.index("--input") + 1]
                if str(work) in input_path or input_path.startswith(
                        QgsProcessingUtils.tempFolder()):
                    final[input_path] = f"the QGIS layer {source.sourceName()!r}"
                rewrite_report_paths(report, final, work)
                move_output(report, Path(dest))
                results[P.REPORT] = dest
            metrics = find_metrics(out_dir, outputs)
        for name, (method, key) in CV_NUMBERS.items():
            value = metrics.get(method, {}).get(key) if isinstance(metrics.get(method), dict) \
                else None
            if isinstance(value, (int, float)):
                results[name] = float(value)
        return results
