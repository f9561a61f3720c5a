"""``gcnnrnn:gaussiansimulation`` and the IDW cross-validation choice, run for real through
the engine on the bundled Meuse sample (small grid, few realisations)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)
from qgis_helpers import MEUSE, SAMPLE_DATA, engine_cli, needs_engine


@pytest.fixture(autouse=True)
def _provider(provider):
    return provider


@pytest.fixture(scope="module")
def vfile(tmp_path_factory):
    """The normal-score variogram of Meuse zinc, fitted by the engine (as a user would)."""
    path = tmp_path_factory.mktemp("vg") / "nscore.json"
    engine_cli("variogram", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse",
                             "--field", "zinc", "--transform", "nscore", "--models", "sph",
                             "--output-json", path])
    return path


def run(alg_id, params, context=None):
    import processing

    return processing.run(alg_id, params, feedback=QgsProcessingFeedback(), context=context)


def _bands(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    assert ds is not None, path
    return (ds.ReadAsArray(), ds.RasterCount, ds.GetRasterBand(1).GetNoDataValue(),
            [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)])


@needs_engine("simulate")
def test_gaussiansimulation_equals_the_cli_and_loads_only_the_summaries(tmp_path):
    import processing

    out = {name: tmp_path / f"{name.lower()}.tif" for name in (
        "OUTPUT_REALISATIONS", "ETYPE_MEAN", "CONDITIONAL_VARIANCE", "EXCEEDANCE")}
    QgsProject.instance().removeAllMapLayers()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    res = processing.runAndLoadResults("gcnnrnn:gaussiansimulation", {
        "INPUT": MEUSE, "FIELD": "zinc", "VARIOGRAM": None, "REALISATIONS": 3, "SEED": 5,
        "CELL_SIZE": 200, "THRESHOLD": 500, **{k: str(v) for k, v in out.items()}},
        context=context)
    assert {k: res[k] for k in out} == {k: str(v) for k, v in out.items()}
    layers = {lyr.name(): lyr for lyr in QgsProject.instance().mapLayers().values()}
    assert set(layers) == {"E-type mean (zinc)", "Conditional variance (zinc, squared units)",
                           "Probability of exceeding 500 (zinc)"}  # realisations: not loaded
    for layer in layers.values():
        assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)
    QgsProject.instance().removeAllMapLayers()
    cli = tmp_path / "cli"
    engine_cli("simulate", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse",
                            "--field", "zinc", "--realisations", 3, "--seed", 5,
                            "--neighbours", 16, "--multigrid", 0, "--cell-size", 200.0,
                            "--threshold", 500.0, "--output-dir", cli])
    real, count, nodata, names = _bands(out["OUTPUT_REALISATIONS"])
    assert count == 3 and nodata == -9999 and names == [
        "realisation 1", "realisation 2", "realisation 3"]
    np.testing.assert_array_equal(real, _bands(cli / "realisations.tif")[0])
    for name, fname in (("ETYPE_MEAN", "etype_mean.tif"),
                        ("CONDITIONAL_VARIANCE", "conditional_variance.tif"),
                        ("EXCEEDANCE", "exceedance_probability.tif")):
        np.testing.assert_array_equal(_bands(out[name])[0], _bands(cli / fname)[0])
        assert out[name].with_suffix(".qml").is_file()
    prob = _bands(out["EXCEEDANCE"])[0]
    np.testing.assert_allclose(prob, (real > 500).mean(axis=0), atol=1e-6)


@needs_engine("simulate")
def test_gaussiansimulation_loads_the_realisations_on_request(tmp_path, vfile):
    import processing

    QgsProject.instance().removeAllMapLayers()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.runAndLoadResults("gcnnrnn:gaussiansimulation", {
        "INPUT": MEUSE, "FIELD": "zinc", "VARIOGRAM": str(vfile), "REALISATIONS": 2,
        "CELL_SIZE": 400, "LOAD_REALISATIONS": True,
        "OUTPUT_REALISATIONS": str(tmp_path / "r.tif"), "ETYPE_MEAN": str(tmp_path / "e.tif"),
        "CONDITIONAL_VARIANCE": str(tmp_path / "v.tif")}, context=context)
    names = {lyr.name() for lyr in QgsProject.instance().mapLayers().values()}
    assert names == {"Realisations (zinc)", "E-type mean (zinc)",
                     "Conditional variance (zinc, squared units)"}
    assert not (tmp_path / "exceedance_probability.tif").exists()
    QgsProject.instance().removeAllMapLayers()


def test_gaussiansimulation_refuses_a_missing_cell_size(tmp_path):
    with pytest.raises(QgsProcessingException, match="cell size"):
        run("gcnnrnn:gaussiansimulation", {
            "INPUT": MEUSE, "FIELD": "zinc", "OUTPUT_REALISATIONS": "TEMPORARY_OUTPUT",
            "ETYPE_MEAN": "TEMPORARY_OUTPUT", "CONDITIONAL_VARIANCE": "TEMPORARY_OUTPUT"})


@needs_engine("cv")
def test_crossvalidate_offers_idw_as_a_method(tmp_path):
    from gcnn_rnn.processing.constants import CV_METHODS

    assert [m for m, _ in CV_METHODS[:4]] == ["ok", "linear", "hybrid", "ked"]  # indices kept
    idw = [m for m, _ in CV_METHODS].index("idw")
    out = tmp_path / "cv.json"
    run("gcnnrnn:crossvalidate", {"INPUT": MEUSE, "FIELD": "zinc", "METHODS": [0, idw],
                                  "FOLDS": "5", "SEED": 2, "METRICS": str(out)})
    doc = json.loads(out.read_text())
    assert doc["methods"] == ["ok", "idw"]
    cli = tmp_path / "cli.json"
    engine_cli("cv", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse", "--field",
                      "zinc", "--method", "ok,idw", "--folds", 5, "--seed", 2,
                      "--output-json", cli])
    theirs = json.loads(cli.read_text())["metrics"]["idw"]
    assert doc["metrics"]["idw"]["rmse"] == pytest.approx(theirs["rmse"], rel=1e-12)
    assert doc["metrics"]["idw"]["rmse"] > 0
