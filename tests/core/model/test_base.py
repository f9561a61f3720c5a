"""The hybrid's classical base: KED is chosen where a covariate drives the field and OK where
it does not; the base's training features never see the sample they describe; predictions
carry the base's own estimate."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.kriging import krige_external_drift
from gcnn_rnn.core.kriging.drift import drift_residuals
from gcnn_rnn.core.kriging.model_cv import CandidateCV
from gcnn_rnn.core.model.base import (
    Base,
    choose_base,
    drift_part_loo,
    ked_at_samples,
)
from gcnn_rnn.core.synth import SynthConfig, synthesize
from gcnn_rnn.core.variogram.fit import auto_variogram
from gcnn_rnn.core.variogram.models import parse_model


def _data(drift_strength: float, seed: int = 0, n: int = 150):
    """A smooth field plus ``drift_strength`` x a covariate (a gradient plus bumps shorter
    than the sample spacing, which kriging alone cannot follow) unrelated to the field."""
    r = synthesize(SynthConfig(parse_model("0.05 Nug + 0.5 Exp(200)"), n=n, seed=seed))
    rng = np.random.default_rng(seed + 100)
    coords = r.coords + rng.uniform(-1, 1, r.coords.shape)
    u = (coords - coords.min(axis=0)) / np.ptp(coords, axis=0)
    cov = 2.0 * u[:, 0] + np.sin(30.0 * u[:, 1]) * np.cos(23.0 * u[:, 0])
    return coords, r.values + drift_strength * cov, cov[:, None]


def _ok_loo(coords, y, k=16):
    model = auto_variogram(coords, y, ("sph", "exp", "gau", "mat"), neighbours=k).model
    return CandidateCV(coords, y, k).predictions(model)[0]


def test_auto_picks_ked_with_a_strong_drift_and_ok_without():
    coords, y, f = _data(3.0)
    base, est, var, trend = choose_base("auto", coords, y, f, _ok_loo(coords, y), 16, "cv")
    assert base.name == "ked" and base.scores["ked"] < 0.9 * base.scores["ok"]
    assert est.shape == var.shape == trend.shape == (150,)
    coords, y, f = _data(0.0)
    base, est, *_ = choose_base("auto", coords, y, f, _ok_loo(coords, y), 16, "cv")
    assert base.name == "ok" and est is None and set(base.scores) == {"ok", "ked"}


def _curved(shape: str, seed: int, n: int = 650):
    """A smooth field plus 3 x shape(c) for a non-negative, distance-like covariate ``c``
    (0 on a line, growing away from it, with bumps shorter than the sample spacing)."""
    r = synthesize(SynthConfig(parse_model("0.05 Nug + 0.3 Exp(200)"), n=n, seed=seed))
    rng = np.random.default_rng(seed + 100)
    coords = r.coords + rng.uniform(-1, 1, r.coords.shape)
    u = (coords - coords.min(axis=0)) / np.ptp(coords, axis=0)
    c = np.abs(u[:, 0] - 0.3) * (1.0 + 0.5 * np.sin(30.0 * u[:, 1]) ** 2)
    g = {"identity": c, "sqrt": np.sqrt(c)}[shape]
    return coords, r.values - 3.0 * g, c[:, None]


def _held_out(coords, y, drift, model, tr, te) -> float:
    r = krige_external_drift(coords[tr], y[tr], drift[tr], coords[te], drift[te], model,
                             neighbours=16)
    return float(np.sqrt(np.mean((r.estimate - y[te]) ** 2)))


@pytest.mark.parametrize("shape", ["sqrt", "identity"])
def test_the_chosen_drift_shape_predicts_held_out_samples_better(shape):
    """Trained on 150 samples, judged on 500 others of the same field: with a drift in
    sqrt(c) the chosen shape beats KED in c as given every time; with a linear drift it
    costs at most 2 %."""
    from gcnn_rnn.core.model.base import _ked_loo

    for seed in range(3):
        coords, y, f = _curved(shape, seed)
        perm = np.random.default_rng(seed).permutation(len(y))
        tr, te = perm[:150], perm[150:]
        base, est, var, trend = choose_base("auto", coords[tr], y[tr], f[tr],
                                            _ok_loo(coords[tr], y[tr]), 16, "cv")
        assert base.name == "ked" and len(base.shapes) == 1
        assert {"ked:identity(covariate 1)", "ked:sqrt(covariate 1)",
                "ked:log(covariate 1)"} <= set(base.scores)
        tried = [v for k, v in base.scores.items() if k.startswith("ked:")]
        key = f"ked:{base.shapes[0]}(covariate 1)"
        assert base.scores["ked"] == base.scores[key]
        if base.shapes[0] != "identity":  # the best, and clearly better than c as given
            assert base.scores["ked"] == min(tried)
            assert base.scores["ked"] < 0.99 * base.scores["ked:identity(covariate 1)"]
        if base.shapes[0] == "log":
            assert base.offsets[0] == pytest.approx(0.1 * np.ptp(f[tr]))
        # the LOO estimate returned is that of KED in the shaped covariate
        shaped = base.drift_columns(f)
        ref, _ = ked_at_samples(coords[tr], y[tr], shaped[tr], base.model, 16)
        np.testing.assert_allclose(est, ref, rtol=1e-12)

        chosen = _held_out(coords, y, shaped, base.model, tr, te)
        as_given = _held_out(coords, y, f, _ked_loo(coords[tr], y[tr], f[tr], 16, "cv", None)[1],
                             tr, te)
        if shape == "sqrt":
            assert chosen < as_given, (seed, base.shapes)
        else:
            assert chosen <= 1.02 * as_given, (seed, base.shapes)


def test_shapes_apply_to_new_covariate_values_and_round_trip():
    b = Base("ked", parse_model("0.1 Nug + 1 Sph(300)"), 2, (0.5, 2.0, 1.0),
             {"ok": 1.0, "ked": 0.8}, ("sqrt", "log"), (0.0, 0.25))
    x = np.array([[4.0, 0.75, 9.0], [-1.0, -0.5, 9.0], [np.nan, 1.0, 9.0]])
    np.testing.assert_allclose(b.drift_columns(x), [[2.0, 0.0], [0.0, np.log(0.25)],
                                                    [np.nan, np.log(1.25)]])
    doc = b.to_dict()
    assert doc["drift"] == ["sqrt(covariate 1)", "log(covariate 2 + 0.25)"]
    assert Base.from_dict(doc) == b
    from gcnn_rnn.core.errors import InputDataError

    with pytest.raises(InputDataError, match="drift shape"):
        Base.from_dict({**doc, "drift_shapes": ["cube", "log"]})


def test_requested_bases_and_bad_requests():
    coords, y, f = _data(0.0, n=60)
    ok = _ok_loo(coords, y)
    assert choose_base("ked", coords, y, f, ok, 16, "cv")[0].name == "ked"
    assert choose_base("ok", coords, y, f, ok, 16, "cv")[0].name == "ok"
    assert choose_base("auto", coords, y, None, ok, 16, "cv")[0].name == "ok"
    from gcnn_rnn.core.errors import InputDataError

    with pytest.raises(InputDataError, match="needs covariate rasters"):
        choose_base("ked", coords, y, None, ok, 16, "cv")
    with pytest.raises(InputDataError, match="--base"):
        choose_base("uk", coords, y, f, ok, 16, "cv")


@pytest.mark.parametrize("k", [12, 0])
def test_ked_at_the_samples_is_leave_one_out_kriging_with_external_drift(k):
    coords, y, f = _data(3.0, seed=2, n=70)
    model = auto_variogram(coords, drift_residuals(y, f), ("sph", "exp")).model
    est, var = ked_at_samples(coords, y, f, model, k)
    for i in (0, 17, 69):
        keep = np.arange(70) != i
        ref = krige_external_drift(coords[keep], y[keep], f[keep], coords[i:i + 1],
                                   f[i:i + 1], model, neighbours=k)
        assert est[i] == pytest.approx(ref.estimate[0], rel=1e-10)
        assert var[i] == pytest.approx(ref.variance[0], rel=1e-9)
    # leave-group-out (drill holes): the whole group is out of its own system
    groups = np.arange(70) // 2
    est_g, _ = ked_at_samples(coords, y, f, model, k, groups)
    keep = groups != 3
    ref = krige_external_drift(coords[keep], y[keep], f[keep], coords[6:8], f[6:8], model,
                               neighbours=k)
    np.testing.assert_allclose(est_g[6:8], ref.estimate, rtol=1e-10)


def test_ked_at_the_samples_covers_every_sample_above_the_scorers_subset(monkeypatch):
    import gcnn_rnn.core.kriging.model_cv as mcv

    monkeypatch.setattr(mcv, "MAX_TARGETS", 50)  # the selection's subset; not for the base
    coords, y, f = _data(3.0, seed=2, n=70)
    model = parse_model("0.05 Nug + 0.5 Exp(200)")
    est, var = ked_at_samples(coords, y, f, model, 12)
    assert est.shape == var.shape == (70,)
    ref = krige_external_drift(coords[1:], y[1:], f[1:], coords[:1], f[:1], model,
                               neighbours=12)
    assert est[0] == pytest.approx(ref.estimate[0], rel=1e-10)


def test_a_samples_own_value_never_reaches_its_base_features():
    coords, y, f = _data(3.0, seed=1, n=60)
    model = parse_model("0.05 Nug + 0.5 Exp(200)")
    est, _ = ked_at_samples(coords, y, f, model, 12)
    trend, _ = drift_part_loo(y, f)
    y2 = y.copy()
    y2[7] += 100.0
    est2, _ = ked_at_samples(coords, y2, f, model, 12)
    trend2, _ = drift_part_loo(y2, f)
    assert est2[7] == pytest.approx(est[7], abs=1e-9)
    assert trend2[7] == pytest.approx(trend[7], abs=1e-9)
    assert abs(trend2[8] - trend[8]) > 1e-3  # the others do see it


def test_base_round_trips_through_json():
    b = Base("ked", parse_model("0.1 Nug + 1 Sph(300)"), 1, (0.5, 2.0), {"ok": 1.0, "ked": 0.8})
    again = Base.from_dict(b.to_dict())
    assert again == b and again.label == "KED"
    assert Base.from_dict(None).name == "ok"


def test_the_hybrid_predicts_around_its_ked_base(tmp_path, tiny):
    from gcnn_rnn.core.model.bundle import load_bundle, save_bundle
    from gcnn_rnn.core.model.estimator import HybridRegressor
    from gcnn_rnn.core.model.outputs import layer_descriptions
    from gcnn_rnn.core.raster import write_raster

    r = synthesize(SynthConfig(parse_model("0.05 Nug + 0.5 Exp(200)"), n=120, seed=4))
    grid = r.grid
    nodes = grid.node_coords()
    gradient = ((nodes[:, 0] - grid.extent[0]) / 1000.0).reshape(grid.shape)
    path = tmp_path / "gradient.tif"
    write_raster(path, gradient, grid, "gradient", qml=False)
    values = r.values + 4.0 * (r.coords[:, 0] - grid.extent[0]) / 1000.0
    est = HybridRegressor(covariates=(str(path),), crs=grid.crs, seed=0, base="ked", **tiny)
    est.fit(r.coords, values)
    assert est.base_.name == "ked" and est.training_metrics_["base"]["name"] == "ked"
    xy = np.array([[grid.extent[0] + 333.0, grid.extent[1] + 501.0],
                   [grid.extent[0] + 777.0, grid.extent[1] + 222.0]])
    p = est.predict_full(xy)
    from gcnn_rnn.core.features import sample_covariates

    f_s = sample_covariates([str(path)], r.coords, grid.crs)  # the raster's float32 values
    f_t = sample_covariates([str(path)], xy, grid.crs)
    ref = krige_external_drift(r.coords, values, f_s, xy, f_t, est.base_.model,
                               neighbours=tiny["kriging_neighbours"])
    np.testing.assert_allclose(p.kriging_estimate, ref.estimate, rtol=1e-9)
    np.testing.assert_allclose(p.kriging_variance, ref.variance, rtol=1e-9)
    assert "external drift (KED) in gradient.tif" in layer_descriptions(est)["kriging_estimate"]
    assert est.base_.shapes == ("identity",)  # --base ked: the covariate as given
    loaded, doc = load_bundle(save_bundle(est, tmp_path / "m", crs=grid.crs, field="v"))
    assert doc["base"]["name"] == "ked"
    np.testing.assert_array_equal(loaded.predict_full(xy).prediction, p.prediction)


def test_predict_applies_the_chosen_drift_shape_on_new_locations(tmp_path, tiny):
    from gcnn_rnn.core.features import sample_covariates
    from gcnn_rnn.core.model.bundle import load_bundle, save_bundle
    from gcnn_rnn.core.model.estimator import HybridRegressor
    from gcnn_rnn.core.model.outputs import layer_descriptions
    from gcnn_rnn.core.raster import write_raster

    r = synthesize(SynthConfig(parse_model("0.05 Nug + 0.3 Exp(200)"), n=120, seed=5))
    grid = r.grid
    nodes = grid.node_coords()
    dist = np.abs(nodes[:, 0] - grid.extent[0] - 300.0) / 1000.0
    path = tmp_path / "dist.tif"
    write_raster(path, dist.reshape(grid.shape), grid, "dist", qml=False)
    f_s = sample_covariates([str(path)], r.coords, grid.crs)
    values = r.values - 3.0 * np.sqrt(f_s[:, 0])
    est = HybridRegressor(covariates=(str(path),), crs=grid.crs, seed=0, base="auto", **tiny)
    est.fit(r.coords, values)
    assert est.base_.name == "ked" and est.base_.shapes[0] != "identity"
    assert est.training_metrics_["base"]["drift_shapes"] == list(est.base_.shapes)
    xy = np.array([[grid.extent[0] + 333.0, grid.extent[1] + 501.0],
                   [grid.extent[0] + 777.0, grid.extent[1] + 222.0]])
    f_t = sample_covariates([str(path)], xy, grid.crs)
    shaped = est.base_.drift_columns
    ref = krige_external_drift(r.coords, values, shaped(f_s), xy, shaped(f_t), est.base_.model,
                               neighbours=tiny["kriging_neighbours"])
    p = est.predict_full(xy)
    np.testing.assert_allclose(p.kriging_estimate, ref.estimate, rtol=1e-9)
    term = est.base_.drift_terms(["dist.tif"])[0]
    assert term in layer_descriptions(est)["kriging_estimate"]
    loaded, doc = load_bundle(save_bundle(est, tmp_path / "m", crs=grid.crs, field="v"))
    assert doc["base"]["drift_shapes"] == list(est.base_.shapes)
    np.testing.assert_array_equal(loaded.predict_full(xy).kriging_estimate, p.kriging_estimate)
