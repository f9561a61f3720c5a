"""The ``linear`` and ``hybrid`` cross-validation methods on identical, nested folds."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core import cv
from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.model.cv_methods import compare_methods


def test_methods_are_registered_with_the_cv_module():
    assert cv.get_cv_method("hybrid") is not None and cv.get_cv_method("linear") is not None


def test_pure_noise_does_not_beat_kriging(meuse_points, tiny):
    """No spatial signal at all: a leak (or an overfit) would show as a 'better' hybrid."""
    from gcnn_rnn.core.io import PointData

    rng = np.random.default_rng(11)
    noise = PointData(coords=meuse_points.coords, values=10.0 + rng.normal(size=155),
                      crs=meuse_points.crs, field="noise", source="test")
    res = compare_methods(noise, ("ok", "linear", "hybrid"), folds="5", seed=2,
                          options={**tiny, "variogram": "1 Nug", "seed": 1})
    m = res["metrics"]
    assert m["hybrid"]["rmse"] >= 0.97 * m["ok"]["rmse"]
    assert m["linear"]["rmse"] >= 0.97 * m["ok"]["rmse"]
    assert m["hybrid"]["r2"] < 0.05
    # identical folds and observations for every method
    assert len(res["fold_differences"]) == 5 and sum(d["n"] for d in res["fold_differences"]) == 155
    np.testing.assert_array_equal(res["observed"], noise.values)


def test_transformed_units_and_intervals(meuse_points, tiny, vg):
    res = compare_methods(meuse_points, ("ok", "hybrid"), folds="4", seed=0,
                          options={**tiny, "variogram": vg, "transform": "log",
                                   "output_units": "transformed"})
    np.testing.assert_allclose(res["observed"], np.log(meuse_points.values))
    hyb = res["metrics"]["hybrid"]
    assert 0.6 <= hyb["coverage"] <= 1.0 and hyb["width"] > 0
    lo, hi = np.array(res["lower"]["hybrid"]), np.array(res["upper"]["hybrid"])
    pred = np.array(res["predictions"]["hybrid"])
    assert np.all(lo < pred) and np.all(pred < hi)
    # a sane model: both well below the spread of the data
    sd = np.std(np.log(meuse_points.values))
    assert res["metrics"]["ok"]["rmse"] < 0.7 * sd and hyb["rmse"] < 0.8 * sd
    assert "identical for all methods" in res["protocol"]
    # the same run in data units is also scored in log units, with the same numbers (the
    # training is seeded, so the two runs fit identical models)
    data = compare_methods(meuse_points, ("ok", "linear", "hybrid"), folds="4", seed=0,
                           options={**tiny, "variogram": vg, "transform": "log"})
    assert data["units"] == "original" and data["transform"] == "log"
    mt = data["metrics_transformed"]
    assert set(mt) == {"ok", "linear", "hybrid"}
    for name in ("ok", "hybrid"):
        assert mt[name]["rmse"] == pytest.approx(res["metrics"][name]["rmse"], rel=1e-9)
        assert mt[name]["rmse"] < 1.0 < data["metrics"][name]["rmse"]  # log vs ppm


def test_unknown_method_is_a_clean_error(meuse_points):
    from gcnn_rnn.core.errors import InputDataError

    with pytest.raises(InputDataError, match="unknown cross-validation method"):
        compare_methods(meuse_points, ("ok", "deep"), folds="3")


def test_kriging_neighbours_zero_is_global_for_every_method():
    from gcnn_rnn.core.model.options import model_options

    assert model_options({"kriging_neighbours": 0})["kriging_neighbours"] == 0
    assert model_options({})["kriging_neighbours"] == 32
    assert model_options({})["leave_out"] == "auto"
    assert model_options({"leave_out": "column"})["leave_out"] == "column"
    with pytest.raises(InputDataError, match="kriging-neighbours"):
        model_options({"kriging_neighbours": -3})

    # ... and compare_methods gives OK the same global neighbourhood as the features
    from gcnn_rnn.core.io import PointData
    from gcnn_rnn.core.kriging import KrigingConfig, krige
    from gcnn_rnn.core.variogram.models import parse_model

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 1000, (60, 2))
    vals = np.sin(xy[:, 0] / 200) + rng.normal(0, 0.1, 60)
    pts = PointData(xy, vals, crs="", field="v", source="test")
    vg = parse_model("0.01 Nug + 0.5 Sph(400)")
    fold = np.arange(60) % 3
    res = compare_methods(pts, ("ok",), folds=fold, options={"variogram": vg,
                                                             "kriging_neighbours": 0})
    expect = np.empty(60)
    for f in range(3):
        tr, te = fold != f, fold == f
        expect[te] = krige(xy[tr], vals[tr], xy[te], vg, KrigingConfig(neighbours=0)).estimate
    np.testing.assert_allclose(res["predictions"]["ok"], expect, rtol=0, atol=1e-9)
    local = compare_methods(pts, ("ok",), folds=fold, options={"variogram": vg})
    assert np.abs(np.array(local["predictions"]["ok"]) - expect).max() > 1e-6


def test_drill_holes_train_on_leave_hole_out_features():
    """3D drill holes, whole holes held out: features that leave the sample's own hole out
    (the ``auto`` default for samples sharing columns) match what held-out holes and nodes
    between holes see; plain leave-one-out trains on neighbours 5 m up and down the hole."""
    from gcnn_rnn.core.io import PointData
    from gcnn_rnn.core.synth import SynthConfig, synthesize
    from gcnn_rnn.core.variogram.models import parse_model

    res = synthesize(SynthConfig(parse_model("0.1 Nug + 1 Sph(300)"), dims=3, n=264, layers=4,
                                 seed=2))
    pts = PointData(res.coords, res.values, crs=res.grid.crs, field="v", source="synth")
    holes = np.unique(res.hole)
    fold = (np.random.default_rng(0).permutation(len(holes)) % 4)[np.searchsorted(holes,
                                                                                   res.hole)]
    opts = {"variogram": "auto", "seed": 0, "ensemble": 3}
    hole_out = compare_methods(pts, ("ok", "linear", "hybrid"), folds=fold, options=opts)
    loo = compare_methods(pts, ("hybrid",), folds=fold, options={**opts, "leave_out": "sample"})
    m, ml = hole_out["metrics"], loo["metrics"]
    assert m["hybrid"]["rmse"] < 0.85 * m["ok"]["rmse"]
    assert m["hybrid"]["rmse"] < 0.85 * ml["hybrid"]["rmse"]
    assert m["hybrid"]["coverage"] > ml["hybrid"]["coverage"]
    assert m["linear"]["rmse"] < m["ok"]["rmse"]  # a sane ridge baseline on the same features


def test_base_and_gate_in_a_fold_see_only_its_training_part(meuse_points, meuse_dist_tif, tiny,
                                                           monkeypatch):
    """The hybrid's base choice (OK or KED, with the residual variogram's selection) and its
    gate are decided inside ``fit`` on the outer fold's training part: no held-out sample
    reaches them."""
    from gcnn_rnn.core.model import base, gate

    seen_base, seen_gate, seen_shape = [], [], []
    real_base, real_gate, real_shape = base.choose_base, gate.gate_weight, base._ked_loo

    def record_shape(coords, values, drift, *a, **kw):  # each drift shape tried for KED
        seen_shape.append(frozenset(tuple(c) for c in np.asarray(coords)))
        return real_shape(coords, values, drift, *a, **kw)

    def record_base(requested, coords, *a, **kw):
        seen_base.append({tuple(c) for c in np.asarray(coords)})
        return real_base(requested, coords, *a, **kw)

    def record_gate(observed, *a, **kw):
        seen_gate.append(len(observed))
        return real_gate(observed, *a, **kw)

    monkeypatch.setattr(base, "choose_base", record_base)
    monkeypatch.setattr(gate, "gate_weight", record_gate)
    monkeypatch.setattr(base, "_ked_loo", record_shape)
    res = compare_methods(meuse_points, ("hybrid",), folds="3", seed=4,
                          options={**tiny, "transform": "log", "variogram": "auto",
                                   "covariates": (str(meuse_dist_tif),), "base": "auto"})
    fold = np.asarray(res["fold"])
    assert len(seen_base) == len(seen_gate) == 3
    for f, coords, n_gate in zip(sorted(set(fold.tolist())), seen_base, seen_gate, strict=True):
        held = {tuple(c) for c in meuse_points.coords[fold == f]}
        assert coords == {tuple(c) for c in meuse_points.coords[fold != f]}
        assert not coords & held
        assert 0 < n_gate <= int((fold != f).sum())  # out-of-fold rows of the training part
    # the drift shapes (identity, sqrt, log of dist) were each scored on a training part only
    training = {frozenset(tuple(c) for c in meuse_points.coords[fold != f])
                for f in set(fold.tolist())}
    assert len(seen_shape) == 3 * 3 and set(seen_shape) == training
