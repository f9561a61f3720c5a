"""Transforms: round trips, lognormal moments, normal scores with ties and tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.transforms import (
    TAIL_SCORE,
    FittedTransform,
    Transform,
    fit_transform,
    parse_transform,
)
from gcnn_rnn.core.variogram.models import Structure, VariogramModel


@pytest.mark.parametrize("kind", list(Transform))
def test_round_trip_and_serialisation(kind):
    z = np.random.default_rng(0).lognormal(3.0, 0.8, size=200)
    ft = fit_transform(z, kind)
    y = ft.forward(z)
    np.testing.assert_allclose(ft.inverse(y), z, rtol=1e-12)
    np.testing.assert_allclose(ft.back(y, np.zeros_like(y))[0], z, rtol=1e-12)
    again = FittedTransform.from_dict(ft.to_dict())
    assert again == ft
    np.testing.assert_array_equal(again.forward(z), y)


def test_parse_transform():
    assert parse_transform("LOG") is Transform.LOG
    assert parse_transform(None) is Transform.NONE
    with pytest.raises(InputDataError, match="unknown transform 'sqrt'"):
        parse_transform("sqrt")


def test_log_needs_positive_values_and_names_the_first_bad_one():
    with pytest.raises(InputDataError, match=r"first: -2\.0 at position 3"):
        fit_transform([1.0, 2.0, 3.0, -2.0, 0.0], "log")


def test_lognormal_back_transform_moments():
    m, s2 = 1.3, 0.49
    ft = fit_transform([1.0, 2.0], "log")
    est, var = ft.back(np.array([m]), np.array([s2]))
    assert est[0] == pytest.approx(math.exp(m + s2 / 2))  # lognormal mean
    assert var[0] == pytest.approx(math.exp(2 * m + s2) * math.expm1(s2))  # lognormal var
    est_mu, _ = ft.back(np.array([m]), np.array([s2]), lagrange=np.array([0.1]))
    assert est_mu[0] == pytest.approx(math.exp(m + s2 / 2 - 0.1))


def test_lognormal_ordinary_kriging_is_unbiased_by_simulation():
    """Journel's exp(y + s2/2 - mu) with the engine's Lagrange sign: E[Z*] = E[Z0]."""
    rng = np.random.default_rng(42)
    pts = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 45.0], [60.0, 50.0], [20.0, 20.0]])
    model = VariogramModel((Structure("nug", 0.05), Structure("exp", 0.6, 40.0)))
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    cov = model.sill - model.gamma(d)
    cov[np.diag_indices(5)] = model.sill
    sims = 2.0 + rng.multivariate_normal(np.zeros(5), cov, size=200_000)  # mean unknown to OK
    res = krige(pts[:4], np.zeros(4), pts[4:], model, KrigingConfig(neighbours=0),
                return_details=True)
    w = res.weights[0][np.argsort(res.neighbours[0])]
    y_star = sims[:, :4] @ w
    ft = fit_transform([1.0], "log")
    z_star, _ = ft.back(y_star, np.full_like(y_star, res.variance[0]),
                        lagrange=np.full_like(y_star, res.lagrange[0]))
    z0 = np.exp(sims[:, 4])
    rel_bias = (z_star.mean() - z0.mean()) / z0.mean()
    assert abs(rel_bias) < 0.01
    naive = np.exp(y_star + res.variance[0] / 2)  # ignoring mu is biased here
    assert abs((naive.mean() - z0.mean()) / z0.mean()) > 3 * abs(rel_bias)


def test_normal_scores_with_ties():
    z = np.array([5.0, 1.0, 3.0, 3.0, 9.0])
    ft = fit_transform(z, "nscore")
    y = ft.forward(z)
    # ranks 1, (2,3 tied -> 2.5), 4, 5 ; Hazen p = (r - 0.5) / n
    expect = stats.norm.ppf((np.array([4, 1, 2.5, 2.5, 5]) - 0.5) / 5)
    np.testing.assert_allclose(y, expect, rtol=1e-12)
    assert y[2] == y[3]


def test_normal_scores_are_standard_normal_for_many_values():
    z = np.random.default_rng(1).gamma(2.0, size=5000)
    y = fit_transform(z, "nscore").forward(z)
    assert abs(y.mean()) < 1e-10
    assert y.std() == pytest.approx(1.0, abs=0.01)


def test_nscore_tails_are_linear_to_the_limits_and_clamped():
    z = np.array([2.0, 4.0, 6.0, 8.0])
    ft = fit_transform(z, "nscore", zmin=0.0, zmax=20.0)
    y1, y4 = ft.table_y[0], ft.table_y[-1]
    assert ft.inverse(np.array([-TAIL_SCORE]))[0] == 0.0
    assert ft.inverse(np.array([-9.0]))[0] == 0.0
    assert ft.inverse(np.array([TAIL_SCORE + 1]))[0] == 20.0
    mid = (y4 + TAIL_SCORE) / 2
    assert ft.inverse(np.array([mid]))[0] == pytest.approx(14.0)
    assert ft.forward(np.array([1.0]))[0] == pytest.approx((y1 - TAIL_SCORE) / 2)
    data_tails = fit_transform(z, "nscore")
    assert data_tails.zmin == pytest.approx(1.7) and data_tails.zmax == pytest.approx(8.3)
    with pytest.raises(InputDataError, match="bracket"):
        fit_transform(z, "nscore", zmin=3.0)


def test_nscore_back_transform_is_the_conditional_expectation():
    z = np.random.default_rng(2).lognormal(0.0, 1.0, size=3000)
    ft = fit_transform(z, "nscore")
    y_hat, s2 = np.array([0.3, -1.0]), np.array([0.5, 0.0])
    est, var = ft.back(y_hat, s2)
    # Monte Carlo of E[phi^-1(Y)], Y ~ N(0.3, 0.5)
    draws = np.random.default_rng(3).normal(0.3, math.sqrt(0.5), size=400_000)
    mc = ft.inverse(draws)
    assert est[0] == pytest.approx(mc.mean(), rel=5e-3)
    assert var[0] == pytest.approx(mc.var(), rel=2e-2)
    assert est[1] == pytest.approx(ft.inverse(np.array([-1.0]))[0]) and var[1] == 0.0
    nan_est, nan_var = ft.back(np.array([np.nan]), np.array([1.0]))
    assert np.isnan(nan_est[0]) and np.isnan(nan_var[0])
