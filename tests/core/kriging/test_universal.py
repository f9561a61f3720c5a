"""Universal kriging, block kriging and measurement error (:mod:`core.kriging.universal`):
identities that hold exactly, independent of any reference implementation (gstat comparisons
are in tests/core/oracle/test_gstat_universal.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.kriging import (
    KrigingConfig,
    krige,
    krige_universal,
    krige_universal_grid,
)
from gcnn_rnn.core.kriging.drift import block_discretisation
from gcnn_rnn.core.kriging.universal import parse_drift_terms
from gcnn_rnn.core.variogram.models import parse_model

MODEL = parse_model("0.1 Nug + 1 Sph(40)")


def _data(n=60, d=2, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, size=(n, d))
    return rng, xy, rng.normal(size=n)


@pytest.mark.parametrize("d", [2, 3])
def test_block_estimate_is_the_weighted_mean_of_point_estimates(d):
    # global neighbourhood: the system is shared, the block right-hand side is the weighted
    # mean of the point ones, so the block estimate is the mean of the point estimates
    _, xy, v = _data(40, d)
    t = np.full((1, d), 50.3)
    size = (10.0, 8.0, 6.0)[:d]
    offsets, weights = block_discretisation(size)
    assert len(offsets) == 4**d and weights.sum() == pytest.approx(1.0)
    blk = krige_universal(xy, v, t, MODEL, neighbours=0, block=size)
    pts = krige_universal(xy, v, t + offsets, MODEL, neighbours=0)
    assert blk.estimate[0] == pytest.approx(weights @ pts.estimate, abs=1e-12)
    # ... and its variance is below the mean point variance (a mean is smoother)
    assert 0 < blk.variance[0] < weights @ pts.variance


def test_regular_discretisation():
    off, w = block_discretisation((40.0, 0.0), 4)
    np.testing.assert_allclose(off[:, 0], [-15, -5, 5, 15])
    np.testing.assert_allclose(off[:, 1], 0.0)
    np.testing.assert_allclose(w, 0.25)


def test_ordinary_path_equals_compiled_ordinary_kriging():
    _, xy, v = _data()
    t = np.random.default_rng(3).uniform(0, 100, size=(50, 2))
    a = krige_universal(xy, v, t, MODEL, neighbours=12)
    b = krige(xy, v, t, MODEL, KrigingConfig(neighbours=12))
    np.testing.assert_allclose(a.estimate, b.estimate, atol=1e-10)
    np.testing.assert_allclose(a.variance, b.variance, atol=1e-10)


def test_linear_coordinate_trend_is_reproduced_exactly():
    _, xy, _ = _data()
    v = 2.0 + 0.03 * xy[:, 0] - 0.05 * xy[:, 1] + 1e-3 * xy[:, 0] * xy[:, 1]
    t = np.array([[10.0, 90.0], [55.5, 44.4], [99.0, 1.0]])
    want = 2.0 + 0.03 * t[:, 0] - 0.05 * t[:, 1] + 1e-3 * t[:, 0] * t[:, 1]
    for k in (0, 15):
        res = krige_universal(xy, v, t, MODEL, drift="x,y,xy", neighbours=k)
        np.testing.assert_allclose(res.estimate, want, atol=1e-9)


def test_3d_drift_in_z():
    _, xyz, _ = _data(80, 3)
    v = 1.0 + 0.2 * xyz[:, 2]
    res = krige_universal(xyz, v, np.array([[50.0, 50.0, 33.0]]), MODEL, drift="z",
                          neighbours=20)
    assert res.estimate[0] == pytest.approx(1.0 + 0.2 * 33.0, abs=1e-9)


def test_measurement_error_smooths_and_lowers_the_variance_by_err():
    _, xy, v = _data()
    t = np.vstack([xy[:3], [[33.3, 66.6]]])
    err = parse_model("0.05 Err + 0.05 Nug + 1 Sph(40)")
    nug = parse_model("0.1 Nug + 1 Sph(40)")
    a = krige_universal(xy, v, t, err, neighbours=0)
    b = krige_universal(xy, v, t, nug, neighbours=0)
    # away from the data: the same system and right-hand side, the target's Err removed
    assert a.estimate[3] == pytest.approx(b.estimate[3], abs=1e-12)
    assert a.variance[3] == pytest.approx(b.variance[3] - 0.05, abs=1e-12)
    # at the data: Nug honours them (variance 0), Err does not
    np.testing.assert_allclose(b.estimate[:3], v[:3], atol=1e-10)
    assert (np.abs(a.estimate[:3] - v[:3]) > 1e-4).all() and (a.variance[:3] > 0).all()


def test_err_text_and_dict_round_trip():
    m = parse_model("0.02 Err + 0.03 Nug + 0.59 Sph(897)")
    assert m.to_text() == "0.02 Err + 0.03 Nug + 0.59 Sph(897)"
    assert parse_model(m.to_text()) == m
    assert type(m).from_dict(m.to_dict()) == m
    assert m.measurement_error == 0.02 and m.nugget == pytest.approx(0.05)
    assert m.gamma(1e-9) == pytest.approx(0.05, abs=1e-9) and m.gamma(0.0) == 0.0
    with pytest.raises(InputDataError, match="no range"):
        parse_model("0.02 Err(5) + 1 Sph(10)")


def test_compiled_kriging_refuses_err():
    _, xy, v = _data()
    with pytest.raises(InputDataError, match="measurement error"):
        krige(xy, v, xy[:2], parse_model("0.02 Err + 1 Sph(40)"))


def test_missing_covariates_targets_nan_samples_dropped(caplog):
    rng, xy, v = _data()
    cov = xy[:, :1] / 100
    cov[[3, 7]] = np.nan
    t = np.array([[10.0, 10.0], [20.0, 20.0]])
    res = krige_universal(xy, v, t, MODEL, covariates=cov,
                          target_covariates=np.array([[0.1], [np.nan]]), neighbours=16)
    assert np.isfinite(res.estimate[0]) and np.isnan(res.estimate[1]) and np.isnan(res.variance[1])
    assert res.n_missing == 1
    assert "2 of 60 sample(s) have no value" in caplog.text


def test_grid_matches_points_and_honours_the_mask():
    _, xy, v = _data()
    mask = np.ones((5, 4), dtype=bool)
    mask[0, 0] = False
    grid = Grid(0.0, 100.0, 25.0, 4, 5, None, None, mask)
    cov = grid.node_coords()[:, :1] / 100
    g = krige_universal_grid(xy, v, grid, MODEL, covariates=xy[:, :1] / 100,
                             grid_covariates=cov, drift="y", neighbours=10, block=(25, 25))
    p = krige_universal(xy, v, grid.node_coords(), MODEL, covariates=xy[:, :1] / 100,
                        target_covariates=cov, drift="y", neighbours=10, block=(25, 25))
    assert np.isnan(g.estimate[0, 0]) and g.n_missing == 0
    np.testing.assert_allclose(g.estimate.ravel()[1:], p.estimate[1:], atol=1e-12)


@pytest.mark.parametrize("terms,ndim,message", [
    ("x2", 2, "needs the lower-order term"), ("xy,x", 2, "needs the lower-order term"),
    ("w", 2, "unknown drift term"), ("z", 2, "needs 3D data"), ("x,x", 2, "repeated"),
])
def test_bad_drift_terms(terms, ndim, message):
    with pytest.raises(InputDataError, match=message):
        parse_drift_terms(terms, ndim)


def test_bad_blocks():
    _, xy, v = _data()
    with pytest.raises(InputDataError, match="3 size"):
        krige_universal(xy, v, xy[:2], MODEL, block=(1, 2, 3))
    with pytest.raises(InputDataError, match="discretisation"):
        krige_universal(xy, v, xy[:2], MODEL, block=(1, 2), block_discretisation=0)


def test_err_is_not_a_fit_candidate():
    from gcnn_rnn.core.variogram.fit import auto_variogram

    _, xy, v = _data()
    with pytest.raises(InputDataError, match="cannot be fitted"):
        auto_variogram(xy, v, ("err",))
