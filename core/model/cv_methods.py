"""Cross-validation methods ``linear`` and ``hybrid`` for :mod:`gcnn_rnn.core.cv`, nested.

Each method has the signature of :mod:`gcnn_rnn.core.cv`'s registry (where ``ok`` lives)::

    method(train: PointData, test: PointData, options: dict, progress, should_stop)
        -> {"prediction", "variance", "lower", "upper"}   (arrays over the test points)

and refits *everything* (transform, variogram when ``"auto"``, leave-one-out features,
scalers, network, calibration) on the training part of the fold only. Values are in data units
unless ``options["output_units"] == "transformed"``.

``linear`` is the baseline the deep model must beat: a ridge regression (penalty chosen by
cross-validation over the same spatial groups the network validates on) of the kriging
residual on exactly the hybrid's features
(the flattened neighbour sequence and the static features), with split-conformal intervals
from spatially grouped out-of-fold residuals.

:func:`compare_methods` runs several methods on the same folds through
:func:`gcnn_rnn.core.cv.cross_validate` and adds interval widths and the paired per-fold
difference hybrid − OK; the ``run`` command and the benchmark use it.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from ..cv import transformed_extras
from ..errors import InputDataError
from ..progress import ProgressFn, StopFn, check_cancel
from .conformal import calibrate
from .options import model_options

logger = logging.getLogger(__name__)

HYBRID_METHODS = ("linear", "hybrid")


def _units(options: dict) -> str:
    return "transformed" if options.get("output_units") == "transformed" else "original"


def _pack(ft, pred_t, sd_t, lower_t, upper_t, units: str, lagrange=None) -> dict:
    if units == "transformed":
        return {"prediction": pred_t, "variance": sd_t**2, "lower": lower_t, "upper": upper_t}
    est, var = ft.back(pred_t, sd_t**2, lagrange)
    return {"prediction": est, "variance": var, "lower": ft.inverse(lower_t),
            "upper": ft.inverse(upper_t)}


def hybrid_method(train, test, options: dict, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> dict:
    """The hybrid model fitted on the training part (nested: everything refitted)."""
    from .options import estimator_from_args

    est = estimator_from_args(options, crs=train.crs)
    attrs = train.attributes if est.co_fields else None
    est.fit(train.coords, train.values, attributes=attrs, progress=progress,
            should_stop=should_stop)
    pred = est.predict_full(test.coords, attributes=test.attributes if est.co_fields else None,
                            allow_missing=False)
    sd_t = est.calibration_.predictive_std(pred.sigma_t)
    if _units(options) == "transformed":
        lower, upper = est.calibration_.interval(pred.prediction_t, pred.sigma_t)
        return {"prediction": pred.prediction_t, "variance": sd_t**2, "lower": lower,
                "upper": upper, "observed": est.transform_.forward(test.values)}
    return {"prediction": pred.prediction, "variance": pred.prediction_std**2,
            "lower": pred.interval_lower, "upper": pred.interval_upper,
            "observed": np.asarray(test.values, dtype=float),
            **transformed_extras(est.transform_, pred.prediction_t, sd_t**2, test.values)}


def _design(feats) -> np.ndarray:
    n = feats.n
    return np.column_stack([feats.sequence.reshape(n, -1), feats.static])


def linear_method(train, test, options: dict, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> dict:
    """Ridge regression of the OK residual on the hybrid's kriging-derived features."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..transforms import fit_transform
    from .estimator import HybridRegressor, resolve_variogram
    from .options import estimator_from_args
    from .train import spatial_groups

    proto: HybridRegressor = estimator_from_args(options, crs=train.crs)
    fcfg = proto._configs()[0]
    ft = fit_transform(train.values, proto.transform)
    yt = ft.forward(train.values)
    model = resolve_variogram(proto.variogram, train.coords, yt, proto.variogram_select,
                              int(proto.kriging_neighbours))
    proto.feature_config_, proto.crs = fcfg, train.crs
    extra, names = proto._training_extra(train.coords, train.attributes)
    from ..features import compute_features, leave_out_groups

    f_train = compute_features(train.coords, yt, train.coords, model, fcfg, exclude_self=True,
                               extra=extra, extra_names=names, sample_extra=extra,
                               groups=leave_out_groups(train.coords, fcfg.leave_out),
                               should_stop=should_stop)
    check_cancel(should_stop)
    t_extra = proto._target_extra(test.coords, test.attributes if fcfg.co_fields else None,
                                  allow_missing=False)
    f_test = compute_features(train.coords, yt, test.coords, model, fcfg, extra=t_extra,
                              extra_names=names, sample_extra=extra, should_stop=should_stop)
    alphas = np.logspace(-3, 6, 19)
    x_tr, resid = _design(f_train), yt - f_train.ok_estimate
    # Spatial groups of blocks choose the penalty and give the out-of-fold residuals that
    # calibrate the intervals. Leave-one-out (GCV) would choose it for predicting a sample
    # from its close neighbours, which unsampled nodes and held-out blocks or holes do not
    # have: on drill holes it picked a tiny penalty and predictions of -20 on log data.
    groups = spatial_groups(train.coords, 5, seed=int(options.get("seed", 0) or 0))

    def fitted(rows):
        sub = groups[rows]
        splits = [(np.flatnonzero(sub != g), np.flatnonzero(sub == g)) for g in np.unique(sub)]
        cv_arg = splits if len(splits) >= 2 else None
        return make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, cv=cv_arg)).fit(
            x_tr[rows], resid[rows])

    reg = fitted(np.arange(len(yt)))
    oof = np.full(len(yt), np.nan)
    for g in np.unique(groups):
        held = groups == g
        if held.all() or (~held).sum() < 5:
            continue
        oof[held] = f_train.ok_estimate[held] + fitted(np.flatnonzero(~held)).predict(x_tr[held])
    sigma_tr = np.sqrt(np.clip(f_train.ok_variance, 0.0, None))
    cal = calibrate(yt, oof, sigma_tr, float(model_options(options)["alpha"]))
    # As the network's inputs: never extrapolate beyond the training features' range (a
    # linear model is unbounded there; in 3D a hole far from the others gave -23 on log data).
    x_te = np.clip(_design(f_test), x_tr.min(axis=0), x_tr.max(axis=0))
    pred_t = f_test.ok_estimate + reg.predict(x_te)
    sigma = np.sqrt(np.clip(f_test.ok_variance, 0.0, None))
    lower, upper = cal.interval(pred_t, sigma)
    if progress is not None:
        progress(1.0, "linear")
    sd_t = cal.predictive_std(sigma)
    out = _pack(ft, pred_t, sd_t, lower, upper, _units(options))
    if _units(options) == "transformed":
        out["observed"] = ft.forward(test.values)
    else:
        out["observed"] = np.asarray(test.values, dtype=float)
        out.update(transformed_extras(ft, pred_t, sd_t**2, test.values))
    return out


hybrid_method.describe = lambda options: (  # type: ignore[attr-defined]
    "hybrid GCNN-RNN (transform, variogram and its selection, classical base (OK, or KED "
    "and its drift shape), leave-one-out features, scalers, ensemble, do-no-harm gate and "
    "conformal calibration refitted on each training part)")
linear_method.describe = lambda options: (  # type: ignore[attr-defined]
    "ridge regression of the kriging residual on the hybrid's features (refitted per fold)")

METHODS = {"linear": linear_method, "hybrid": hybrid_method}


def register() -> None:
    """Add ``linear`` and ``hybrid`` to :data:`gcnn_rnn.core.cv.CV_METHODS`."""
    from .. import cv

    for name in HYBRID_METHODS:
        if name not in cv.CV_METHODS:
            cv.register_cv_method(name)(METHODS[name])


def kfold_indices(n: int, k: int, seed: int) -> np.ndarray:
    """Fold number per point for a seeded random k-fold split (sizes differ by at most 1)."""
    if not 2 <= k <= n:
        raise InputDataError(f"number of folds must be in 2..{n}, not {k!r}")
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    fold[rng.permutation(n)] = np.arange(n) % k
    return fold


def compare_methods(points, methods: tuple[str, ...] = ("ok", "hybrid"), folds="10",
                    seed: int = 0, options: dict | None = None,
                    progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None, client=None) -> dict:
    """Nested cross-validation of several methods on identical folds (:mod:`..cv`); with a
    Dask ``client`` the folds × methods run on its cluster (same results).

    Parameters
    ----------
    points : PointData
    methods : tuple of str
        Registered names (``ok``, ``linear``, ``hybrid``).
    folds : str, int or ndarray
        A fold scheme (``"10"``, ``"loo"``, ``"spatial:SIZE[:K]"``) or a fold id per point.
    seed : int
        Seed of the folds.
    options : dict
        Flag values (:func:`~.options.model_options` names, ``output_units``); a fixed
        ``variogram`` is used as given, ``"auto"`` is refitted inside every fold.

    Returns
    -------
    dict
        ``metrics`` {method: metrics + ``coverage`` + ``width``}, ``predictions``,
        ``variances``, ``lower``, ``upper`` {method: list}, ``observed``, ``fold``,
        ``per_fold``, ``fold_differences`` (hybrid − OK RMSE per fold), ``protocol``,
        ``units``, ``folds``, ``seconds``; with a transform and data-unit output also
        ``metrics_transformed`` (the same predictions scored in transformed units).
    """
    from .. import cv
    from ..kriging import KrigingConfig
    from ..transforms import parse_transform
    from .estimator import resolve_variogram

    opts = dict(options or {})
    units = _units(opts)
    spec = opts.get("variogram", "auto")
    fixed = spec is not None and str(spec).strip().lower() != "auto"
    if isinstance(folds, np.ndarray):
        fold_of = folds.astype(np.int64)
        scheme = f"{len(np.unique(fold_of))} given folds"
    else:
        fold_of = cv.make_folds(points.coords, str(folds), seed=seed)
        scheme = cv.folds_text(points.coords, str(folds))
    kn = opts.get("kriging_neighbours")
    kn = 32 if kn is None or kn == "" else int(kn)  # 0: global, for OK and the features
    opts.update(
        transform=parse_transform(opts.get("transform")),
        variogram=resolve_variogram(spec, points.coords, points.values) if fixed else None,
        refit_variogram=not fixed,
        kriging=opts.get("kriging") or KrigingConfig(neighbours=min(kn, points.n) if kn else 0),
        output_units=units,
    )
    t0 = time.perf_counter()
    res = cv.cross_validate(points, tuple(methods), fold_of, opts, progress=progress,
                            should_stop=should_stop, client=client)
    seconds = time.perf_counter() - t0
    metrics_out = {}
    for name in res.methods:
        mm = dict(res.metrics[name])
        if res.lower[name] is not None:
            mm["width"] = float(np.nanmean(res.upper[name] - res.lower[name]))
        metrics_out[name] = mm
    obs = res.observed[res.methods[0]]
    diffs = []
    if "ok" in res.methods and "hybrid" in res.methods:
        for f in np.unique(fold_of):
            sel = fold_of == f
            r_ok = math.sqrt(float(np.mean((obs[sel] - res.predictions["ok"][sel]) ** 2)))
            r_hy = math.sqrt(float(np.mean((obs[sel] - res.predictions["hybrid"][sel]) ** 2)))
            diffs.append({"fold": int(f) + 1, "n": int(sel.sum()), "rmse_ok": r_ok,
                          "rmse_hybrid": r_hy, "difference": r_hy - r_ok})

    def lists(store):
        return {m: (None if store[m] is None else np.asarray(store[m]).tolist())
                for m in res.methods}

    out = {
        "metrics": metrics_out,
        "predictions": lists(res.predictions),
        "variances": lists(res.variances),
        "lower": lists(res.lower),
        "upper": lists(res.upper),
        "observed": np.asarray(obs).tolist(),
        "fold": fold_of.tolist(),
        "per_fold": res.per_fold,
        "fold_differences": diffs,
        "protocol": f"{scheme} (seed {seed}), identical for all methods; {res.protocol}; "
                    f"metrics in {units} units",
        "units": units,
        "transform": str(getattr(opts["transform"], "value", opts["transform"])),
        "folds": int(len(np.unique(fold_of))),
        "seed": int(seed),
        "seconds": seconds,
    }
    if res.extra.get("metrics_transformed"):
        out["metrics_transformed"] = res.extra["metrics_transformed"]
    return out
