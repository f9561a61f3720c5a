"""``gcnn-rnn krige`` with --covariates / --covariate-fields / --drift / --block (gstat
agreement itself: tests/core/oracle/test_gstat_universal.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from gcnn_rnn.core.cli.main import main

VG = "0.05 Nug + 0.35 Sph(800)"


def _krige(capsys, *args) -> tuple[int, str]:
    code = main(["krige", "--quiet", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture()
def small_dist(meuse_gpkg, tmp_path):
    """meuse_dist.tif cut to its northern half: part of the samples fall outside."""
    src = meuse_gpkg.parent / "meuse_dist.tif"
    with rasterio.open(src) as ds:
        arr = ds.read(1)
        profile = ds.profile
    arr[arr.shape[0] // 2:, :] = profile["nodata"]
    out = tmp_path / "dist_half.tif"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(arr, 1)
    return out


def test_external_drift_on_a_grid_keeps_nodata_and_counts_dropped(meuse_gpkg, small_dist,
                                                                   tmp_path, capsys):
    out = tmp_path / "o"
    code, err = _krige(capsys, "--input", meuse_gpkg, "--field", "zinc", "--transform", "log",
                       "--covariates", small_dist, "--drift", "x,y",
                       "--template", meuse_gpkg.parent / "meuse_dist.tif", "--output-dir", out)
    assert code == 0, err
    summary = json.loads((out / "kriging.json").read_text())
    assert summary["method"] == "kriging with external drift"
    assert summary["variogram"]["fitted_to"] == "drift residuals"
    dropped = summary["dropped"]["no_covariate"]
    assert 0 < dropped < 155 and summary["n"] == 155 - dropped
    with rasterio.open(small_dist) as ds:
        cov = ds.read(1, masked=True)
    with rasterio.open(out / "kriging_estimate.tif") as ds:
        est = ds.read(1, masked=True)
        assert "kriging with external drift" in ds.descriptions[0]
    # estimated exactly where the covariate has a value
    assert np.array_equal(est.mask, cov.mask)
    assert summary["n_missing"] == int(cov.mask.sum() - np.ma.getmaskarray(
        rasterio.open(meuse_gpkg.parent / "meuse_dist.tif").read(1, masked=True)).sum())


def test_block_and_drift_summary(meuse_gpkg, tmp_path, capsys):
    code, err = _krige(capsys, "--input", meuse_gpkg, "--field", "zinc", "--variogram",
                       "1e4 Nug + 1e5 Sph(900)", "--drift", "x,y", "--block", "100,100",
                       "--block-discretisation", "3", "--cell-size", 200, "--neighbours", 20,
                       "--output-dir", tmp_path)
    assert code == 0, err
    summary = json.loads((tmp_path / "kriging.json").read_text())
    assert summary["method"] == "block universal kriging"
    assert summary["drift"]["block"] == [100.0, 100.0]
    assert summary["drift"]["block_discretisation"] == 3


@pytest.mark.parametrize("args,message", [
    (["--drift", "x2", "--cell-size", "100"], "needs the lower-order term"),
    (["--drift", "x,z", "--cell-size", "100"], "needs 3D data"),
    (["--block", "40", "--cell-size", "100"], "--block must be"),
    (["--block", "a,b", "--cell-size", "100"], "--block must be"),
    (["--block", "0,0", "--cell-size", "100"], "--block must be"),
    (["--block", "40,40,5", "--cell-size", "100"], "has a dz"),
    (["--block", "cell", "--points", "POINTS"], "--block cell needs an output grid"),
    (["--block-discretisation", "4", "--cell-size", "100"], "needs --block"),
    (["--block", "40,40", "--block-discretisation", "0", "--cell-size", "100"], "needs --block"),
    (["--covariate-fields", "dist", "--cell-size", "100"], "needs --points"),
    (["--covariate-fields", "nope", "--points", "POINTS"], "no field 'nope'"),
    (["--covariate-fields", "landuse", "--points", "POINTS"], "not numeric"),
    (["--covariates", "missing.tif", "--cell-size", "100"], "not found"),
    (["--drift", "x,y", "--mean", "6", "--cell-size", "100"], "--mean"),
    (["--drift", "x,y", "--max-distance", "500", "--cell-size", "100"], "--max-distance"),
    (["--drift", "x,y", "--sectors", "4", "--cell-size", "100"], "--sectors"),
    (["--block", "40,40", "--transform", "log", "--cell-size", "100"], "back-transform"),
    (["--variogram", "0.02 Err + 1 Pow(1, 1.5)", "--cell-size", "100"], "bounded"),
])
def test_bad_input_exit_code_2_writes_nothing(args, message, meuse_gpkg, tmp_path, capsys):
    args = [str(meuse_gpkg) if a == "POINTS" else a for a in args]
    out = tmp_path / "out"
    code, err = _krige(capsys, "--input", meuse_gpkg, "--field", "zinc", "--variogram", VG,
                       *args, "--output-dir", out)
    assert code == 2, err
    assert message.lower() in err.lower()
    assert not out.exists() or not any(out.iterdir())


def test_err_variogram_from_v_json_smooths_the_data(meuse_gpkg, tmp_path, capsys):
    import geopandas as gpd

    from gcnn_rnn.core.io import read_points
    from gcnn_rnn.core.kriging import krige_universal
    from gcnn_rnn.core.variogram.io import (
        load_variogram,
        variogram_document,
        write_variogram_json,
    )
    from gcnn_rnn.core.variogram.models import parse_model

    text = "0.02 Err + 0.03 Nug + 0.59 Sph(897)"
    vjson = tmp_path / "v.json"
    write_variogram_json(vjson, variogram_document(parse_model(text), field="zinc",
                                                   transform="log"))
    assert load_variogram(vjson) == parse_model(text)  # V.json round trip
    zinc = read_points(meuse_gpkg, "zinc", layer="meuse")
    gpd.GeoDataFrame(geometry=gpd.points_from_xy(zinc.coords[:5, 0], zinc.coords[:5, 1]),
                     crs="EPSG:28992").to_file(tmp_path / "t.gpkg", layer="t")
    code, err = _krige(capsys, "--input", meuse_gpkg, "--field", "zinc", "--variogram", vjson,
                       "--neighbours", 0, "--points", tmp_path / "t.gpkg",
                       "--output-units", "transformed", "--output-dir", tmp_path / "o")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "kriging.json").read_text())
    assert summary["method"] == "ordinary kriging with measurement error"
    got = gpd.read_file(tmp_path / "o" / "kriging_points.gpkg")
    want = krige_universal(zinc.coords, np.log(zinc.values), zinc.coords[:5],
                           parse_model(text), neighbours=0)
    np.testing.assert_allclose(got["kriging_estimate"], want.estimate, atol=1e-12)
    assert (np.abs(got["kriging_estimate"] - np.log(zinc.values[:5])) > 1e-4).all()
    assert (got["kriging_variance"] > 0).all()


def test_3d_block_cell_with_drift_in_z(tmp_path, capsys):
    import pandas as pd

    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.kriging import krige_universal_grid
    from gcnn_rnn.core.variogram.models import parse_model

    rng = np.random.default_rng(0)
    xyz = rng.uniform([0, 0, -50], [500, 500, 0], size=(120, 3))
    cu = 1 + xyz[:, 2] / 100 + rng.normal(scale=0.1, size=120)
    pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "depth": xyz[:, 2], "cu": cu}).to_csv(
        tmp_path / "holes.csv", index=False)
    vg = "0.01 Nug + 0.02 Sph(300)"
    code, err = _krige(capsys, "--input", tmp_path / "holes.csv", "--field", "cu",
                       "--z-field", "depth", "--crs", "EPSG:32633", "--variogram", vg,
                       "--drift", "z", "--block", "cell", "--neighbours", 20,
                       "--cell-size", 100, "--extent", "0,0,500,500", "--z-levels=-45:-5:20",
                       "--output-dir", tmp_path / "o")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "kriging.json").read_text())
    assert summary["drift"]["block"] == [100.0, 100.0, 20.0]
    with rasterio.open(tmp_path / "o" / "kriging_estimate.tif") as ds:
        bands = ds.read()
    grid = Grid.from_extent((0, 0, 500, 500), 100, z_levels=(-45.0, -25.0, -5.0))
    want = krige_universal_grid(xyz, cu, grid, parse_model(vg), drift="z", neighbours=20,
                                block=(100, 100, 20))
    np.testing.assert_allclose(bands, want.estimate, rtol=1e-6)
    assert bands[0].mean() < bands[2].mean()  # the trend in z
