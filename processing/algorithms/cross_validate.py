"""``gcnnrnn:crossvalidate``: OK / linear / hybrid cross-validation metrics on identical folds."""

from __future__ import annotations

import html
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from ..compat import NUMBER_INTEGER
from ..constants import CV_METHODS, CV_NUMBER_LABELS, CV_NUMBERS, GROUP_GEOSTATISTICS
from . import params as P
from .base import EngineAlgorithm, move_output, read_json

METHODS, METRICS, REFIT = "METHODS", "METRICS", "REFIT_VARIOGRAM"
METRIC_LABELS = (("me", "ME"), ("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²"),
                 ("msdr", "MSDR"), ("ccc", "Lin's CCC"), ("coverage", "Interval coverage"),
                 ("width", "Interval width"))


def _metrics_table(metrics: dict) -> str:
    keys = [(k, lab) for k, lab in METRIC_LABELS
            if any(isinstance(m, dict) and k in m for m in metrics.values())]
    rows = []
    for method, values in metrics.items():
        if not isinstance(values, dict):
            continue
        cells = "".join(f"<td>{_fmt(values.get(k))}</td>" for k, _ in keys)
        rows.append(f"<tr><th>{html.escape(str(method))}</th>{cells}</tr>")
    head = "".join(f"<th>{html.escape(lab)}</th>" for _, lab in keys)
    return f"<table><tr><th>method</th>{head}</tr>{''.join(rows)}</table>"


def metrics_html(data: dict, title: str) -> str:
    """A small self-contained HTML page with the metrics table(s) of a ``cv`` JSON: in the
    output units and, with a transform, the same predictions in transformed units."""
    metrics = data.get("metrics", {}) if isinstance(data, dict) else {}
    tables = _metrics_table(metrics)
    transformed = data.get("metrics_transformed") if isinstance(data, dict) else None
    if isinstance(transformed, dict) and transformed:
        tables += ("<p>The same predictions in transformed "
                   f"({html.escape(str(data.get('transform', '')))}) units:</p>"
                   + _metrics_table(transformed))
    extra = {k: v for k, v in data.items() if k not in ("metrics", "residuals", "points")
             and not isinstance(v, (list, dict))}
    info = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
                   for k, v in extra.items())
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><style>body{{font-family:sans-serif}}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ccc;text-align:right}</style></head>"
        f"<body><h2>{html.escape(title)}</h2>{tables}<ul>{info}</ul></body></html>"
    )


def variogram_choice(variogram_file: str, refit: bool) -> str:
    """One line saying which variogram the folds use (the file or a refit in each fold)."""
    if not variogram_file:
        return "Variogram: fitted automatically inside every fold (no model file given)."
    name = Path(variogram_file).name
    if refit:
        return (f"Variogram: refitted inside every fold, as asked; the model file {name!r} is "
                "not used (uncheck 'Refit the variogram in every fold' to use it).")
    return f"Variogram: the model file {name!r} in every fold."


def metrics_summary(metrics: dict) -> list[str]:
    """A short human table of the metrics: a header line and one line per method."""
    if not isinstance(metrics, dict) or not metrics:
        return []
    lines = [f"{'method':<8} {'RMSE':>10} {'MAE':>10} {'R²':>7} {'MSDR':>7}"]
    for method, values in metrics.items():
        if isinstance(values, dict):
            lines.append(f"{method:<8} " + " ".join(
                f"{_fmt(values.get(k)):>{w}}" for k, w in (("rmse", 10), ("mae", 10),
                                                           ("r2", 7), ("msdr", 7))))
    return ["Cross-validation:"] + lines


def _fmt(value) -> str:
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    return "" if value is None else html.escape(str(value))


class CrossValidate(EngineAlgorithm):
    ALG_ID = "crossvalidate"
    DISPLAY = "Cross-validate"
    GROUP = GROUP_GEOSTATISTICS
    ICON = "crossvalidate"
    TAGS = ("cross-validation", "validation", "rmse", "leave-one-out", "k-fold",
            "spatial blocks", "accuracy")
    NUMBERS_NOTE = ("The cross-validation metrics of ordinary kriging (_OK) and of the hybrid "
                    "model (_HYBRID); a method that was not run has no numbers. Every metric "
                    "of every method is in the METRICS JSON.")
    DESCRIPTION = (
        "<p>Cross-validates ordinary kriging and, optionally, a ridge regression on the same "
        "kriging-derived features ('linear'), the hybrid GCNN-RNN model and kriging with an "
        "external drift in the covariate rasters ('ked') and universal kriging with a linear "
        "drift in the coordinates ('uk'), on identical folds: "
        "leave-one-out, random K-fold or spatial blocks. Everything fitted from data "
        "(variogram, transforms, scalers, the network) is refitted inside each fold on the "
        "training part only, so the scores are honest.</p><p>Metrics per method: mean error "
        "(ME), MAE, RMSE, R² (1 − SSE/SST), MSDR (mean squared deviation ratio, about 1 when "
        "the kriging variance is right) and Lin's concordance correlation coefficient; for the "
        "hybrid also the coverage and width of the prediction intervals.</p>"
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input():
            self.addParameter(p)
        self.addParameter(P.variogram_param())
        self.addParameter(P.with_help(
            QgsProcessingParameterEnum(METHODS, "Methods", [label for _, label in CV_METHODS],
                                       allowMultiple=True, defaultValue=[0]),
            "Methods compared on the same folds: ordinary kriging, a ridge regression on kriging "
            "features, the hybrid model (slow: trains networks in every fold) and kriging with "
            "an external drift in the covariate rasters (the classical baseline for a model "
            "that uses covariates), universal kriging with a linear trend in x and y.",
        ))
        self.addParameter(P.folds_param("10"))
        self.addParameter(P.flag_param(
            REFIT, "Refit the variogram in every fold (instead of the model file)", False,
            "Without a variogram model file the variogram is always fitted inside every fold. "
            "With a model file, that model is used in every fold unless this is checked: then "
            "the variogram (and transforms) are fitted again on the training part of every "
            "fold and the file is not used (the log says which one was used).",
            advanced=False))
        self.addParameter(P.with_help(
            QgsProcessingParameterNumber(P.KRIGING_NEIGHBOURS, "Kriging neighbours",
                                         NUMBER_INTEGER, optional=True, minValue=0),
            "Nearest samples used by ordinary kriging (and KED) at each held-out sample; 0: "
            "all samples; empty: the engine's default (32). Also the kriging of the hybrid "
            "and linear methods' features.",
        ))
        neighbours = P.neighbours_param(16, hybrid=True)
        neighbours.setDescription("Neighbours in the network's sequence (hybrid and linear "
                                  "only)")
        neighbours.setHelp("Number of nearest samples forming each location's sequence for "
                           "the hybrid network and the linear method's features. Not used "
                           "by ordinary kriging or KED (see 'Kriging neighbours').")
        self.addParameter(P.add_flag(neighbours, P.FLAG_ADVANCED))
        for p in P.hybrid_params():
            if p.name() == P.KRIGING_NEIGHBOURS:
                continue  # a main parameter here (above)
            if p.name() not in (P.SEED,):
                P.add_flag(p, P.FLAG_ADVANCED)
            self.addParameter(p)
        self.addParameter(P.output_units_param())
        self.addParameter(P.with_help(
            QgsProcessingParameterFileDestination(METRICS, "Cross-validation metrics",
                                                  "JSON (*.json)", optional=True,
                                                  createByDefault=True),
            "The engine's JSON: metrics per method, folds, units and per-point residuals. "
            "Optional (qgis_process runs without it): the numbers are returned either way.",
        ))
        self.addParameter(P.with_help(
            QgsProcessingParameterFileDestination(P.REPORT, "Cross-validation report",
                                                  "HTML files (*.html)", optional=True),
            "An HTML table of the metrics (opens in the Results Viewer).",
        ))
        self.addParameter(P.select_param())
        self.addParameter(P.gate_param())
        self.addParameter(P.base_param())
        for name, label in CV_NUMBER_LABELS.items():
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def validate(self, parameters, context) -> None:
        super().validate(parameters, context)
        chosen = self.parameterAsEnums(parameters, METHODS, context) or [0]
        if "ked" in [CV_METHODS[i][0] for i in chosen] and not self.parameterAsLayerList(
                parameters, P.COVARIATES, context):
            raise QgsProcessingException(
                "Kriging with external drift needs at least one covariate raster: choose "
                "them under 'Covariate rasters', or drop that method."
            )

    def processAlgorithm(self, parameters, context, feedback):
        chosen = self.parameterAsEnums(parameters, METHODS, context) or [0]
        methods = [CV_METHODS[i][0] for i in chosen]
        with self.work_folder() as work:
            args = self.point_args(parameters, context, feedback)
            args += self.variogram_args(parameters, context)
            args += ["--method", ",".join(methods)]
            folds = self.parameterAsString(parameters, P.FOLDS, context)
            if folds:
                args += ["--folds", folds.strip()]
            refit = self.parameterAsBoolean(parameters, REFIT, context)
            if refit:
                args.append("--refit-variogram")
            feedback.pushInfo(variogram_choice(
                self.parameterAsFile(parameters, P.VARIOGRAM, context), refit))
            if {"hybrid", "linear", "ked"} & set(methods):  # ked: the covariates
                args += self.hybrid_args(parameters, context)
            else:
                args += ["--seed", str(self.parameterAsInt(parameters, P.SEED, context))]
                if parameters.get(P.KRIGING_NEIGHBOURS) not in (None, ""):
                    args += ["--kriging-neighbours",
                             str(self.parameterAsInt(parameters, P.KRIGING_NEIGHBOURS, context))]
            units = self.parameterAsEnum(parameters, P.OUTPUT_UNITS, context)
            if units:
                args += ["--output-units", P.OUTPUT_UNIT_CHOICES[units][0]]
            args += ["--output-json", str(work / "cv.json")]
            self.engine("cv", args, feedback, work)
            data = read_json(work / "cv.json")
            dest = self.parameterAsFileOutput(parameters, METRICS, context)
            if dest:
                move_output(work / "cv.json", Path(dest))
        results = {METRICS: dest} if dest else {}
        report = self.parameterAsFileOutput(parameters, P.REPORT, context)
        field = self.value_field(parameters, context)
        if report:
            Path(report).parent.mkdir(parents=True, exist_ok=True)
            Path(report).write_text(metrics_html(data, f"Cross-validation of {field}"),
                                    encoding="utf-8")
            results[P.REPORT] = report
        metrics = data.get("metrics", {})
        for name, (method, key) in CV_NUMBERS.items():
            value = metrics.get(method, {}).get(key) if isinstance(metrics, dict) else None
            if isinstance(value, (int, float)):
                results[name] = float(value)
        for line in metrics_summary(metrics):
            feedback.pushInfo(line)
        return results
