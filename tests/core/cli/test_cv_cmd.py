"""``gcnn-rnn cv`` end to end on the Meuse sample data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.variogram.models import parse_model

VG = "0.0507 Nug + 0.5906 Sph(897)"


def _cv(capsys, *args) -> tuple[int, str]:
    code = main(["cv", "--quiet", *map(str, args)])
    return code, capsys.readouterr().err


def test_loo_log_zinc_matches_direct_kriging(meuse_gpkg, tmp_path, capsys):
    out = tmp_path / "m.json"
    code, err = _cv(capsys, "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                    "--method", "ok", "--folds", "loo", "--transform", "log",
                    "--variogram", VG, "--kriging-neighbours", "0", "--output-json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    m = doc["metrics"]["ok"]
    assert set(m) >= {"me", "mae", "rmse", "r2", "msdr", "ccc"}
    assert doc["units"] == "original" and doc["folds"]["n_folds"] == 155
    assert "fixed variogram" in doc["protocol"] and "loo" in doc["protocol"]
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    rec = doc["per_point"][10]
    keep = np.arange(155) != 10
    one = krige(pts.coords[keep], np.log(pts.values[keep]), pts.coords[10:11], parse_model(VG),
                KrigingConfig(neighbours=0))
    pred = math.exp(one.estimate[0] + one.variance[0] / 2 - one.lagrange[0])
    assert rec["ok_prediction"] == pytest.approx(pred, rel=1e-9)
    assert rec["observed"] == pts.values[10]
    assert rec["ok_residual"] == pytest.approx(pts.values[10] - pred, rel=1e-9)
    res = np.array([r["ok_residual"] for r in doc["per_point"]])
    assert m["rmse"] == pytest.approx(math.sqrt((res**2).mean()))
    assert 0.4 < m["r2"] < 0.9 and 0.5 < m["msdr"] < 2.0


def test_spatial_folds_refit_transformed_units(meuse_gpkg, tmp_path, capsys):
    out = tmp_path / "s.json"
    code, err = _cv(capsys, "--input", meuse_gpkg, "--field", "zinc", "--folds", "spatial:800:4",
                    "--seed", "3", "--transform", "nscore", "--refit-variogram",
                    "--output-units", "transformed", "--output-json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["folds"]["scheme"] == "spatial:800:4" and doc["folds"]["block_size"] == 800
    assert len(doc["per_fold"]["ok"]) == 4 == len(set(doc["folds"]["fold"]))
    assert "refitted inside each fold" in doc["protocol"]
    assert doc["units"] == "transformed"
    assert abs(doc["metrics"]["ok"]["me"]) < 0.5  # normal scores, not mg/kg


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method", "ok,nope"], "unknown cross-validation method 'nope'"),
        (["--folds", "spatial:-1"], "spatial block size"),
        (["--folds", "1"], "K >= 2"),
        (["--field", "dist", "--transform", "log"], "needs values > 0"),
        (["--method", "ok,ked", "--folds", "5"], "'ked' (kriging with external drift) needs "
                                                 "covariate rasters"),
    ],
)
def test_bad_input_exit_code_2(meuse_gpkg, tmp_path, capsys, args, message):
    base = ["--input", meuse_gpkg, "--output-json", tmp_path / "x.json"]
    if "--field" not in args:
        base += ["--field", "zinc"]
    code, err = _cv(capsys, *base, *args)
    assert code == 2
    assert message in err
    assert not (tmp_path / "x.json").exists()


def test_external_drift_against_direct_kriging_in_both_units(meuse_gpkg, meuse_dist_tif,
                                                             tmp_path, capsys):
    from gcnn_rnn.core.features import sample_covariates
    from gcnn_rnn.core.kriging import krige_external_drift
    from gcnn_rnn.core.kriging.drift import drift_residuals
    from gcnn_rnn.core.variogram.fit import auto_variogram

    out = tmp_path / "k.json"
    code, err = _cv(capsys, "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                    "--method", "ok,ked", "--folds", "5", "--seed", "3", "--transform", "log",
                    "--covariates", meuse_dist_tif, "--kriging-neighbours", "0",
                    "--output-json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert "kriging with external drift in meuse_dist.tif" in doc["protocol"]
    # fold 2 by hand: residual variogram of the training part, global KED, lognormal back
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    fold = np.array(doc["folds"]["fold"])
    tr, te = fold != 2, fold == 2
    dist = sample_covariates([str(meuse_dist_tif)], pts.coords, pts.crs)
    y = np.log(pts.values[tr])
    vg = auto_variogram(pts.coords[tr], drift_residuals(y, dist[tr]),
                        ("sph", "exp", "gau", "mat"), select="cv", neighbours=0).model
    res = krige_external_drift(pts.coords[tr], y, dist[tr], pts.coords[te], dist[te], vg,
                               neighbours=0)
    got = np.array([r["ked_prediction"] for r in doc["per_point"]])[te]
    np.testing.assert_allclose(got, np.exp(res.estimate + res.variance / 2), rtol=1e-10)
    mt = doc["metrics_transformed"]
    assert mt["ked"]["rmse"] < 0.98 * mt["ok"]["rmse"]  # dist explains log zinc on Meuse
    assert doc["metrics"]["ked"]["rmse"] < doc["metrics"]["ok"]["rmse"]


def test_universal_kriging_against_direct_kriging(meuse_gpkg, tmp_path, capsys):
    from gcnn_rnn.core.kriging import krige_universal
    from gcnn_rnn.core.kriging.drift import drift_residuals
    from gcnn_rnn.core.variogram.fit import auto_variogram

    out = tmp_path / "u.json"
    code, err = _cv(capsys, "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                    "--method", "uk", "--drift", "x,y,x2,xy,y2", "--folds", "5", "--seed", "1",
                    "--transform", "log", "--output-units", "transformed",
                    "--kriging-neighbours", "24", "--output-json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert "universal kriging with the coordinate drift x,y,x2,xy,y2" in doc["protocol"]
    # fold 0 by hand: the variogram of the training part's drift residuals (any origin and
    # unit of the coordinates span the same quadratic trend: here the mean and km)
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    fold = np.array(doc["folds"]["fold"])
    tr, te = fold != 0, fold == 0
    xy, y = pts.coords[tr], np.log(pts.values[tr])
    u = (xy - xy.mean(axis=0)) / 1000.0
    raw = np.column_stack([u[:, 0], u[:, 1], u[:, 0] ** 2, u[:, 0] * u[:, 1], u[:, 1] ** 2])
    vg = auto_variogram(xy, drift_residuals(y, raw), ("sph", "exp", "gau")).model
    res = krige_universal(xy, y, pts.coords[te], vg, drift="x,y,x2,xy,y2", neighbours=24)
    got = np.array([r["uk_prediction"] for r in doc["per_point"]])[te]
    np.testing.assert_allclose(got, res.estimate, atol=1e-6)


@pytest.mark.parametrize("args,message", [
    (["--method", "uk", "--drift", "x2"], "lower-order"),
    (["--method", "ok", "--drift", "x,y"], "--drift is for method uk"),
])
def test_bad_drift_flags(args, message, meuse_gpkg, tmp_path, capsys):
    code, err = _cv(capsys, "--input", meuse_gpkg, "--field", "zinc", *args,
                    "--output-json", tmp_path / "x.json")
    assert code == 2 and message in err
    assert not (tmp_path / "x.json").exists()


def test_loo_with_a_measurement_error_model(meuse_gpkg, tmp_path, capsys):
    from gcnn_rnn.core.kriging import krige_universal

    out = tmp_path / "e.json"
    text = "0.02 Err + 0.03 Nug + 0.59 Sph(897)"
    code, err = _cv(capsys, "--input", meuse_gpkg, "--field", "zinc", "--method", "ok",
                    "--transform", "log", "--output-units", "transformed", "--variogram", text,
                    "--kriging-neighbours", "16", "--output-json", out)
    assert code == 0, err
    doc = json.loads(out.read_text())
    pts = read_points(meuse_gpkg, "zinc")
    keep = np.arange(pts.n) != 7
    res = krige_universal(pts.coords[keep], np.log(pts.values[keep]), pts.coords[7:8],
                          parse_model(text), neighbours=16)
    assert doc["per_point"][7]["ok_prediction"] == pytest.approx(res.estimate[0], abs=1e-10)
