"""``gcnn-rnn train`` / ``predict`` / ``run`` on the Meuse sample data (tiny settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcnn_rnn.core.cli.main import main

TINY = ["--ensemble", "2", "--epochs", "3", "--neighbours", "8", "--kriging-neighbours", "16"]
RASTERS = ("prediction", "kriging_estimate", "kriging_variance", "prediction_std",
           "interval_lower", "interval_upper", "exceedance_probability")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, meuse_gpkg):
    path = tmp_path_factory.mktemp("train") / "model"
    code = main(["train", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--transform", "log", "--variogram", "0.0507 Nug + 0.5906 Sph(897)",
                 "--co-fields", "soil", *TINY, "--model-dir", str(path)])
    assert code == 0
    return path


def test_train_writes_a_bundle(model_dir):
    doc = json.loads((model_dir / "model.json").read_text())
    assert doc["field"] == "zinc" and "28992" in doc["crs"]
    assert doc["params"]["co_fields"] == ["soil"] and doc["params"]["transform"] == "log"
    assert (model_dir / "member_0.keras").is_file() and (model_dir / "member_1.keras").is_file()


def test_predict_on_a_template_grid(model_dir, meuse_dist_tif, tmp_path, capsys):
    import rasterio

    out = tmp_path / "out"
    code = main(["predict", "--quiet", "--model-dir", str(model_dir), "--template",
                 str(meuse_dist_tif), "--threshold", "500", "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    with rasterio.open(meuse_dist_tif) as ref:
        shape, transform = ref.shape, ref.transform
        template_valid = ref.read_masks(1) > 0
    for name in RASTERS:
        path = out / f"{name}.tif"
        assert path.is_file() and path.with_suffix(".qml").is_file(), name
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 28992 and ds.nodata == -9999.0
            assert ds.shape == shape and ds.transform == transform
            assert ds.descriptions[0]
            data = ds.read(1, masked=True)
        # no covariate: exactly the template's cells with data are predicted
        np.testing.assert_array_equal(~np.ma.getmaskarray(data), template_valid)
    with rasterio.open(out / "exceedance_probability.tif") as ds:
        p = ds.read(1, masked=True)
    assert p.min() >= 0 and p.max() <= 1
    assert "probability" in (out / "exceedance_probability.qml").read_text()
    with rasterio.open(out / "interval_lower.tif") as lo, rasterio.open(
            out / "interval_upper.tif") as hi, rasterio.open(out / "prediction.tif") as pr:
        assert np.all(lo.read(1) <= pr.read(1)) and np.all(pr.read(1) <= hi.read(1))


def test_predict_at_points_reads_co_fields_from_the_points(model_dir, meuse_gpkg, tmp_path,
                                                           capsys):
    import geopandas as gpd

    pts = gpd.read_file(meuse_gpkg).iloc[:12].copy()
    pts["geometry"] = pts.geometry.translate(15.0, -10.0)
    src = tmp_path / "targets.gpkg"
    pts.to_file(src)
    code = main(["predict", "--quiet", "--model-dir", str(model_dir), "--points", str(src),
                 "--output-dir", str(tmp_path / "p")])
    assert code == 0, capsys.readouterr().err
    got = gpd.read_file(tmp_path / "p" / "prediction_points.gpkg")
    assert len(got) == 12 and got.crs.to_epsg() == 28992
    for name in RASTERS[:-1]:
        assert np.isfinite(got[name]).all(), name
    assert "zinc" in got.columns  # the target points' own columns are kept
    pts.drop(columns="soil").to_file(tmp_path / "nosoil.gpkg")
    code = main(["predict", "--quiet", "--model-dir", str(model_dir), "--points",
                 str(tmp_path / "nosoil.gpkg"), "--output-dir", str(tmp_path / "q")])
    assert code == 2 and "soil" in capsys.readouterr().err


def test_wrong_bundle_exit_code(tmp_path, capsys):
    code = main(["predict", "--json-progress", "--model-dir", str(tmp_path), "--cell-size",
                 "100", "--output-dir", str(tmp_path / "o")])
    assert code == 2


def test_run_end_to_end(meuse_gpkg, meuse_dist_tif, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--transform", "log", "--variogram", "0.0507 Nug + 0.5906 Sph(897)", *TINY,
                 "--folds", "3", "--cell-size", "200", "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6 and "src=\"http" not in html
    assert "Cross-validation" in html and "identical for all methods" in html
    cv = json.loads((out / "cv.json").read_text())
    assert set(cv["metrics"]) == {"ok", "hybrid"} and cv["folds"] == 3
    assert (out / "model" / "model.json").is_file() and (out / "prediction.tif").is_file()
