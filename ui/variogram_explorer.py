"""Variogram explorer: experimental variogram from the engine, interactive model, save file."""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsFieldProxyModel,
    QgsFields,
    QgsMapLayerProxyModel,
    QgsProject,
    QgsProviderRegistry,
    QgsUnitTypes,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.gui import QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from ..processing.algorithms.checks import key_field_indexes, preferred_value_field
from ..processing.constants import TRANSFORMS
from .engine_task import EngineTask
from .plot_widget import COLOURS, Series, make_plot_widget
from .variogram_models import MODELS, SimpleModel

DIRECTIONS = (0.0, 45.0, 90.0, 135.0)


def _enum(owner, new: str, member: str, old_owner, old: str):
    group = getattr(owner, new, None)
    return getattr(group, member) if group is not None and hasattr(group, member) \
        else getattr(old_owner, old)


def layer_source_for_engine(layer: QgsVectorLayer, folder: Path) -> tuple[str, str | None]:
    """A file the engine can read for ``layer``: its own file, or a GeoPackage export."""
    if layer.providerType() == "ogr" and not layer.subsetString():
        parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
        path = parts.get("path")
        if path and Path(path).is_file():
            return path, parts.get("layerName") or None
    out = folder / "points.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "points"
    writer = getattr(QgsVectorFileWriter, "writeAsVectorFormatV3", None)
    if writer is not None:
        err = writer(layer, str(out), QgsProject.instance().transformContext(), options)
    else:  # pragma: no cover - QGIS < 3.20
        err = QgsVectorFileWriter.writeAsVectorFormatV2(
            layer, str(out), QgsProject.instance().transformContext(), options)
    if err[0] != QgsVectorFileWriter.WriterError.NoError:
        raise RuntimeError(f"cannot export layer {layer.name()!r}: {err[1]}")
    return str(out), "points"


def candidates_text(fit: dict) -> str:
    """Every candidate model of an ``auto`` fit with its SSE, cross-validation RMSE and MSDR,
    the selected one marked (empty for a single model)."""
    cands = fit.get("candidates") or []
    if len(cands) < 2:
        return ""

    def num(v) -> str:
        return "-" if v is None else f"{float(v):.4g}"

    lines = [f"Candidates (selected by {fit.get('selected_by', 'sse')}):"]
    for c in cands:
        mark = "  <- selected" if c.get("text") == fit.get("selected") else ""
        if c.get("cv_complete") is False:  # raced out: its CV RMSE is from a first round
            mark = "  (dropped early: {})".format(c.get("cv_scheme"))
        lines.append(f"{c.get('text', '?')}: SSE {num(c.get('sse'))}, CV RMSE "
                     f"{num(c.get('cv_rmse', c.get('loo_rmse')))}, MSDR {num(c.get('msdr'))}"
                     f"{mark}")
    return "\n".join(lines)


def experimental_series(data: dict) -> list[tuple[str, list, list, list]]:
    """``(label, lags, gammas, npairs)`` for the omnidirectional and directional variograms."""
    exp = data.get("experimental", {}) if isinstance(data, dict) else {}
    out = []

    def triple(d):
        lags = [float(v) for v in d.get("lag", d.get("lags", []))]
        gam = [float(v) for v in d.get("gamma", [])]
        n = [int(v) for v in d.get("npairs", d.get("counts", [0] * len(lags)))]
        keep = [i for i, (g, c) in enumerate(zip(gam, n or [1] * len(gam)))
                if c > 0 and math.isfinite(g)]
        return [lags[i] for i in keep], [gam[i] for i in keep], [n[i] for i in keep] if n else []

    if isinstance(exp.get("omni"), dict):
        out.append(("omnidirectional", *triple(exp["omni"])))
    directions = exp.get("directions") or []
    if isinstance(directions, dict):
        directions = [dict(v, azimuth=float(k)) if isinstance(v, dict) else v
                      for k, v in directions.items()]
    for d in directions:
        if isinstance(d, dict):
            az = d.get("azimuth", d.get("direction", "?"))
            out.append((f"{az}°", *triple(d)))
    return out


def rounded_numbers(text: str) -> str:
    """Every decimal number in ``text`` to 4 significant digits (``449.764897`` → ``449.8``)."""
    return re.sub(r"\d+\.\d+(?:e[-+]?\d+)?", lambda m: f"{float(m.group()):.4g}", text)


class VariogramExplorer(QDialog):
    """Choose layer and field, compute the experimental variogram, edit and save the model."""

    def __init__(self, parent=None, iface=None):
        super().__init__(parent)
        self.iface = iface
        self.setWindowTitle("GCNN-RNN — Variogram explorer")
        self.resize(980, 640)
        self.data: dict = {}
        self.task: EngineTask | None = None
        self._updating = False
        self._edited = False
        #: Later structures of a nested model: kept unchanged (only the first is edited).
        self._rest: tuple = ()

        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(_enum(Qgis, "LayerFilter", "PointLayer",
                                          QgsMapLayerProxyModel, "PointLayer"))
        self.field_combo = QgsFieldComboBox()
        self.field_combo.setFilters(_enum(Qgis, "FieldFilter", "Numeric",
                                          QgsFieldProxyModel, "Numeric"))
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self._layer_changed(self.layer_combo.currentLayer())
        self.transform_combo = QComboBox()
        for value, label in TRANSFORMS:
            self.transform_combo.addItem(label, value)
        self.directional = QCheckBox("Directional (0°, 45°, 90°, 135°)")
        self.compute_button = QPushButton("Compute variogram")
        self.compute_button.clicked.connect(lambda: self.compute())
        self.fit_type_button = QPushButton("Fit this model type")
        self.fit_type_button.setToolTip("Fit the model type chosen under 'Type' to the "
                                        "experimental variogram (the other fields start over)")
        self.fit_type_button.clicked.connect(
            lambda: self.compute(models=[self.model_combo.currentData()]))
        self.status = QLabel("Choose a point layer and a numeric field.")
        self.status.setWordWrap(True)

        self.plot = make_plot_widget(self)

        self.model_combo = QComboBox()
        for name, (label, _, _) in MODELS.items():
            if name != "nug":
                self.model_combo.addItem(label, name)
        self.nugget = self._spin(0.0)
        self.psill = self._spin(1.0)
        self.range_ = self._spin(1.0)
        self.extra = self._spin(0.5, decimals=3, maximum=100.0)
        self.extra_label = QLabel("Shape")
        self.azimuth = self._spin(0.0, decimals=1, maximum=180.0)
        self.ratio = self._spin(1.0, decimals=3, maximum=1.0)
        self.ratio.setMinimum(0.01)
        self.model_text = QLabel("")
        self.model_text.setWordWrap(True)
        self.rest_note = QLabel("")
        self.rest_note.setWordWrap(True)
        self.model_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for widget in (self.nugget, self.psill, self.range_, self.extra, self.azimuth,
                       self.ratio):
            widget.valueChanged.connect(self.redraw)
        self.model_combo.currentIndexChanged.connect(self._model_changed)

        form = QFormLayout()
        form.addRow("Point layer", self.layer_combo)
        form.addRow("Field", self.field_combo)
        form.addRow("Transform", self.transform_combo)
        form.addRow(self.directional)
        form.addRow(self.compute_button)
        model_box = QGroupBox("Model")
        mform = QFormLayout(model_box)
        mform.addRow("Type", self.model_combo)
        mform.addRow(self.fit_type_button)
        mform.addRow("Nugget", self.nugget)
        mform.addRow("Partial sill", self.psill)
        mform.addRow("Range", self.range_)
        mform.addRow(self.extra_label, self.extra)
        mform.addRow("Anisotropy azimuth (°)", self.azimuth)
        mform.addRow("Minor/major ratio", self.ratio)
        mform.addRow(self.model_text)
        mform.addRow(self.rest_note)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(model_box)
        left.addWidget(self.status)
        left.addStretch(1)
        self.save_button = QPushButton("Save model…")
        self.save_button.clicked.connect(self._save_clicked)
        self.save_button.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        left.addWidget(buttons)
        top = QHBoxLayout(self)
        top.addLayout(left, 0)
        top.addWidget(self.plot, 1)
        self._model_changed()

    @staticmethod
    def _spin(value: float, decimals: int = 6, maximum: float = 1e12) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setDecimals(decimals)
        spin.setRange(0.0, maximum)
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        return spin

    # ------------------------------------------------------------------ engine
    def set_source(self, layer, field: str) -> None:
        self.layer_combo.setLayer(layer)
        self._layer_changed(layer)
        self.field_combo.setField(field)

    def _layer_changed(self, layer) -> None:
        """Offer the layer's numeric fields, without its feature id / primary key."""
        fields = QgsFields()
        if layer is not None:
            keys = key_field_indexes(layer, layer.fields())
            for i, field in enumerate(layer.fields()):
                if field.isNumeric() and i not in keys:
                    fields.append(field)
        self.field_combo.setFields(fields)
        preferred = preferred_value_field(layer)
        if preferred:
            self.field_combo.setField(preferred)

    def compute(self, models: list[str] | None = None) -> EngineTask | None:
        """Start ``gcnn-rnn variogram`` for the chosen layer and field in a background task
        (``models``: the candidate model types; default: the engine's)."""
        layer, field = self.layer_combo.currentLayer(), self.field_combo.currentField()
        if layer is None or not field:
            self.status.setText("Choose a point layer and a numeric field first.")
            return None
        folder = Path(tempfile.mkdtemp(prefix="gcnn_rnn_explorer_"))
        try:
            path, layer_name = layer_source_for_engine(layer, folder)
        except RuntimeError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self.status.setText(str(exc))
            return None
        out = folder / "variogram.json"
        args = ["--input", path, "--field", field,
                "--transform", self.transform_combo.currentData()]
        if layer_name:
            args += ["--layer", layer_name]
        if self.directional.isChecked():
            args += ["--directions", ",".join(f"{d:g}" for d in DIRECTIONS)]
        if models:
            args += ["--models", ",".join(models)]
        args += ["--output-json", str(out)]
        self.task = EngineTask("GCNN-RNN variogram", "variogram", args, [str(folder)])
        self.task.done.connect(lambda ok, t=self.task, o=out: self._finished(ok, t, o))
        self.compute_button.setEnabled(False)
        self.fit_type_button.setEnabled(False)
        self.status.setText(f"Computing the variogram of {field!r}…")
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def _finished(self, ok: bool, task: EngineTask, out: Path) -> None:
        try:
            if not ok:
                self.status.setText(f"The engine failed: {task.error or 'cancelled'}")
                return
            try:
                data = json.loads(out.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                self.status.setText(f"Cannot read the engine's variogram: {exc}")
                return
            self.load_result(data)
        finally:
            shutil.rmtree(out.parent, ignore_errors=True)
            self.compute_button.setEnabled(True)
            self.fit_type_button.setEnabled(True)

    # ------------------------------------------------------------------ model
    def load_result(self, data: dict) -> None:
        """Show an engine variogram JSON (experimental variogram and fitted model)."""
        self.data = dict(data)
        model = SimpleModel.from_dict(data.get("model", {}))
        self._rest = model.rest
        self.rest_note.setText(
            "Nested model: the fields above edit the first structure; "
            + " + ".join(s.to_text() for s in model.rest) + " kept unchanged."
            if model.rest else "")
        self._updating = True
        try:
            idx = self.model_combo.findData(model.model)
            self.model_combo.setCurrentIndex(max(idx, 0))
            self.nugget.setValue(model.nugget)
            self.psill.setValue(model.psill)
            self.range_.setValue(model.range_)
            if model.extra is not None:
                self.extra.setValue(model.extra)
            self.azimuth.setValue(model.azimuth % 180.0)
            self.ratio.setValue(model.ratio)
        finally:
            self._updating = False
        self.save_button.setEnabled(True)
        self._model_changed()
        # 4 significant digits (the engine's text has 16-digit floats; the saved file keeps them)
        text = (f"Fitted: {rounded_numbers(data['text'])}" if data.get("text")
                else "Variogram loaded.")
        table = candidates_text(data.get("fit") or {})
        self.status.setText(text + ("\n" + table if table else ""))
        self._edited = False  # the spin boxes round; unedited, the exact fitted model is saved

    def current_model(self) -> SimpleModel:
        name = self.model_combo.currentData()
        extra = self.extra.value() if MODELS[name][1] is not None else None
        return SimpleModel(name, self.nugget.value(), self.psill.value(),
                           max(self.range_.value(), 1e-12), extra, self.azimuth.value(),
                           self.ratio.value(), self._rest)

    def _model_changed(self) -> None:
        name = self.model_combo.currentData()
        shape = MODELS[name][1]
        self.extra.setEnabled(shape is not None)
        self.extra_label.setText(shape or "Shape")
        self.redraw()

    def redraw(self) -> None:
        if self._updating:
            return
        self._edited = True
        model = self.current_model()
        self.model_text.setText(model.to_text())
        series: list[Series] = []
        emp = experimental_series(self.data)
        hmax = max([max(s[1]) for s in emp if s[1]] or [model.range_ * 1.5])
        xs = [hmax * 1.05 * i / 200 for i in range(1, 201)]
        for i, (label, lags, gam, npairs) in enumerate(emp):
            colour = COLOURS[i % len(COLOURS)]
            series.append(Series(label, lags, gam, True, colour, npairs))
            direction = None
            if label != "omnidirectional" and model.ratio >= 1.0:
                continue  # isotropic: one model curve for every direction
            if label != "omnidirectional":
                try:
                    direction = float(label.rstrip("°"))
                except ValueError:
                    direction = None
            series.append(Series(f"model {label}", xs, [model.gamma(h, direction) for h in xs],
                                 False, colour))
        if not emp:
            series.append(Series("model", xs, [model.gamma(h) for h in xs], False, COLOURS[0]))
        field = self.field_combo.currentField()
        self.plot.plot(series, title=f"{field}: {model.to_text()}",
                       xlabel=f"lag distance ({self.distance_units()})")

    def distance_units(self) -> str:
        """The unit of the layer's CRS distances, e.g. "meters"."""
        layer = self.layer_combo.currentLayer()
        if layer is None or not layer.crs().isValid():
            return "layer units"
        return QgsUnitTypes.toString(layer.crs().mapUnits())

    def model_document(self) -> dict:
        """The loaded engine JSON with the edited ``model`` and ``text``."""
        doc = dict(self.data)
        if self._edited or "model" not in doc:
            model = self.current_model()
            doc["model"] = model.to_dict()
            doc["text"] = model.to_text()
            doc["edited"] = True
            for key in ("nugget", "sill"):  # summaries of the old model
                doc.pop(key, None)
        return doc

    def save_model(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_suffix(".json")
        path.write_text(json.dumps(self.model_document(), indent=2), encoding="utf-8")
        self.status.setText(f"Saved {path}")
        return path

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save variogram model", "",
                                              "Variogram model (*.json)")
        if path:
            self.save_model(path)

    def closeEvent(self, event):  # noqa: N802 - Qt API
        if self.task is not None:
            try:
                self.task.cancel()
            except RuntimeError:  # already deleted by the task manager
                pass
        super().closeEvent(event)
