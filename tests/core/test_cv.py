"""Fold schemes, metrics against hand values, and the cross-validation driver."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gcnn_rnn.core import cv
from gcnn_rnn.core.errors import InputDataError, UnknownModelError
from gcnn_rnn.core.io import PointData
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.metrics import metrics
from gcnn_rnn.core.transforms import fit_transform
from gcnn_rnn.core.variogram.models import parse_model

MODEL = parse_model("0.05 Nug + 0.6 Sph(300)")


def _points(n=60, seed=0) -> PointData:
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 1000, size=(n, 2))
    values = np.exp(np.sin(coords[:, 0] / 200) + rng.normal(scale=0.3, size=n))
    return PointData(coords, values, crs="", field="v", source="test",
                     attributes=pd.DataFrame())


def test_metrics_against_hand_values():
    out = metrics([1, 2, 3, 4], [1.5, 2, 2.5, 5], [0.25, 1, 0.25, 1])
    assert out["me"] == pytest.approx(-0.25)
    assert out["mae"] == pytest.approx(0.5)
    assert out["rmse"] == pytest.approx(math.sqrt(0.375))
    assert out["r2"] == pytest.approx(0.7)
    assert out["msdr"] == pytest.approx(0.75)
    assert out["ccc"] == pytest.approx(0.88)
    assert out["n"] == 4 and out["n_missing"] == 0
    perfect = metrics([1.0, 2.0, 5.0], [1.0, 2.0, 5.0])
    assert perfect["ccc"] == 1.0 and perfect["r2"] == 1.0 and perfect["msdr"] is None
    some_nan = metrics([1.0, 2.0, 3.0], [1.0, np.nan, 3.5])
    assert some_nan["n"] == 2 and some_nan["n_missing"] == 1
    assert some_nan["rmse"] == pytest.approx(math.sqrt(0.125))
    with pytest.raises(InputDataError):
        metrics([1, 2], [1, 2, 3])


def test_parse_folds():
    assert cv.parse_folds("loo").kind == "loo"
    assert cv.parse_folds("10") == cv.FoldScheme("kfold", 10)
    assert cv.parse_folds("spatial:250") == cv.FoldScheme("spatial", 5, 250.0)
    assert cv.parse_folds("spatial:auto:3") == cv.FoldScheme("spatial", 3, None)
    for bad in ("1", "abc", "spatial:-3", "spatial:10:1", "spatial"):
        with pytest.raises(InputDataError):
            cv.parse_folds(bad)


def test_kfold_is_deterministic_balanced_and_seeded():
    coords = _points(53).coords
    a = cv.make_folds(coords, "10", seed=3)
    np.testing.assert_array_equal(a, cv.make_folds(coords, 10, seed=3))
    assert not np.array_equal(a, cv.make_folds(coords, "10", seed=4))
    sizes = np.bincount(a)
    assert sizes.size == 10 and sizes.max() - sizes.min() <= 1
    np.testing.assert_array_equal(cv.make_folds(coords, "loo"), np.arange(53))
    with pytest.raises(InputDataError, match="60 folds for only 53"):
        cv.make_folds(coords, "60")


@pytest.mark.parametrize("scheme", ["spatial:150", "spatial:auto", "spatial:200:4"])
def test_spatial_blocks_are_disjoint_between_folds(scheme):
    coords = _points(300, seed=5).coords
    folds = cv.make_folds(coords, scheme, seed=1, range_hint=180.0)
    np.testing.assert_array_equal(folds, cv.make_folds(coords, scheme, seed=1, range_hint=180.0))
    fs = cv.parse_folds(scheme)
    size = fs.block or cv.auto_block_size(coords, fs.k, 180.0)
    cells = np.floor((coords - coords.min(axis=0)) / size).astype(int)
    for cell in np.unique(cells, axis=0):
        in_cell = (cells == cell).all(axis=1)
        assert np.unique(folds[in_cell]).size == 1  # a block never spans two folds
    assert np.unique(folds).size == fs.k
    sizes = np.bincount(folds)
    assert sizes.min() > 0.5 * sizes.mean()


def test_cross_validation_never_trains_on_the_test_fold():
    pts = _points(40)
    seen = []

    @cv.register_cv_method("_spy")
    def spy(train, test, options, progress, should_stop):
        train_keys = {tuple(c) for c in train.coords}
        assert not any(tuple(c) in train_keys for c in test.coords)
        assert train.n + test.n == 40
        seen.append(test.n)
        return {"prediction": np.full(test.n, train.values.mean())}

    try:
        folds = cv.make_folds(pts.coords, "5", seed=0)
        res = cv.cross_validate(pts, ["_spy", "ok"], folds, {"variogram": MODEL})
    finally:
        del cv.CV_METHODS["_spy"]
    assert sorted(seen) == sorted(np.bincount(folds).tolist())
    assert res.methods == ("_spy", "ok")
    assert res.variances["_spy"] is None and res.variances["ok"] is not None
    assert len(res.per_fold["ok"]) == 5
    rec = res.per_point(pts.coords)[0]
    assert {"x", "y", "fold", "observed", "ok_prediction", "ok_residual", "ok_variance",
            "_spy_prediction"} <= set(rec)


def test_fast_loo_equals_fold_by_fold_kriging():
    pts = _points(50)
    opts = {"variogram": MODEL, "transform": "log", "kriging": KrigingConfig(neighbours=12)}
    folds = cv.make_folds(pts.coords, "loo")
    fast = cv.cross_validate(pts, ["ok"], folds, opts)
    cv.CV_METHODS["_ok_plain"] = lambda *a: cv.ok_method(*a)  # no .loo: one fold at a time
    try:
        slow = cv.cross_validate(pts, ["_ok_plain"], folds, opts)
    finally:
        del cv.CV_METHODS["_ok_plain"]
    np.testing.assert_allclose(fast.predictions["ok"], slow.predictions["_ok_plain"], rtol=1e-10)
    np.testing.assert_allclose(fast.variances["ok"], slow.variances["_ok_plain"], rtol=1e-10)
    # and agrees with a direct lognormal OK of one held-out point
    keep = np.arange(50) != 7
    y = np.log(pts.values)
    one = krige(pts.coords[keep], y[keep], pts.coords[7:8], MODEL, KrigingConfig(neighbours=12))
    expect = math.exp(one.estimate[0] + one.variance[0] / 2 - one.lagrange[0])
    assert fast.predictions["ok"][7] == pytest.approx(expect, rel=1e-10)
    assert fast.metrics["ok"]["n"] == 50


def test_transformed_units_and_nscore():
    pts = _points(45)
    folds = cv.make_folds(pts.coords, "3", seed=2)
    res = cv.cross_validate(pts, ["ok"], folds, {"variogram": MODEL, "transform": "nscore",
                                                 "output_units": "transformed"})
    for f in range(3):
        train = folds != f
        ft = fit_transform(pts.values[train], "nscore")
        np.testing.assert_allclose(res.observed["ok"][folds == f],
                                   ft.forward(pts.values[folds == f]))
    assert np.isfinite(res.predictions["ok"]).all()
    assert "nscore transform fitted per fold" in res.protocol


def test_refit_uses_only_training_points(monkeypatch):
    from gcnn_rnn.core.variogram import fit

    pts = _points(30)
    calls = []
    real = fit.fit_variogram

    def recording(ev, *a, **kw):
        calls.append(ev.n_used)  # the points whose pairs the fitted variogram holds
        return real(ev, *a, **kw)

    monkeypatch.setattr(fit, "fit_variogram", recording)
    folds = cv.make_folds(pts.coords, "3", seed=0)
    res = cv.cross_validate(pts, ["ok"], folds, {"variogram": MODEL, "refit_variogram": True})
    assert sorted(calls) == sorted((30 - np.bincount(folds)).tolist())
    assert "refitted inside each fold" in res.protocol


def test_variogram_selection_in_a_fold_sees_only_its_training_part(monkeypatch):
    """The cross-validation that picks the ``auto`` model (select cv) is itself run on the
    training part of each outer fold: no held-out sample reaches the selection."""
    from gcnn_rnn.core.kriging import model_cv

    pts = _points(40)
    seen = []
    real = model_cv.CandidateCV

    def recording(coords, values, *a, **kw):
        seen.append(np.asarray(coords).copy())
        return real(coords, values, *a, **kw)

    monkeypatch.setattr(model_cv, "CandidateCV", recording)
    folds = cv.make_folds(pts.coords, "4", seed=1)
    cv.cross_validate(pts, ["ok"], folds, {"variogram": None, "refit_variogram": True,
                                            "select": "cv"})
    assert len(seen) == 4
    for f, coords in zip(range(4), seen, strict=True):
        held = {tuple(c) for c in pts.coords[folds == f]}
        train = {tuple(c) for c in pts.coords[folds != f]}
        got = {tuple(c) for c in coords}
        assert got == train and not got & held


def test_unknown_method_and_bad_folds():
    pts = _points(10)
    with pytest.raises(UnknownModelError, match="unknown cross-validation method 'nope'"):
        cv.cross_validate(pts, ["nope"], np.arange(10) % 2)
    with pytest.raises(InputDataError, match="two folds"):
        cv.cross_validate(pts, ["ok"], np.zeros(10, dtype=int), {"variogram": MODEL})


@pytest.mark.parametrize("transform", ["log", "nscore"])
def test_data_unit_runs_are_also_scored_in_transformed_units(transform):
    # The transformed-unit scores of a data-unit run equal those of a separate run asked for
    # in transformed units (an independent path through the back-transform-free code).
    pts = _points(45)
    folds = cv.make_folds(pts.coords, "3", seed=1)
    opts = {"variogram": MODEL, "transform": transform}
    data = cv.cross_validate(pts, ["ok"], folds, {**opts, "output_units": "original"})
    trans = cv.cross_validate(pts, ["ok"], folds, {**opts, "output_units": "transformed"})
    got = data.extra["metrics_transformed"]["ok"]
    for key in ("me", "rmse", "r2", "msdr", "ccc"):
        assert got[key] == pytest.approx(trans.metrics["ok"][key], rel=1e-12), key
    assert got["rmse"] != pytest.approx(data.metrics["ok"]["rmse"])  # really other units
    assert "metrics_transformed" not in trans.extra
    plain = cv.cross_validate(pts, ["ok"], folds, {"variogram": MODEL})  # no transform
    assert "metrics_transformed" not in plain.extra


def test_kfold_keeps_drill_holes_whole():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 1000, (23, 2))
    depth = rng.integers(3, 9, 23)  # holes of different lengths
    coords = np.array([[x, y, -2.0 * i] for (x, y), d in zip(xy, depth) for i in range(d)])
    folds = cv.make_folds(coords, "5", seed=4)
    for x, y in xy:  # every hole in exactly one fold
        assert len(np.unique(folds[(coords[:, 0] == x) & (coords[:, 1] == y)])) == 1
    sizes = np.bincount(folds)
    assert len(sizes) == 5 and sizes.max() - sizes.min() <= depth.max()  # balanced by samples
    np.testing.assert_array_equal(folds, cv.make_folds(coords, "5", seed=4))  # seeded
    assert cv.folds_text(coords, "5") == "5 folds of whole drill holes"
    assert cv.folds_text(coords[:, :2] + rng.normal(0, 1, (len(coords), 2)), "5") == "5 folds"
    with pytest.raises(InputDataError, match="at least 30 holes"):
        cv.make_folds(coords, "30")
    # 2D, or 3D points that share no column: plain random k-fold as before
    flat = cv.make_folds(coords[:, :2] + rng.normal(0, 1, (len(coords), 2)), "5", seed=4)
    assert np.bincount(flat).max() - np.bincount(flat).min() <= 1
