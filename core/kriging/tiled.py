"""Kriging of a grid range by range: a picklable job that a Dask worker (or the engine
itself) calls on ``(start, stop)`` runs of nodes in raster order.

The ranges are the chunks :func:`~.api.krige_grid` and :func:`~.universal.krige_universal_grid`
have always used, and every node's system is built from the same inputs (samples, model,
covariance shift of the whole grid's box), so a streamed or distributed grid has exactly the
floats of a whole-grid call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputDataError
from ..grid import Grid
from .api import _as_coords, _Kriger, _set_threads, bounding_corners
from .config import KrigingConfig
from .universal import GRID_CHUNK, _check_model, _solve, drop_samples_without_covariates


@dataclass
class RangeResult:
    """One range's estimate, variance and (ordinary/simple kriging) Lagrange multiplier."""

    estimate: np.ndarray
    variance: np.ndarray
    lagrange: np.ndarray | None
    n_singular: int
    n_missing: int
    n_unstable: int = 0
    n_unresolved: int = 0


def _grid_box(grid: Grid) -> np.ndarray:
    xmin, ymin, xmax, ymax = grid.extent
    if grid.ndim == 3:
        return np.asarray([[xmin, ymin, min(grid.z_levels)], [xmax, ymax, max(grid.z_levels)]])
    return np.asarray([[xmin, ymin], [xmax, ymax]])


@dataclass
class GridKrigingJob:
    """Ordinary/simple kriging of ``grid`` (the inputs of :func:`~.api.krige_grid`)."""

    coords: np.ndarray
    values: np.ndarray
    model: object
    config: KrigingConfig
    grid: Grid
    _kriger: _Kriger | None = field(default=None, repr=False, compare=False)
    #: In-process cancellation test (not sent to a cluster): checked inside a range too,
    #: between the per-target fallback solves and the stability re-solves.
    should_stop: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.coords = _as_coords(self.coords, "sample coordinates")
        if self.grid.ndim != self.coords.shape[1]:
            raise InputDataError(
                f"the grid is {self.grid.ndim}D but the samples are {self.coords.shape[1]}D"
                + ("; give z levels for 3D samples" if self.coords.shape[1] == 3 else ""))
        self.values = np.asarray(self.values, dtype=float).ravel()
        if self.values.shape[0] != self.coords.shape[0] or not np.isfinite(self.values).all():
            raise InputDataError("kriging needs one finite value per sample")

        # The numerical safety of :func:`~.api.krige_grid` (:mod:`.stability`), range by range:
        # extreme sills solved scale-free, unstable systems re-solved with a tiny nugget.
        from .stability import normalise, suspect, warn_ill_conditioned

        warn_ill_conditioned(self.model)
        self._scaled, self._factor = normalise(self.model)
        self._suspect = suspect(self._scaled, self.coords)

    def __getstate__(self) -> dict:  # the tree and buffers are rebuilt where the job runs
        return {**self.__dict__, "_kriger": None, "should_stop": None}

    def kriger(self) -> _Kriger:
        if self._kriger is None:
            self._kriger = _Kriger(self.coords, self.values, self._scaled, self.config,
                                   bounding_corners(self.coords, _grid_box(self.grid)))
            _set_threads(self._kriger.threads)
        self._kriger.should_stop = self.should_stop
        return self._kriger

    def ranges(self) -> list[tuple[int, int]]:
        return list(self.grid.chunks(self.kriger().chunk_size(False, False)))

    def __call__(self, start: int, stop: int) -> RangeResult:
        from .config import KrigingResult
        from .stability import stable_solve

        nodes = self.grid.node_coords(start, stop)
        e, v, mu, ns, nm, _ = self.kriger().run(nodes, None, False)
        res = stable_solve(KrigingResult(e, v, ns, nm, lagrange=mu), self.coords, self.values,
                           nodes, self.config, self._scaled, self._factor, self._suspect,
                           self.should_stop)
        return RangeResult(res.estimate, res.variance, res.lagrange, ns, nm, res.n_unstable,
                           res.n_unresolved)


@dataclass
class UniversalGridJob:
    """Universal kriging / external drift / block kriging of ``grid`` (the inputs of
    :func:`~.universal.krige_universal_grid`; ``grid_covariates`` in raster order)."""

    coords: np.ndarray
    values: np.ndarray
    model: object
    grid: Grid
    covariates: np.ndarray | None = None
    grid_covariates: np.ndarray | None = None
    drift: tuple[str, ...] = ()
    neighbours: int = 32
    block: tuple[float, ...] | None = None
    block_discretisation: int | None = None
    #: Covariate rasters read range by range at the nodes (instead of ``grid_covariates``):
    #: only the window of a range is read, so memory does not grow with the grid.
    covariate_paths: tuple[str, ...] = ()
    crs: str | None = None

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=float)
        self.values = np.asarray(self.values, dtype=float).ravel()
        if self.coords.ndim != 2 or self.grid.ndim != self.coords.shape[1]:
            raise InputDataError(
                f"the grid is {self.grid.ndim}D but the samples are {self.coords.shape!r}")
        at_grid = self.grid_covariates is not None or bool(self.covariate_paths)
        if (self.covariates is None) != (not at_grid) or (
                self.grid_covariates is not None and self.covariate_paths):
            raise InputDataError("give covariates at both the samples and the grid (values or "
                                 "rasters, not both), or neither")
        _check_model(self.model)
        self.coords, self.values, self.covariates, _ = drop_samples_without_covariates(
            self.coords, self.values, self.covariates)
        if self.grid_covariates is not None:
            self.grid_covariates = np.asarray(self.grid_covariates, dtype=float).reshape(
                self.grid.n_nodes, -1)

    def ranges(self) -> list[tuple[int, int]]:
        return list(self.grid.chunks(GRID_CHUNK))

    def __call__(self, start: int, stop: int) -> RangeResult:
        n = stop - start
        est, var = np.full(n, np.nan), np.full(n, np.nan)
        from ..tiles import inside_mask

        inside = inside_mask(self.grid, start, stop)
        if inside is None:
            inside = np.ones(n, dtype=bool)
        rows = np.flatnonzero(inside)
        ns = nm = 0
        if rows.size:
            nodes = self.grid.node_coords(start, stop)[rows]
            cov = None if self.grid_covariates is None else self.grid_covariates[rows + start]
            if self.covariate_paths:
                from ..features import sample_covariates

                cov = sample_covariates(self.covariate_paths, nodes, self.crs, "targets",
                                        allow_missing=True)
            res = _solve(self.coords, self.values, nodes, self.model, self.covariates, cov,
                         self.drift, self.neighbours, self.block, self.block_discretisation,
                         None, None)
            est[rows], var[rows] = res.estimate, res.variance
            ns, nm = res.n_singular, res.n_missing
        return RangeResult(est, var, None, ns, nm)
