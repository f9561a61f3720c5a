"""Every algorithm through processing.run on the Meuse data, checks, styling, cancel, crash."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis_helpers import (
    MEUSE,
    SAMPLE_DATA,
    engine_cli,
    ensure_provider,
    fake_engine_python,
    needs_engine,
    read_raster,
)


@pytest.fixture(autouse=True)
def _provider(provider):
    return provider


def run(alg_id, params, feedback=None, context=None):
    import processing

    return processing.run(alg_id, params, feedback=feedback or QgsProcessingFeedback(),
                          context=context)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("gcnn_rnn_*") if p.is_dir()]


# ---------------------------------------------------------------------- checks (no engine)
def test_geographic_target_crs_is_refused_with_a_utm_suggestion(tmp_path):
    # (points in degrees are reprojected to UTM by default: test_user_report.py, parity)
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=zinc:double", "geo", "memory")
    feats = []
    for i, (x, y) in enumerate([(5.73, 50.96), (5.74, 50.97), (5.75, 50.98)]):
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromWkt(f"POINT({x} {y})"))
        f.setAttribute("zinc", 100.0 + i)
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    with pytest.raises(QgsProcessingException, match="geographic.*EPSG:32631"):
        run("gcnnrnn:ordinarykriging", {"INPUT": layer, "FIELD": "zinc", "CELL_SIZE": 0.01,
                                        "REPROJECT": "EPSG:4258",
                                        "ESTIMATE": "TEMPORARY_OUTPUT",
                                        "VARIANCE": "TEMPORARY_OUTPUT"})


def test_non_numeric_field_is_refused(meuse_layer):
    with pytest.raises(QgsProcessingException, match="not numeric.*numeric fields: .*zinc"):
        run("gcnnrnn:fitvariogram", {"INPUT": meuse_layer, "FIELD": "landuse",
                                     "VARIOGRAM": "TEMPORARY_OUTPUT"})


def test_too_large_grid_is_refused_with_a_cell_size_that_fits(meuse_layer):
    # kriging streams its grid (issue 13): memory holds stripes, not the grid; 0.001 m is
    # 2.8 million columns, whose stripes alone need 14 GiB of memory
    with pytest.raises(QgsProcessingException, match="cell size of at least"):
        run("gcnnrnn:ordinarykriging", {"INPUT": meuse_layer, "FIELD": "zinc",
                                        "CELL_SIZE": 0.001, "ESTIMATE": "TEMPORARY_OUTPUT",
                                        "VARIANCE": "TEMPORARY_OUTPUT"})


def test_grid_over_the_node_ceiling_is_refused_before_the_engine_starts(meuse_layer,
                                                                         monkeypatch):
    # 0.05 m on Meuse: 2800 m / 0.05 x 3900 m / 0.05, about 4.3e9 cells, over the engine's
    # 2e9 ceiling (issue 11, rows 139/140); the message names no CLI flag (issue 12, D11).
    # Its 35 GB of rasters would be refused for disk first on a small disk: give it room.
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**50, 0, 2**50))
    with pytest.raises(QgsProcessingException, match=r"over the limit of 2,000,000,000 cells"
                                                     r".*cell size of at least 0\.07") as info:
        run("gcnnrnn:ordinarykriging", {"INPUT": meuse_layer, "FIELD": "zinc",
                                        "CELL_SIZE": 0.05, "ESTIMATE": "TEMPORARY_OUTPUT",
                                        "VARIANCE": "TEMPORARY_OUTPUT"})
    assert "--" not in str(info.value)


def test_bad_folds_are_refused(meuse_layer):
    # (a missing cell size now defaults from the sample spacing: test_user_report.py, D6)
    with pytest.raises(QgsProcessingException, match="folds must be"):
        run("gcnnrnn:crossvalidate", {"INPUT": meuse_layer, "FIELD": "zinc", "FOLDS": "1",
                                      "METRICS": "TEMPORARY_OUTPUT"})


def test_external_drift_without_covariates_is_refused(meuse_layer):
    with pytest.raises(QgsProcessingException, match="external drift needs at least one "
                                                     "covariate raster"):
        run("gcnnrnn:crossvalidate", {"INPUT": meuse_layer, "FIELD": "zinc", "METHODS": [0, 3],
                                      "FOLDS": "5", "METRICS": "TEMPORARY_OUTPUT"})


def test_missing_engine_is_a_clear_message(meuse_layer, monkeypatch, tmp_path):
    from qgis.core import QgsApplication

    monkeypatch.setenv("GCNN_RNN_PYTHON", str(tmp_path / "no-engine" / "python"))
    alg = QgsApplication.processingRegistry().createAlgorithmById("gcnnrnn:ordinarykriging")
    ok, message = alg.canExecute()
    assert not ok and "Set up engine" in message and "GCNN_RNN_PYTHON" in message
    with pytest.raises(QgsProcessingException, match="Set up engine") as info:
        run("gcnnrnn:ordinarykriging", {"INPUT": meuse_layer, "FIELD": "zinc",
                                        "CELL_SIZE": 100, "ESTIMATE": str(tmp_path / "e.tif"),
                                        "VARIANCE": str(tmp_path / "v.tif")})
    assert "Traceback" not in str(info.value)  # the message itself, not a Python traceback
    assert not (tmp_path / "e.tif").exists()


# ---------------------------------------------------------------------- fake engine
def test_cancel_stops_within_two_seconds_and_leaves_no_outputs(meuse_layer, monkeypatch,
                                                               tmp_path):
    from qgis.core import QgsProcessingUtils

    monkeypatch.setenv("GCNN_RNN_PYTHON", str(fake_engine_python(tmp_path, "stubborn")))
    feedback = QgsProcessingFeedback()
    cancelled_at = []

    def cancel_when_running():
        deadline = time.monotonic() + 30
        while feedback.progress() <= 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        feedback.cancel()
        cancelled_at.append(time.monotonic())

    threading.Thread(target=cancel_when_running, daemon=True).start()
    est, var = tmp_path / "out" / "est.tif", tmp_path / "out" / "var.tif"
    with pytest.raises(QgsProcessingException, match="cancel"):
        run("gcnnrnn:ordinarykriging", {"INPUT": meuse_layer, "FIELD": "zinc",
                                        "CELL_SIZE": 100, "ESTIMATE": str(est),
                                        "VARIANCE": str(var)}, feedback)
    assert time.monotonic() - cancelled_at[0] < 2.0
    assert not est.exists() and not var.exists()
    assert temp_files(Path(QgsProcessingUtils.tempFolder())) == []


def test_engine_killed_by_sigkill_is_a_clear_error(meuse_layer, monkeypatch, tmp_path):
    monkeypatch.setenv("GCNN_RNN_PYTHON", str(fake_engine_python(tmp_path, "crash")))
    est = tmp_path / "est.tif"
    with pytest.raises(QgsProcessingException, match=r"crashed \(killed by signal 9\)") as info:
        run("gcnnrnn:ordinarykriging", {"INPUT": meuse_layer, "FIELD": "zinc",
                                        "CELL_SIZE": 100, "ESTIMATE": str(est),
                                        "VARIANCE": str(tmp_path / "var.tif")})
    assert "fatal: about to be killed" in str(info.value)  # the tail of the engine's stderr
    assert "Traceback" not in str(info.value)
    assert not est.exists()


# ---------------------------------------------------------------------- real engine
@pytest.fixture(scope="module")
def meuse_variogram(tmp_path_factory, qgis_processing):
    if not (Path(SAMPLE_DATA.parent / "core" / "cli" / "variogram_cmd.py")).exists():
        pytest.fail("engine command 'variogram' is missing from this checkout")
    ensure_provider()
    out = tmp_path_factory.mktemp("vario") / "meuse_v.json"
    res = run("gcnnrnn:fitvariogram", {"INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1,
                                       "VARIOGRAM": str(out)})
    return res, out


@needs_engine("variogram")
def test_fitvariogram_recovers_the_gstat_meuse_model(meuse_variogram, tmp_path):
    res, out = meuse_variogram
    assert Path(res["VARIOGRAM"]) == out and out.is_file()
    # gstat: 0.0507 Nug + 0.5906 Sph(897)
    assert res["SILL"] == pytest.approx(0.6413, rel=0.1)
    assert res["NUGGET"] == pytest.approx(0.0507, abs=0.05)
    assert res["MODEL_TEXT"]
    cli = tmp_path / "cli.json"
    engine_cli("variogram", ["--input", str(SAMPLE_DATA / "meuse.gpkg"), "--layer", "meuse",
                             "--field", "zinc", "--transform", "log", "--output-json", cli])
    import json

    assert json.loads(cli.read_text())["model"] == json.loads(out.read_text())["model"]


@needs_engine("variogram")
def test_selected_features_and_memory_layers_reach_the_engine(tmp_path):
    import json

    from qgis.core import QgsProcessingFeatureSourceDefinition

    layer = QgsVectorLayer(MEUSE, "meuse", "ogr")
    QgsProject.instance().addMapLayer(layer)
    layer.selectByIds([f.id() for f in layer.getFeatures()][:70])
    out = tmp_path / "sel.json"
    try:
        run("gcnnrnn:fitvariogram", {
            "INPUT": QgsProcessingFeatureSourceDefinition(layer.id(), True), "FIELD": "zinc",
            "VARIOGRAM": str(out)})
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    assert json.loads(out.read_text())["n"] == 70
    layer = QgsVectorLayer(MEUSE, "meuse", "ogr")
    memory = layer.materialize(QgsFeatureRequest().setLimit(40))
    assert memory.providerType() == "memory"
    run("gcnnrnn:fitvariogram", {"INPUT": memory, "FIELD": "zinc", "VARIOGRAM": str(out)})
    assert json.loads(out.read_text())["n"] == 40


@needs_engine("variogram", "krige")
def test_ordinarykriging_equals_the_cli_and_is_georeferenced(meuse_variogram, tmp_path):
    _, vfile = meuse_variogram
    est, var = tmp_path / "est.tif", tmp_path / "var.tif"
    res = run("gcnnrnn:ordinarykriging", {
        "INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1, "VARIOGRAM": str(vfile),
        "NEIGHBOURS": 16, "CELL_SIZE": 100, "ESTIMATE": str(est), "VARIANCE": str(var)})
    assert res["ESTIMATE"] == str(est) and res["VARIANCE"] == str(var)
    assert est.with_suffix(".qml").is_file()
    cli = tmp_path / "cli"
    engine_cli("krige", ["--input", str(SAMPLE_DATA / "meuse.gpkg"), "--layer", "meuse",
                         "--field", "zinc", "--transform", "log", "--variogram", vfile,
                         "--neighbours", 16, "--cell-size", 100.0, "--output-dir", cli])
    for ours, theirs in ((est, cli / "kriging_estimate.tif"), (var, cli / "kriging_variance.tif")):
        a, gt, epsg, nodata, bands = read_raster(ours)
        b, gt2, _, _, _ = read_raster(theirs)
        assert epsg == "28992" and nodata == -9999 and bands == 1
        assert gt == gt2 and gt[1] == 100.0 and gt[5] == -100.0
        np.testing.assert_array_equal(a, b)
    layer = QgsRasterLayer(str(est), "est")
    extent = layer.extent()
    assert extent.xMinimum() <= 178605 and extent.xMaximum() >= 181390
    a, *_ = read_raster(var)
    assert (a[a != -9999] >= 0).all()


@needs_engine("krige")
def test_krigingexternaldrift_equals_the_cli(tmp_path):
    dist = str(SAMPLE_DATA / "meuse_dist.tif")
    est, var = tmp_path / "est.tif", tmp_path / "var.tif"
    res = run("gcnnrnn:krigingexternaldrift", {
        "INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1, "COVARIATES": [dist], "DRIFT": "x,y",
        "NEIGHBOURS": 24, "TEMPLATE": dist, "ESTIMATE": str(est), "VARIANCE": str(var)})
    assert res["ESTIMATE"] == str(est) and est.with_suffix(".qml").is_file()
    assert var.with_suffix(".qml").is_file()
    cli = tmp_path / "cli"
    engine_cli("krige", ["--input", str(SAMPLE_DATA / "meuse.gpkg"), "--layer", "meuse",
                         "--field", "zinc", "--transform", "log", "--covariates", dist,
                         "--drift", "x,y", "--neighbours", 24, "--template", dist,
                         "--output-dir", cli])
    a_dist, *_ = read_raster(dist)
    for ours, theirs in ((est, cli / "kriging_estimate.tif"), (var, cli / "kriging_variance.tif")):
        a, gt, epsg, nodata, _ = read_raster(ours)
        b, gt2, *_ = read_raster(theirs)
        assert epsg == "28992" and nodata == -9999 and gt == gt2
        np.testing.assert_array_equal(a, b)
        # nodata exactly where the covariate has none
        np.testing.assert_array_equal(a == -9999, a_dist == -9999)
    from osgeo import gdal

    assert "kriging with external drift" in gdal.Open(str(est)).GetRasterBand(1).GetDescription()


@needs_engine("krige")
def test_ordinarykriging_block_cell_equals_the_cli(tmp_path):
    est = tmp_path / "est.tif"
    run("gcnnrnn:ordinarykriging", {
        "INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1, "OUTPUT_UNITS": 1,
        "VARIOGRAM": "", "NEIGHBOURS": 16, "CELL_SIZE": 200, "BLOCK": "cell",
        "ESTIMATE": str(est), "VARIANCE": "TEMPORARY_OUTPUT"})
    cli = tmp_path / "cli"
    engine_cli("krige", ["--input", str(SAMPLE_DATA / "meuse.gpkg"), "--layer", "meuse",
                         "--field", "zinc", "--transform", "log", "--output-units",
                         "transformed", "--neighbours", 16, "--cell-size", 200.0,
                         "--block", "200,200", "--output-dir", cli])
    a, *_ = read_raster(est)
    b, *_ = read_raster(cli / "kriging_estimate.tif")
    np.testing.assert_array_equal(a, b)
    point = tmp_path / "point"
    engine_cli("krige", ["--input", str(SAMPLE_DATA / "meuse.gpkg"), "--layer", "meuse",
                         "--field", "zinc", "--transform", "log", "--output-units",
                         "transformed", "--neighbours", 16, "--cell-size", 200.0,
                         "--output-dir", point])
    c, *_ = read_raster(point / "kriging_estimate.tif")
    assert not np.array_equal(a, c)  # block means differ from the values at the centres


@pytest.mark.parametrize("params,message", [
    ({}, "needs covariate rasters or coordinate drift"),
    ({"DRIFT": "x2"}, "lower-order"),
    ({"DRIFT": "x,w"}, "unknown drift term"),
    ({"DRIFT": "x,y", "BLOCK": "40"}, "must be 'cell'"),
])
def test_krigingexternaldrift_refuses_bad_input(params, message, tmp_path):
    with pytest.raises(QgsProcessingException, match=message):
        run("gcnnrnn:krigingexternaldrift", {
            "INPUT": MEUSE, "FIELD": "zinc", "CELL_SIZE": 100, **params,
            "ESTIMATE": str(tmp_path / "e.tif"), "VARIANCE": str(tmp_path / "v.tif")})
    assert not (tmp_path / "e.tif").exists()


@needs_engine("variogram", "krige")
def test_selected_features_and_mask(meuse_variogram, tmp_path):
    _, vfile = meuse_variogram
    from qgis.core import QgsProcessingFeatureSourceDefinition

    layer = QgsVectorLayer(MEUSE, "meuse", "ogr")
    QgsProject.instance().addMapLayer(layer)
    layer.selectByIds([f.id() for f in layer.getFeatures()][:60])

    subset = tmp_path / "subset.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.onlySelectedFeatures = "GPKG", True
    QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(subset),
                                              QgsProject.instance().transformContext(), options)
    est = tmp_path / "sel.tif"
    mask = QgsVectorLayer("Polygon?crs=EPSG:28992", "mask", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(178500, 329500, 180000, 334000)))
    mask.dataProvider().addFeatures([f])
    run("gcnnrnn:ordinarykriging", {
        "INPUT": QgsProcessingFeatureSourceDefinition(layer.id(), True),
        "FIELD": "zinc", "VARIOGRAM": str(vfile), "CELL_SIZE": 100, "MASK": mask,
        "EXTENT": "178500,181600,329600,333700 [EPSG:28992]",
        "ESTIMATE": str(est), "VARIANCE": "TEMPORARY_OUTPUT"})
    QgsProject.instance().removeMapLayer(layer.id())
    cli = tmp_path / "cli"
    engine_cli("krige", ["--input", subset, "--field", "zinc", "--variogram", vfile,
                         "--neighbours", 32, "--cell-size", 100.0,
                         "--extent", "178500,329600,181600,333700", "--output-dir", cli])
    a, gt, *_ = read_raster(est)
    b, *_ = read_raster(cli / "kriging_estimate.tif")
    xs = gt[0] + gt[1] * (np.arange(a.shape[1]) + 0.5)
    inside = np.broadcast_to(xs < 180000, a.shape)
    np.testing.assert_array_equal(a[inside], b[inside])
    assert (a[~inside] == -9999).all() and (b[~inside] != -9999).any()


@needs_engine("variogram", "krige")
def test_run_and_load_results_styles_the_layers(meuse_variogram, tmp_path):
    import processing

    _, vfile = meuse_variogram
    QgsProject.instance().removeAllMapLayers()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.runAndLoadResults("gcnnrnn:ordinarykriging", {
        "INPUT": MEUSE, "FIELD": "zinc", "VARIOGRAM": str(vfile), "CELL_SIZE": 100,
        "ESTIMATE": str(tmp_path / "e.tif"), "VARIANCE": str(tmp_path / "v.tif")},
        context=context)
    layers = {lyr.name(): lyr for lyr in QgsProject.instance().mapLayers().values()}
    names = ("Kriging estimate (zinc)", "Kriging variance (zinc, squared units)")
    assert set(layers) >= set(names)
    for name in names:
        assert isinstance(layers[name].renderer(), QgsSingleBandPseudoColorRenderer)
    QgsProject.instance().removeAllMapLayers()


def assert_same_metrics(ours: dict, theirs: dict, rel: float) -> None:
    """Every metric of every method equal (hybrid ones within ``rel``)."""
    assert set(ours) == set(theirs)
    for method, values in theirs.items():
        assert set(ours[method]) == set(values), method
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert ours[method][key] == pytest.approx(value, rel=rel, abs=1e-12), (method, key)
            else:
                assert ours[method][key] == value, (method, key)


@needs_engine("cv")
def test_crossvalidate_reports_the_clis_metrics(tmp_path):
    import json

    out, report = tmp_path / "cv.json", tmp_path / "cv.html"
    res = run("gcnnrnn:crossvalidate", {"INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1,
                                        "METHODS": [0, 2], "FOLDS": "3", "SEED": 1,
                                        "ENSEMBLE": 1, "EPOCHS": 2, "METRICS": str(out),
                                        "REPORT": str(report)})
    metrics = json.loads(out.read_text())["metrics"]
    assert res["RMSE_OK"] == metrics["ok"]["rmse"] and res["MAE_OK"] == metrics["ok"]["mae"]
    assert res["R2_OK"] == metrics["ok"]["r2"] and 0 < res["R2_OK"] <= 1
    assert res["RMSE_HYBRID"] == metrics["hybrid"]["rmse"] > 0
    assert "RMSE" in report.read_text()
    cli = tmp_path / "cli.json"
    engine_cli("cv", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse", "--field",
                      "zinc", "--transform", "log", "--variogram", "auto", "--method",
                      "ok,hybrid", "--folds", 3, "--refit-variogram", "--neighbours", 16,
                      "--ensemble", 1, "--epochs", 2, "--seed", 1, "--output-json", cli])
    theirs = json.loads(cli.read_text())["metrics"]
    # kriging is exact arithmetic; the hybrid is seeded and deterministic across processes
    # (bit-identical in practice), compared to 1e-6 in case of float reordering by threads
    assert_same_metrics({"ok": metrics["ok"]}, {"ok": theirs["ok"]}, rel=1e-12)
    assert_same_metrics(metrics, theirs, rel=1e-6)


@needs_engine("cv")
def test_crossvalidate_external_drift_equals_the_cli_in_both_units(tmp_path):
    import json

    dist = SAMPLE_DATA / "meuse_dist.tif"
    out, report = tmp_path / "cv.json", tmp_path / "cv.html"
    run("gcnnrnn:crossvalidate", {"INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1,
                                  "METHODS": [0, 3], "FOLDS": "5", "SEED": 2,
                                  "COVARIATES": [str(dist)], "KRIGING_NEIGHBOURS": 0,
                                  "METRICS": str(out), "REPORT": str(report)})
    doc = json.loads(out.read_text())
    assert set(doc["metrics"]) == {"ok", "ked"} and set(doc["metrics_transformed"]) == {"ok",
                                                                                        "ked"}
    # the covariate helps on Meuse (zinc falls with the distance to the river)
    assert doc["metrics_transformed"]["ked"]["rmse"] < 0.97 * doc["metrics_transformed"]["ok"][
        "rmse"]
    assert "transformed (log) units" in report.read_text()
    cli = tmp_path / "cli.json"
    engine_cli("cv", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse", "--field",
                      "zinc", "--transform", "log", "--variogram", "auto", "--method", "ok,ked",
                      "--folds", 5, "--refit-variogram", "--covariates", dist,
                      "--kriging-neighbours", 0, "--seed", 2, "--output-json", cli])
    theirs = json.loads(cli.read_text())
    assert_same_metrics(doc["metrics"], theirs["metrics"], rel=1e-12)
    assert_same_metrics(doc["metrics_transformed"], theirs["metrics_transformed"], rel=1e-12)


@needs_engine("cv")
def test_crossvalidate_universal_kriging_equals_the_cli(tmp_path):
    import json

    out = tmp_path / "cv.json"
    run("gcnnrnn:crossvalidate", {"INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1,
                                  "METHODS": [4], "FOLDS": "5", "SEED": 2,
                                  "KRIGING_NEIGHBOURS": 24, "METRICS": str(out)})
    doc = json.loads(out.read_text())
    assert set(doc["metrics"]) == {"uk"} and "universal kriging" in doc["protocol"]
    cli = tmp_path / "cli.json"
    engine_cli("cv", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse", "--field",
                      "zinc", "--transform", "log", "--variogram", "auto", "--method", "uk",
                      "--folds", 5, "--refit-variogram", "--kriging-neighbours", 24,
                      "--seed", 2, "--output-json", cli])
    assert_same_metrics(doc["metrics"], json.loads(cli.read_text())["metrics"], rel=1e-12)


def assert_same_rasters(ours: dict, theirs_dir: Path, rel: float) -> None:
    """Each of ``ours`` (file name -> path) equals the file of that name in ``theirs_dir``."""
    for fname, path in ours.items():
        a, gt, epsg, nodata, bands = read_raster(path)
        b, gt2, epsg2, nodata2, bands2 = read_raster(theirs_dir / fname)
        assert (gt, epsg, nodata, bands) == (gt2, epsg2, nodata2, bands2), fname
        assert ((a == nodata) == (b == nodata)).all(), fname
        valid = a != nodata
        np.testing.assert_allclose(a[valid], b[valid], rtol=rel, atol=1e-9, err_msg=fname)


@needs_engine("train", "predict")
def test_train_then_predict_hybrid_tiny_equals_the_cli(tmp_path):
    model = tmp_path / "model"
    res = run("gcnnrnn:trainhybrid", {"INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1,
                                      "ENSEMBLE": 1, "EPOCHS": 3, "SEED": 1,
                                      "MODEL": str(model)})
    assert (Path(res["MODEL"]) / "model.json").is_file()
    outs = {k: str(tmp_path / f"{k.lower()}.tif") for k in (
        "PREDICTION", "KRIGING_ESTIMATE", "KRIGING_VARIANCE", "PREDICTION_STD",
        "INTERVAL_LOWER", "INTERVAL_UPPER", "EXCEEDANCE")}
    res = run("gcnnrnn:predicthybrid", {"MODEL": str(model), "CELL_SIZE": 200,
                                        "THRESHOLD": 500.0, **outs})
    for key, path in outs.items():
        assert res[key] == path and Path(path).is_file(), key
        a, gt, epsg, nodata, _ = read_raster(path)
        assert epsg == "28992" and gt[1] == 200.0
    lo, *_ = read_raster(outs["INTERVAL_LOWER"])
    hi, *_ = read_raster(outs["INTERVAL_UPPER"])
    valid = lo != -9999
    assert (lo[valid] <= hi[valid]).all()
    p, *_ = read_raster(outs["EXCEEDANCE"])
    assert ((p[p != -9999] >= 0) & (p[p != -9999] <= 1)).all()
    # the same seed through the CLI: the same model, the same rasters
    from gcnn_rnn.processing.constants import HYBRID_RASTERS

    engine_cli("train", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse", "--field",
                         "zinc", "--transform", "log", "--variogram", "auto", "--neighbours",
                         16, "--ensemble", 1, "--epochs", 3, "--seed", 1, "--model-dir",
                         tmp_path / "cli_model"])
    engine_cli("predict", ["--model-dir", tmp_path / "cli_model", "--cell-size", 200.0,
                           "--threshold", 500.0, "--output-dir", tmp_path / "cli"])
    assert_same_rasters({HYBRID_RASTERS[k][0]: v for k, v in outs.items()}, tmp_path / "cli",
                        rel=1e-5)


@needs_engine("train")
def test_cancel_real_training_leaves_nothing(tmp_path):
    """The real engine is training (it reported progress) when cancelled: the cancel error
    comes within 2 s and no model folder is left."""
    from qgis.core import QgsProcessingUtils

    feedback = QgsProcessingFeedback()
    progress_before_cancel, cancelled_at = [], []

    def cancel_once_training():
        deadline = time.monotonic() + 120
        while feedback.progress() <= 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # past loading and features: the networks are training
        progress_before_cancel.append(feedback.progress())
        cancelled_at.append(time.monotonic())
        feedback.cancel()

    threading.Thread(target=cancel_once_training, daemon=True).start()
    with pytest.raises(QgsProcessingException,
                       match="cancelled by the user; the engine was stopped"):
        run("gcnnrnn:trainhybrid", {"INPUT": MEUSE, "FIELD": "zinc", "ENSEMBLE": 5,
                                    "EPOCHS": 5000, "PATIENCE": 5000,
                                    "MODEL": str(tmp_path / "m")}, feedback)
    assert cancelled_at and progress_before_cancel[0] > 5  # the engine really was running
    assert time.monotonic() - cancelled_at[0] < 2.0
    assert not (tmp_path / "m").exists()
    assert temp_files(Path(QgsProcessingUtils.tempFolder())) == []


@needs_engine("variogram", "krige")
def test_graphical_model_chains_fitvariogram_and_kriging(tmp_path):
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(Path(__file__).with_name("fit_and_krige.model3")))
    names = [p.name() for p in model.parameterDefinitions()]
    assert sorted(names) == ["cellsize", "field", "krige:estimate", "krige:variance", "points"]
    est, var = tmp_path / "chain_est.tif", tmp_path / "chain_var.tif"
    res = run(model, {"points": MEUSE, "field": "zinc", "cellsize": 100,
                      "krige:estimate": str(est), "krige:variance": str(var)})
    assert Path(res["krige:estimate"]) == est and est.is_file() and var.is_file()
    a, gt, epsg, nodata, _ = read_raster(est)
    assert epsg == "28992" and gt[1] == 100.0 and (a != nodata).any()


@needs_engine("run")
def test_hybrid_interpolation_loads_styled_layers_report_and_model(tmp_path):
    import processing

    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    res = processing.runAndLoadResults("gcnnrnn:hybridinterpolation", {
        "INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1, "CELL_SIZE": 250, "ENSEMBLE": 1,
        "EPOCHS": 3, "FOLDS": "3", "SEED": 2, "THRESHOLD": 500.0,
        "PREDICTION": "TEMPORARY_OUTPUT", "KRIGING_ESTIMATE": "TEMPORARY_OUTPUT",
        "KRIGING_VARIANCE": "TEMPORARY_OUTPUT", "PREDICTION_STD": "TEMPORARY_OUTPUT",
        "INTERVAL_LOWER": "TEMPORARY_OUTPUT", "INTERVAL_UPPER": "TEMPORARY_OUTPUT",
        "EXCEEDANCE": str(tmp_path / "p500.tif"), "REPORT": str(tmp_path / "report.html"),
        "MODEL": str(tmp_path / "model")}, context=context)
    assert (tmp_path / "model" / "model.json").is_file()
    assert (tmp_path / "report.html").stat().st_size > 10_000  # plots embedded
    assert res["RMSE_OK"] > 0 and res["RMSE_HYBRID"] > 0
    layers = {lyr.name(): lyr for lyr in QgsProject.instance().mapLayers().values()}
    expected = ["Hybrid prediction (zinc)", "Kriging estimate (zinc)",
                "Probability of exceeding 500 (zinc)", "Prediction interval, lower bound (zinc)",
                "Prediction interval, upper bound (zinc)",
                "Prediction standard deviation (zinc)",
                "Kriging variance (zinc, squared units)"]
    assert set(expected) <= set(layers), sorted(layers)
    for name in expected:
        assert isinstance(layers[name].renderer(), QgsSingleBandPseudoColorRenderer), name
    # D12: one group for the run, prediction on top, the uncertainty rasters below
    groups = QgsProject.instance().layerTreeRoot().children()
    assert len(groups) == 1 and groups[0].name().startswith("Hybrid interpolation (zinc) — ")
    assert [node.name() for node in groups[0].children()] == expected
    # D5: the report names the user's files, not the engine's deleted work folder
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert str(tmp_path / "p500.tif") in report and str(tmp_path / "model") in report
    assert "gcnn_rnn_" not in report and "/run/" not in report
    p, *_ = read_raster(tmp_path / "p500.tif")
    assert ((p[p != -9999] >= 0) & (p[p != -9999] <= 1)).all()
    QgsProject.instance().removeAllMapLayers()
    # the same run through the CLI: the same rasters and CV numbers
    import json

    from gcnn_rnn.processing.constants import CV_NUMBERS, HYBRID_RASTERS

    cli = tmp_path / "cli"
    engine_cli("run", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse", "--field",
                       "zinc", "--transform", "log", "--variogram", "auto", "--neighbours", 16,
                       "--ensemble", 1, "--epochs", 3, "--seed", 2, "--cell-size", 250.0,
                       "--threshold", 500.0, "--folds", 3, "--output-dir", cli])
    flat = tmp_path / "cli_rasters"
    flat.mkdir()
    for fname, _, _ in HYBRID_RASTERS.values():
        found = sorted(cli.rglob(fname), key=lambda q: len(q.parts))
        assert found, fname
        (flat / fname).symlink_to(found[0])
    assert_same_rasters({HYBRID_RASTERS[k][0]: res[k] for k in HYBRID_RASTERS}, flat, rel=1e-5)
    cv_json = [q for q in cli.rglob("*.json")
               if isinstance(json.loads(q.read_text()).get("metrics"), dict)]
    assert cv_json
    metrics = json.loads(cv_json[0].read_text())["metrics"]
    for name, (method, key) in CV_NUMBERS.items():
        if method in metrics:
            assert res[name] == pytest.approx(metrics[method][key], rel=1e-6), name
        else:
            assert name not in res, name


@needs_engine("synth", "krige")
def test_3d_points_give_one_band_per_z_level(tmp_path):
    from osgeo import gdal

    samples = tmp_path / "s3.gpkg"
    engine_cli("synth", ["--dims", 3, "--n", 150, "--variogram", "1 Sph(300)", "--seed", 3,
                         "--size", 600, "--depth", 20, "--output", samples])
    est = tmp_path / "est3d.tif"
    run("gcnnrnn:ordinarykriging", {
        "INPUT": f"{samples}|layername=samples", "FIELD": "value", "CELL_SIZE": 100,
        "Z_LEVELS": "-20:0:10", "VARIOGRAM": None, "ESTIMATE": str(est),
        "VARIANCE": str(tmp_path / "var3d.tif")})
    ds = gdal.Open(str(est))
    assert ds.RasterCount == 3
    assert [ds.GetRasterBand(i).GetDescription() for i in (1, 2, 3)] == [
        "z=-20", "z=-10", "z=0"]
    assert ds.RasterXSize == 6 and ds.RasterYSize == 6
