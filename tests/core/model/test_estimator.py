"""The sklearn-style hybrid estimator: predictions, reproducibility, bundle, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcnn_rnn.core.errors import BundleError, InputDataError
from gcnn_rnn.core.model.bundle import load_bundle, save_bundle
from gcnn_rnn.core.model.estimator import HybridRegressor


def test_prediction_layers_are_consistent(fitted, meuse_points, targets):
    xy = targets(meuse_points)
    p = fitted.predict_full(xy, threshold=500.0)
    for name in p.LAYERS:
        arr = getattr(p, name)
        assert arr.shape == (len(xy),) and np.isfinite(arr).all(), name
    assert np.all(p.interval_lower < p.prediction) and np.all(p.prediction < p.interval_upper)
    assert np.all((p.exceedance_probability >= 0) & (p.exceedance_probability <= 1))
    # higher zinc, higher probability of exceeding 500
    assert np.corrcoef(p.prediction_t, p.exceedance_probability)[0, 1] > 0.8
    # the interval in log units is prediction ± q sigma
    cal = fitted.calibration_
    np.testing.assert_allclose(np.log(p.interval_upper) - p.prediction_t, cal.quantile * p.sigma_t)
    np.testing.assert_allclose(p.prediction_t, p.members_t.mean(axis=1))
    np.testing.assert_allclose(fitted.predict(xy), p.prediction)


def test_exact_at_the_samples(fitted, meuse_points):
    p = fitted.predict_full(meuse_points.coords[:6])
    np.testing.assert_allclose(p.prediction, meuse_points.values[:6], rtol=1e-9)
    np.testing.assert_allclose(p.kriging_estimate, meuse_points.values[:6], rtol=1e-9)


def test_training_diagnostics(fitted):
    m = fitted.training_metrics_
    assert m["n_out_of_fold"] > 0.3 * 155  # two members hold out two of five groups
    assert 0.2 < m["ok_loo_rmse"] < 0.6 and 0.2 < m["hybrid_oof_rmse"] < 0.8
    assert fitted.calibration_.n == m["n_out_of_fold"]


def test_same_seed_reproduces_other_seed_differs(fitted, meuse_points, targets, tiny, vg):
    xy = targets(meuse_points, 10, seed=1)
    again = HybridRegressor(transform="log", variogram=vg, seed=3, **tiny)
    again.fit(meuse_points.coords, meuse_points.values)
    np.testing.assert_array_equal(again.predict(xy), fitted.predict(xy))
    other = HybridRegressor(transform="log", variogram=vg, seed=4, **tiny)
    other.fit(meuse_points.coords, meuse_points.values)
    assert not np.allclose(other.predict(xy), fitted.predict(xy))


def test_sklearn_compatibility(fitted):
    from sklearn.base import clone

    params = fitted.get_params()
    assert params["ensemble"] == 2 and params["transform"] == "log"
    copy = clone(fitted)
    assert copy.get_params() == params and not hasattr(copy, "weights_")
    copy.set_params(ensemble=3)
    assert copy.ensemble == 3
    with pytest.raises(InputDataError, match="not fitted"):
        copy.predict(np.zeros((1, 2)))


def test_sklearn_protocol_without_sklearn_base(fitted, meuse_points, targets):
    """The estimator speaks scikit-learn's protocol (tags, R² score, parameter errors) while
    loading a model imports neither scikit-learn nor scipy.stats (0.8 s of every command)."""
    import subprocess
    import sys

    from sklearn.base import is_regressor
    from sklearn.metrics import r2_score
    from sklearn.utils import get_tags

    assert is_regressor(fitted) and get_tags(fitted).target_tags.required
    xy = meuse_points.coords[::3]
    y = meuse_points.values[::3]
    assert fitted.score(xy, y) == pytest.approx(r2_score(y, fitted.predict(xy)), rel=1e-12)
    with pytest.raises(ValueError, match="invalid parameter 'ensembel'"):
        HybridRegressor().set_params(ensembel=3)
    assert repr(HybridRegressor(ensemble=3)) == "HybridRegressor(ensemble=3)"
    code = ("import sys; from gcnn_rnn.core.model.bundle import load_bundle; "
            "bad = [m for m in ('sklearn', 'scipy.stats') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_bundle_round_trip_gives_identical_predictions(fitted, meuse_points, tmp_path, targets):
    xy = targets(meuse_points, 25, seed=2)
    before = fitted.predict_full(xy, threshold=300.0)
    path = save_bundle(fitted, tmp_path / "m", crs=meuse_points.crs, field="zinc")
    assert sorted(p.name for p in path.iterdir()) == ["member_0.keras", "member_1.keras",
                                                     "model.json", "network.npz",
                                                     "training_data.npz"]
    loaded, doc = load_bundle(path)
    after = loaded.predict_full(xy, threshold=300.0)
    for name in ("prediction", "kriging_estimate", "kriging_variance", "prediction_std",
                 "interval_lower", "interval_upper", "exceedance_probability", "members_t"):
        np.testing.assert_array_equal(getattr(after, name), getattr(before, name), name)
    assert doc["format_version"] == 4 and doc["field"] == "zinc"
    assert doc["versions"]["tensorflow"] and doc["variogram"]["text"]
    assert doc["training_data"]["n"] == 155  # features need the samples
    with np.load(path / "training_data.npz") as npz:
        np.testing.assert_array_equal(npz["coords"], fitted.coords_)
        np.testing.assert_array_equal(npz["values"], fitted.values_)
    # saving again over an existing bundle replaces it atomically
    save_bundle(loaded, path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_damaged_or_wrong_bundles_are_clean_errors(fitted, tmp_path):
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="model.json is missing"):
        load_bundle(tmp_path / "empty")
    path = save_bundle(fitted, tmp_path / "m")
    meta = path / "model.json"
    doc = json.loads(meta.read_text())
    meta.write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(BundleError, match="format version 99"):
        load_bundle(path)
    meta.write_text(json.dumps({**doc, "format_version": 1}))  # features changed since
    with pytest.raises(BundleError, match="older engine .*format version 1.*retrain"):
        load_bundle(path)
    meta.write_text(json.dumps({**doc, "format": "something-else"}))
    with pytest.raises(BundleError, match="not a GCNN-RNN model"):
        load_bundle(path)
    meta.write_text("{ not json")
    with pytest.raises(BundleError, match="damaged"):
        load_bundle(path)
    meta.write_text(json.dumps(doc))
    member = path / "member_1.keras"
    member.write_bytes(member.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(path)
    member.unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(path)


def test_bad_training_inputs(meuse_points, tiny):
    est = HybridRegressor(**tiny)
    with pytest.raises(InputDataError, match="at least 20 samples"):
        est.fit(meuse_points.coords[:12], meuse_points.values[:12])
    with pytest.raises(InputDataError, match="all 155 values are equal"):
        est.fit(meuse_points.coords, np.full(155, 3.0))
    with pytest.raises(InputDataError, match="log transform needs values > 0"):
        HybridRegressor(transform="log", **tiny).fit(meuse_points.coords,
                                                     meuse_points.values - 500)
    with pytest.raises(InputDataError, match="ensemble size"):
        HybridRegressor(**{**tiny, "ensemble": 0}).fit(meuse_points.coords, meuse_points.values)
    with pytest.raises(InputDataError, match="co-fields"):
        HybridRegressor(co_fields=("soil",), **tiny).fit(meuse_points.coords,
                                                         meuse_points.values)


def test_covariate_outside_the_data_or_in_another_crs(meuse_points, meuse_dist_tif, tmp_path,
                                                     tiny):
    from pyproj import CRS

    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.raster import write_raster

    small = Grid.from_extent((178500, 330000, 179000, 331000), 40.0, crs=meuse_points.crs)
    write_raster(tmp_path / "small.tif", np.ones(small.shape), small, "x", qml=False)
    est = HybridRegressor(covariates=(str(tmp_path / "small.tif"),), crs=meuse_points.crs,
                          **tiny)
    with pytest.raises(InputDataError, match="does not cover"):
        est.fit(meuse_points.coords, meuse_points.values)
    est = HybridRegressor(covariates=(str(meuse_dist_tif),), crs=CRS.from_epsg(32631).to_wkt(),
                          **tiny)
    with pytest.raises(InputDataError, match="reproject"):
        est.fit(meuse_points.coords, meuse_points.values)


def test_covariates_and_co_fields_end_to_end(meuse_points, meuse_dist_tif, tiny, vg):
    est = HybridRegressor(transform="log", variogram=vg, covariates=(str(meuse_dist_tif),),
                          co_fields=("soil",), crs=meuse_points.crs, base="ked", **tiny)
    est.fit(meuse_points.coords, meuse_points.values, attributes=meuse_points.attributes)
    cols = [f"covariate:{meuse_dist_tif}", "co:soil"]
    static = est.feature_names_["static"]
    assert static[-9:-3] == [*cols, *(f"ok:{c}" for c in cols), *(f"surprise:{c}" for c in cols)]
    assert static[-3:] == ["base_estimate", "base_std", "base_drift"]  # the KED base's
    assert est.feature_names_["sequence"][-4:] == [*(f"nb:{c}" for c in cols),
                                                   *(f"diff:{c}" for c in cols)]
    xy = meuse_points.coords[:5] + 20.0
    kriged = est.predict_full(xy)  # co-field kriged at the targets
    own = est.predict_full(xy, attributes=meuse_points.attributes.iloc[:5])
    assert np.isfinite(kriged.prediction).all() and np.isfinite(own.prediction).all()
    outside = est.predict_full(np.array([[170000.0, 320000.0]]))  # off the covariate raster
    assert np.isnan(outside.prediction).all()


def test_three_dimensional_samples(tiny):
    rng = np.random.default_rng(5)
    xyz = rng.random((80, 3)) * [500.0, 500.0, 50.0]
    vals = np.sin(xyz[:, 0] / 150.0) + xyz[:, 2] / 50.0 + 0.05 * rng.normal(size=80)
    est = HybridRegressor(variogram="0.01 Nug + 0.5 Sph(300)", **tiny).fit(xyz, vals)
    assert est.feature_names_["sequence"] == ["value", "dx", "dy", "dz", "distance",
                                              "covariance", "ok_weight"]
    p = est.predict_full(xyz[:5] + 3.0)
    assert np.isfinite(p.prediction).all() and p.members_t.shape == (5, 2)
    with pytest.raises(InputDataError, match="shape"):
        est.predict(np.zeros((2, 2)))


def test_shrinkage_is_the_least_squares_factor():
    from gcnn_rnn.core.model.estimator import _shrinkage

    ok = np.array([1.0, 2.0, 3.0, 4.0])
    corr = np.array([0.5, -0.2, 0.1, 0.3])
    assert _shrinkage(ok + 0.5 * corr, ok + corr, ok) == pytest.approx(0.5)
    assert _shrinkage(ok + 3.0 * corr, ok + corr, ok) == 1.5  # clipped
    assert _shrinkage(ok - corr, ok + corr, ok) == 0.0  # anti-correlated: plain kriging
    assert _shrinkage(ok + corr, ok, ok) == 1.0  # no correction at all: nothing to fit


def test_stack_with_the_gate_on_is_refused_with_the_way_out(meuse_points, tiny, vg):
    from gcnn_rnn.core.errors import InputDataError
    from gcnn_rnn.core.model.options import model_options

    with pytest.raises(InputDataError, match="--no-gate"):
        model_options({"stack": True})
    assert model_options({"stack": True, "gate": False})["stack"] is True
    with pytest.raises(InputDataError, match="--stack has no effect"):
        HybridRegressor(transform="log", variogram=vg, stack=True, **tiny).fit(
            meuse_points.coords, meuse_points.values)


def test_stacked_correction_round_trips(meuse_points, tiny, vg, tmp_path):
    est = HybridRegressor(transform="log", variogram=vg, stack=True, gate=False, **tiny)
    est.fit(meuse_points.coords, meuse_points.values)
    assert 0.0 <= est.shrinkage_ <= 1.5 and est.gate_ is None
    assert est.training_metrics_["shrinkage"] == est.shrinkage_
    xy = meuse_points.coords[:4] + 25.0
    p = est.predict_full(xy)
    raw = HybridRegressor.__new__(HybridRegressor)
    raw.__dict__.update(est.__dict__, shrinkage_=1.0)
    q = raw.predict_full(xy)
    np.testing.assert_allclose(p.members_t - p.ok_estimate_t[:, None],
                               est.shrinkage_ * (q.members_t - q.ok_estimate_t[:, None]))
    loaded, _ = load_bundle(save_bundle(est, tmp_path / "s"))
    np.testing.assert_array_equal(loaded.predict(xy), est.predict(xy))


def test_co_field_sequence_model_round_trips(meuse_points, tiny, vg, targets, tmp_path):
    """A model with covariate channels in the sequence: the training samples' co-field
    values travel in the bundle and predictions (kriged co-fields at grid nodes, the points'
    own columns at target points) are identical after loading."""
    est = HybridRegressor(transform="log", variogram=vg, co_fields=("elev",), seed=5, **tiny)
    est.fit(meuse_points.coords, meuse_points.values, attributes=meuse_points.attributes)
    names = est.feature_names_
    assert names["sequence"][-2:] == ["nb:co:elev", "diff:co:elev"]
    assert names["static"][-3:] == ["co:elev", "ok:co:elev", "surprise:co:elev"]
    xy = targets(meuse_points, 15, seed=4)
    before = est.predict_full(xy)
    pts = meuse_points.subset(np.arange(10))
    before_pts = est.predict(pts.coords, attributes=pts.attributes)
    loaded, doc = load_bundle(save_bundle(est, tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_full(xy).members_t, before.members_t)
    np.testing.assert_array_equal(loaded.predict(pts.coords, attributes=pts.attributes),
                                  before_pts)
    assert doc["training_data"]["n"] == 155
    np.testing.assert_array_equal(loaded.sample_extra_, est.sample_extra_)
    assert loaded.sample_extra_.shape == (155, 1)
