"""Cross-validation: fold schemes, a registry of prediction methods, and the CV driver.

Every method runs on *identical* folds, and everything a method learns (transform, variogram,
scalers, network) is fitted inside each fold from the training part only, so no held-out value
leaks into its own prediction. A method is a function registered under a name::

    @register_cv_method("ok")
    def ok_method(train: PointData, test: PointData, options: dict, progress, should_stop)
        -> {"prediction": (m,), "variance": (m,) optional, "lower"/"upper": (m,) optional,
            "observed": (m,) optional (the test values in the requested units)}

Predictions are in the units asked by ``options["output_units"]`` (``"original"`` or
``"transformed"``). A method may carry two optional attributes: ``loo(points, options,
progress, should_stop)`` giving all leave-one-out predictions at once (or ``None`` when it
cannot, e.g. because something must be refitted per fold), and ``describe(options) -> str``
for the protocol text.

Registered here: ``ok`` (ordinary or simple kriging), ``ked`` (kriging with an external
drift in covariate rasters, :mod:`.kriging.drift`) and ``uk`` (universal kriging with a drift
in the coordinates, ``options["drift"]``); ``linear`` and ``hybrid`` come from
:mod:`gcnn_rnn.core.model.cv_methods`, ``idw`` from :mod:`gcnn_rnn.core.idw`. With a
transform and data-unit output, methods also return their transformed-unit predictions and
both sets of scores are kept
(``CVResult.extra["metrics_transformed"]``).
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputDataError, UnknownModelError
from .io import PointData
from .metrics import metrics
from .progress import ProgressFn, StopFn, check_cancel, scaled

logger = logging.getLogger(__name__)

CVMethod = Callable[[PointData, PointData, dict, ProgressFn | None, StopFn | None], dict]

#: Registered cross-validation methods by name.
CV_METHODS: dict[str, CVMethod] = {}
#: Module imported on demand to register more methods (the hybrid model's).
EXTRA_METHOD_MODULES = ("gcnn_rnn.core.model.cv_methods", "gcnn_rnn.core.idw")
#: Spatial folds when ``spatial:SIZE`` does not say how many.
DEFAULT_SPATIAL_FOLDS = 5


def register_cv_method(name: str) -> Callable[[CVMethod], CVMethod]:
    """Decorator registering a cross-validation method under ``name``."""

    def deco(fn: CVMethod) -> CVMethod:
        CV_METHODS[name] = fn
        return fn

    return deco


def get_cv_method(name: str) -> CVMethod:
    """The method registered as ``name``, loading :data:`EXTRA_METHOD_MODULES` if needed.

    Raises
    ------
    UnknownModelError
        For an unknown name (the message lists the known ones).
    """
    if name not in CV_METHODS:
        _load_extra_methods()
    if name not in CV_METHODS:
        raise UnknownModelError(
            f"unknown cross-validation method {name!r}; known: {', '.join(sorted(CV_METHODS))}"
        )
    return CV_METHODS[name]


def _load_extra_methods() -> None:
    """Import :data:`EXTRA_METHOD_MODULES`; a module's ``register()`` is called if it has one."""
    for modname in EXTRA_METHOD_MODULES:
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name is None or not modname.startswith(exc.name):
                raise
            continue
        register = getattr(module, "register", None)
        if callable(register):
            register()


# --------------------------------------------------------------------------- folds
@dataclass(frozen=True)
class FoldScheme:
    """A parsed fold scheme: ``kind`` ``"loo"``, ``"kfold"`` or ``"spatial"``.

    ``k`` is the number of folds (k-fold and spatial), ``block`` the spatial block side
    (``None`` for automatic).
    """

    kind: str
    k: int = 0
    block: float | None = None

    @property
    def text(self) -> str:
        if self.kind == "loo":
            return "loo"
        if self.kind == "kfold":
            return str(self.k)
        size = "auto" if self.block is None else f"{self.block:g}"
        return f"spatial:{size}:{self.k}"


def parse_folds(scheme: str | int) -> FoldScheme:
    """Parse ``"loo"``, ``K`` (e.g. ``"10"``), ``"spatial:SIZE[:K]"`` or ``"spatial:auto[:K]"``.

    Raises
    ------
    InputDataError
        For anything else.
    """
    text = str(scheme).strip().lower()
    if text == "loo":
        return FoldScheme("loo")
    if text.isdigit():
        k = int(text)
        if k < 2:
            raise InputDataError(f"k-fold cross-validation needs K >= 2, not {scheme!r}")
        return FoldScheme("kfold", k)
    parts = text.split(":")
    if parts[0] == "spatial" and 2 <= len(parts) <= 3:
        k = DEFAULT_SPATIAL_FOLDS
        if len(parts) == 3:
            if not parts[2].isdigit() or int(parts[2]) < 2:
                raise InputDataError(f"spatial folds: K must be an integer >= 2 in {scheme!r}")
            k = int(parts[2])
        if parts[1] == "auto":
            return FoldScheme("spatial", k, None)
        try:
            size = float(parts[1])
        except ValueError:
            size = math.nan
        if not (size > 0 and math.isfinite(size)):
            raise InputDataError(f"spatial block size must be a positive number in {scheme!r}")
        return FoldScheme("spatial", k, size)
    raise InputDataError(
        f"unknown fold scheme {scheme!r}; use loo, K (e.g. 10), spatial:SIZE[:K] or "
        "spatial:auto[:K]"
    )


def _blocks(xy: np.ndarray, size: float) -> np.ndarray:
    cells = np.floor((xy - xy.min(axis=0)) / size).astype(np.int64)
    return np.unique(cells, axis=0, return_inverse=True)[1].ravel()


def auto_block_size(coords: np.ndarray, k: int, range_hint: float | None = None) -> float:
    """Side of the square blocks for ``spatial:auto``.

    Starts from ``range_hint`` (the variogram's practical range: blocks at least that wide
    keep most spatially autocorrelated neighbours of a test point out of its training set,
    Roberts et al. 2017) or, without it, from the longer bounding-box side divided by
    ``sqrt(k)``; shrinks it by 20 % steps until there are at least ``2 k`` non-empty blocks,
    so that folds can be balanced.
    """
    xy = np.asarray(coords, dtype=float)[:, :2]
    span = float((xy.max(axis=0) - xy.min(axis=0)).max())
    if span <= 0:
        raise InputDataError("all points are at the same location: no spatial blocks possible")
    size = float(range_hint) if range_hint and range_hint > 0 else span / math.sqrt(k)
    size = min(size, span)
    while np.unique(_blocks(xy, size)).size < 2 * k and size > span * 1e-6:
        size *= 0.8
    return size


def drill_holes(coords: np.ndarray) -> np.ndarray | None:
    """Hole of each sample when ``coords`` are 3D drill holes (samples sharing x, y), else None.

    K-fold cross-validation then keeps every hole whole: a sample predicted from its own
    hole's samples a few metres away measures interpolation along the hole, not the mapping
    between holes that the grid needs (and the hybrid's training features leave whole holes
    out for the same reason, :func:`~gcnn_rnn.core.features.leave_out_groups`).
    """
    from .features import leave_out_groups

    return leave_out_groups(coords, "auto")


def _deal_groups(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K folds of whole groups (blocks, holes): groups in seeded random order, each to the
    fold with the fewest points so far."""
    n_groups = int(groups.max()) + 1
    counts = np.bincount(groups, minlength=n_groups)
    load = np.zeros(k, dtype=np.int64)
    fold_of = np.empty(n_groups, dtype=np.int64)
    for g in rng.permutation(n_groups):
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += counts[g]
    return fold_of[groups]


def folds_text(coords: np.ndarray, scheme: str | int | FoldScheme) -> str:
    """The scheme as the protocol names it (``"10 folds"``, ``"10 folds of whole drill
    holes"``, ``"loo folds"``, ...)."""
    fs = scheme if isinstance(scheme, FoldScheme) else parse_folds(scheme)
    if fs.kind == "kfold" and drill_holes(np.asarray(coords, dtype=float)) is not None:
        return f"{fs.text} folds of whole drill holes"
    return f"{fs.text} folds"


def make_folds(
    coords: np.ndarray, scheme: str | int | FoldScheme, seed: int = 0, *,
    range_hint: float | None = None,
) -> np.ndarray:
    """Fold id (0-based) of each point.

    Parameters
    ----------
    coords : ndarray, shape (n, 2) or (n, 3)
        Point coordinates (blocks use x and y only, so a drill hole stays in one fold).
    scheme : str, int or FoldScheme
        ``"loo"``, ``K``, ``"spatial:SIZE[:K]"`` or ``"spatial:auto[:K]"`` (K defaults to
        :data:`DEFAULT_SPATIAL_FOLDS`); see :func:`parse_folds`.
    seed : int
        Seed of the random assignment (the same seed gives the same folds).
    range_hint : float, optional
        The variogram's practical range, used by ``spatial:auto`` (:func:`auto_block_size`).

    Returns
    -------
    ndarray of int64, shape (n,)

    Notes
    -----
    k-fold: a seeded random permutation cut into K near-equal parts; for 3D drill holes
    (samples sharing x, y; :func:`drill_holes`) whole holes are dealt to the folds instead,
    each to the fold with the fewest samples so far. Spatial: square blocks of
    the given side from the lower-left corner of the points' bounding box; the non-empty
    blocks, in seeded random order, each go to the fold with the fewest points so far, so
    folds are balanced while every block stays whole.
    """
    fs = scheme if isinstance(scheme, FoldScheme) else parse_folds(scheme)
    xy = np.asarray(coords, dtype=float)
    n = xy.shape[0]
    rng = np.random.default_rng(seed)
    if fs.kind == "loo":
        return np.arange(n, dtype=np.int64)
    if fs.kind == "kfold":
        if fs.k > n:
            raise InputDataError(f"{fs.k} folds for only {n} points")
        holes = drill_holes(xy)
        if holes is not None:
            n_holes = int(holes.max()) + 1
            if n_holes < fs.k:
                raise InputDataError(
                    f"{fs.k} folds of whole drill holes need at least {fs.k} holes, not "
                    f"{n_holes}; use --folds {n_holes} or fewer, or spatial blocks"
                )
            return _deal_groups(holes, fs.k, rng)
        folds = np.empty(n, dtype=np.int64)
        for f, part in enumerate(np.array_split(rng.permutation(n), fs.k)):
            folds[part] = f
        return folds
    size = fs.block if fs.block is not None else auto_block_size(xy, fs.k, range_hint)
    block = _blocks(xy[:, :2], size)
    n_blocks = int(block.max()) + 1
    k = fs.k
    if n_blocks < k:
        if n_blocks < 2:
            raise InputDataError(
                f"spatial blocks of side {size:g} put all points in one block; use smaller blocks"
            )
        logger.warning("only %d non-empty blocks of side %g: using %d folds instead of %d",
                       n_blocks, size, n_blocks, k)
        k = n_blocks
    return _deal_groups(block, k, rng)


# --------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class CVResult:
    """Cross-validation predictions and scores of several methods on the same folds.

    Attributes
    ----------
    methods : tuple of str
        Method names in the order run.
    folds : ndarray of int64, shape (n,)
        Fold of each point.
    observed : dict of str to ndarray
        Observations per method in its output units.
    predictions, variances, lower, upper : dict of str to ndarray or None
        Per-point outputs of each method (``None`` where a method gives none).
    metrics : dict of str to dict
        :func:`~gcnn_rnn.core.metrics.metrics` of each method over all points (plus
        ``coverage`` when intervals are given).
    per_fold : dict of str to list of dict
        The same metrics per fold (``{"fold": f, "n": .., ...}``).
    protocol : str
        What was done, in words.
    extra : dict
        ``metrics_transformed`` {method: metrics}: with a transform and data-unit output, the
        same predictions scored in transformed units (present when every method gave them).
    """

    methods: tuple[str, ...]
    folds: np.ndarray
    observed: dict[str, np.ndarray]
    predictions: dict[str, np.ndarray]
    variances: dict[str, np.ndarray | None]
    lower: dict[str, np.ndarray | None]
    upper: dict[str, np.ndarray | None]
    metrics: dict[str, dict]
    per_fold: dict[str, list[dict]]
    protocol: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def per_point(self, coords: np.ndarray) -> list[dict]:
        """One record per point: coordinates, fold, observed, and per method
        ``<m>_prediction``, ``<m>_residual`` (observed - prediction), ``<m>_variance``,
        ``<m>_lower``/``<m>_upper`` when available."""
        first = self.methods[0]
        cols: dict[str, np.ndarray] = {"x": coords[:, 0], "y": coords[:, 1]}
        if coords.shape[1] == 3:
            cols["z"] = coords[:, 2]
        cols["fold"] = self.folds
        cols["observed"] = self.observed[first]
        for m in self.methods:
            if m != first and not np.array_equal(self.observed[m], self.observed[first],
                                                 equal_nan=True):
                cols[f"{m}_observed"] = self.observed[m]
            cols[f"{m}_prediction"] = self.predictions[m]
            cols[f"{m}_residual"] = self.observed[m] - self.predictions[m]
            for name, store in (("variance", self.variances), ("lower", self.lower),
                                ("upper", self.upper)):
                if store[m] is not None:
                    cols[f"{m}_{name}"] = store[m]
        n = len(self.folds)
        return [{k: _py(v[i]) for k, v in cols.items()} for i in range(n)]


def _py(v):
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _scores(obs, pred, var, lo, hi) -> dict:
    out = metrics(obs, pred, var)
    if lo is not None and hi is not None:
        ok = np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
        out["coverage"] = float(((obs[ok] >= lo[ok]) & (obs[ok] <= hi[ok])).mean()) if ok.any() \
            else None
    return out


def cross_validate(
    points: PointData,
    methods: Sequence[str],
    folds: np.ndarray,
    options: dict | None = None,
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    client=None,
) -> CVResult:
    """Run every method on the same folds and score it.

    Parameters
    ----------
    points : PointData
        All samples.
    methods : sequence of str
        Registered method names (:data:`CV_METHODS`).
    folds : ndarray of int, shape (n,)
        Fold of each point (:func:`make_folds`).
    options : dict, optional
        Passed to every method (``output_units``, ``transform``, ``variogram``, ...).
    progress, should_stop : callable, optional
        Progress and cancellation (checked between folds).
    client : distributed.Client, optional
        Run the folds × methods on this Dask cluster (:mod:`.cv_cluster`); same results.

    Returns
    -------
    CVResult
    """
    options = dict(options or {})
    folds = np.asarray(folds, dtype=np.int64)
    if folds.shape != (points.n,):
        raise InputDataError(f"{folds.size} fold ids for {points.n} points")
    if not methods:
        raise InputDataError("no cross-validation method given")
    fns = {m: get_cv_method(m) for m in methods}
    fold_ids = np.unique(folds)
    if fold_ids.size < 2:
        raise InputDataError("cross-validation needs at least two folds")
    loo = fold_ids.size == points.n
    obs, pred, var, lo, hi, scores, per_fold, texts = {}, {}, {}, {}, {}, {}, {}, []
    scores_t: dict[str, dict] = {}
    done = None
    if client is not None:
        from .cv_cluster import outputs_on_cluster

        done = outputs_on_cluster(client, points, folds, fold_ids, fns, options, loo, progress,
                                  should_stop)
    for mi, (name, fn) in enumerate(fns.items()):
        sub = scaled(progress, mi / len(fns), (mi + 1) / len(fns))
        out = None if done is None else done[name]
        if out is None and loo and hasattr(fn, "loo"):
            check_cancel(should_stop)
            out = fn.loo(points, options, sub, should_stop)
        if out is None:
            prepare = getattr(fn, "prepare", None)
            fold_options = prepare(points, options, should_stop) if prepare else None
            out = _by_fold(fn, points, folds, fold_ids, options, sub, should_stop,
                           fold_options)
        p = np.asarray(out["prediction"], dtype=float)
        o = np.asarray(out.get("observed", points.values), dtype=float)
        v, lw, up = (None if out.get(key) is None else np.asarray(out[key], dtype=float)
                     for key in ("variance", "lower", "upper"))
        obs[name], pred[name], var[name], lo[name], hi[name] = o, p, v, lw, up
        scores[name] = _scores(o, p, v, lw, up)
        if out.get("prediction_t") is not None and out.get("observed_t") is not None:
            v_t = out.get("variance_t")
            scores_t[name] = metrics(np.asarray(out["observed_t"], dtype=float),
                                     np.asarray(out["prediction_t"], dtype=float),
                                     None if v_t is None else np.asarray(v_t, dtype=float))
        per_fold[name] = []
        for f in fold_ids:
            sel = folds == f
            rec = {"fold": int(f)}
            rec.update(_scores(o[sel], p[sel], None if v is None else v[sel],
                               None if lw is None else lw[sel], None if up is None else up[sel]))
            per_fold[name].append(rec)
        describe = getattr(fn, "describe", None)
        texts.append(f"{name}: {describe(options)}" if describe else name)
        logger.info("cross-validation %s: rmse %.4g, r2 %.3f", name, scores[name]["rmse"],
                    scores[name]["r2"])
    protocol = "; ".join(texts)
    extra = {}
    if scores_t and len(scores_t) == len(fns):  # every method: comparable in both units
        extra["metrics_transformed"] = scores_t
    return CVResult(tuple(fns), folds, obs, pred, var, lo, hi, scores, per_fold, protocol,
                    extra)


TRANSFORMED_KEYS = ("prediction_t", "variance_t", "observed_t")


def _by_fold(fn, points, folds, fold_ids, options, progress, should_stop,
             per_fold: Callable[[np.ndarray], dict] | None = None) -> dict:
    """Run ``fn`` fold by fold; ``per_fold(test_idx)`` (a method's ``prepare``) may add
    options for a fold, e.g. a variogram fitted without the fold from shared work."""
    results = []
    for i, f in enumerate(fold_ids):
        check_cancel(should_stop)
        test_idx = np.flatnonzero(folds == f)
        train_idx = np.flatnonzero(folds != f)
        opts = options if per_fold is None else {**options, **per_fold(test_idx)}
        results.append(fn(points.subset(train_idx), points.subset(test_idx), opts,
                          scaled(progress, i / fold_ids.size, (i + 1) / fold_ids.size),
                          should_stop))
        if progress is not None:
            progress((i + 1) / fold_ids.size, "cross-validation")
    return assemble_folds(points.n, folds, fold_ids, results)


def assemble_folds(n: int, folds: np.ndarray, fold_ids, results) -> dict:
    """One method's per-point outputs from its results on each fold (in ``fold_ids`` order)."""
    keys = ("prediction", "variance", "lower", "upper", "observed", *TRANSFORMED_KEYS)
    out: dict[str, np.ndarray | None] = {}
    for f, res in zip(fold_ids, results, strict=True):
        test_idx = np.flatnonzero(folds == f)
        for key in keys:
            val = res.get(key)
            if val is None:
                continue
            if key not in out:
                out[key] = np.full(n, np.nan)
            out[key][test_idx] = np.asarray(val, dtype=float)
    if "prediction" not in out:
        raise InputDataError("a cross-validation method returned no prediction")
    return out


# --------------------------------------------------------------------------- ordinary kriging
OK_DEFAULT_MODELS = ("sph", "exp", "gau", "mat")


def _ok_settings(options: dict):
    from .kriging import KrigingConfig
    from .transforms import parse_transform

    cfg = options.get("kriging") or KrigingConfig()
    units = options.get("output_units", "original")
    if units not in ("original", "transformed"):
        raise InputDataError(f"output units must be original or transformed, not {units!r}")
    return cfg, parse_transform(options.get("transform")), units


def _kriging_output(ft, estimate, variance, lagrange, test_values, units) -> dict:
    """A kriging method's result in the requested units (``lagrange``: OK's multiplier for
    the lognormal back-transform, or None)."""
    if units == "transformed":
        return {"prediction": estimate, "variance": variance,
                "observed": ft.forward(test_values)}
    est, var = ft.back(estimate, variance, lagrange)
    return {"prediction": est, "variance": var, "observed": np.asarray(test_values, float),
            **transformed_extras(ft, estimate, variance, test_values)}


def _ok_finish(ft, res, test_values, cfg, units) -> dict:
    return _kriging_output(ft, res.estimate, res.variance,
                           None if cfg.simple else res.lagrange, test_values, units)


def _neighbourhood_text(cfg) -> str:
    return "global" if cfg.neighbours == 0 else f"{cfg.neighbours} nearest neighbours"


def _transform_text(kind) -> str:
    return "no transform" if kind.value == "none" else f"{kind.value} transform fitted per fold"


def transformed_extras(ft, prediction_t, variance_t, test_values) -> dict:
    """With a transform and data-unit output, the transformed-unit predictions as well.

    :func:`cross_validate` scores them too (``CVResult.extra["metrics_transformed"]``): a
    method can gain in log units (where the model is fitted) and hardly at all in data units,
    where a few high values dominate the RMSE; a report must show both.
    """
    if ft.kind.value == "none":
        return {}
    return {"prediction_t": np.asarray(prediction_t, dtype=float),
            "variance_t": None if variance_t is None else np.asarray(variance_t, dtype=float),
            "observed_t": ft.forward(np.asarray(test_values, dtype=float))}


@register_cv_method("ok")
def ok_method(train: PointData, test: PointData, options: dict,
              progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict:
    """Ordinary (or simple) kriging of the test points from the training points.

    Options: ``transform`` (fitted on the training values), ``variogram`` (a fixed
    :class:`VariogramModel`; ``None`` or ``refit_variogram=True`` fits one on the training
    part with the gstat-default experimental variogram and candidates
    ``variogram_models``, default sph, exp, gau), ``kriging`` (:class:`KrigingConfig`),
    ``output_units``. Back-transforms use the kriging variance (and the OK Lagrange
    multiplier for ``log``), see :meth:`FittedTransform.back`.
    """
    from .kriging import krige
    from .transforms import fit_transform

    cfg, kind, units = _ok_settings(options)
    ft = fit_transform(train.values, kind)
    y = ft.forward(train.values)
    model = options.get("variogram")
    if model is None or options.get("refit_variogram"):
        from .variogram.fit import auto_variogram

        models = tuple(options.get("variogram_models") or OK_DEFAULT_MODELS)
        model = auto_variogram(train.coords, y, models, select=_select(options),
                               neighbours=cfg.neighbours).model
    if model.measurement_error:  # an Err part: the numpy path that keeps it off the target
        from .kriging import krige_universal

        if cfg.simple:
            raise InputDataError("simple kriging (--mean) with a measurement-error (Err) "
                                 "variogram is not available; drop --mean")
        res = krige_universal(train.coords, y, test.coords, model, neighbours=cfg.neighbours,
                              should_stop=should_stop)
        return _kriging_output(ft, res.estimate, res.variance, None, test.values, units)
    res = krige(train.coords, y, test.coords, model, cfg, should_stop=should_stop)
    return _ok_finish(ft, res, test.values, cfg, units)


def _select(options: dict) -> str:
    """How ``auto`` variograms pick their model in a fold: ``cv`` (default) or ``sse``."""
    text = str(options.get("select") or options.get("variogram_select") or "cv").lower()
    return "cv" if text == "loo" else text


#: Leave-one-out with a refitted variogram: one refit per sample up to this many samples;
#: above, one refit without each of :data:`LOO_REFIT_GROUPS` seeded random groups of samples
#: (each sample is then kriged from all others with its group's variogram). A fit costs
#: 0.3-1.7 s on two cores (five starts of three candidates), more than the leave-one-out
#: kriging of 1,000 samples, so the number of fits sets the cost.
LOO_EXACT_REFITS = 50
LOO_REFIT_GROUPS = 5


def _needs_refit(options: dict) -> bool:
    return options.get("variogram") is None or bool(options.get("refit_variogram"))


class _FoldFits:
    """The shared pass over all pairs for per-fold variograms (:class:`~.variogram.folds.
    FoldVariograms`) and the fit of a fold's model from it, candidates chosen as ``auto``
    chooses them (kriging cross-validation of the training part, or SSE)."""

    def __init__(self, points: PointData, y: np.ndarray, options: dict, should_stop=None):
        from .variogram.folds import FoldVariograms

        self.coords, self.y, self.options = points.coords, y, options
        self.neighbours = _ok_settings(options)[0].neighbours
        self.fv = FoldVariograms(points.coords, y, should_stop=should_stop)

    def without(self, held_out: np.ndarray):
        from .variogram.fit import _cv_scorer, fit_variogram

        models = tuple(self.options.get("variogram_models") or OK_DEFAULT_MODELS)
        select = _select(self.options)
        cv_score = None
        if select == "cv":
            train = np.ones(len(self.y), dtype=bool)
            train[held_out] = False
            cv_score = _cv_scorer(self.coords[train], self.y[train], self.neighbours)
        return fit_variogram(self.fv.without(held_out), models, select=select,
                             cv_score=cv_score).model


def _fold_variograms(points: PointData, options: dict, should_stop=None):
    """:class:`_FoldFits` for the transformed values; None when a fold's variogram cannot be
    all samples' minus the fold's pairs (nothing refitted; a normal-score table fitted per
    fold; 3D, fitted by direction)."""
    from .transforms import Transform, fit_transform

    _, kind, _ = _ok_settings(options)
    if not _needs_refit(options) or kind is Transform.NSCORE or points.ndim != 2:
        return None
    ft = fit_transform(points.values, kind)  # none/log have no parameters to leak
    return _FoldFits(points, ft.forward(points.values), options, should_stop)


def _ok_prepare(points: PointData, options: dict, should_stop=None):
    """Per-fold options for :func:`_by_fold`: the variogram fitted without the fold, from
    one pass over all pairs (:class:`~.variogram.folds.FoldVariograms`), or None."""
    fv = _fold_variograms(points, options, should_stop)
    if fv is None:
        return None
    return lambda test_idx: {"variogram": fv.without(test_idx),
                             "refit_variogram": False}


def _loo_groups(n: int, seed: int) -> list[np.ndarray]:
    if n <= LOO_EXACT_REFITS:
        return [np.array([i]) for i in range(n)]
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(g) for g in np.array_split(perm, LOO_REFIT_GROUPS)]


def _ok_loo(points: PointData, options: dict, progress=None, should_stop=None) -> dict | None:
    """All leave-one-out predictions at once (``exclude_self``) with a fixed variogram; with
    a refitted one, kriging group by group (:data:`LOO_EXACT_REFITS`)."""
    from .kriging import krige
    from .transforms import Transform, fit_transform

    cfg, kind, units = _ok_settings(options)
    if kind is Transform.NSCORE:
        return None  # the normal-score table depends on the training part: per fold
    fixed = options.get("variogram")
    if fixed is not None and fixed.measurement_error:
        return None  # kriged per fold by the path that handles Err
    ft = fit_transform(points.values, kind)  # none/log have no parameters to leak
    y = ft.forward(points.values)
    if not _needs_refit(options):
        res = krige(points.coords, y, points.coords, options["variogram"], cfg,
                    exclude_self=True, progress=progress, should_stop=should_stop)
        return _ok_finish(ft, res, points.values, cfg, units)
    fv = _fold_variograms(points, options, should_stop)
    if fv is None:
        return None
    est, var, lag = np.empty(points.n), np.empty(points.n), np.empty(points.n)
    groups = _loo_groups(points.n, int(options.get("seed", 0)))
    for gi, g in enumerate(groups):
        check_cancel(should_stop)
        model = fv.without(g)
        res = krige(points.coords, y, points.coords[g], model, cfg, self_index=g,
                    should_stop=should_stop)
        est[g], var[g], lag[g] = res.estimate, res.variance, res.lagrange
        if progress is not None:
            progress((gi + 1) / len(groups), "cross-validation")
    return _kriging_output(ft, est, var, None if cfg.simple else lag, points.values, units)


def _ok_describe(options: dict) -> str:
    cfg, kind, units = _ok_settings(options)
    model = options.get("variogram")
    what = f"simple kriging (mean {cfg.mean:g})" if cfg.simple else "ordinary kriging"
    nb = _neighbourhood_text(cfg)
    if model is None or options.get("refit_variogram"):
        models = ",".join(options.get("variogram_models") or OK_DEFAULT_MODELS)
        vg = (f"variogram refitted inside each fold (gstat-default bins from all samples' "
              f"coordinates, candidates {models}, selected by {_select(options)} on the "
              f"training part; leave-one-out above {LOO_EXACT_REFITS} samples: refitted "
              f"without each of {LOO_REFIT_GROUPS} random groups, each sample kriged from all "
              f"others with its group's variogram)")
    else:
        vg = f"fixed variogram {model.to_text()!r} (fitted once, not per fold)"
    return f"{what}, {nb}; {vg}; {_transform_text(kind)}; {units} units"


ok_method.loo = _ok_loo  # type: ignore[attr-defined]
ok_method.prepare = _ok_prepare  # type: ignore[attr-defined]
ok_method.describe = _ok_describe  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- external drift
def _ked_covariates(options: dict) -> tuple[str, ...]:
    from .model.options import parse_csv

    covs = options.get("covariates") or ()
    if isinstance(covs, str):
        covs = parse_csv(covs)
    if not covs:
        raise InputDataError(
            "cross-validation method 'ked' (kriging with external drift) needs covariate "
            "rasters: give --covariates a.tif[,b.tif]"
        )
    return tuple(str(c) for c in covs)


@register_cv_method("ked")
def ked_method(train: PointData, test: PointData, options: dict,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict:
    """Kriging with an external drift in the covariate rasters (gstat ``krige(z ~ cov)``).

    Per fold: the transform is fitted on the training values, the variogram (candidates
    ``variogram_models``) on their least-squares residuals from the covariates, and the
    neighbourhood is OK's (``kriging``). In data units the estimate is back-transformed with
    the variance (``exp(y + s²/2)`` for ``log``: KED has no single Lagrange multiplier to
    correct with).
    """
    from .features import sample_covariates
    from .kriging.drift import drift_residuals, krige_external_drift
    from .transforms import fit_transform
    from .variogram.fit import auto_variogram

    cfg, kind, units = _ok_settings(options)
    paths = _ked_covariates(options)
    f_train = sample_covariates(paths, train.coords, train.crs or None, "training samples")
    f_test = sample_covariates(paths, test.coords, train.crs or None, "test samples")
    ft = fit_transform(train.values, kind)
    y = ft.forward(train.values)
    models = tuple(options.get("variogram_models") or OK_DEFAULT_MODELS)
    model = auto_variogram(train.coords, drift_residuals(y, f_train), models,
                           select=_select(options), neighbours=cfg.neighbours).model
    res = krige_external_drift(train.coords, y, f_train, test.coords, f_test, model,
                               neighbours=cfg.neighbours, should_stop=should_stop)
    return _kriging_output(ft, res.estimate, res.variance, None, test.values, units)


def _ked_describe(options: dict) -> str:
    cfg, kind, units = _ok_settings(options)
    try:
        names = ", ".join(Path(p).name for p in _ked_covariates(options))
    except InputDataError:
        names = "(no covariates given)"
    models = ",".join(options.get("variogram_models") or OK_DEFAULT_MODELS)
    return (f"kriging with external drift in {names} (universal kriging), "
            f"{_neighbourhood_text(cfg)}; residual variogram refitted inside each fold "
            f"(candidates {models}); {_transform_text(kind)}; {units} units")


ked_method.describe = _ked_describe  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- universal kriging
def _uk_terms(options: dict, ndim: int) -> tuple[str, ...]:
    from .kriging.universal import parse_drift_terms

    return parse_drift_terms(options.get("drift") or "x,y", ndim)


@register_cv_method("uk")
def uk_method(train: PointData, test: PointData, options: dict,
              progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> dict:
    """Universal kriging with a polynomial drift in the coordinates (``options["drift"]``,
    default ``x,y``; gstat ``krige(z ~ x + y)``).

    Per fold, as ``ked``: transform and residual variogram (on the least-squares residuals
    from the drift) fitted on the training part only; OK's neighbourhood.
    """
    from .kriging.drift import drift_residuals
    from .kriging.universal import drift_matrix, krige_universal
    from .transforms import fit_transform
    from .variogram.fit import auto_variogram

    cfg, kind, units = _ok_settings(options)
    terms = _uk_terms(options, train.coords.shape[1])
    ft = fit_transform(train.values, kind)
    y = ft.forward(train.values)
    models = tuple(options.get("variogram_models") or OK_DEFAULT_MODELS)
    model = auto_variogram(train.coords, drift_residuals(y, drift_matrix(train.coords, None, terms)),
                           models).model
    res = krige_universal(train.coords, y, test.coords, model, drift=terms,
                          neighbours=cfg.neighbours, should_stop=should_stop)
    return _kriging_output(ft, res.estimate, res.variance, None, test.values, units)


def _uk_describe(options: dict) -> str:
    cfg, kind, units = _ok_settings(options)
    try:
        terms = ",".join(_uk_terms(options, 3))
    except InputDataError as exc:
        terms = f"(invalid: {exc})"
    models = ",".join(options.get("variogram_models") or OK_DEFAULT_MODELS)
    return (f"universal kriging with the coordinate drift {terms}, "
            f"{_neighbourhood_text(cfg)}; residual variogram refitted inside each fold "
            f"(candidates {models}); {_transform_text(kind)}; {units} units")


uk_method.describe = _uk_describe  # type: ignore[attr-defined]
