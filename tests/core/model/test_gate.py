"""The do-no-harm gate: it closes (the hybrid returns its base exactly) when the network's
correction is useless, and keeps the correction when the residual is learnable."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gcnn_rnn.core.model.estimator import HybridRegressor
from gcnn_rnn.core.model.gate import gate_message, gate_weight


def test_a_noise_correction_is_gated_off():
    rng = np.random.default_rng(0)
    n = 200
    base = rng.normal(size=n)
    observed = base + rng.normal(scale=0.5, size=n)
    oof = base + rng.normal(scale=0.5, size=n)  # a correction unrelated to the residual
    groups = np.arange(n) % 5
    d = gate_weight(observed, oof, base, groups, base_name="KED")
    assert d.weight == 0.0 and not d.kept
    assert d.gated_rmse >= d.base_rmse and d.hybrid_rmse > d.base_rmse
    assert gate_message(d).startswith("the network did not improve on KED for these data: "
                                      "the prediction equals KED")


def test_a_useful_correction_is_kept_with_its_least_squares_weight():
    rng = np.random.default_rng(1)
    n = 200
    base = rng.normal(size=n)
    resid = rng.normal(scale=0.5, size=n)
    observed = base + resid
    oof = base + 2.0 * resid + rng.normal(scale=0.05, size=n)  # right shape, twice too large
    d = gate_weight(observed, oof, base, np.arange(n) % 5)
    assert d.kept and d.weight == pytest.approx(0.5, abs=0.02)
    assert d.gated_rmse < 0.3 * d.base_rmse
    # all clipped to [0, 1]: an under-sized correction is not blown up
    d1 = gate_weight(observed, base + 0.5 * resid, base, np.arange(n) % 5)
    assert d1.weight == pytest.approx(1.0)


def test_too_few_out_of_fold_samples_return_the_base():
    d = gate_weight(np.ones(5), np.zeros(5), np.ones(5) * 0.5, np.arange(5))
    assert d.weight == 0.0


def test_a_useless_network_returns_the_base_exactly(meuse_points, tiny, vg, targets, caplog):
    """A network that never learns (learning rate ~0: its random initial weights) is noise."""
    useless = {**tiny, "epochs": 1, "learning_rate": 1e-12}
    est = HybridRegressor(transform="log", variogram=vg, seed=0, **useless)
    with caplog.at_level(logging.WARNING, logger="gcnn_rnn.core.model.estimator"):
        est.fit(meuse_points.coords, meuse_points.values)
    assert est.shrinkage_ == 0.0 and est.gate_["kept"] is False
    assert "the network did not improve on OK for these data: the prediction equals OK" in \
        caplog.text
    p = est.predict_full(targets(meuse_points, 30))
    np.testing.assert_array_equal(p.prediction_t, p.ok_estimate_t)
    np.testing.assert_array_equal(p.members_t, np.repeat(p.ok_estimate_t[:, None], 2, axis=1))
    # intervals calibrated on the final predictor: OK with the kriging standard deviation
    np.testing.assert_allclose(p.sigma_t, np.sqrt(p.ok_variance_t))
    assert est.training_metrics_["gate"]["weight"] == 0.0


def test_the_correction_is_kept_when_the_residual_is_learnable(tmp_path, tiny):
    """Values = a smooth field + 2 x a covariate that changes faster than the sample
    spacing: kriging sees it as noise, the network (covariate at the target) can learn it."""
    from gcnn_rnn.core.raster import write_raster
    from gcnn_rnn.core.synth import SynthConfig, synthesize
    from gcnn_rnn.core.variogram.models import parse_model

    r = synthesize(SynthConfig(parse_model("0.01 Nug + 0.3 Sph(500)"), n=220, seed=3))
    grid = r.grid
    nodes = grid.node_coords()
    x, y = nodes[:, 0] - grid.extent[0], nodes[:, 1] - grid.extent[1]
    cov = (np.sin(x / 23.0) * np.cos(y / 31.0)).reshape(grid.shape)
    path = tmp_path / "cov.tif"
    write_raster(path, cov, grid, "covariate", qml=False)
    from gcnn_rnn.core.features import sample_covariates

    at = sample_covariates([str(path)], r.coords, grid.crs)[:, 0]
    values = r.values + 2.0 * at
    opts = {**tiny, "epochs": 40, "patience": 10}
    # base OK: the gate is under test here (with base auto, KED in the covariate would take
    # the linear part itself; base selection has its own tests)
    est = HybridRegressor(variogram="0.6 Nug + 0.3 Sph(500)", covariates=(str(path),),
                          crs=grid.crs, seed=0, base="ok", **opts)
    est.fit(r.coords, values)
    gate = est.gate_
    assert gate["kept"] and est.shrinkage_ > 0.5, gate
    assert gate["gated_rmse"] < 0.8 * gate["base_rmse"]
    assert gate["message"].startswith("the network improves on OK for these data")
