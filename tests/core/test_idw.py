"""Inverse distance weighting against hand computations, and ``krige``/``cv --method idw``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.idw import idw
from gcnn_rnn.core.io import read_points

XY = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
Z = np.array([1.0, 3.0, 5.0])


def test_hand_computed_weights():
    # target (1, 1): distances sqrt(2), sqrt(2), sqrt(10); power 2 weights 1/2, 1/2, 1/10
    got = idw(XY, Z, np.array([[1.0, 1.0]]))
    assert got[0] == pytest.approx((0.5 * 1 + 0.5 * 3 + 0.1 * 5) / 1.1, rel=1e-14)
    # power 1: weights 1/sqrt(2), 1/sqrt(2), 1/sqrt(10)
    w = np.array([1 / math.sqrt(2), 1 / math.sqrt(2), 1 / math.sqrt(10)])
    got = idw(XY, Z, np.array([[1.0, 1.0]]), power=1.0)
    assert got[0] == pytest.approx(float(w @ Z / w.sum()), rel=1e-14)
    # the two nearest only: equal weights
    assert idw(XY, Z, np.array([[1.0, 1.0]]), neighbours=2)[0] == pytest.approx(2.0)


def test_exact_at_samples_and_coincident_mean():
    np.testing.assert_array_equal(idw(XY, Z, XY), Z)
    xy = np.vstack([XY, [[2.0, 0.0]]])
    assert idw(xy, np.r_[Z, 7.0], np.array([[2.0, 0.0]]))[0] == pytest.approx(5.0)


def test_bad_input():
    with pytest.raises(InputDataError, match="power"):
        idw(XY, Z, XY, power=0.0)
    with pytest.raises(InputDataError, match="neighbours"):
        idw(XY, Z, XY, neighbours=-1)
    with pytest.raises(InputDataError, match="targets"):
        idw(XY, Z, np.zeros((2, 3)))


def test_krige_method_idw_grid(meuse_gpkg, tmp_path, capsys):
    code = main(["krige", "--quiet", "--method", "idw", "--idw-power", "3", "--input",
                 str(meuse_gpkg), "--layer", "meuse", "--field", "zinc", "--cell-size", "200",
                 "--output-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    with rasterio.open(tmp_path / "idw_estimate.tif") as ds:
        est = ds.read(1)
        assert ds.crs.to_epsg() == 28992 and "inverse distance" in ds.descriptions[0]
        x, y = ds.xy(3, 2)
    d = np.hypot(pts.coords[:, 0] - x, pts.coords[:, 1] - y)
    w = d**-3.0
    assert est[3, 2] == pytest.approx(float(w @ pts.values / w.sum()), rel=1e-6)
    assert not (tmp_path / "kriging_estimate.tif").exists()
    summary = json.loads((tmp_path / "kriging.json").read_text())
    assert summary["idw"] == {"power": 3.0, "neighbours": 0}


def test_cv_method_idw_loo_by_hand(tmp_path, capsys):
    csv = tmp_path / "p.csv"
    xy = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [3.0, 3.0]])
    z = np.array([1.0, 3.0, 5.0, 2.0])
    csv.write_text("x,y,v\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(xy, z,
                                                                            strict=True)))
    out = tmp_path / "cv.json"
    code = main(["cv", "--quiet", "--input", str(csv), "--field", "v", "--crs", "EPSG:28992",
                 "--method", "idw", "--folds", "loo", "--output-json", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    want = []
    for i in range(4):
        others = np.arange(4) != i
        w = 1.0 / ((xy[others] - xy[i]) ** 2).sum(axis=1)  # power 2: 1 / d^2
        want.append(float(w @ z[others] / w.sum()))
    got = [p["idw_prediction"] for p in doc["per_point"]]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert "inverse distance weighting, power 2" in doc["protocol"]


@pytest.mark.parametrize("argv, message", [
    (["krige", "--method", "idw", "--idw-power", "0"], "--idw-power"),
    (["krige", "--method", "idw", "--transform", "log"], "--transform"),
    (["krige", "--method", "idw", "--drift", "x,y"], "--drift"),
    (["krige", "--method", "idw", "--block", "cell"], "--block"),
    (["cv", "--method", "ok,idw", "--idw-power", "-1"], "--idw-power"),
])
def test_bad_flags(meuse_gpkg, tmp_path, capsys, argv, message):
    out = tmp_path / "o"
    tail = (["--output-json", str(out / "m.json")] if argv[0] == "cv"
            else ["--cell-size", "200", "--output-dir", str(out)])
    code = main([argv[0], "--quiet", *argv[1:], "--input", str(meuse_gpkg), "--layer", "meuse",
                 "--field", "zinc", *tail])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_krige_method_idw_at_points(meuse_gpkg, tmp_path, capsys):
    import geopandas as gpd

    code = main(["krige", "--quiet", "--method", "idw", "--idw-neighbours", "5", "--input",
                 str(meuse_gpkg), "--layer", "meuse", "--field", "zinc", "--points",
                 str(meuse_gpkg), "--points-layer", "meuse", "--output-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    out = gpd.read_file(tmp_path / "kriging_points.gpkg")
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    # the targets are the samples: IDW is exact there
    np.testing.assert_allclose(np.sort(out["idw_estimate"]), np.sort(pts.values), rtol=1e-12)
