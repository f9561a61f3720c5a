"""The set-up dialog and the variogram explorer, offscreen with pytest-qt."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from qgis.core import QgsSettings
from qgis_helpers import ARTIFACTS, ENGINE_PYTHON, SAMPLE_DATA, needs_engine

from gcnn_rnn.processing import engine as engine_mod
from gcnn_rnn.ui.variogram_models import MODELS, SimpleModel, bessel_k, unit_gamma

# A hand-made variogram document in the engine's format (gstat's Meuse log-zinc model).
MEUSE_DOC = {
    "experimental": {
        "omni": {"lag": [80.0, 160.0, 270.0, 380.0, 500.0, 620.0, 740.0, 870.0, 1000.0],
                 "gamma": [0.12, 0.21, 0.30, 0.38, 0.45, 0.50, 0.55, 0.60, 0.62],
                 "npairs": [41, 212, 320, 412, 470, 510, 520, 480, 470]},
        "directions": [
            {"azimuth": 0, "lag": [150.0, 450.0, 800.0], "gamma": [0.2, 0.4, 0.55],
             "npairs": [50, 120, 140]},
            {"azimuth": 90, "lag": [150.0, 450.0, 800.0], "gamma": [0.25, 0.5, 0.65],
             "npairs": [48, 110, 130]},
        ],
    },
    "model": {"structures": [{"model": "nug", "psill": 0.0507, "range": 0.0, "extra": None},
                             {"model": "sph", "psill": 0.5906, "range": 897.0, "extra": None}],
              "anisotropy": None},
    "text": "0.0507 Nug + 0.5906 Sph(897)",
}


# ---------------------------------------------------------------------- model formulas
def test_explorer_formulas_match_hand_values():
    assert unit_gamma("sph", 448.5, 897.0) == pytest.approx(1.5 * 0.5 - 0.5 * 0.125)
    assert unit_gamma("sph", 2000.0, 897.0) == 1.0
    assert unit_gamma("exp", 300.0, 100.0) == pytest.approx(1 - math.exp(-3))
    assert unit_gamma("gau", 100.0, 100.0) == pytest.approx(1 - math.exp(-1))
    assert unit_gamma("nug", 1e-9, 0.0) == 1.0 and unit_gamma("sph", 0.0, 5.0) == 0.0
    # Matérn with nu = 0.5 is the exponential model; K_0.5(x) = sqrt(pi / (2x)) exp(-x)
    for x in (0.05, 0.7, 3.0, 12.0):
        assert bessel_k(0.5, x) == pytest.approx(math.sqrt(math.pi / (2 * x)) * math.exp(-x),
                                                 rel=1e-10)
        assert unit_gamma("mat", x * 50, 50.0, 0.5) == pytest.approx(1 - math.exp(-x), abs=1e-12)
    # nu = 1.5: 1 - (1 + x) exp(-x)
    assert unit_gamma("mat", 80.0, 40.0, 1.5) == pytest.approx(1 - 3 * math.exp(-2), abs=1e-10)
    assert unit_gamma("hol", 100.0, 100.0) == pytest.approx(1 - math.sin(1.0))
    assert unit_gamma("pow", 4.0, 1.0, 1.5) == pytest.approx(8.0)


def test_simple_model_round_trips_and_writes_engine_text():
    model = SimpleModel.from_dict(MEUSE_DOC["model"])
    assert model == SimpleModel("sph", 0.0507, 0.5906, 897.0, None, 0.0, 1.0)
    assert model.to_text() == "0.0507 Nug + 0.5906 Sph(897)"
    assert model.to_dict() == MEUSE_DOC["model"]
    assert model.gamma(897.0) == pytest.approx(0.0507 + 0.5906)
    # a measurement error (Err) is kept as it is: drawn as a nugget, saved unchanged
    err = SimpleModel.from_dict({"structures": [
        {"model": "err", "psill": 0.02, "range": 0.0, "extra": None},
        {"model": "nug", "psill": 0.03, "range": 0.0, "extra": None},
        {"model": "sph", "psill": 0.59, "range": 897.0, "extra": None}], "anisotropy": None})
    assert err.to_text() == "0.03 Nug + 0.59 Sph(897) + 0.02 Err"
    assert err.gamma(1e-6) == pytest.approx(0.05, abs=1e-6)
    assert SimpleModel.from_dict(err.to_dict()) == err
    anis = SimpleModel("mat", 0.1, 1.0, 300.0, 1.5, 45.0, 0.5)
    assert anis.to_text() == "0.1 Nug + 1 Mat(300, nu=1.5, anis=(45, 0.5))"
    assert SimpleModel.from_dict(anis.to_dict()) == anis
    # along the minor axis the range is halved
    assert anis.gamma(150.0, direction=135.0) == pytest.approx(anis.gamma(300.0, direction=45.0))


def test_explorer_models_agree_with_the_engine_models():
    """Every engine model (run in the engine's Python) equals the explorer's formula."""
    import subprocess

    if not ENGINE_PYTHON:
        pytest.fail("no engine: set GCNN_RNN_PYTHON (make test-qgis does)")
    code = (
        "import json, numpy as np\n"
        "from gcnn_rnn.core.variogram.models import MODELS\n"
        "out = {}\n"
        "for n, c in MODELS.items():\n"
        "    e = 1.5 if n == 'mat' else c.default_extra\n"
        "    out[n] = [e, c.gamma_unit(np.array([10., 120., 399., 900.]), 400., e).tolist()]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([ENGINE_PYTHON, "-c", code], capture_output=True, text=True,
                          env=engine_mod.engine_environment(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    engine_values = json.loads(proc.stdout)
    # every engine model is editable in the explorer, except Err, which is kept as it is
    assert set(engine_values) == set(MODELS) | {"err"}
    for name, (extra, values) in engine_values.items():
        ours = [unit_gamma(name, h, 400.0, extra) for h in (10.0, 120.0, 399.0, 900.0)]
        assert ours == pytest.approx(values, abs=1e-9), name


# ---------------------------------------------------------------------- explorer
def _non_blank(image) -> bool:
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7)}
    return len(colours) > 20


def test_explorer_edits_and_saves_the_model(qtbot, meuse_layer, tmp_path):
    from gcnn_rnn.ui.variogram_explorer import VariogramExplorer

    dialog = VariogramExplorer()
    qtbot.addWidget(dialog)
    dialog.set_source(meuse_layer, "zinc")
    dialog.load_result(MEUSE_DOC)
    assert dialog.model_text.text() == "0.0507 Nug + 0.5906 Sph(897)"
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("exp"))
    dialog.range_.setValue(300.0)
    dialog.nugget.setValue(0.05)
    dialog.ratio.setValue(0.5)
    dialog.azimuth.setValue(30.0)
    assert dialog.model_text.text() == "0.05 Nug + 0.5906 Exp(300, anis=(30, 0.5))"
    saved = dialog.save_model(tmp_path / "edited")
    doc = json.loads(saved.read_text())
    assert saved.name == "edited.json"
    assert doc["text"] == "0.05 Nug + 0.5906 Exp(300, anis=(30, 0.5))"
    assert doc["model"]["structures"][1] == {"model": "exp", "psill": 0.5906, "range": 300.0,
                                             "extra": None}
    assert doc["model"]["anisotropy"]["azimuth"] == 30.0
    assert doc["experimental"] == MEUSE_DOC["experimental"]  # kept for the next session


NESTED = {"structures": [{"model": "nug", "psill": 0.05, "range": 0.0, "extra": None},
                         {"model": "sph", "psill": 0.3, "range": 300.0, "extra": None},
                         {"model": "sph", "psill": 0.25, "range": 1200.0, "extra": None}],
          "anisotropy": None}


def test_nested_model_keeps_its_later_structures():
    model = SimpleModel.from_dict(NESTED)
    assert model.to_dict() == NESTED
    assert model.to_text() == "0.05 Nug + 0.3 Sph(300) + 0.25 Sph(1200)"
    # at h = 600 the first Sph has reached its sill; the second is at x = 0.5
    assert model.gamma(600.0) == pytest.approx(0.05 + 0.3 + 0.25 * (0.75 - 0.0625))
    assert model.gamma(5000.0) == pytest.approx(0.6)


def test_explorer_edits_the_first_structure_of_a_nested_model(qtbot, meuse_layer, tmp_path):
    from gcnn_rnn.ui.variogram_explorer import VariogramExplorer

    dialog = VariogramExplorer()
    qtbot.addWidget(dialog)
    dialog.set_source(meuse_layer, "zinc")
    offered = [dialog.field_combo.itemText(i) for i in range(dialog.field_combo.count())]
    assert "zinc" in offered and "fid" not in offered and "landuse" not in offered
    assert dialog.field_combo.currentField() == "zinc"
    dialog.load_result({**MEUSE_DOC, "model": NESTED, "text": "nested"})
    assert dialog.range_.value() == 300.0 and dialog.psill.value() == 0.3
    assert "0.25 Sph(1200) kept unchanged" in dialog.rest_note.text()
    dialog.range_.setValue(400.0)
    dialog.psill.setValue(0.35)
    assert dialog.model_text.text() == "0.05 Nug + 0.35 Sph(400) + 0.25 Sph(1200)"
    doc = json.loads(dialog.save_model(tmp_path / "nested.json").read_text())
    assert doc["model"]["structures"] == [
        NESTED["structures"][0],
        {"model": "sph", "psill": 0.35, "range": 400.0, "extra": None},
        NESTED["structures"][2]]
    assert doc["text"] == "0.05 Nug + 0.35 Sph(400) + 0.25 Sph(1200)"
    # a simple model afterwards has no leftover structures
    dialog.load_result(MEUSE_DOC)
    assert dialog.rest_note.text() == ""
    dialog.range_.setValue(800.0)
    assert len(dialog.model_document()["model"]["structures"]) == 2


@needs_engine("variogram")
def test_explorer_computes_meuse_variogram_and_saves_screenshot(qtbot, meuse_layer, tmp_path):
    from qgis.core import QgsProject

    from gcnn_rnn.ui.variogram_explorer import VariogramExplorer

    QgsProject.instance().addMapLayer(meuse_layer)  # the layer combo lists project layers
    dialog = VariogramExplorer()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_source(meuse_layer, "zinc")
    assert dialog.layer_combo.currentLayer() is meuse_layer
    dialog.transform_combo.setCurrentIndex(dialog.transform_combo.findData("log"))
    dialog.directional.setChecked(True)
    task = dialog.compute()
    assert task is not None
    qtbot.waitUntil(lambda: dialog.compute_button.isEnabled(), timeout=120_000)
    assert dialog.data.get("experimental"), dialog.status.text()
    # every candidate of the automatic fit with its scores, the winner marked
    assert "Candidates (selected by cv):" in dialog.status.text()
    assert dialog.status.text().count("CV RMSE") == 4 and "<- selected" in dialog.status.text()
    model = dialog.current_model()
    # gstat: 0.0507 Nug + 0.5906 Sph(897) for log(zinc)
    assert model.nugget + model.psill == pytest.approx(0.64, rel=0.15)
    qtbot.wait(200)
    image = dialog.grab().toImage()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "variogram_explorer.png"
    assert image.save(str(shot))
    assert shot.stat().st_size > 5000
    assert _non_blank(image)
    saved = dialog.save_model(tmp_path / "meuse_v.json")
    assert json.loads(saved.read_text())["model"] == dialog.data["model"]  # unedited: exact
    dialog.range_.setValue(700.0)
    edited = json.loads(dialog.save_model(tmp_path / "edited.json").read_text())
    assert edited["model"]["structures"][-1]["range"] == 700.0 and edited["edited"] is True


def test_candidates_text_lists_every_candidate_and_marks_the_winner():
    from gcnn_rnn.ui.variogram_explorer import candidates_text

    fit = {"selected_by": "cv", "selected": "0.1 Nug + 1 Exp(300)",
           "candidates": [{"text": "0.1 Nug + 1 Sph(800)", "sse": 2e-5, "cv_rmse": 0.4012,
                           "msdr": 0.91},
                          {"text": "0.1 Nug + 1 Exp(300)", "sse": 3e-5, "cv_rmse": 0.3987,
                           "msdr": 1.02},
                          {"text": "0.1 Nug + 1 Gau(90)", "sse": 4e-5, "cv_rmse": 0.47,
                           "msdr": 0.8, "cv_complete": False,
                           "cv_scheme": "10-fold, 2000 of 9000 samples, dropped after 500 samples"}]}
    lines = candidates_text(fit).splitlines()
    assert lines[0] == "Candidates (selected by cv):"
    assert lines[1] == "0.1 Nug + 1 Sph(800): SSE 2e-05, CV RMSE 0.4012, MSDR 0.91"
    assert lines[2].endswith("CV RMSE 0.3987, MSDR 1.02  <- selected")
    assert lines[3].endswith("(dropped early: 10-fold, 2000 of 9000 samples, dropped after "
                             "500 samples)")
    assert candidates_text({"candidates": fit["candidates"][:1]}) == ""


def test_painter_fallback_draws(qtbot):
    from gcnn_rnn.ui.plot_widget import PainterPlot, Series

    plot = PainterPlot()
    qtbot.addWidget(plot)
    plot.resize(500, 350)
    plot.plot([Series("exp", [1, 2, 3], [0.2, 0.5, 0.6]),
               Series("model", [0, 1, 2, 3], [0, 0.3, 0.5, 0.6], points=False, colour="#d62728")])
    assert _non_blank(plot.grab().toImage())


# ---------------------------------------------------------------------- set-up dialog
def test_setup_dialog_reports_the_engine_and_stores_an_existing_python(qtbot, tmp_path):
    from gcnn_rnn.ui.setup_dialog import SetupDialog

    if not ENGINE_PYTHON:
        pytest.fail("no engine: set GCNN_RNN_PYTHON (make test-qgis does)")
    dialog = SetupDialog(detect=False)
    qtbot.addWidget(dialog)
    assert dialog.refresh_status()
    assert "OK" in dialog.status.text() and "environment" in dialog.status.text()
    assert not dialog.use_existing(str(tmp_path / "nope"))
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: gcnn_rnn' >&2\nexit 1\n")
    broken.chmod(0o755)
    assert not dialog.use_existing(str(broken))
    assert "cannot run the engine" in dialog.log.toPlainText()
    assert engine_mod.setting_python() == ""
    assert dialog.use_existing(ENGINE_PYTHON)
    assert QgsSettings().value(engine_mod.SETTINGS_KEY) == ENGINE_PYTHON
    assert dialog.use_existing("")
    assert engine_mod.setting_python() == ""


def test_setup_dialog_doctor(qtbot):
    from gcnn_rnn.ui.setup_dialog import SetupDialog

    if not ENGINE_PYTHON:
        pytest.fail("no engine: set GCNN_RNN_PYTHON (make test-qgis does)")
    dialog = SetupDialog(detect=False)
    qtbot.addWidget(dialog)
    dialog.run_doctor()
    qtbot.waitUntil(lambda: dialog.doctor_button.isEnabled(), timeout=180_000)
    log = dialog.log.toPlainText()
    assert "numpy 2." in log and "TensorFlow:" in log


def test_setup_task_creates_a_venv_and_streams_pip(qtbot, tmp_path):
    """A real venv and a real (offline) pip install of a tiny local project."""
    from gcnn_rnn.ui.setup_dialog import SetupDialog

    project = tmp_path / "tinypkg"
    (project / "tinypkg").mkdir(parents=True)
    (project / "tinypkg" / "__init__.py").write_text("VALUE = 7\n")
    (project / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='tinypkg', version='1.0', "
        "packages=['tinypkg'])\n")
    dialog = SetupDialog(detect=False)
    qtbot.addWidget(dialog)
    dialog.base_python.addItem("/usr/bin/python3", "/usr/bin/python3")
    venv = tmp_path / "venv"
    task = dialog.start_setup(
        venv_dir=str(venv),
        pip_args=["--no-index", "--no-build-isolation", str(project)],
        run_doctor=False,
        upgrade_pip=False,  # needs the network
    )
    assert task is not None
    qtbot.waitUntil(lambda: dialog.create_button.isEnabled(), timeout=300_000)
    log = dialog.log.toPlainText()
    assert task.error == "", log
    assert "Successfully installed tinypkg" in log
    assert dialog.progress.value() == 100
    import subprocess

    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.VALUE)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "7"


def test_setup_task_reports_a_failing_step(qtbot, tmp_path):
    from gcnn_rnn.ui.setup_dialog import SetupDialog

    dialog = SetupDialog(detect=False)
    qtbot.addWidget(dialog)
    dialog.base_python.addItem("/usr/bin/python3", "/usr/bin/python3")
    task = dialog.start_setup(venv_dir=str(tmp_path / "venv"),
                              pip_args=["--no-index", "surely-not-a-package-gcnn"],
                              run_doctor=False, upgrade_pip=False)
    qtbot.waitUntil(lambda: dialog.create_button.isEnabled(), timeout=300_000)
    assert "failed with exit code" in task.error
    assert "set-up failed" in dialog.log.toPlainText()


def test_explorer_hands_the_engine_a_readable_file(meuse_layer, tmp_path):
    from qgis.core import QgsFeatureRequest, QgsVectorLayer

    from gcnn_rnn.ui.variogram_explorer import layer_source_for_engine

    path, layer_name = layer_source_for_engine(meuse_layer, tmp_path)
    assert Path(path).resolve() == (SAMPLE_DATA / "meuse.gpkg").resolve()
    assert layer_name == "meuse"
    memory = meuse_layer.materialize(QgsFeatureRequest().setLimit(25))
    path, layer_name = layer_source_for_engine(memory, tmp_path)
    exported = QgsVectorLayer(f"{path}|layername={layer_name}", "x", "ogr")
    assert exported.featureCount() == 25
    assert exported.crs().authid() == "EPSG:28992"
    assert sorted(f["zinc"] for f in exported.getFeatures()) == sorted(
        f["zinc"] for f in memory.getFeatures())


@needs_engine("krige")
def test_setup_dialog_scheduler_reaches_every_algorithm(qtbot, provider, meuse_layer, tmp_path):
    """The Dask scheduler setting goes to the engine of every algorithm: an unreachable one
    makes ordinary kriging fail quickly with the engine's message; cleared, it runs locally."""
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    import processing
    from gcnn_rnn.ui.setup_dialog import SetupDialog

    dialog = SetupDialog(detect=False)
    qtbot.addWidget(dialog)
    params = {"INPUT": meuse_layer, "FIELD": "zinc", "CELL_SIZE": 200,
              "ESTIMATE": str(tmp_path / "e.tif"), "VARIANCE": str(tmp_path / "v.tif")}
    try:
        dialog.scheduler.setText("tcp://127.0.0.1:9")
        dialog.use_scheduler(dialog.scheduler.text())
        assert QgsSettings().value(engine_mod.SCHEDULER_KEY) == "tcp://127.0.0.1:9"
        assert engine_mod.engine_environment()["GCNN_RNN_SCHEDULER"] == "tcp://127.0.0.1:9"
        with pytest.raises(QgsProcessingException, match="cannot reach the Dask scheduler"):
            processing.run("gcnnrnn:ordinarykriging", params, feedback=QgsProcessingFeedback())
        assert not (tmp_path / "e.tif").exists()
    finally:
        dialog.use_scheduler("")
    assert "GCNN_RNN_SCHEDULER" not in engine_mod.engine_environment() or \
        engine_mod.engine_environment()["GCNN_RNN_SCHEDULER"] == os.environ.get(
            "GCNN_RNN_SCHEDULER")
    processing.run("gcnnrnn:ordinarykriging", params, feedback=QgsProcessingFeedback())
    assert (tmp_path / "e.tif").is_file()
