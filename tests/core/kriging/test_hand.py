"""Kriging systems small enough to solve by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.variogram.models import Structure, VariogramModel


def _sph(h, c0=0.1, c=1.0, a=300.0):
    if h == 0:
        return 0.0
    x = min(h / a, 1.0)
    return c0 + c * (1.5 * x - 0.5 * x**3)


def test_two_point_ordinary_kriging_by_hand(sph_model):
    coords = np.array([[0.0, 0.0], [100.0, 0.0]])
    values = np.array([2.0, 5.0])
    target = np.array([[30.0, 40.0]])
    g12 = _sph(100.0)
    g10, g20 = _sph(50.0), _sph(math.hypot(70.0, 40.0))
    # gamma12 w2 + mu = g10 ; gamma12 w1 + mu = g20 ; w1 + w2 = 1
    w2 = (1.0 + (g10 - g20) / g12) / 2.0
    w1 = 1.0 - w2
    mu = g10 - g12 * w2
    var = w1 * g10 + w2 * g20 + mu
    res = krige(coords, values, target, sph_model(), KrigingConfig(neighbours=0),
                return_details=True)
    assert res.estimate[0] == pytest.approx(w1 * 2.0 + w2 * 5.0, abs=1e-12)
    assert res.variance[0] == pytest.approx(var, abs=1e-12)
    assert res.lagrange[0] == pytest.approx(mu, abs=1e-12)
    # details are ordered by distance: sample 0 (50) before sample 1 (80.6)
    assert res.neighbours[0].tolist() == [0, 1]
    np.testing.assert_allclose(res.weights[0], [w1, w2], atol=1e-12)
    np.testing.assert_allclose(res.distances[0], [50.0, math.hypot(70.0, 40.0)], atol=1e-12)
    np.testing.assert_allclose(res.cov_target[0], [1.1 - g10, 1.1 - g20], atol=1e-12)


def test_one_point_simple_kriging_by_hand(sph_model):
    model = sph_model()
    coords = np.array([[0.0, 0.0]])
    res = krige(coords, np.array([3.0]), np.array([[120.0, 0.0]]), model,
                KrigingConfig(mean=1.0), return_details=True)
    c0 = 1.1 - _sph(120.0)
    lam = c0 / 1.1
    assert res.estimate[0] == pytest.approx(1.0 + lam * 2.0, abs=1e-12)
    assert res.variance[0] == pytest.approx(1.1 - lam * c0, abs=1e-12)
    assert res.lagrange[0] == 0.0


def test_one_neighbour_ordinary_kriging_variance_is_twice_gamma(sph_model):
    res = krige(np.array([[0.0, 0.0], [500.0, 0.0]]), np.array([1.0, 9.0]),
                np.array([[0.0, 80.0]]), sph_model(), KrigingConfig(neighbours=1))
    assert res.estimate[0] == 1.0
    assert res.variance[0] == pytest.approx(2 * _sph(80.0), abs=1e-12)
    assert res.lagrange[0] == pytest.approx(_sph(80.0), abs=1e-12)


def test_three_points_against_dense_solve(rng, dense_ok):
    coords = np.array([[0.0, 0.0], [150.0, 20.0], [60.0, 170.0]])
    values = np.array([1.0, -2.0, 4.0])
    model = VariogramModel((Structure("nug", 0.2), Structure("exp", 1.5, 90.0)))
    targets = rng.uniform(-50, 200, size=(20, 2))
    res = krige(coords, values, targets, model, KrigingConfig(neighbours=0),
                return_details=True)
    for i, t in enumerate(targets):
        est, var, mu, w = dense_ok(coords, values, t, model)
        assert res.estimate[i] == pytest.approx(est, abs=1e-10)
        assert res.variance[i] == pytest.approx(var, abs=1e-10)
        assert res.lagrange[i] == pytest.approx(mu, abs=1e-10)
        order = res.neighbours[i]
        np.testing.assert_allclose(res.weights[i], w[order], atol=1e-10)
    np.testing.assert_allclose(res.weights.sum(axis=1), 1.0, atol=1e-12)
    assert (res.variance > 0).all()


def test_exact_at_data_with_nugget(rng, sph_model):
    coords = rng.uniform(0, 1000, size=(60, 2))
    values = rng.normal(size=60)
    for cfg in (KrigingConfig(neighbours=8), KrigingConfig(neighbours=0),
                KrigingConfig(neighbours=8, mean=0.3)):
        res = krige(coords, values, coords, sph_model(nugget=0.3), cfg, return_details=True)
        np.testing.assert_array_equal(res.estimate, values)
        np.testing.assert_array_equal(res.variance, 0.0)
        np.testing.assert_array_equal(res.weights[:, 0], 1.0)


def test_variance_never_negative_near_data(rng, sph_model):
    coords = rng.uniform(0, 1000, size=(80, 2))
    values = rng.normal(size=80)
    targets = coords + rng.normal(scale=1e-7, size=coords.shape)
    res = krige(coords, values, targets, sph_model(nugget=0.0), KrigingConfig(neighbours=10))
    assert (res.variance >= 0).all()
    assert np.isfinite(res.estimate).all()
    np.testing.assert_allclose(res.estimate, values, atol=1e-4)
