"""Synthetic fields: covariance reproduced, seeds reproduce, trend/layers/drill holes, files."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest

from gcnn_rnn.core import synth
from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.raster import read_raster
from gcnn_rnn.core.synth import (
    SynthConfig,
    simulate_gaussian,
    synthesize,
    write_samples,
)
from gcnn_rnn.core.variogram.empirical import empirical_variogram
from gcnn_rnn.core.variogram.models import Anisotropy, VariogramModel, parse_model


def _lag_covariances(model, shape, lags, reps=12, seed=0):
    """Average over realisations of mean(Z(x) Z(x + lag)) along columns (x) and rows (-y)."""
    rng = np.random.default_rng(seed)
    along_x = np.zeros(len(lags))
    along_y = np.zeros(len(lags))
    var = 0.0
    for _ in range(reps):
        f = simulate_gaussian(model, shape, (1.0, 1.0), rng)
        var += np.mean(f * f) / reps
        for k, h in enumerate(lags):
            along_x[k] += np.mean(f[:, :-h] * f[:, h:]) / reps
            along_y[k] += np.mean(f[:-h] * f[h:]) / reps
    return var, along_x, along_y


def test_field_has_the_model_covariance():
    model = parse_model("0.2 Nug + 1 Exp(5)")
    lags = np.array([1, 3, 5, 10])
    var, cx, cy = _lag_covariances(model, (128, 128), lags)
    assert var == pytest.approx(1.2, abs=0.05)
    np.testing.assert_allclose(cx, model.covariance(lags.astype(float)), atol=0.05)
    np.testing.assert_allclose(cy, model.covariance(lags.astype(float)), atol=0.05)


def test_anisotropic_field_has_the_model_covariance():
    # major axis east: east lags see the major range, north lags a range 0.4 times as long
    model = VariogramModel(parse_model("1 Sph(20)").structures, Anisotropy(90.0, 0.4))
    lags = np.array([2, 4, 6])
    _, cx, cy = _lag_covariances(model, (128, 128), lags)
    iso = parse_model("1 Sph(20)")
    np.testing.assert_allclose(cx, iso.covariance(lags.astype(float)), atol=0.06)
    np.testing.assert_allclose(cy, iso.covariance(lags / 0.4), atol=0.06)


def test_empirical_variogram_of_samples_approximates_the_model():
    # one realisation fluctuates (sd ~0.1 at the sill here): average five seeds
    model = parse_model("0.1 Nug + 1 Sph(100)")
    gammas = []
    for seed in range(5):
        res = synthesize(SynthConfig(model, n=1500, seed=seed, size=1000.0, cell_size=10.0))
        ev = empirical_variogram(res.coords, res.values, cutoff=300.0, width=25.0)
        gammas.append(ev.gamma)
    np.testing.assert_allclose(np.mean(gammas, axis=0), model.gamma(ev.lags), atol=0.08)


def test_seeds_reproduce_and_differ():
    model = parse_model("1 Exp(100)")
    a = synthesize(SynthConfig(model, n=50, seed=7, cell_size=20.0))
    b = synthesize(SynthConfig(model, n=50, seed=7, cell_size=20.0))
    c = synthesize(SynthConfig(model, n=50, seed=8, cell_size=20.0))
    np.testing.assert_array_equal(a.truth, b.truth)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.allclose(a.truth, c.truth)


def test_samples_are_the_truth_at_their_nodes():
    res = synthesize(SynthConfig(parse_model("1 Gau(100)"), n=40, seed=1, cell_size=50.0))
    g = res.grid
    col = ((res.coords[:, 0] - g.xmin) / g.cell_size).astype(int)
    row = ((g.ymax - res.coords[:, 1]) / g.cell_size).astype(int)
    np.testing.assert_array_equal(res.values, res.truth[row, col])
    assert len(np.unique(res.coords, axis=0)) == 40
    assert res.truth.shape == (20, 20)


def test_trend_is_added_with_the_documented_form():
    model = parse_model("1 Sph(100)")
    base = synthesize(SynthConfig(model, n=10, seed=2, cell_size=50.0))
    trended = synthesize(SynthConfig(model, n=10, seed=2, cell_size=50.0, trend=3.0))
    nodes = base.grid.node_coords()
    xmin, ymin, xmax, ymax = base.grid.extent
    u, v = (nodes[:, 0] - xmin) / (xmax - xmin), (nodes[:, 1] - ymin) / (ymax - ymin)
    expected = 3.0 * (np.sin(2 * np.pi * u) * np.cos(np.pi * v) + 4 * (u - 0.5) * (v - 0.5))
    np.testing.assert_allclose((trended.truth - base.truth).ravel(), expected, atol=1e-12)


def test_3d_drill_holes_and_layers():
    model = parse_model("0.05 Nug + 1 Sph(300, anis=(0, 0, 0, 1, 0.1))")
    cfg = SynthConfig(
        model,
        dims=3,
        n=100,
        layers=3,
        layer_contrast=5.0,
        seed=4,
        cell_size=50.0,
        depth=40.0,
        z_step=5.0,
    )
    res = synthesize(cfg)
    assert res.truth.shape == (9, 20, 20)
    assert res.coords.shape == (100, 3)
    # 9 levels per hole: 12 holes (the last one partial), sampled from the top down
    assert res.hole.max() == 11
    first = res.coords[res.hole == 0]
    assert len(first) == 9 and len(np.unique(first[:, :2], axis=0)) == 1
    np.testing.assert_array_equal(first[:, 2], np.arange(0.0, -45.0, -5.0))
    # the layers add their means to the same field, level by level (3 levels each, top first)
    flat = synthesize(SynthConfig(**{**cfg.__dict__, "layers": 0}))
    assert len(res.layer_means) == 3 and np.ptp(res.layer_means) > 1.0
    diff = (res.truth - flat.truth)[::-1]  # top level first
    expected = np.broadcast_to(np.repeat(res.layer_means, 3)[:, None, None], diff.shape)
    np.testing.assert_allclose(diff, expected)
    np.testing.assert_array_equal(flat.layer_means, [])


def test_files(tmp_path):
    from gcnn_rnn.core.raster import write_raster

    res = synthesize(
        SynthConfig(
            parse_model("1 Sph(200)"), dims=3, n=30, seed=5, cell_size=100.0, depth=10.0, z_step=5.0
        )
    )
    path = write_samples(res, tmp_path / "s.gpkg")
    gdf = gpd.read_file(path)
    assert len(gdf) == 30 and gdf.crs.to_epsg() == 32632 and gdf.has_z.all()
    np.testing.assert_allclose(gdf["value"], res.values)
    np.testing.assert_allclose(gdf["z"], gdf.geometry.z)
    write_raster(tmp_path / "t.tif", res.truth, res.grid, "truth")
    band, grid, _ = read_raster(tmp_path / "t.tif", band=3)
    np.testing.assert_allclose(band, res.truth[2], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"variogram": parse_model("1 Pow(1, alpha=1)")},
        {"dims": 4},
        {"n": 0},
        {"layers": 2},
        {"size": -1.0},
        {"crs": "EPSG:4326"},
    ],
)
def test_bad_configs(kwargs):
    kw = {"variogram": parse_model("1 Sph(100)"), **kwargs}
    with pytest.raises(InputDataError):
        synthesize(SynthConfig(**kw))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_models_that_cannot_be_simulated(monkeypatch):
    rng = np.random.default_rng(0)
    with pytest.raises(InputDataError, match="lin"):
        simulate_gaussian(parse_model("1 Lin(10)"), (20, 20), (1.0, 1.0), rng)
    with pytest.raises(InputDataError, match="hol"):
        simulate_gaussian(parse_model("1 Hol(5)"), (50, 50), (1.0, 1.0), rng)
    log = logging.getLogger("gcnn_rnn.core.synth")
    seen = _Records()
    log.addHandler(seen)
    try:
        # a long range on a small grid: the embedding grows instead of going approximate
        simulate_gaussian(parse_model("1 Gau(30)"), (20, 20), (1.0, 1.0), rng)
        assert not seen.records
        # without room to grow the embedding, small negative eigenvalues are clipped, with a
        # warning; large ones are refused
        monkeypatch.setattr(synth, "MAX_EMBEDDING_CELLS", 2000)
        simulate_gaussian(parse_model("1 Exp(30)"), (20, 20), (1.0, 1.0), rng)
        with pytest.raises(InputDataError, match="not non-negative definite"):
            simulate_gaussian(parse_model("1 Gau(15)"), (20, 20), (1.0, 1.0), rng)
    finally:
        log.removeHandler(seen)
    assert seen.records and "approximate" in seen.records[0].getMessage()


def test_cli(tmp_path, capsys):
    from gcnn_rnn.core.cli.main import main

    args = [
        "synth",
        "--dims",
        "3",
        "--n",
        "25",
        "--variogram",
        "0.1 Nug + 1 Sph(300)",
        "--layers",
        "2",
        "--trend",
        "1",
        "--seed",
        "3",
        "--cell-size",
        "100",
        "--depth",
        "20",
        "--output",
        str(tmp_path / "s.gpkg"),
        "--truth",
        str(tmp_path / "t.tif"),
        "--quiet",
    ]
    assert main(args) == 0
    assert main([*args[:-5], "--output", str(tmp_path / "s2.gpkg"), "--quiet"]) == 0
    bad = main(
        [
            "synth",
            "--variogram",
            "1 Pow(1, alpha=1)",
            "--output",
            str(tmp_path / "b.gpkg"),
            "--quiet",
        ]
    )
    assert bad == 2 and "bounded" in capsys.readouterr().err
    a, b = gpd.read_file(tmp_path / "s.gpkg"), gpd.read_file(tmp_path / "s2.gpkg")
    assert len(a) == 25 and a.has_z.all() and set(a.columns) >= {"value", "z", "hole"}
    np.testing.assert_array_equal(a["value"], b["value"])  # same seed, same samples
    truth, grid, _ = read_raster(tmp_path / "t.tif", band=1)
    assert grid.nrows == grid.ncols == 10 and np.isfinite(truth).all()
    assert not (tmp_path / "b.gpkg").exists()
