"""Singular systems, leave-one-out, simple kriging, 3D grids, chunking, threads, cancel."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gcnn_rnn.core.errors import Cancelled, InputDataError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.kriging import KrigingConfig, krige, krige_grid
from gcnn_rnn.core.kriging.solver import _gamma_fast
from gcnn_rnn.core.variogram.models import MODELS, Structure, VariogramModel


def test_duplicate_samples_are_merged_with_a_warning(rng, sph_model, dense_ok, caplog):
    coords = rng.uniform(0, 500, size=(30, 2))
    values = rng.normal(size=30)
    dup_coords = np.vstack([coords, coords[:3]])
    dup_values = np.append(values, values[:3] + 1.0)
    targets = coords[:3] + [[7.0, -3.0]]
    model = sph_model()
    with caplog.at_level(logging.WARNING):
        res = krige(dup_coords, dup_values, targets, model, KrigingConfig(neighbours=0),
                    return_details=True)
    assert res.n_singular == 3
    assert "singular" in caplog.text
    merged = values.copy()
    merged[:3] += 0.5  # the two coincident samples act as one with their mean
    for r, t in enumerate(targets):
        est, var, mu, _ = dense_ok(coords, merged, t, model)
        assert res.estimate[r] == pytest.approx(est, abs=1e-8)
        assert res.variance[r] == pytest.approx(var, abs=1e-8)
        assert res.lagrange[r] == pytest.approx(mu, abs=1e-8)
    np.testing.assert_allclose(res.weights.sum(axis=1), 1.0, atol=1e-9)


def test_target_on_duplicates_gets_their_mean(sph_model):
    coords = np.array([[0.0, 0.0], [0.0, 0.0], [50.0, 0.0]])
    res = krige(coords, np.array([1.0, 3.0, 7.0]), np.zeros((1, 2)), sph_model())
    assert res.estimate[0] == 2.0 and res.variance[0] == 0.0


def test_collinear_and_ill_conditioned_systems_are_finite(caplog):
    x = np.linspace(0, 10, 25)
    coords = np.column_stack([x, 2 * x + 1])  # all samples on a line
    values = np.sin(x)
    targets = np.array([[5.05, 11.0], [3.0, 20.0], [20.0, -4.0]])
    gau = VariogramModel((Structure("gau", 1.0, 30.0),))  # no nugget: numerically singular
    with caplog.at_level(logging.WARNING):
        res = krige(coords, values, targets, gau, KrigingConfig(neighbours=0))
    assert np.isfinite(res.estimate).all() and np.isfinite(res.variance).all()
    assert (res.variance >= 0).all()
    assert res.n_singular == 3 and "singular" in caplog.text
    # a well-posed model on the same line needs no fallback and is exact
    sph = VariogramModel((Structure("nug", 0.01), Structure("sph", 1.0, 30.0)))
    res = krige(coords, values, coords, sph, KrigingConfig(neighbours=6))
    assert res.n_singular == 0
    np.testing.assert_array_equal(res.estimate, values)


def test_pure_nugget_gives_the_mean_of_the_neighbours(rng):
    coords = rng.uniform(0, 100, size=(20, 2))
    values = rng.normal(size=20)
    model = VariogramModel((Structure("nug", 2.0),))
    res = krige(coords, values, np.array([[50.0, 50.0]]), model, KrigingConfig(neighbours=0))
    assert res.estimate[0] == pytest.approx(values.mean(), abs=1e-12)
    assert res.variance[0] == pytest.approx(2.0 * (1 + 1 / 20), abs=1e-12)


def test_leave_one_out_equals_kriging_without_the_point(rng, sph_model):
    coords = rng.uniform(0, 1000, size=(70, 2))
    values = rng.normal(size=70)
    model = sph_model()
    for cfg in (KrigingConfig(neighbours=10), KrigingConfig(neighbours=0),
                KrigingConfig(neighbours=10, sectors=4)):
        loo = krige(coords, values, coords, model, cfg, exclude_self=True)
        for i in (0, 17, 69):
            keep = np.arange(70) != i
            one = krige(coords[keep], values[keep], coords[i : i + 1], model, cfg)
            assert loo.estimate[i] == pytest.approx(one.estimate[0], abs=1e-10)
            assert loo.variance[i] == pytest.approx(one.variance[0], abs=1e-10)
        assert (loo.variance > 0).all()


def test_simple_kriging_with_known_mean(rng, sph_model, dense_ok):
    coords = rng.uniform(0, 1000, size=(40, 2))
    values = 5.0 + rng.normal(size=40)
    targets = rng.uniform(0, 1000, size=(15, 2))
    model = sph_model()
    res = krige(coords, values, targets, model, KrigingConfig(neighbours=0, mean=5.0))
    for r, t in enumerate(targets):
        est, var, _, _ = dense_ok(coords, values, t, model, simple_mean=5.0)
        assert res.estimate[r] == pytest.approx(est, abs=1e-10)
        assert res.variance[r] == pytest.approx(var, abs=1e-10)
    np.testing.assert_array_equal(res.lagrange, 0.0)
    far = krige(coords, values, np.array([[1e6, 1e6]]), model, KrigingConfig(mean=5.0))
    assert far.estimate[0] == pytest.approx(5.0) and far.variance[0] == pytest.approx(1.1)


def test_simple_kriging_refuses_unbounded_models():
    model = VariogramModel((Structure("pow", 1.0, 1.0, 1.5),))
    with pytest.raises(InputDataError, match="unbounded"):
        krige(np.zeros((2, 2)) + [[0, 0], [1, 1]], [1.0, 2.0], np.ones((1, 2)), model,
              KrigingConfig(mean=0.0))


def test_3d_grid_against_point_kriging(rng, sph_model):
    coords = rng.uniform(0, 100, size=(80, 3))
    values = rng.normal(size=80)
    grid = Grid.from_extent((0, 0, 100, 100), 20.0, z_levels=(10.0, 50.0, 90.0))
    model = sph_model(range_=70.0)
    cfg = KrigingConfig(neighbours=12)
    res = krige_grid(coords, values, grid, model, cfg)
    assert res.estimate.shape == (3, 5, 5)
    pts = krige(coords, values, grid.node_coords(), model, cfg)
    np.testing.assert_allclose(res.estimate.ravel(), pts.estimate, atol=1e-12)
    np.testing.assert_allclose(res.variance.ravel(), pts.variance, atol=1e-12)
    with pytest.raises(InputDataError, match="2D but the samples are 3D"):
        krige_grid(coords, values, Grid.from_extent((0, 0, 100, 100), 20.0), model, cfg)


def test_chunks_and_threads_do_not_change_results(rng, sph_model):
    coords = rng.uniform(0, 1000, size=(3000, 2))
    values = rng.normal(size=3000)
    grid = Grid.from_extent((0, 0, 1000, 1000), 8.0)  # 15,625 nodes: tiled search
    model = sph_model()
    ref = krige_grid(coords, values, grid, model, KrigingConfig(neighbours=16, n_jobs=1))
    for cfg in (KrigingConfig(neighbours=16, n_jobs=2, chunk_size=999),
                KrigingConfig(neighbours=16, memory_budget_mb=1)):
        res = krige_grid(coords, values, grid, model, cfg)
        np.testing.assert_allclose(res.estimate, ref.estimate, atol=1e-12)
        np.testing.assert_allclose(res.variance, ref.variance, atol=1e-12)
    # the grid path (tiles, factor updates) agrees with plain per-point kriging
    pts = grid.node_coords(0, 500)
    one = krige(coords, values, pts, model, KrigingConfig(neighbours=16, chunk_size=1))
    np.testing.assert_allclose(ref.estimate.ravel()[:500], one.estimate, atol=1e-10)
    np.testing.assert_allclose(ref.variance.ravel()[:500], one.variance, atol=1e-10)


def test_progress_and_cancel(rng, sph_model):
    coords = rng.uniform(0, 100, size=(50, 2))
    values = rng.normal(size=50)
    seen = []
    krige(coords, values, rng.uniform(0, 100, size=(1000, 2)), sph_model(),
          KrigingConfig(chunk_size=300), progress=lambda f, t: seen.append(f))
    assert seen == pytest.approx([0.3, 0.6, 0.9, 1.0])
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        krige_grid(coords, values, Grid.from_extent((0, 0, 100, 100), 1.0), sph_model(),
                   KrigingConfig(chunk_size=1000), should_stop=stop)
    assert len(calls) == 3


@pytest.mark.parametrize("name", ["nug", "sph", "exp", "gau"])
def test_fast_gamma_equals_model_gamma(name):
    s = Structure(name, 0.7, 0.0 if name == "nug" else 35.0)
    model = VariogramModel((Structure("nug", 0.1), s))
    codes, params = model.kernel_arrays()
    h = np.concatenate([[0.0, 1e-9], np.linspace(0.01, 200, 300)])
    got = np.array([_gamma_fast(codes, params, x) for x in h])
    np.testing.assert_allclose(got, model.gamma(h), rtol=1e-14, atol=1e-15)
    assert set(MODELS) >= {"nug", "sph", "exp", "gau"}


@pytest.mark.parametrize("nu", [0.3, 1.0, 2.5, 12.17])
def test_fast_gamma_matern_equals_model_gamma(nu):
    """The inline Matérn (its table, the Bessel function near 0 for a small nu)."""
    model = VariogramModel((Structure("nug", 0.1), Structure("mat", 0.7, 35.0, nu)))
    codes, params = model.kernel_arrays()
    h = np.concatenate([[0.0, 1e-9], np.geomspace(1e-4, 1e4, 200), np.linspace(0.01, 200, 300)])
    got = np.array([_gamma_fast(codes, params, x) for x in h])
    np.testing.assert_allclose(got, model.gamma(h), rtol=0, atol=1e-12)
    assert got[0] == 0.0


def test_bad_inputs(sph_model):
    m = sph_model()
    with pytest.raises(InputDataError, match="shape"):
        krige(np.zeros((3, 4)), np.zeros(3), np.zeros((1, 4)), m)
    with pytest.raises(InputDataError, match="2 values for 3"):
        krige(np.eye(3)[:, :2], np.zeros(2), np.zeros((1, 2)), m)
    with pytest.raises(InputDataError, match="3D but the samples are 2D"):
        krige(np.eye(3)[:, :2], np.zeros(3), np.zeros((1, 3)), m)
    with pytest.raises(InputDataError, match="sectors"):
        KrigingConfig(sectors=3)
    with pytest.raises(InputDataError, match="min_neighbours"):
        KrigingConfig(neighbours=4, min_neighbours=5)


def test_config_round_trip():
    cfg = KrigingConfig(neighbours=12, min_neighbours=3, max_distance=250.0, sectors=8, mean=1.5)
    assert KrigingConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputDataError, match="unknown kriging option"):
        KrigingConfig.from_dict({"nmax": 3})


def test_a_self_index_leave_out_is_never_re_solved_with_its_own_sample(rng):
    """A Gaussian model without nugget makes the stability layer re-check every target. A
    target left out by ``self_index`` must keep its leave-out estimate (that of
    ``exclude_self``), never be re-solved from all samples, its own value included."""
    coords = rng.uniform(0, 100, size=(80, 2))
    values = np.sin(coords[:, 0] / 20) + rng.normal(0, 0.3, 80)
    model = VariogramModel([Structure("gau", 1.0, 40.0)])
    cfg = KrigingConfig(neighbours=12)
    loo = krige(coords, values, coords, model, cfg, exclude_self=True)
    part = np.arange(10, 50)
    got = krige(coords, values, coords[part], model, cfg, self_index=part)
    np.testing.assert_array_equal(got.estimate, loo.estimate[part])
    np.testing.assert_array_equal(got.variance, loo.variance[part])
    assert not np.allclose(got.estimate, values[part])  # not the samples' own values
