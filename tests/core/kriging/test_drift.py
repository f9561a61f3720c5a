"""Kriging with an external drift: known answers, invariances and bad input (gstat agreement
is in ``tests/core/oracle/test_gstat_drift.py``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.kriging import drift as drift_module
from gcnn_rnn.core.kriging import krige_external_drift
from gcnn_rnn.core.kriging.drift import drift_residuals
from gcnn_rnn.core.variogram.models import parse_model

MODEL = parse_model("0.01 Nug + 1 Exp(300)")


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (n, 2))
    cov = np.sin(xy[:, 0] / 150) + xy[:, 1] / 500
    return rng, xy, cov


@pytest.mark.parametrize("neighbours", [0, 12])
def test_a_field_that_is_exactly_its_drift_is_reproduced_anywhere(neighbours):
    # v = 2 + 3 f: the drift explains everything, so any unbiased KED weights give 2 + 3 f(x0)
    rng, xy, cov = _data()
    t = rng.uniform(0, 1000, (40, 2))
    ft = np.sin(t[:, 0] / 150) + t[:, 1] / 500
    res = krige_external_drift(xy, 2 + 3 * cov, cov[:, None], t, ft[:, None], MODEL,
                               neighbours=neighbours)
    np.testing.assert_allclose(res.estimate, 2 + 3 * ft, atol=1e-9)
    assert np.all(res.variance >= 0) and res.n_singular == 0


def test_hand_solved_three_point_system():
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    v = np.array([1.0, 3.0, 2.0])
    f = np.array([0.0, 1.0, 2.0])
    t, f0 = np.array([[50.0, 50.0]]), np.array([1.5])
    res = krige_external_drift(xy, v, f[:, None], t, f0[:, None], MODEL, neighbours=0)
    # three unbiasedness constraints (sum w = 1, sum w f = f0) leave one degree of freedom,
    # fixed by the covariances: solve the 5 x 5 system written out by hand
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    c = MODEL.sill - MODEL.gamma(d)
    a = np.block([[c, np.column_stack([np.ones(3), f])],
                  [np.vstack([np.ones(3), f]), np.zeros((2, 2))]])
    c0 = MODEL.sill - MODEL.gamma(np.sqrt(((xy - t) ** 2).sum(-1)))
    sol = np.linalg.solve(a, np.r_[c0, 1.0, 1.5])
    assert sol[:3].sum() == pytest.approx(1.0) and sol[:3] @ f == pytest.approx(1.5)
    assert res.estimate[0] == pytest.approx(sol[:3] @ v, abs=1e-12)
    assert res.variance[0] == pytest.approx(MODEL.sill - sol @ np.r_[c0, 1.0, 1.5], abs=1e-12)


def test_local_with_every_sample_equals_global():
    rng, xy, cov = _data(60, 1)
    v = cov + rng.normal(0, 0.3, 60)
    t = rng.uniform(0, 1000, (25, 2))
    ft = (np.sin(t[:, 0] / 150) + t[:, 1] / 500)[:, None]
    a = krige_external_drift(xy, v, cov[:, None], t, ft, MODEL, neighbours=0)
    b = krige_external_drift(xy, v, cov[:, None], t, ft, MODEL, neighbours=60)
    c = krige_external_drift(xy, v, cov[:, None], t, ft, MODEL, neighbours=15)
    np.testing.assert_allclose(a.estimate, b.estimate, atol=1e-10)
    np.testing.assert_allclose(a.variance, b.variance, atol=1e-10)
    assert np.abs(a.estimate - c.estimate).max() > 1e-6  # the neighbourhood does matter


def test_a_covariate_constant_over_the_data_is_singular_but_finite(caplog):
    rng, xy, _ = _data(30, 2)
    v = rng.normal(size=30)
    with caplog.at_level(logging.WARNING):
        res = krige_external_drift(xy, v, np.ones((30, 1)), xy[:5] + 7.0, np.ones((5, 1)),
                                   MODEL, neighbours=0)
    assert res.n_singular == 5 and np.isfinite(res.estimate).all()
    assert "singular" in caplog.text


def test_bad_input_is_named():
    rng, xy, cov = _data(30, 3)
    v = cov.copy()
    with pytest.raises(InputDataError, match="shapes must agree"):
        krige_external_drift(xy, v, cov[:, None], xy, np.ones((30, 2)), MODEL)
    bad = cov.copy()
    bad[4] = np.nan
    with pytest.raises(InputDataError, match="NULL or not finite"):
        krige_external_drift(xy, v, bad[:, None], xy, cov[:, None], MODEL)
    with pytest.raises(InputDataError, match="at least 3 neighbours"):
        krige_external_drift(xy, v, cov[:, None], xy, cov[:, None], MODEL, neighbours=2)


def test_global_size_limit(monkeypatch):
    rng, xy, cov = _data(30, 4)
    monkeypatch.setattr(drift_module, "MAX_GLOBAL", 20)
    with pytest.raises(InputDataError, match="limited to 20 samples"):
        krige_external_drift(xy, cov, cov[:, None], xy, cov[:, None], MODEL, neighbours=0)
    res = krige_external_drift(xy, cov, cov[:, None], xy[:3], cov[:3, None], MODEL,
                               neighbours=10)
    assert np.isfinite(res.estimate).all()


def test_drift_residuals_are_least_squares_residuals():
    rng, xy, cov = _data(50, 5)
    v = 1.0 + 2.0 * cov + rng.normal(0, 0.1, 50)
    r = drift_residuals(v, cov)
    design = np.column_stack([np.ones(50), cov])
    np.testing.assert_allclose(design.T @ r, 0.0, atol=1e-9)  # orthogonal to the design
    np.testing.assert_allclose(v - r, design @ np.polyfit(cov, v, 1)[::-1], atol=1e-9)
