"""Reference baselines for the hybrid's accuracy targets (not a test; prints JSON).

On exactly the folds of ``bench_hybrid.py`` (Meuse log(zinc), 10-fold, ``make_folds("10",
seed=0)``, RMSE in log units, everything fitted inside each fold) this measures what the
hybrid's numbers should be read against:

* ordinary kriging with the default 32 neighbours (the ratio's denominator) and global;
* kriging with an external drift (universal kriging, global) in ``dist`` and in ``sqrt(dist)``:
  the classical regression-kriging answer to the ``dist`` covariate (the engine's
  :func:`~gcnn_rnn.core.kriging.krige_external_drift`, which agrees with R gstat in
  ``tests/core/oracle/test_gstat_drift.py``). The residual variogram is fitted (``auto``) to
  the least-squares residuals of the training part;
* ridge and extra-trees regressions of the OK residual on the hybrid's own features: how much
  signal the features carry for learners other than the network.

Usage::

    .venv/bin/python benchmarks/reference_baselines.py [--output res.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from emit import emit

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


def main() -> int:
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from gcnn_rnn.core import cv
    from gcnn_rnn.core.features import FeatureConfig, compute_features, sample_covariates
    from gcnn_rnn.core.io import read_points
    from gcnn_rnn.core.kriging import KrigingConfig, krige, krige_external_drift
    from gcnn_rnn.core.kriging.drift import drift_residuals
    from gcnn_rnn.core.model.estimator import resolve_variogram

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pts = read_points(SAMPLE / "meuse.gpkg", "zinc", layer="meuse")
    dist = sample_covariates([str(SAMPLE / "meuse_dist.tif")], pts.coords, pts.crs, "samples")
    dist = dist[:, 0]
    fold = cv.make_folds(pts.coords, "10", seed=0)
    z = np.log(pts.values)
    names = ("ok_32", "ok_global", "ked_dist", "ked_sqrt_dist", "ridge_on_features",
             "extra_trees_on_features")
    pred = {k: np.full(pts.n, np.nan) for k in names}
    for f in np.unique(fold):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        xy, y = pts.coords[tr], z[tr]
        vg = resolve_variogram("auto", xy, y)
        for key, k in (("ok_32", 32), ("ok_global", 0)):
            pred[key][te] = krige(xy, y, pts.coords[te], vg, KrigingConfig(neighbours=k)).estimate
        for key, g in (("ked_dist", lambda v: v), ("ked_sqrt_dist", np.sqrt)):
            d_tr, d_te = g(dist[tr])[:, None], g(dist[te])[:, None]
            vg_r = resolve_variogram("auto", xy, drift_residuals(y, d_tr))
            pred[key][te] = krige_external_drift(xy, y, d_tr, pts.coords[te], d_te, vg_r,
                                                 neighbours=0).estimate
        fcfg = FeatureConfig()
        a = compute_features(xy, y, xy, vg, fcfg, exclude_self=True)
        b = compute_features(xy, y, pts.coords[te], vg, fcfg)

        def design_of(fs):
            return np.column_stack([fs.sequence.reshape(fs.n, -1), fs.static])

        r = y - a.ok_estimate
        learners = {
            "ridge_on_features": make_pipeline(StandardScaler(),
                                               RidgeCV(alphas=np.logspace(-3, 4, 15))),
            "extra_trees_on_features": ExtraTreesRegressor(500, min_samples_leaf=5,
                                                           max_features=0.5, random_state=0),
        }
        for key, learner in learners.items():
            pred[key][te] = b.ok_estimate + learner.fit(design_of(a), r).predict(design_of(b))
    rmse = {k: float(np.sqrt(np.mean((v - z) ** 2))) for k, v in pred.items()}
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "protocol": "Meuse log(zinc), 10 folds make_folds('10', seed=0), variogram auto and "
                    "everything else fitted inside each fold, RMSE in log units",
        "rmse": {k: round(v, 5) for k, v in rmse.items()},
        "ratio_to_ok_32": {k: round(v / rmse["ok_32"], 4) for k, v in rmse.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return emit(out, args.output)


if __name__ == "__main__":
    sys.exit(main())
