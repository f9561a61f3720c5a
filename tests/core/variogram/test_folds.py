"""Fold variograms (all pairs minus a fold's pairs) equal variograms of the training part
computed from scratch, and cross-validation with a refitted variogram uses them.

The reference is :func:`empirical_variogram` on the training samples alone with the same
bins, and a plain loop that fits and kriges fold by fold.
"""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core import cv
from gcnn_rnn.core.io import PointData
from gcnn_rnn.core.kriging import krige
from gcnn_rnn.core.variogram.empirical import empirical_variogram
from gcnn_rnn.core.variogram.fit import _cv_scorer, fit_variogram
from gcnn_rnn.core.variogram.folds import FoldVariograms


def _field(n: int, seed: int = 0):
    """A Gaussian field with an exponential covariance (range 40 on a 300 m square) and a
    nugget, at integer coordinates (many pairs on bin edges): a well-posed variogram fit."""
    rng = np.random.default_rng(seed)
    xy = np.unique(rng.integers(0, 300, size=(n, 2)).astype(float), axis=0)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    cov = np.exp(-d / 40.0) + 0.1 * np.eye(len(xy))
    z = np.linalg.cholesky(cov) @ rng.normal(size=len(xy))
    return xy, z


#: Predictions: the fold variograms equal the from-scratch ones to round-off (above), and the
#: least-squares fit stops at a relative tolerance of about 1e-8 in the parameters, which the
#: round-off can move; a fold fitted on different bins would be off by far more.
RTOL, ATOL = 1e-4, 1e-6


def _same(ev, ref):
    np.testing.assert_array_equal(ev.npairs, ref.npairs)
    np.testing.assert_allclose(ev.lags, ref.lags, rtol=1e-11)
    np.testing.assert_allclose(ev.gamma, ref.gamma, rtol=1e-9)


@pytest.mark.parametrize("size", [1, 7, 60])
def test_fold_variogram_equals_from_scratch(size):
    xy, z = _field(400)
    fv = FoldVariograms(xy, z)
    held = np.random.default_rng(size).choice(len(xy), size=size, replace=False)
    train = np.setdiff1d(np.arange(len(xy)), held)
    ref = empirical_variogram(xy[train], z[train], cutoff=fv.plan.cutoff, width=fv.plan.width)
    ev = fv.without(held)
    _same(ev, ref)
    assert ev.n_used == len(train)
    _same(fv.full, empirical_variogram(xy, z))


def test_fold_variogram_of_a_subsample():
    xy, z = _field(500, seed=3)
    fv = FoldVariograms(xy, z, max_points=200, seed=4)
    used = fv.plan.used
    held = np.arange(0, len(xy), 5)  # some drawn into the subsample, some not
    keep = np.setdiff1d(used, held)
    ref = empirical_variogram(xy[keep], z[keep], cutoff=fv.plan.cutoff, width=fv.plan.width,
                              max_points=None)
    _same(fv.without(held), ref)


def _points(xy, z) -> PointData:
    return PointData(xy, z, crs="", field="v", source="test")


def _fold_model(xy, z, train, cutoff, width, models=cv.OK_DEFAULT_MODELS):
    """The model ``auto`` picks from scratch on the training part: its variogram in the
    given bins, every candidate fitted, the lowest kriging CV RMSE of the training part."""
    ev = empirical_variogram(xy[train], z[train], cutoff=cutoff, width=width)
    return fit_variogram(ev, models, select="cv",
                         cv_score=_cv_scorer(xy[train], z[train], 32)).model


def _manual(xy, z, groups, cutoff, width):
    """Fold by fold from scratch: the model of the others (same bins), then kriging."""
    pred = np.empty(len(z))
    for g in groups:
        train = np.setdiff1d(np.arange(len(z)), g)
        model = _fold_model(xy, z, train, cutoff, width)
        pred[g] = krige(xy[train], z[train], xy[g], model).estimate
    return pred


def test_loo_refit_equals_fold_by_fold():
    xy, z = _field(30, seed=5)
    pts = _points(xy, z)
    res = cv.cross_validate(pts, ["ok"], cv.make_folds(xy, "loo"), {"variogram": None})
    full = empirical_variogram(xy, z)
    ref = _manual(xy, z, [np.array([i]) for i in range(len(z))], full.cutoff, full.width)
    np.testing.assert_allclose(res.predictions["ok"], ref, rtol=RTOL, atol=ATOL)


def test_loo_refit_in_groups_above_the_size(monkeypatch):
    """Above LOO_EXACT_REFITS samples: one refit per group, each sample kriged from all the
    others with its group's variogram (the group's other members included)."""
    monkeypatch.setattr(cv, "LOO_EXACT_REFITS", 20)
    xy, z = _field(50, seed=6)
    pts = _points(xy, z)
    res = cv.cross_validate(pts, ["ok"], cv.make_folds(xy, "loo"), {"variogram": None,
                                                                    "seed": 3})
    groups = cv._loo_groups(len(z), 3)
    assert len(groups) == cv.LOO_REFIT_GROUPS
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(z)))
    full = empirical_variogram(xy, z)
    ref = np.empty(len(z))
    for g in groups:
        train = np.setdiff1d(np.arange(len(z)), g)
        model = _fold_model(xy, z, train, full.cutoff, full.width)
        for i in g:
            others = np.setdiff1d(np.arange(len(z)), [i])
            ref[i] = krige(xy[others], z[others], xy[[i]], model).estimate[0]
    np.testing.assert_allclose(res.predictions["ok"], ref, rtol=RTOL, atol=ATOL)


def test_kfold_refit_equals_fold_by_fold():
    xy, z = _field(100, seed=7)
    folds = cv.make_folds(xy, "4", seed=1)
    res = cv.cross_validate(_points(xy, z), ["ok"], folds, {"variogram": None})
    full = empirical_variogram(xy, z)
    groups = [np.flatnonzero(folds == f) for f in np.unique(folds)]
    ref = _manual(xy, z, groups, full.cutoff, full.width)
    np.testing.assert_allclose(res.predictions["ok"], ref, rtol=RTOL, atol=ATOL)
