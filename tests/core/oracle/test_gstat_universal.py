"""``gcnn-rnn krige`` with a drift, block support and measurement error against gstat (1e-6).

* KED through the CLI: ``krige(log(zinc) ~ sqrt(dist), meuse, meuse.grid, model, nmax)``,
  global and ``nmax = 32``, the residual model fixed, covariates given as fields of the
  samples and of the 3,103 Meuse grid nodes (``--covariate-fields``).
* Block kriging through the CLI on the Meuse grid raster: ``krige(log(zinc) ~ 1, ...,
  block = c(40, 40))``, ``nmax = 16`` and global (gstat's default discretisation, 4 x 4 Gauss
  points), and with a regular 5 x 5 discretisation (``nblockdiscr = 5``).
* Universal kriging in the coordinates (``~ x + y``; 3D ``~ z``), KED with blocks, an
  anisotropic block, a 3D block (4 x 4 x 4 Gauss points), and models with a measurement error
  ``Err`` (at sample locations, where kriging no longer honours the data, and elsewhere),
  through the Python API.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from gstat_oracle import r_vgm, run_r, untied

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.kriging import krige_universal
from gcnn_rnn.core.variogram.models import parse_model

TOL = 1e-6
SAMPLE = Path(__file__).resolve().parents[3] / "sample_data"
RESIDUAL = "0.05 Nug + 0.35 Sph(800)"  # a residual model of log(zinc) ~ sqrt(dist)
MODEL = "0.0507 Nug + 0.5906 Sph(897)"
ERR = "0.02 Err + 0.03 Nug + 0.59 Sph(897)"
ANISO = "0.05 Nug + 0.59 Sph(897, anis=(30, 0.5))"
MODEL_3D = "0.02 Nug + 0.1 Sph(60)"
CRS = "EPSG:28992"


def _r_err_vgm(text: str) -> str:
    """gstat's ``vgm`` of a model whose first structure is ``Err`` (r_vgm knows no Err)."""
    model = parse_model(text)
    err, rest = model.structures[0], model.replace(structures=model.structures[1:])
    return f'vgm({err.psill!r}, "Err", 0, add.to = {r_vgm(rest)})'


@pytest.fixture(scope="module")
def grid_nodes() -> pd.DataFrame:
    g = pd.read_csv(SAMPLE / "meuse_grid.csv")[["x", "y", "dist"]].astype(float)
    g["sd"] = np.sqrt(g["dist"])
    return g


@pytest.fixture(scope="module")
def gstat(meuse, grid_nodes):
    few = grid_nodes.iloc[::7]
    pts = pd.DataFrame({"x": np.r_[few["x"], meuse["x"][:8]], "y": np.r_[few["y"], meuse["y"][:8]],
                        "sd": np.r_[few["sd"], np.sqrt(meuse["dist"][:8])]})
    lines = [
        'd <- IN("data"); d$sd <- sqrt(d$dist); coordinates(d) <- ~x + y',
        'g <- IN("grid"); coordinates(g) <- ~x + y',
        'p <- IN("pts"); coordinates(p) <- ~x + y',
        "W <- function(k, name) OUT(data.frame(est = k$var1.pred, var = k$var1.var), name)",
    ]
    res, m, err = r_vgm(parse_model(RESIDUAL)), r_vgm(parse_model(MODEL)), _r_err_vgm(ERR)
    for nmax, tag in ((0, "global"), (32, "nmax32")):
        nm = f", nmax = {nmax}" if nmax else ""
        lines.append(f'W(krige(v ~ sd, d, g, model = {res}{nm}, debug.level = 0), "ked_{tag}")')
    for nmax, tag in ((0, "global"), (16, "nmax16")):
        nm = f", nmax = {nmax}" if nmax else ""
        lines.append(f"W(krige(v ~ 1, d, g, model = {m}{nm}, block = c(40, 40), "
                     f'debug.level = 0), "block_{tag}")')
    lines += [
        f"W(predict(gstat(NULL, 'var1', v ~ 1, d, model = {m}, nmax = 16, "
        "set = list(nblockdiscr = 5)), p, block = c(40, 40), debug.level = 0), 'block_reg5')",
        f"W(krige(v ~ sd, d, p, model = {res}, block = c(40, 40), debug.level = 0), 'ked_block')",
        f"W(krige(v ~ x + y, d, p, model = {res}, debug.level = 0), 'uk_xy')",
        f"W(krige(v ~ x + y, d, p, model = {res}, nmax = 20, debug.level = 0), 'uk_xy_nmax20')",
        f"W(krige(v ~ 1, d, p, model = {err}, debug.level = 0), 'err_global')",
        f"W(krige(v ~ 1, d, p, model = {err}, nmax = 24, debug.level = 0), 'err_nmax24')",
        f"W(krige(v ~ sd, d, p, model = {_r_err_vgm('0.01 Err + ' + RESIDUAL)}, "
        "debug.level = 0), 'err_ked')",
        f"W(krige(v ~ 1, d, p, model = {r_vgm(parse_model(ANISO))}, block = c(40, 60), "
        "debug.level = 0), 'block_aniso')",
        "d3 <- IN('d3'); coordinates(d3) <- ~x + y + z",
        "t3 <- IN('t3'); coordinates(t3) <- ~x + y + z",
        f"W(krige(v ~ 1, d3, t3, model = {r_vgm(parse_model(MODEL_3D))}, block = c(10, 10, 4), "
        "debug.level = 0), 'block_3d')",
        f"W(krige(v ~ z, d3, t3, model = {r_vgm(parse_model(MODEL_3D))}, nmax = 30, "
        "debug.level = 0), 'uk_z_3d')",
    ]
    data = {"x": meuse["x"], "y": meuse["y"], "dist": meuse["dist"], "v": meuse["logzinc"]}
    d3, t3 = _data_3d()
    out = run_r("\n".join(lines), {"data": data, "grid": grid_nodes[["x", "y", "sd"]],
                                   "pts": pts, "d3": d3, "t3": t3})
    return pts, out


def _data_3d():
    """Drill-hole-like 3D samples with a trend in z, and targets between them."""
    rng = np.random.default_rng(7)
    xyz = np.column_stack([rng.uniform(0, 100, 120), rng.uniform(0, 100, 120),
                           rng.uniform(-40, 0, 120)])
    v = 1.0 + 0.03 * xyz[:, 2] + rng.normal(scale=0.3, size=120)
    t = np.column_stack([rng.uniform(10, 90, 25), rng.uniform(10, 90, 25),
                         rng.uniform(-35, -5, 25)])
    return (pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "v": v}),
            pd.DataFrame({"x": t[:, 0], "y": t[:, 1], "z": t[:, 2]}))


@pytest.fixture(scope="module")
def samples_csv(meuse, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ked") / "meuse_sd.csv"
    df = meuse[["x", "y", "zinc"]].copy()
    df["sd"] = np.sqrt(meuse["dist"])
    df.to_csv(path, index=False, float_format="%.17g")
    return path


def _run(capsys, *args) -> None:
    code = main(["krige", "--quiet", *map(str, args)])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize(("neighbours", "tag"), [(0, "global"), (32, "nmax32")])
def test_cli_external_drift_matches_gstat(neighbours, tag, gstat, grid_nodes, samples_csv,
                                          meuse, tmp_path, capsys):
    targets = gpd.GeoDataFrame({"sd": grid_nodes["sd"]}, crs=CRS,
                               geometry=gpd.points_from_xy(grid_nodes["x"], grid_nodes["y"]))
    targets.to_file(tmp_path / "grid.gpkg", layer="grid")
    _run(capsys, "--input", samples_csv, "--crs", CRS, "--field", "zinc", "--transform", "log",
         "--output-units", "transformed", "--variogram", RESIDUAL, "--neighbours", neighbours,
         "--covariate-fields", "sd", "--points", tmp_path / "grid.gpkg",
         "--output-dir", tmp_path / "out")
    got = gpd.read_file(tmp_path / "out" / "kriging_points.gpkg")
    ref = gstat[1][f"ked_{tag}"]
    keep = untied(meuse[["x", "y"]].to_numpy(float), grid_nodes[["x", "y"]].to_numpy(float),
                  parse_model(RESIDUAL), neighbours)
    assert keep.mean() > 0.95
    np.testing.assert_allclose(got["kriging_estimate"][keep], ref["est"][keep], atol=TOL, rtol=0)
    np.testing.assert_allclose(got["kriging_variance"][keep], ref["var"][keep], atol=TOL, rtol=0)


@pytest.mark.parametrize(("neighbours", "tag"), [(0, "global"), (16, "nmax16")])
def test_cli_block_kriging_on_the_grid_matches_gstat(neighbours, tag, gstat, grid_nodes,
                                                     meuse, tmp_path, capsys):
    # meuse_dist.tif is the 40 m Meuse grid: --block cell is gstat's block = c(40, 40)
    _run(capsys, "--input", SAMPLE / "meuse.gpkg", "--field", "zinc", "--transform", "log",
         "--output-units", "transformed", "--variogram", MODEL, "--neighbours", neighbours,
         "--block", "cell", "--template", SAMPLE / "meuse_dist.tif", "--output-dir", tmp_path)
    est, var = [], []
    for name, out in (("kriging_estimate.tif", est), ("kriging_variance.tif", var)):
        with rasterio.open(tmp_path / name) as ds:
            out.extend(v[0] for v in ds.sample(grid_nodes[["x", "y"]].to_numpy(float)))
    ref = gstat[1][f"block_{tag}"]
    keep = untied(meuse[["x", "y"]].to_numpy(float), grid_nodes[["x", "y"]].to_numpy(float),
                  parse_model(MODEL), neighbours)
    assert keep.mean() > 0.95
    # the rasters are float32: compare to float32 rounding, and the float64 API below to 1e-6
    np.testing.assert_allclose(np.array(est)[keep], ref["est"][keep], rtol=2e-7, atol=1e-6)
    np.testing.assert_allclose(np.array(var)[keep], ref["var"][keep], rtol=2e-7, atol=1e-6)
    res = krige_universal(meuse[["x", "y"]].to_numpy(float), meuse["logzinc"].to_numpy(float),
                          grid_nodes[["x", "y"]].to_numpy(float), parse_model(MODEL),
                          neighbours=neighbours, block=(40, 40))
    np.testing.assert_allclose(res.estimate[keep], ref["est"][keep], atol=TOL, rtol=0)
    np.testing.assert_allclose(res.variance[keep], ref["var"][keep], atol=TOL, rtol=0)
    # a block mean varies less than a point value
    assert (res.variance < 0.5906 + 0.0507).all() and (res.variance > 0).all()


CASES = [  # name, model, neighbours, covariate?, drift, block, discretisation
    ("block_reg5", MODEL, 16, False, None, (40, 40), 5),
    ("block_aniso", ANISO, 0, False, None, (40, 60), None),
    ("ked_block", RESIDUAL, 0, True, None, (40, 40), None),
    ("uk_xy", RESIDUAL, 0, False, "x,y", None, None),
    ("uk_xy_nmax20", RESIDUAL, 20, False, "x,y", None, None),
    ("err_global", ERR, 0, False, None, None, None),
    ("err_nmax24", ERR, 24, False, None, None, None),
    ("err_ked", "0.01 Err + " + RESIDUAL, 0, True, None, None, None),
]


def test_3d_block_and_drift_in_z_match_gstat(gstat):
    d3, t3 = _data_3d()
    coords, targets = d3[["x", "y", "z"]].to_numpy(float), t3.to_numpy(float)
    model = parse_model(MODEL_3D)
    for name, kw in (("block_3d", {"neighbours": 0, "block": (10, 10, 4)}),
                     ("uk_z_3d", {"neighbours": 30, "drift": "z"})):
        res = krige_universal(coords, d3["v"].to_numpy(float), targets, model, **kw)
        ref = gstat[1][name]
        keep = untied(coords, targets, model, kw["neighbours"])
        np.testing.assert_allclose(res.estimate[keep], ref["est"][keep], atol=TOL, rtol=0)
        np.testing.assert_allclose(res.variance[keep], ref["var"][keep], atol=TOL, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_api_matches_gstat(case, gstat, meuse):
    name, text, neighbours, with_cov, drift, block, n_disc = case
    pts, out = gstat
    coords = meuse[["x", "y"]].to_numpy(float)
    targets = pts[["x", "y"]].to_numpy(float)
    model = parse_model(text)
    res = krige_universal(
        coords, meuse["logzinc"].to_numpy(float), targets, model,
        covariates=np.sqrt(meuse[["dist"]].to_numpy(float)) if with_cov else None,
        target_covariates=pts[["sd"]].to_numpy(float) if with_cov else None,
        drift=drift, neighbours=neighbours, block=block, block_discretisation=n_disc)
    ref = out[name]
    keep = untied(coords, targets, model, neighbours)
    np.testing.assert_allclose(res.estimate[keep], ref["est"][keep], atol=TOL, rtol=0)
    np.testing.assert_allclose(res.variance[keep], ref["var"][keep], atol=TOL, rtol=0)
    if model.measurement_error:  # the data are smoothed, not honoured, at their locations
        at_samples = np.abs(res.estimate[-8:] - meuse["logzinc"].to_numpy(float)[:8])
        assert (at_samples > 1e-4).all()
        assert (res.variance[-8:] > 0).all()
