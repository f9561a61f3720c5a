"""``gcnn-rnn krige`` end to end on the Meuse sample data (in process, plus one subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import rasterio

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging import KrigingConfig, krige, krige_grid
from gcnn_rnn.core.variogram.io import variogram_document, write_variogram_json
from gcnn_rnn.core.variogram.models import parse_model

VG = "0.0507 Nug + 0.5906 Sph(897)"


@pytest.fixture(scope="module")
def zinc(meuse_gpkg):
    return read_points(meuse_gpkg, "zinc", layer="meuse")


def _krige(capsys, *args) -> tuple[int, str]:
    code = main(["krige", "--quiet", *map(str, args)])
    return code, capsys.readouterr().err


def test_grid_with_log_transform(meuse_gpkg, zinc, tmp_path, capsys):
    code, err = _krige(capsys, "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                       "--transform", "log", "--variogram", VG, "--neighbours", "20",
                       "--cell-size", 100, "--output-dir", tmp_path)
    assert code == 0, err
    with rasterio.open(tmp_path / "kriging_estimate.tif") as ds:
        est = ds.read(1)
        assert ds.crs.to_epsg() == 28992 and ds.res == (100.0, 100.0)
        grid = Grid(ds.transform.c, ds.transform.f, 100.0, ds.width, ds.height)
    with rasterio.open(tmp_path / "kriging_variance.tif") as ds:
        var = ds.read(1)
    assert (tmp_path / "kriging_estimate.qml").exists()
    assert (tmp_path / "kriging_variance.qml").exists()
    model = parse_model(VG)
    res = krige_grid(zinc.coords, np.log(zinc.values), grid, model, KrigingConfig(neighbours=20))
    want = np.exp(res.estimate + res.variance / 2 - res.lagrange)
    np.testing.assert_allclose(est, want, rtol=1e-6)  # float32 GeoTIFF
    np.testing.assert_allclose(var, want**2 * np.expm1(res.variance), rtol=1e-5)
    summary = json.loads((tmp_path / "kriging.json").read_text())
    assert summary["variogram"]["text"] == VG
    assert summary["units"] == "original" and summary["transform"]["kind"] == "log"
    assert summary["n"] == 155 and summary["n_singular"] == 0 and summary["n_missing"] == 0
    assert summary["config"]["neighbours"] == 20
    assert set(summary["timings_s"]) >= {"read", "kriging", "writing", "total"}


def test_points_template_and_transformed_units(meuse_gpkg, meuse_dist_tif, zinc, tmp_path,
                                               capsys, sample_dir):
    import geopandas as gpd

    grid_csv = pd.read_csv(sample_dir / "meuse_grid.csv").iloc[::97]
    pts = gpd.GeoDataFrame(grid_csv, geometry=gpd.points_from_xy(grid_csv.x, grid_csv.y),
                           crs="EPSG:28992")
    target = tmp_path / "targets.gpkg"
    pts.to_file(target, layer="t")
    vjson = tmp_path / "v.json"
    write_variogram_json(vjson, variogram_document(parse_model(VG), field="zinc",
                                                   transform="log"))
    code, err = _krige(capsys, "--input", meuse_gpkg, "--field", "zinc", "--variogram", vjson,
                       "--points", target, "--output-units", "transformed",
                       "--output-dir", tmp_path / "p")
    assert code == 0, err
    out = gpd.read_file(tmp_path / "p" / "kriging_points.gpkg")
    assert len(out) == len(pts) and "dist" in out.columns  # target attributes kept
    res = krige(zinc.coords, np.log(zinc.values), grid_csv[["x", "y"]].to_numpy(float),
                parse_model(VG))  # transform taken from V.json
    np.testing.assert_allclose(out["kriging_estimate"], res.estimate, rtol=1e-12)
    np.testing.assert_allclose(out["kriging_variance"], res.variance, rtol=1e-12)
    summary = json.loads((tmp_path / "p" / "kriging.json").read_text())
    assert summary["units"] == "transformed" and summary["grid"] is None
    code, err = _krige(capsys, "--input", meuse_gpkg, "--field", "zinc", "--variogram", "auto",
                       "--template", meuse_dist_tif, "--neighbours", "0",
                       "--output-dir", tmp_path / "t")
    assert code == 0, err
    with rasterio.open(meuse_dist_tif) as a, \
            rasterio.open(tmp_path / "t" / "kriging_estimate.tif") as b:
        assert (a.width, a.height, a.transform) == (b.width, b.height, b.transform)
        assert np.isfinite(b.read(1)).all()
    auto = json.loads((tmp_path / "t" / "kriging.json").read_text())["variogram"]
    assert auto["source"] == "auto" and auto["fit"]["candidates"]


def test_3d_csv_with_z_levels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    xyz = rng.uniform([0, 0, -50], [500, 500, 0], size=(120, 3))
    frame = pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "depth": xyz[:, 2],
                          "cu": 1 + xyz[:, 2] / 100 + rng.normal(scale=0.1, size=120)})
    src = tmp_path / "holes.csv"
    frame.to_csv(src, index=False)
    code, err = _krige(capsys, "--input", src, "--field", "cu", "--z-field", "depth",
                       "--crs", "EPSG:32633", "--variogram", "0.01 Nug + 0.2 Sph(300)",
                       "--neighbours", "16", "--cell-size", 100, "--z-levels=-45:-5:20",
                       "--output-dir", tmp_path / "o")
    assert code == 0, err
    with rasterio.open(tmp_path / "o" / "kriging_estimate.tif") as ds:
        assert ds.count == 3 and ds.descriptions == ("z=-45", "z=-25", "z=-5")
        bands = ds.read()
    assert bands[0].mean() < bands[2].mean()  # the trend with depth is reproduced


@pytest.mark.parametrize(
    "args,message",
    [
        (["--field", "zn", "--cell-size", "100"], "no field 'zn'"),
        (["--field", "dist", "--transform", "log", "--cell-size", "100"], "needs values > 0"),
        (["--field", "zinc", "--variogram", "0.1 Foo(3)", "--cell-size", "100"], "foo"),
        (["--field", "zinc", "--cell-size", "100", "--template", "x.tif"], "exactly one of"),
        (["--field", "zinc", "--cell-size", "100", "--neighbours", "-1"], "--neighbours"),
        (["--field", "zinc", "--variogram", VG, "--mean", "400", "--variogram",
          "1 Pow(1, 1.5)", "--cell-size", "100"], "unbounded"),
        (["--field", "zinc", "--points", "missing.gpkg"], "not found"),
    ],
)
def test_bad_input_exit_code_2(meuse_gpkg, tmp_path, capsys, args, message):
    code, err = _krige(capsys, "--input", meuse_gpkg, *args, "--output-dir", tmp_path)
    assert code == 2
    assert message.lower() in err.lower()
    assert not list(tmp_path.glob("*.tif"))


def test_json_protocol_subprocess(meuse_gpkg, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "gcnn_rnn.core", "krige", "--input", str(meuse_gpkg),
         "--field", "zinc", "--variogram", VG, "--cell-size", "200", "--sectors", "4",
         "--output-dir", str(tmp_path), "--json-progress"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    assert lines[-1]["type"] == "result"
    assert lines[-1]["outputs"]["estimate"].endswith("kriging_estimate.tif")
    assert any(m["type"] == "progress" for m in lines)
    bad = subprocess.run(
        [sys.executable, "-m", "gcnn_rnn.core", "krige", "--input", str(meuse_gpkg),
         "--field", "zinc", "--sectors", "3", "--cell-size", "200", "--output-dir",
         str(tmp_path), "--json-progress"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
