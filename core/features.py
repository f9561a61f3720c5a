"""Kriging-derived features of the hybrid model, leakage-free at the training samples.

For every target location (a grid node, a target point or a held-out sample) the features are

* a **sequence** over its ``k`` nearest samples (anisotropic distance when the variogram has
  anisotropy), nearest first; per neighbour: the (transformed) value, the offsets
  ``dx, dy (, dz)`` from the target, the distance, the variogram covariance to the target
  (divided by the sill) and the neighbour's ordinary-kriging weight;
* **static** features: the OK estimate, OK standard deviation and Lagrange multiplier, the
  distance to the nearest sample, the mean and spread of the ``k`` neighbour values, and
  optionally the coordinates, raster covariates and co-located fields ("co-fields");
* with covariates or co-fields (``FeatureConfig.covariate_sequence``, default on), also per
  neighbour its covariate values and the differences target − neighbour, and as static
  features each covariate kriged with the field's OK weights and its "surprise" (value at the
  target − that estimate): how far the target's covariate departs from what the kriging
  neighbourhood represents, i.e. the trend OK misses (why regression kriging beats OK).

At training samples everything is computed by leave-one-out kriging (``exclude_self=True``):
a sample's features never contain its own value, so the network trains on the same
distribution it meets at unsampled nodes. With drill holes (3D samples sharing x, y) the whole
hole is left out instead (``groups``, :func:`leave_out_groups`): a node between holes has no
samples a few metres above and below it, so a training sample must not either.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputDataError
from .progress import ProgressFn, StopFn, check_cancel

logger = logging.getLogger(__name__)

#: Categorical co-fields with more classes than this are refused (one-hot would explode).
MAX_CLASSES = 20
#: What the training features of a sample leave out (:class:`FeatureConfig`).
LEAVE_OUT = ("auto", "sample", "column")
#: Fewest samples whose leave-out features run on the Dask cluster of the command
#: (``--scheduler``/``--workers``); fewer are computed in-process, where they take less than
#: starting the tasks would.
CLUSTER_MIN_SAMPLES = 4096
#: Samples per cluster task (left out one by one, or in whole groups).
CLUSTER_TASK_SAMPLES = 4096


@dataclass(frozen=True)
class FeatureConfig:
    """Which features are built.

    Attributes
    ----------
    neighbours : int
        Length ``k`` of the neighbour sequence (default 16).
    kriging_neighbours : int
        Neighbourhood of the ordinary kriging behind the features (default 32, as the
        ``krige`` command; 0 = all samples, global); the sequence is its ``neighbours``
        nearest samples.
    coordinates : bool
        Add the target coordinates as static features.
    covariates : tuple of str
        Raster files sampled at each location (same CRS as the points).
    co_fields : tuple of str
        Fields of the sample layer used as co-located features.
    covariate_sequence : bool
        With covariates or co-fields: per neighbour also its covariate values and the
        differences target − neighbour, and as static features the covariate's kriging
        estimate from the neighbours (the OK weights of the field applied to the covariate)
        and its "surprise" (covariate at the target − that estimate). They tell the network
        how much of a trend the kriging estimate misses (regression-kriging-like).
    multiscale : bool
        Further static estimates at other scales: ordinary kriging with the 8 nearest
        samples (estimate, standard deviation), inverse-distance weighting and a local
        planar trend fitted to the ``neighbours`` nearest values. Off by default: on Meuse
        they did not help (10-fold CV, see BENCHMARKS.md).
    leave_out : {"auto", "sample", "column"}
        What the training features of a sample are computed without (:func:`leave_out_groups`):
        the sample itself (``sample``, leave-one-out), or every sample of its vertical
        column (``column``: same x, y; a drill hole), so that a training sample does not see
        its own hole's neighbours a few metres above and below when nodes between holes
        will not have them. ``auto``: ``column`` for 3D samples that share columns, else
        ``sample``.
    """

    neighbours: int = 16
    kriging_neighbours: int = 32
    coordinates: bool = False
    covariates: tuple[str, ...] = ()
    co_fields: tuple[str, ...] = ()
    covariate_sequence: bool = True
    multiscale: bool = False
    leave_out: str = "auto"

    def __post_init__(self) -> None:
        if self.leave_out not in LEAVE_OUT:
            raise InputDataError(
                f"leave-out must be one of {', '.join(LEAVE_OUT)}, not {self.leave_out!r}"
            )
        if int(self.neighbours) < 2:
            raise InputDataError(f"neighbours must be >= 2, not {self.neighbours!r}")
        if int(self.kriging_neighbours) < 0:
            raise InputDataError(
                f"kriging neighbours must be >= 0 (0 = all), not {self.kriging_neighbours!r}"
            )
        if 0 < int(self.kriging_neighbours) < int(self.neighbours):
            object.__setattr__(self, "kriging_neighbours", int(self.neighbours))
        object.__setattr__(self, "covariates", tuple(str(p) for p in self.covariates))
        object.__setattr__(self, "co_fields", tuple(str(p) for p in self.co_fields))

    def to_dict(self) -> dict:
        return {
            "neighbours": int(self.neighbours),
            "kriging_neighbours": int(self.kriging_neighbours),
            "coordinates": bool(self.coordinates),
            "covariates": list(self.covariates),
            "co_fields": list(self.co_fields),
            "covariate_sequence": bool(self.covariate_sequence),
            "multiscale": bool(self.multiscale),
            "leave_out": str(self.leave_out),
        }

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return cls(
            neighbours=int(d["neighbours"]),
            kriging_neighbours=int(d.get("kriging_neighbours", 32)),
            coordinates=bool(d.get("coordinates", False)),
            covariates=tuple(d.get("covariates", ())),
            co_fields=tuple(d.get("co_fields", ())),
            covariate_sequence=bool(d.get("covariate_sequence", False)),
            multiscale=bool(d.get("multiscale", False)),
            leave_out=str(d.get("leave_out", "auto")),
        )


@dataclass(frozen=True)
class FeatureSet:
    """Features of a set of targets.

    Attributes
    ----------
    sequence : ndarray, shape (n_targets, k, n_sequence)
    static : ndarray, shape (n_targets, n_static)
    ok_estimate, ok_variance, lagrange : ndarray, shape (n_targets,)
        The ordinary kriging behind the features (transformed units).
    sequence_names, static_names : tuple of str
    n_singular : int
        Targets whose kriging system needed the singular fallback.
    """

    sequence: np.ndarray
    static: np.ndarray
    ok_estimate: np.ndarray
    ok_variance: np.ndarray
    lagrange: np.ndarray
    sequence_names: tuple[str, ...] = ()
    static_names: tuple[str, ...] = ()
    n_singular: int = 0

    @property
    def n(self) -> int:
        return int(self.static.shape[0])


@dataclass(frozen=True)
class CoFieldEncoding:
    """How co-fields become numeric columns: numeric as is, categorical one-hot.

    Attributes
    ----------
    columns : tuple of (field, class or None)
        One entry per output column; ``class`` is the category of a one-hot column.
    """

    columns: tuple[tuple[str, str | None], ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f if c is None else f"{f}={c}" for f, c in self.columns)

    def to_dict(self) -> dict:
        return {"columns": [[f, c] for f, c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> CoFieldEncoding:
        return cls(tuple((str(f), None if c is None else str(c)) for f, c in d["columns"]))


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def fit_co_field_encoding(attributes: pd.DataFrame, names: Sequence[str]) -> CoFieldEncoding:
    """Decide the columns of the co-fields from the training samples' attributes.

    Raises
    ------
    InputDataError
        A missing field, a numeric field with NULLs, or a categorical one with too many classes.
    """
    cols: list[tuple[str, str | None]] = []
    for name in names:
        if name not in attributes.columns:
            raise InputDataError(
                f"co-field {name!r} is not among the sample fields {list(attributes.columns)}"
            )
        column = attributes[name]
        if _is_numeric(column):
            if not np.isfinite(column.to_numpy(dtype=float, na_value=np.nan)).all():
                raise InputDataError(f"co-field {name!r} has NULL or non-finite values")
            cols.append((name, None))
            continue
        classes = sorted(str(v) for v in column.dropna().unique())
        if len(classes) > MAX_CLASSES:
            raise InputDataError(
                f"categorical co-field {name!r} has {len(classes)} classes (more than "
                f"{MAX_CLASSES}); use a numeric field or merge classes"
            )
        cols.extend((name, c) for c in classes)
    return CoFieldEncoding(tuple(cols))


def encode_co_fields(attributes: pd.DataFrame, encoding: CoFieldEncoding,
                     what: str = "points") -> np.ndarray:
    """Numeric ``(n, n_columns)`` array of the co-fields of ``attributes`` (one-hot classes).

    Raises
    ------
    InputDataError
        A co-field missing from ``attributes`` or a non-numeric value in a numeric co-field.
    """
    out = np.zeros((len(attributes), len(encoding.columns)))
    for j, (name, cls) in enumerate(encoding.columns):
        if name not in attributes.columns:
            raise InputDataError(
                f"the {what} have no field {name!r}, a co-field the model was trained with"
            )
        column = attributes[name]
        if cls is None:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float,
                                                                    na_value=np.nan)
            bad = ~np.isfinite(values)
            if bad.any():
                raise InputDataError(
                    f"co-field {name!r} of the {what} is not numeric or NULL at "
                    f"{int(bad.sum())} row(s) (first value {column.iloc[int(np.argmax(bad))]!r})"
                )
            out[:, j] = values
        else:
            out[:, j] = (column.astype(str) == cls).to_numpy(dtype=float)
    return out


def sample_covariates(paths: Sequence[str], coords: np.ndarray, crs: str | None,
                      what: str = "samples", allow_missing: bool = False) -> np.ndarray:
    """Values of each covariate raster at ``coords``; shape ``(n, len(paths))``.

    Raises
    ------
    InputDataError
        A raster that cannot be opened, is in another CRS than ``crs``, or (unless
        ``allow_missing``) does not cover every location (outside its extent or nodata).
    """
    from .raster import sample_raster

    out = np.empty((len(coords), len(paths)))
    for j, path in enumerate(paths):
        vals = sample_raster(path, coords, crs)
        missing = ~np.isfinite(vals)
        if missing.any() and not allow_missing:
            first = tuple(float(v) for v in coords[int(np.argmax(missing)), :2])
            raise InputDataError(
                f"covariate raster {str(path)!r} does not cover {int(missing.sum())} of the "
                f"{len(coords)} {what} (outside its extent or nodata, e.g. at {first}); "
                "use a raster covering all the data"
            )
        out[:, j] = vals
    return out


def compute_features(
    coords: np.ndarray,
    values: np.ndarray,
    targets: np.ndarray,
    model,
    config: FeatureConfig,
    *,
    exclude_self: bool = False,
    extra: np.ndarray | None = None,
    extra_names: Sequence[str] = (),
    sample_extra: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> FeatureSet:
    """Kriging-derived features at ``targets``.

    Parameters
    ----------
    coords : ndarray, shape (n_samples, d)
        Sample coordinates (d = 2 or 3).
    values : ndarray, shape (n_samples,)
        Sample values in transformed units.
    targets : ndarray, shape (n_targets, d)
        Where the features are wanted. With ``exclude_self`` they must be the samples.
    model : VariogramModel
        Fitted on the same samples (transformed units).
    config : FeatureConfig
    exclude_self : bool
        Leave-one-out: each target's own sample is left out of its kriging and sequence.
    extra : ndarray, shape (n_targets, n_extra), optional
        Further static features already evaluated at the targets (covariates, co-fields).
    extra_names : sequence of str
        Their names.
    sample_extra : ndarray, shape (n_samples, n_extra), optional
        The same columns at the samples. With ``config.covariate_sequence`` they give the
        per-neighbour covariate channels and the covariate estimate/surprise statics.
    groups : ndarray of int, shape (n_samples,), optional
        With ``exclude_self``: leave each target's whole group out, not only itself (a drill
        hole; :func:`leave_out_groups`). One kriging per group.
    progress, should_stop : callable, optional

    Returns
    -------
    FeatureSet

    Raises
    ------
    InputDataError
        Fewer samples than the sequence needs.
    """
    coords = np.asarray(coords, dtype=float)
    targets = np.asarray(targets, dtype=float)
    values = np.asarray(values, dtype=float)
    if exclude_self:
        from .cluster import current_client

        client = current_client()
        if client is not None and len(values) >= CLUSTER_MIN_SAMPLES:
            return _leave_out_on_cluster(
                client, _LeaveOutJob(coords, values, model, config, groups, extra,
                                     tuple(extra_names), sample_extra), progress, should_stop)
    if exclude_self and groups is not None:
        return _leave_groups_out(coords, values, model, config, np.asarray(groups), extra,
                                 extra_names, sample_extra, progress, should_stop)
    return _features(coords, values, targets, model, config, exclude_self, None, extra,
                     extra_names, sample_extra, progress, should_stop)


def _features(coords, values, targets, model, config, exclude_self: bool,
              self_index: np.ndarray | None, extra, extra_names, sample_extra, progress,
              should_stop) -> FeatureSet:
    """:func:`compute_features` without leaving groups out; ``self_index`` (sample index per
    target) leaves each target's own sample out when ``targets`` is a part of the samples."""
    from .kriging import KrigingConfig, krige

    exclude_self = exclude_self or self_index is not None
    k = int(config.neighbours)
    available = len(values) - (1 if exclude_self else 0)
    if available < k:
        raise InputDataError(
            f"the neighbour sequence needs {k} samples but only {available} are available"
            + (" (leave-one-out)" if exclude_self else "")
            + "; use fewer --neighbours or more samples"
        )
    kn = int(config.kriging_neighbours)
    kcfg = KrigingConfig(neighbours=min(kn, available) if kn else available, min_neighbours=1)
    res = krige(coords, values, targets, model, kcfg,
                exclude_self=exclude_self and self_index is None, self_index=self_index,
                return_details=True, progress=progress, should_stop=should_stop)
    nbr = res.neighbours[:, :k]
    valid = nbr >= 0
    all_valid = bool(valid.all())
    safe = nbr if all_valid else np.where(valid, nbr, 0)
    sequence, nvals = _neighbour_sequence(coords, values, targets, res, k, safe,
                                          _sill(model, coords), None if all_valid else valid)
    d = coords.shape[1]
    offsets, dist = sequence[..., 1:1 + d], sequence[..., 1 + d]
    axes = ("dx", "dy", "dz")[:d]
    seq_names = ("value", *axes, "distance", "covariance", "ok_weight")

    count = np.maximum(valid.sum(axis=1), 1)
    nmean = nvals.sum(axis=1) / count
    dev = nvals - nmean[:, None]
    if not all_valid:
        dev = np.where(valid, dev, 0.0)
    nstd = np.sqrt(np.maximum((dev**2).sum(axis=1) / count, 0.0))
    variance = np.clip(res.variance, 0.0, None)
    static = [res.estimate, np.sqrt(variance), res.lagrange, dist[:, 0], nmean, nstd]
    static_names = ["ok_estimate", "ok_std", "lagrange", "nearest_distance",
                    "neighbour_mean", "neighbour_std"]
    if config.multiscale:
        ms, ms_names = _multiscale(coords, values, targets, model, kcfg, exclude_self,
                                   self_index, nvals, offsets, dist, valid)
        static.extend(ms)
        static_names.extend(ms_names)
    if config.coordinates:
        static.extend(targets[:, j] for j in range(targets.shape[1]))
        static_names.extend(("x", "y", "z")[: targets.shape[1]])
    static_arr = np.column_stack(static)
    has_extra = extra is not None and np.asarray(extra).size
    if has_extra:
        extra = np.asarray(extra, dtype=float).reshape(len(targets), -1)
        names = list(extra_names) or [f"extra{j}" for j in range(extra.shape[1])]
        if config.covariate_sequence and sample_extra is not None:
            sample_extra = np.asarray(sample_extra, dtype=float).reshape(len(coords), -1)
            if sample_extra.shape[1] != extra.shape[1]:
                raise InputDataError(
                    f"sample_extra has {sample_extra.shape[1]} columns, extra "
                    f"{extra.shape[1]}"
                )
            seq_cov, st_cov, seq_n, st_n = _covariate_features(
                extra, sample_extra, res.neighbours, res.weights, k, names)
            sequence = np.concatenate([sequence, seq_cov], axis=-1)
            seq_names = (*seq_names, *seq_n)
            static_arr = np.column_stack([static_arr, extra, st_cov])
            static_names.extend([*names, *st_n])
        else:
            static_arr = np.column_stack([static_arr, extra])
            static_names.extend(names)
    return FeatureSet(
        sequence=np.asarray(sequence, dtype=np.float64),
        static=static_arr,
        ok_estimate=res.estimate,
        ok_variance=variance,
        lagrange=res.lagrange,
        sequence_names=seq_names,
        static_names=tuple(static_names),
        n_singular=int(res.n_singular),
    )


def _neighbour_sequence(coords, values, targets, res, k, safe, sill, valid):
    """The ``(n, k, 4 + d)`` channels ``[value, offsets, distance, covariance / sill, OK
    weight]`` of the first ``k`` neighbours, 0 where ``valid`` is False (``valid`` None: all
    are), and the values alone (contiguous, for the neighbourhood statistics).

    Written channel by channel into one array: the same floats as masking each channel and
    concatenating them, without the temporaries (a third of the feature time at 65,536
    targets besides the kriging itself)."""
    d = coords.shape[1]
    seq = np.empty((len(targets), k, 4 + d))
    nvals = values[safe]
    seq[..., 0] = nvals
    for q in range(d):
        np.subtract(coords[:, q][safe], targets[:, q, None], out=seq[..., 1 + q])
    seq[..., 1 + d] = res.distances[:, :k]
    np.divide(res.cov_target[:, :k], sill, out=seq[..., 2 + d])
    seq[..., 3 + d] = res.weights[:, :k]
    if valid is not None:
        seq[~valid] = 0.0
        nvals = np.where(valid, nvals, 0.0)
    return seq, nvals


def leave_out_groups(coords: np.ndarray, mode: str) -> np.ndarray | None:
    """Group of each sample for the training features (None: plain leave-one-out).

    ``column`` groups samples with the same x, y (to 1e-9 of the extent): vertical drill
    holes. ``auto`` is ``column`` for 3D samples where some column holds two or more samples,
    else ``sample``.
    """
    if mode not in LEAVE_OUT:
        raise InputDataError(f"leave-out must be one of {', '.join(LEAVE_OUT)}, not {mode!r}")
    c = np.asarray(coords, dtype=float)
    if mode == "sample" or (mode == "auto" and c.shape[1] != 3):
        return None
    span = max(float(np.ptp(c[:, :2], axis=0).max()), 1.0)
    key = np.round((c[:, :2] - c[:, :2].min(axis=0)) / (1e-9 * span)).astype(np.int64)
    _, groups = np.unique(key, axis=0, return_inverse=True)
    groups = groups.reshape(-1)
    if mode == "auto" and groups.max() + 1 == len(c):
        return None  # every sample alone in its column: leave-one-out
    return groups


def _leave_groups_out(coords, values, model, config, groups, extra, extra_names,
                      sample_extra, progress, should_stop) -> FeatureSet:
    """Features at every sample, each group's from the samples outside the group."""
    if groups.shape != (len(values),):
        raise InputDataError(f"{groups.size} group ids for {len(values)} samples")
    ids = np.unique(groups)
    parts, order = [], []
    for i, g in enumerate(ids):
        check_cancel(should_stop)
        part, held = _group_features(coords, values, model, config, groups, g, extra,
                                     extra_names, sample_extra)
        parts.append(part)
        order.append(held)
        if progress is not None:
            progress((i + 1) / ids.size, "leave-group-out features")
    inv = np.empty(len(values), dtype=np.int64)
    inv[np.concatenate(order)] = np.arange(len(values))
    return _concat(parts, inv)


def _group_features(coords, values, model, config, groups, g, extra, extra_names,
                    sample_extra) -> tuple[FeatureSet, np.ndarray]:
    """Features of group ``g``'s samples from the samples outside it, and their indices."""
    held = groups == g
    keep = ~held
    part = compute_features(
        coords[keep], values[keep], coords[held], model, config,
        extra=None if extra is None else np.asarray(extra)[held], extra_names=extra_names,
        sample_extra=None if sample_extra is None else np.asarray(sample_extra)[keep],
    )
    return part, np.flatnonzero(held)


def _concat(parts: Sequence[FeatureSet], inv: np.ndarray | None = None) -> FeatureSet:
    """The rows of ``parts`` one after the other (then taken in the order ``inv``)."""
    def cat(name):
        out = np.concatenate([getattr(p, name) for p in parts])
        return out if inv is None else out[inv]

    return FeatureSet(
        sequence=cat("sequence"), static=cat("static"), ok_estimate=cat("ok_estimate"),
        ok_variance=cat("ok_variance"), lagrange=cat("lagrange"),
        sequence_names=parts[0].sequence_names, static_names=parts[0].static_names,
        n_singular=int(sum(p.n_singular for p in parts)),
    )


@dataclass
class _LeaveOutJob:
    """The leave-out features of a slice of the training samples, as a cluster task: item
    ``(start, stop)`` is samples ``start:stop`` left out one by one, or (with ``groups``) the
    groups ``start:stop`` of the sorted group ids, each left out whole. Every sample's
    features are computed exactly as in-process (the same neighbours, systems and order of
    operations, row by row), so the assembled set has the same floats."""

    coords: np.ndarray
    values: np.ndarray
    model: object
    config: FeatureConfig
    groups: np.ndarray | None
    extra: np.ndarray | None
    extra_names: tuple[str, ...]
    sample_extra: np.ndarray | None

    def items(self) -> list[tuple[int, int]]:
        n = len(self.values)
        if self.groups is None:
            return [(a, min(a + CLUSTER_TASK_SAMPLES, n))
                    for a in range(0, n, CLUSTER_TASK_SAMPLES)]
        n_ids = np.unique(self.groups).size
        size = max(1, round(n_ids * CLUSTER_TASK_SAMPLES / n))
        return [(a, min(a + size, n_ids)) for a in range(0, n_ids, size)]

    def __call__(self, start: int, stop: int):
        if self.groups is not None:
            out = [_group_features(self.coords, self.values, self.model, self.config,
                                   self.groups, g, self.extra, self.extra_names,
                                   self.sample_extra)
                   for g in np.unique(self.groups)[start:stop]]
            return [p for p, _ in out], [h for _, h in out]
        extra = None if self.extra is None else np.asarray(self.extra)[start:stop]
        return _features(self.coords, self.values, self.coords[start:stop], self.model,
                         self.config, True, np.arange(start, stop, dtype=np.int64), extra,
                         self.extra_names, self.sample_extra, None, None)


def _leave_out_on_cluster(client, job: _LeaveOutJob, progress, should_stop) -> FeatureSet:
    """:class:`_LeaveOutJob` on the cluster, assembled in the in-process order."""
    from .cluster import map_unordered

    if job.groups is not None:
        job.groups = np.asarray(job.groups)
        if job.groups.shape != (len(job.values),):
            raise InputDataError(f"{job.groups.size} group ids for {len(job.values)} samples")
    items = job.items()
    done: dict[int, object] = {}
    for (start, _), res in map_unordered(client, job, items, should_stop):
        done[start] = res
        if progress is not None:
            progress(len(done) / len(items), "leave-out features (cluster)")
    check_cancel(should_stop)
    ordered = [done[a] for a, _ in items]
    if job.groups is None:
        return _concat(ordered)
    parts = [p for part, _ in ordered for p in part]
    held = np.concatenate([h for _, hs in ordered for h in hs])
    inv = np.empty(len(job.values), dtype=np.int64)
    inv[held] = np.arange(len(job.values))
    return _concat(parts, inv)


def _covariate_features(extra: np.ndarray, sample_extra: np.ndarray, neighbours: np.ndarray,
                        weights: np.ndarray, k: int, names: Sequence[str]):
    """Covariates seen through the neighbourhood.

    Per neighbour (first ``k``): its covariate values and target − neighbour differences.
    Static: the kriging estimate of each covariate with the field's OK weights (all kriging
    neighbours) and the surprise target − estimate. Only covariate values are used, never a
    sample's field value.
    """
    valid_all = neighbours >= 0
    safe_all = np.where(valid_all, neighbours, 0)
    w = np.where(valid_all, weights, 0.0)
    c_all = sample_extra[safe_all]  # (n, K, e)
    est = np.einsum("nk,nke->ne", w, c_all)
    surprise = extra - est
    valid = valid_all[:, :k, None]
    c_nb = np.where(valid, c_all[:, :k], 0.0)
    diff = np.where(valid, extra[:, None, :] - c_all[:, :k], 0.0)
    seq = np.concatenate([c_nb, diff], axis=-1)
    seq_names = (*(f"nb:{n}" for n in names), *(f"diff:{n}" for n in names))
    st_names = (*(f"ok:{n}" for n in names), *(f"surprise:{n}" for n in names))
    return seq, np.column_stack([est, surprise]), seq_names, st_names


def _multiscale(coords, values, targets, model, kcfg, exclude_self, self_index, nvals,
                offsets, dist, valid):
    """Static estimates at other scales: OK with 8 neighbours, IDW and a local plane."""
    from dataclasses import replace

    from .kriging import krige

    small = krige(coords, values, targets, model,
                  replace(kcfg, neighbours=min(8, kcfg.neighbours)),
                  exclude_self=exclude_self and self_index is None, self_index=self_index)
    w = np.where(valid, 1.0 / np.maximum(dist, 1e-9 * max(float(np.ptp(coords)), 1.0)) ** 2, 0.0)
    idw = (w * nvals).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-300)
    # Local plane v ≈ a + b·dx + c·dy fitted to the neighbours (ridge on the slopes), a at
    # the target.
    scale = np.maximum(dist.max(axis=1), 1e-12)[:, None, None]
    design = np.concatenate([np.ones_like(nvals)[..., None], offsets[..., :2] / scale], axis=-1)
    design = np.where(valid[..., None], design, 0.0)
    gram = np.einsum("nki,nkj->nij", design, design) + np.diag([1e-9, 0.1, 0.1])
    rhs = np.einsum("nki,nk->ni", design, nvals)
    plane = np.linalg.solve(gram, rhs[..., None])[..., 0, 0]
    return ([small.estimate, np.sqrt(np.clip(small.variance, 0.0, None)), idw, plane],
            ["ok8_estimate", "ok8_std", "idw", "local_plane"])


def _sill(model, coords: np.ndarray) -> float:
    """The sill, or for an unbounded model its value at the data's largest extent."""
    if getattr(model, "bounded", True):
        sill = float(model.sill)
    else:
        span = float(np.linalg.norm(np.ptp(coords, axis=0)))
        sill = float(model.gamma(np.array([span]))[0])
    return sill if sill > 0 else 1.0


@dataclass(frozen=True)
class Scaler:
    """Per-channel standardisation fitted on training features (JSON-serialisable).

    ``low``/``high`` are the standardised training range of each channel; prediction inputs
    are clipped to it (:meth:`transform` with ``clip=True``) so that the network is never
    asked to extrapolate beyond the features it was trained on (e.g. far outside the data).
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    @classmethod
    def fit(cls, data: np.ndarray) -> Scaler:
        """Fit on ``data`` of shape ``(..., n_channels)``; constant channels get scale 1."""
        flat = np.asarray(data, dtype=float).reshape(-1, data.shape[-1])
        mean = flat.mean(axis=0)
        scale = flat.std(axis=0)
        scale = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)
        z = (flat - mean) / scale
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in scale),
                   tuple(float(v) for v in z.min(axis=0)), tuple(float(v) for v in z.max(axis=0)))

    def transform(self, data: np.ndarray, clip: bool = False) -> np.ndarray:
        z = (np.asarray(data, dtype=float) - np.asarray(self.mean)) / np.asarray(self.scale)
        if clip and self.low is not None:
            z = np.clip(z, np.asarray(self.low), np.asarray(self.high))
        return z.astype(np.float32)

    def to_dict(self) -> dict:
        d = {"mean": list(self.mean), "scale": list(self.scale)}
        if self.low is not None:
            d.update(low=list(self.low), high=list(self.high))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        low, high = d.get("low"), d.get("high")
        return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["scale"]),
                   None if low is None else tuple(float(v) for v in low),
                   None if high is None else tuple(float(v) for v in high))
