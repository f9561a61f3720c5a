"""Universal kriging (a trend in covariates and/or coordinates), block kriging and kriging with
measurement error, at points and on grids: the public API over :mod:`.drift`.

gstat's ``krige(z ~ cov1 + cov2 + x + y, data, newdata, model, nmax, block)``: the trend is
linear in the external covariates (kriging with an external drift, KED) and in polynomial
terms of the coordinates (universal kriging, UK); with neither it is ordinary kriging, which
this path serves when the compiled ordinary-kriging kernel cannot (block support, or a model
with a measurement-error ``Err`` part).

Coordinate drift terms are evaluated on coordinates centred and scaled by the samples' box:
the kriging estimate is unchanged (the span of ``1, x, x²`` is that of ``1, x - c, (x - c)²``)
and the systems are well conditioned. That equivalence is why a polynomial drift must contain
its lower-order terms (``x2`` needs ``x``; ``xy`` needs ``x`` and ``y``).

Targets without a covariate value (NaN: nodata, outside the raster) stay NaN and are counted in
``KrigingResult.n_missing``; samples without one are dropped by
:func:`drop_samples_without_covariates` with a message counting them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputDataError
from ..grid import Grid
from ..progress import ProgressFn, StopFn, check_cancel
from .config import KrigingResult
from .drift import block_discretisation, krige_external_drift

logger = logging.getLogger(__name__)

#: Coordinate drift terms and the lower-order terms each needs.
DRIFT_TERMS: dict[str, tuple[str, ...]] = {
    "x": (), "y": (), "z": (),
    "x2": ("x",), "y2": ("y",), "z2": ("z",),
    "xy": ("x", "y"), "xz": ("x", "z"), "yz": ("y", "z"),
}
_AXIS = {"x": 0, "y": 1, "z": 2}
#: Grid nodes per call of the drift solver (bounds the neighbour lists' memory).
GRID_CHUNK = 65_536


def parse_drift_terms(terms: str | Sequence[str] | None, ndim: int) -> tuple[str, ...]:
    """Validate coordinate drift terms (``"x,y"``, ``["x", "y", "x2", "xy", "y2"]``).

    Raises
    ------
    InputDataError
        An unknown term, ``z`` terms with 2D data, a repeated term, or a term without its
        lower-order terms.
    """
    if terms is None:
        return ()
    items = [t.strip().lower() for t in (terms.split(",") if isinstance(terms, str) else terms)]
    items = [t for t in items if t]
    for t in items:
        if t not in DRIFT_TERMS:
            raise InputDataError(
                f"unknown drift term {t!r}; known terms: {', '.join(DRIFT_TERMS)}"
            )
        if "z" in t and ndim < 3:
            raise InputDataError(f"drift term {t!r} needs 3D data (a z coordinate)")
        missing = [m for m in DRIFT_TERMS[t] if m not in items]
        if missing:
            raise InputDataError(
                f"drift term {t!r} needs the lower-order term(s) {', '.join(missing)} too "
                f"(e.g. --drift {','.join([*missing, t])})"
            )
    if len(set(items)) != len(items):
        raise InputDataError(f"a drift term is repeated in {','.join(items)!r}")
    return tuple(items)


@dataclass(frozen=True)
class CoordinateDrift:
    """Polynomial drift terms in the coordinates, centred and scaled by the samples' box."""

    terms: tuple[str, ...]
    centre: np.ndarray
    scale: float

    @classmethod
    def from_samples(cls, terms: Sequence[str], coords: np.ndarray) -> CoordinateDrift:
        coords = np.asarray(coords, dtype=float)
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        scale = float((hi - lo).max()) / 2.0
        return cls(tuple(terms), (lo + hi) / 2.0, scale if scale > 0 else 1.0)

    def columns(self, coords: np.ndarray) -> np.ndarray:
        """Drift columns at ``coords``, shape ``(n, len(terms))``."""
        u = (np.asarray(coords, dtype=float) - self.centre) / self.scale
        out = np.empty((len(u), len(self.terms)))
        for j, t in enumerate(self.terms):
            a = u[:, _AXIS[t[0]]]
            if t.endswith("2"):
                out[:, j] = a * a
            elif len(t) == 2:
                out[:, j] = a * u[:, _AXIS[t[1]]]
            else:
                out[:, j] = a
        return out

    def block_mean(self, targets: np.ndarray, offsets: np.ndarray | None,
                   weights: np.ndarray | None) -> np.ndarray:
        """Drift columns averaged over each target's block (the columns at points)."""
        if offsets is None:
            return self.columns(targets)
        out = np.zeros((len(targets), len(self.terms)))
        for u, w in zip(offsets, weights, strict=True):
            out += w * self.columns(targets + u)
        return out


def drop_samples_without_covariates(coords: np.ndarray, values: np.ndarray,
                                    covariates: np.ndarray | None, names: Sequence[str] = ()):
    """Drop the samples with a NaN covariate, logging how many; returns
    ``(coords, values, covariates, n_dropped)``.

    Raises
    ------
    InputDataError
        When no sample keeps all its covariates.
    """
    if covariates is None:
        return coords, values, covariates, 0
    f = np.asarray(covariates, dtype=float).reshape(len(coords), -1)
    ok = np.isfinite(f).all(axis=1)
    dropped = int((~ok).sum())
    what = ", ".join(map(str, names)) or "the covariates"
    if dropped == len(ok):
        raise InputDataError(f"no sample has a value of {what}: cannot krige with that drift")
    if dropped:
        logger.warning("%d of %d sample(s) have no value of %s (NULL, nodata or outside the "
                       "raster) and are left out", dropped, len(ok), what)
    return coords[ok], np.asarray(values)[ok], f[ok], dropped


def _discretise(block, ndim: int, n: int | None):
    if block is None:
        return None, None
    size = [float(b) for b in np.atleast_1d(block)]
    if len(size) == 2 and ndim == 3:
        size.append(0.0)  # a flat block (gstat: sizes not given are 0)
    if len(size) != ndim:
        raise InputDataError(
            f"a block of {len(size)} size(s) {size!r} for {ndim}D data; give {ndim} sizes"
        )
    return block_discretisation(size, n)


def drift_matrix(coords: np.ndarray, covariates: np.ndarray | None = None,
                 drift: str | Sequence[str] | None = None) -> np.ndarray:
    """The drift columns at the samples (covariates, then coordinate terms), without the
    constant: what a residual variogram is fitted to the residuals of
    (:func:`~.drift.drift_residuals`)."""
    coords = np.asarray(coords, dtype=float)
    terms = parse_drift_terms(drift, coords.shape[1])
    cdrift = CoordinateDrift.from_samples(terms, coords) if terms else None
    return _drift_columns(coords, covariates, cdrift)


def _drift_columns(coords, covariates, coord_drift):
    cols = [] if covariates is None else [np.asarray(covariates, float).reshape(len(coords), -1)]
    if coord_drift is not None and coord_drift.terms:
        cols.append(coord_drift.columns(coords))
    return np.hstack(cols) if cols else np.empty((len(coords), 0))


def _check_model(model) -> None:
    if not model.bounded and model.measurement_error:
        raise InputDataError("a measurement error (Err) needs a bounded variogram")


def krige_universal(
    coords: np.ndarray,
    values: np.ndarray,
    targets: np.ndarray,
    model,
    *,
    covariates: np.ndarray | None = None,
    target_covariates: np.ndarray | None = None,
    drift: str | Sequence[str] | None = None,
    neighbours: int = 32,
    block: Sequence[float] | None = None,
    block_discretisation: int | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> KrigingResult:
    """Universal kriging / kriging with an external drift (or ordinary kriging) at points.

    Parameters
    ----------
    coords : ndarray, shape (n, d)
    values : ndarray, shape (n,)
        Sample values (transformed, if a transform is used).
    targets : ndarray, shape (m, d)
    model : VariogramModel
        Variogram of the residuals from the drift; an ``Err`` part is measurement error.
    covariates, target_covariates : ndarray, shape (n, q) and (m, q), optional
        External drift variables at the samples and the targets (both or neither). Samples
        with a NaN are dropped (logged); targets with a NaN are left NaN.
    drift : str or sequence of str, optional
        Coordinate drift terms (:data:`DRIFT_TERMS`), e.g. ``"x,y"``.
    neighbours : int
        Nearest samples per target (gstat ``nmax``); 0 = all (global).
    block : sequence of float, optional
        Block size ``(dx, dy[, dz])``: estimates of block means (block kriging).
    block_discretisation : int, optional
        Points per block side (regular); ``None``: gstat's default 4 x 4 Gauss points.
    progress, should_stop : callable, optional

    Returns
    -------
    KrigingResult
        ``n_missing`` counts the targets without a covariate value; ``lagrange`` is None.
    """
    coords = np.asarray(coords, dtype=float)
    targets = np.asarray(targets, dtype=float)
    values = np.asarray(values, dtype=float).ravel()
    if coords.ndim != 2 or targets.ndim != 2 or targets.shape[1] != coords.shape[1]:
        raise InputDataError(
            f"samples {coords.shape!r} and targets {targets.shape!r} must be (n, d) alike"
        )
    if (covariates is None) != (target_covariates is None):
        raise InputDataError("give covariates at both the samples and the targets, or neither")
    _check_model(model)
    coords, values, covariates, _ = drop_samples_without_covariates(coords, values, covariates)
    res = _solve(coords, values, targets, model, covariates, target_covariates, drift,
                 neighbours, block, block_discretisation, progress, should_stop)
    _warn_missing(res.n_missing, len(targets))
    return res


def _warn_missing(n_missing: int, m: int) -> None:
    if n_missing:
        logger.warning("%d of %d target(s) have no covariate value (nodata or outside the "
                       "raster) and are left empty", n_missing, m)


def _solve(coords, values, targets, model, covariates, target_covariates, drift, neighbours,
           block, block_discretisation, progress, should_stop) -> KrigingResult:
    """Krige ``targets`` with samples whose covariates are all finite."""
    terms = parse_drift_terms(drift, coords.shape[1])
    cdrift = CoordinateDrift.from_samples(terms, coords) if terms else None
    offsets, weights = _discretise(block, coords.shape[1], block_discretisation)
    f_s = _drift_columns(coords, covariates, cdrift)
    f_t = np.empty((len(targets), 0))
    if target_covariates is not None:
        f_t = np.asarray(target_covariates, float).reshape(len(targets), -1)
        if f_t.shape[1] != covariates.shape[1]:
            raise InputDataError(
                f"{covariates.shape[1]} covariate(s) at the samples but {f_t.shape[1]} at "
                "the targets"
            )
    if cdrift is not None:
        f_t = np.hstack([f_t, cdrift.block_mean(targets, offsets, weights)])
    est = np.full(len(targets), np.nan)
    var = np.full(len(targets), np.nan)
    ok = np.isfinite(f_t).all(axis=1)
    n_singular = 0
    if ok.any():
        res = krige_external_drift(coords, values, f_s, targets[ok], f_t[ok], model,
                                   neighbours=neighbours, should_stop=should_stop,
                                   block=offsets, block_weights=weights, progress=progress)
        est[ok], var[ok] = res.estimate, res.variance
        n_singular = res.n_singular
    return KrigingResult(est, var, n_singular, int((~ok).sum()))


def krige_universal_grid(
    coords: np.ndarray,
    values: np.ndarray,
    grid: Grid,
    model,
    *,
    covariates: np.ndarray | None = None,
    grid_covariates: np.ndarray | None = None,
    drift: str | Sequence[str] | None = None,
    neighbours: int = 32,
    block: Sequence[float] | None = None,
    block_discretisation: int | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> KrigingResult:
    """:func:`krige_universal` at every node of ``grid`` (2D, or 3D with z levels).

    ``grid_covariates`` has shape ``(grid.n_nodes, q)`` in raster order (level, row, column),
    or ``grid.shape + (q,)``. Nodes outside the grid's mask (a template's nodata) and nodes
    without a covariate value are NaN; only the latter count in ``n_missing``. ``estimate``
    and ``variance`` have the shape ``grid.shape``.
    """
    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values, dtype=float).ravel()
    if coords.ndim != 2 or grid.ndim != coords.shape[1]:
        raise InputDataError(f"the grid is {grid.ndim}D but the samples are {coords.shape!r}")
    if (covariates is None) != (grid_covariates is None):
        raise InputDataError("give covariates at both the samples and the grid, or neither")
    _check_model(model)
    coords, values, covariates, _ = drop_samples_without_covariates(coords, values, covariates)
    n = grid.n_nodes
    if grid_covariates is not None:
        grid_covariates = np.asarray(grid_covariates, dtype=float).reshape(n, -1)
    inside = np.ones(n, dtype=bool)
    if grid.mask is not None:
        inside = np.broadcast_to(np.asarray(grid.mask, dtype=bool), grid.shape).ravel()
    est, var = np.full(n, np.nan), np.full(n, np.nan)
    n_singular = n_missing = 0
    for start, stop in grid.chunks(GRID_CHUNK):
        check_cancel(should_stop)
        rows = np.flatnonzero(inside[start:stop]) + start
        if rows.size:
            nodes = grid.node_coords(start, stop)[rows - start]
            res = _solve(coords, values, nodes, model, covariates,
                         None if grid_covariates is None else grid_covariates[rows], drift,
                         neighbours, block, block_discretisation, None, should_stop)
            est[rows], var[rows] = res.estimate, res.variance
            n_singular += res.n_singular
            n_missing += res.n_missing
        if progress is not None:
            progress(stop / n, "kriging")
    _warn_missing(n_missing, int(inside.sum()))
    return KrigingResult(est.reshape(grid.shape), var.reshape(grid.shape), n_singular,
                         n_missing)
