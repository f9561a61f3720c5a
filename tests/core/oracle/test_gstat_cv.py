"""Cross-validation against gstat's ``krige.cv()`` on the Meuse data (to 1e-6).

Leave-one-out (``nfold = nrow``, gstat's default) with the fixed model ``0.0507 Nug + 0.5906
Sph(897)`` for log(zinc): local (``nmax = 32``), global, simple kriging (``beta``), and a small
neighbourhood with ``maxdist``/``nmin``; plus 5-fold cross-validation on *our* folds (gstat's
``nfold`` also takes a vector of fold ids). Compared per point: prediction, variance,
observation, residual (``observed - predicted``, gstat's sign) and z-score, through
``krige(..., exclude_self=True)``, :func:`gcnn_rnn.core.cv.cross_validate` (its ``ok`` method
with the log transform, in transformed units) and the ``gcnn-rnn cv`` command; the summary
metrics are recomputed from gstat's columns.

Points whose ``k``-th and ``k+1``-th nearest other samples are exactly equidistant are left
out of the local comparisons (either choice is right; the programs break ties differently).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from gstat_oracle import r_vgm, run_r

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.cv import cross_validate, make_folds
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.variogram.models import parse_model

TOL = 1e-6
SPH = "0.0507 Nug + 0.5906 Sph(897)"
N_FOLDS, SEED = 5, 3

# name -> (extra krige.cv arguments, our KrigingConfig)
LOO_CASES = {
    "nmax32": ("nmax = 32", KrigingConfig(neighbours=32)),
    "global": ("", KrigingConfig(neighbours=0)),
    "sk_nmax32": ("nmax = 32, beta = 5.9", KrigingConfig(neighbours=32, mean=5.9)),
    "nmax10_maxdist400_nmin4": (
        "nmax = 10, maxdist = 400, nmin = 4",
        KrigingConfig(neighbours=10, max_distance=400.0, min_neighbours=4),
    ),
}


@pytest.fixture(scope="module")
def points(sample_dir, meuse):
    pts = read_points(sample_dir / "meuse.gpkg", "zinc", layer="meuse")
    np.testing.assert_array_equal(pts.coords, meuse[["x", "y"]].to_numpy(float))
    return pts


@pytest.fixture(scope="module")
def folds(points) -> np.ndarray:
    f = make_folds(points.coords, N_FOLDS, seed=SEED)
    assert len(np.unique(f)) == N_FOLDS
    return f


@pytest.fixture(scope="module")
def gstat_cv(meuse, folds) -> dict[str, pd.DataFrame]:
    """gstat's krige.cv output of every case (one R run)."""
    cols = (
        "data.frame(pred = k$var1.pred, var = k$var1.var, observed = k$observed, "
        "residual = k$residual, zscore = k$zscore, fold = k$fold)"
    )
    lines = [
        'd <- IN("data"); coordinates(d) <- ~x + y',
        'f <- IN("folds")$fold',
        f"m <- {r_vgm(parse_model(SPH))}",
    ]
    for name, (extra, _) in LOO_CASES.items():
        args = ", " + extra if extra else ""
        lines.append(f"k <- krige.cv(log(zinc) ~ 1, d, m{args}, debug.level = 0)")
        lines.append(f'OUT({cols}, "loo_{name}")')
    lines.append("k <- krige.cv(log(zinc) ~ 1, d, m, nmax = 32, nfold = f, debug.level = 0)")
    lines.append(f'OUT({cols}, "kfold")')
    return run_r(
        "\n".join(lines), {"data": meuse[["x", "y", "zinc"]], "folds": {"fold": folds + 1}}
    )


def _untied(coords: np.ndarray, config: KrigingConfig, train: np.ndarray | None = None):
    """Points whose neighbour set (without themselves, or within ``train``) is unambiguous."""
    d = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    if train is not None:
        d[:, ~train] = np.inf
    k = config.neighbours
    if not k:
        return np.ones(len(coords), dtype=bool)
    d.sort(axis=1)
    tied = np.isclose(d[:, k - 1], d[:, k], rtol=1e-12, atol=0)
    if config.max_distance is not None:
        tied |= np.isclose(d[:, k - 1], config.max_distance, rtol=1e-12, atol=0)
    return ~tied


def _assert_same(pred, var, ref: pd.DataFrame, ok: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(pred), ref["pred"].isna().to_numpy())
    ok = ok & ~ref["pred"].isna().to_numpy()
    assert ok.sum() >= 0.95 * (~ref["pred"].isna()).sum()
    np.testing.assert_allclose(pred[ok], ref["pred"].to_numpy()[ok], rtol=0, atol=TOL)
    np.testing.assert_allclose(var[ok], ref["var"].to_numpy()[ok], rtol=0, atol=TOL)


@pytest.mark.parametrize("name", list(LOO_CASES))
def test_loo_matches_krige_cv(name, gstat_cv, points):
    config = LOO_CASES[name][1]
    ref = gstat_cv[f"loo_{name}"]
    y = np.log(points.values)
    np.testing.assert_allclose(ref["observed"].to_numpy(), y, rtol=0, atol=1e-12)
    res = krige(points.coords, y, points.coords, parse_model(SPH), config, exclude_self=True)
    ok = _untied(points.coords, config)
    _assert_same(res.estimate, res.variance, ref, ok)
    if config.min_neighbours > 1:
        assert res.n_missing == int(ref["pred"].isna().sum()) > 0  # nmin does bite here
    # gstat's residual and z-score conventions
    good = ok & ~ref["pred"].isna().to_numpy()
    np.testing.assert_allclose(
        (y - res.estimate)[good], ref["residual"].to_numpy()[good], rtol=0, atol=TOL
    )
    z = (y - res.estimate) / np.sqrt(res.variance)
    np.testing.assert_allclose(z[good], ref["zscore"].to_numpy()[good], rtol=1e-6, atol=1e-6)


def test_cross_validate_loo_matches_krige_cv(gstat_cv, points):
    """The ``ok`` method of :func:`cross_validate` (log transform, transformed units) and its
    metrics against gstat's LOO columns (``nmax = 32``)."""
    config = LOO_CASES["nmax32"][1]
    options = {
        "variogram": parse_model(SPH),
        "kriging": config,
        "transform": "log",
        "output_units": "transformed",
    }
    res = cross_validate(points, ["ok"], make_folds(points.coords, "loo"), options)
    ref = gstat_cv["loo_nmax32"]
    ok = _untied(points.coords, config)
    _assert_same(res.predictions["ok"], res.variances["ok"], ref, ok)
    np.testing.assert_allclose(res.observed["ok"], ref["observed"], rtol=0, atol=1e-12)
    if ok.all():
        m = res.metrics["ok"]
        resid, z = ref["residual"].to_numpy(), ref["zscore"].to_numpy()
        assert m["me"] == pytest.approx(resid.mean(), abs=TOL)
        assert m["rmse"] == pytest.approx(np.sqrt(np.mean(resid**2)), abs=TOL)
        assert m["msdr"] == pytest.approx(np.mean(z**2), rel=1e-6)


def test_cross_validate_kfold_matches_krige_cv(gstat_cv, points, folds):
    """5-fold cross-validation on our folds: each fold kriged from the other four."""
    config = LOO_CASES["nmax32"][1]
    options = {
        "variogram": parse_model(SPH),
        "kriging": config,
        "transform": "log",
        "output_units": "transformed",
    }
    res = cross_validate(points, ["ok"], folds, options)
    ref = gstat_cv["kfold"]
    np.testing.assert_array_equal(ref["fold"].to_numpy(), folds + 1)
    ok = np.ones(points.n, dtype=bool)
    for f in np.unique(folds):
        test = folds == f
        sub = _untied(points.coords, config, train=~test)
        ok[test] = sub[test]
    _assert_same(res.predictions["ok"], res.variances["ok"], ref, ok)


def test_cv_command_matches_krige_cv(gstat_cv, points, sample_dir, tmp_path, capsys):
    """``gcnn-rnn cv --folds loo`` end to end: per-point predictions and variances in M.json."""
    out = tmp_path / "M.json"
    code = main(
        [
            "cv",
            "--quiet",
            "--input",
            str(sample_dir / "meuse.gpkg"),
            "--layer",
            "meuse",
            "--field",
            "zinc",
            "--method",
            "ok",
            "--folds",
            "loo",
            "--transform",
            "log",
            "--output-units",
            "transformed",
            "--variogram",
            SPH,
            "--neighbours",
            "32",
            "--output-json",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    per_point = pd.DataFrame(json.loads(out.read_text(encoding="utf-8"))["per_point"])
    np.testing.assert_array_equal(per_point[["x", "y"]].to_numpy(), points.coords)
    ok = _untied(points.coords, LOO_CASES["nmax32"][1])
    _assert_same(
        per_point["ok_prediction"].to_numpy(float),
        per_point["ok_variance"].to_numpy(float),
        gstat_cv["loo_nmax32"],
        ok,
    )
