"""Ordinary and simple kriging of points and grids: chunking, threads, progress, fallbacks."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import math
import os
import time

import numpy as np

from ..errors import InputDataError
from ..grid import Grid
from ..progress import ProgressFn, StopFn, check_cancel
from .config import KrigingConfig, KrigingResult
from .dense import (
    DenseSystem,
    SingularSystem,
    available_bytes,
    global_bytes,
    max_global_samples,
    target_chunk,
)
from .fallback import solve_singular
from .neighbours import search
from .solver import STATUS_EXACT, STATUS_MISSING, STATUS_SINGULAR, krige_kernel
from .stability import stabilised

logger = logging.getLogger(__name__)

_MIN_CHUNK, _MAX_CHUNK = 256, 262_144


def _cores(n_jobs: int) -> int:
    avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(n_jobs or avail or 1, avail or 1))


class _Kriger:
    """Everything prepared once per call: reduced coordinates, tree, model arrays, shift."""

    def __init__(self, coords, values, model, config: KrigingConfig, corners: np.ndarray):
        from scipy.spatial import cKDTree

        if model.measurement_error:
            raise InputDataError(
                f"{model.to_text()!r} has a measurement error (Err): krige it with "
                "krige_universal (the CLI's krige does)"
            )
        self.model = model
        self.config = config
        self.coords = coords
        self.n = coords.shape[0]
        self.data = np.ascontiguousarray(model.reduce(coords))
        self.tree = cKDTree(self.data)
        self.codes, self.params = model.kernel_arrays()
        self.simple = config.simple
        if self.simple:
            if not model.bounded:
                raise InputDataError(
                    f"simple kriging needs a bounded variogram (a covariance); "
                    f"{model.to_text()!r} is unbounded"
                )
            self.center = float(config.mean)
        else:
            self.center = float(np.mean(values))
        self.values = values
        self.z = np.ascontiguousarray(values - self.center)
        self.shift = covariance_shift(model, corners)
        self.k = self.n if config.neighbours == 0 else min(config.neighbours, self.n)
        self.threads = _cores(config.n_jobs)
        self.global_ = (self.k == self.n and config.max_distance is None
                        and config.sectors == 0)
        if self.global_ and self.n > 1000:
            _check_global_memory(self.n)
        self.should_stop = None  # set by the caller; polled in the slow fallback loop
        self._dense: DenseSystem | None | bool = None  # False: tried, singular
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None

    def buffers(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour-list buffers for ``m`` targets, reused from chunk to chunk (fresh memory
        costs page faults, which also serialise the threads)."""
        if self._buffers is None or self._buffers[0].size < m * self.k:
            self._buffers = (np.empty(m * self.k, dtype=np.int64), np.empty(m * self.k))
        return self._buffers

    def dense(self) -> DenseSystem | None:
        """The factorised global system, or None when it is singular (built on first use)."""
        if self._dense is None:
            try:
                self._dense = DenseSystem(self.data, self.z, self.model.gamma, self.shift,
                                          self.simple)
            except SingularSystem:
                logger.debug("global system singular: kriging target by target")
                self._dense = False
        return self._dense or None

    def chunk_size(self, details: bool, exclude_self: bool) -> int:
        if self.config.chunk_size:
            return self.config.chunk_size
        if self.global_:
            per_node = self.n * 40 * (3 if details else 1) + 128
            size = int(self.config.memory_budget_mb * 1024**2 / per_node)
            # chunks of n x m arrays stay within half the n x n matrix (dense.MATRIX_FACTOR)
            return max(1, min(_MAX_CHUNK, size, target_chunk(self.n, details)))
        factor = 4.0 if self.config.sectors else (1.0 + 1.0 / self.k if exclude_self else 1.0)
        per_node = self.k * 16 * (factor + 1.0) + (self.k * 32 if details else 0) + 128
        size = int(self.config.memory_budget_mb * 1024**2 / per_node)
        return max(_MIN_CHUNK, min(_MAX_CHUNK, size))

    def run(self, targets: np.ndarray, self_index: np.ndarray | None, details: bool):
        """Krige one chunk; returns (est, var, lag, n_singular, n_missing, details-tuple)."""
        cfg = self.config
        t_red = np.ascontiguousarray(self.model.reduce(targets))
        dense = self.dense() if self.global_ and self_index is None else None
        if dense is not None:
            est, var, lag, exact, extra = dense.solve(t_red, details)
            est += self.center
            for r in np.flatnonzero(exact):  # the sample value (mean of coincident samples)
                est[r] = self.values[self.tree.query_ball_point(t_red[r], 0.0)].mean()
            return est, var, lag, 0, 0, extra
        nbr, dist, order = search(
            self.tree, t_red, self.k, max_distance=cfg.max_distance, sectors=cfg.sectors,
            data=self.coords, targets=targets, self_index=self_index, workers=self.threads,
            out=self.buffers(len(targets)),
        )
        m, k = nbr.shape
        if order is None:
            pos = np.arange(m, dtype=np.int64)
        else:  # rows in tile order; targets are kriged in their own (raster) order, where
            pos = np.empty_like(order)  # consecutive targets share most neighbours
            pos[order] = np.arange(m)
        est, var, lag = np.empty(m), np.empty(m), np.empty(m)
        status = np.empty(m, dtype=np.int8)
        w = np.empty((m, k) if details else (1, 1))
        c = np.empty((m, k) if details else (1, 1))
        krige_kernel(self.data, self.z, t_red, nbr, pos, dist, self.codes, self.params,
                     self.shift, self.simple, cfg.min_neighbours, details, 4 * self.threads,
                     est, var, lag, status, w, c)
        if order is not None and (details or (status >= STATUS_SINGULAR).any()):
            nbr, dist = nbr[pos], dist[pos]
        bad = np.flatnonzero(status == STATUS_SINGULAR)
        for r in bad:  # the fallback is slow (a global system per target): cancellable
            check_cancel(self.should_stop)
            e, v, mu, wr = solve_singular(self.data, self.z, t_red[r], nbr[r], self.model.gamma,
                                          self.shift, self.simple)
            est[r], var[r], lag[r] = e, v, mu
            if details:
                w[r] = wr
        est += self.center
        exact = np.flatnonzero(status == STATUS_EXACT)
        if exact.size:  # the sample value itself, not (value - centre) + centre
            zero = dist[exact] == 0.0
            vals = np.where(zero, self.values[np.maximum(nbr[exact], 0)], 0.0)
            est[exact] = vals.sum(axis=1) / zero.sum(axis=1)
        n_missing = int((status == STATUS_MISSING).sum())
        extra = (nbr, w, dist, c) if details else None
        return est, var, lag, int(bad.size), n_missing, extra


def _empty_details(m: int, k: int) -> tuple[np.ndarray, ...]:
    """Neighbours (-1), weights (0), distances (inf) and target covariances (0) of ``m``
    targets with no neighbour yet, filled chunk by chunk."""
    return (np.full((m, k), -1, dtype=np.int64), np.zeros((m, k)), np.full((m, k), np.inf),
            np.zeros((m, k)))


def _check_global_memory(n: int) -> None:
    """Refuse a global neighbourhood whose ``n x n`` system does not fit in memory, before
    anything is allocated, with the number of samples that would fit."""
    need, avail = global_bytes(n), available_bytes()
    if avail is None or need <= avail:
        return
    gib = 1024**3
    raise InputDataError(
        f"global kriging (neighbours = 0) of {n:,} samples needs {need / gib:.1f} GiB (one "
        f"{n:,} x {n:,} float64 matrix and work space) but {avail / gib:.1f} GiB are "
        f"available: at most {max_global_samples(avail):,} samples fit; use a local "
        f"neighbourhood (e.g. --neighbours 32, gstat's nmax) instead"
    )


def covariance_shift(model, points: np.ndarray) -> float:
    """The constant ``shift`` of the covariance ``C = shift - gamma`` the systems are built on.

    The sill for a bounded model. For an unbounded one, a constant above every semivariogram
    value among ``points`` (data and target corners, or all of them): ordinary kriging and
    kriging with a drift (which contains the constant) are invariant to it, and
    ``shift - Gamma`` is then positive definite for the usual configurations (the fallback
    handles the others).
    """
    if model.bounded:
        return float(model.sill)
    red = model.reduce(np.asarray(points, dtype=float))
    diam = float(np.sqrt(((red[:, None, :] - red[None, :, :]) ** 2).sum(-1)).max())
    return 2.0 * float(model.gamma(max(diam, 1e-12))) + 1.0


def _as_coords(arr, what: str, ndim: int | None = None) -> np.ndarray:
    out = np.asarray(arr, dtype=float)
    if out.ndim != 2 or out.shape[1] not in (2, 3):
        raise InputDataError(f"{what} must have shape (n, 2) or (n, 3), not {out.shape!r}")
    if ndim is not None and out.shape[1] != ndim:
        raise InputDataError(
            f"{what} are {out.shape[1]}D but the samples are {ndim}D"
        )
    if not np.isfinite(out).all():
        raise InputDataError(f"{what} contain non-finite coordinates")
    return np.ascontiguousarray(out)


def bounding_corners(*boxes: np.ndarray) -> np.ndarray:
    """The 2**d corners of the bounding box of all the given point sets."""
    pts = np.vstack(boxes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return np.array(list(itertools.product(*zip(lo, hi, strict=True))))


def _set_threads(n: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


_QUIET = contextvars.ContextVar("gcnn_rnn_quiet_reports", default=False)


@contextlib.contextmanager
def quiet_reports():
    """No per-call warnings about singular systems or missing neighbours inside this block
    (re-solves of :mod:`.stability`: the first solve reported them, once)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _report(n_singular: int, n_missing: int, config: KrigingConfig, n: int, seconds: float):
    if _QUIET.get():
        return
    if n_singular:
        logger.warning(
            "%d of %d target(s) had a singular or unstable kriging system (coincident or "
            "collinear neighbours, or a model without nugget); solved by merging coincident "
            "samples and a pseudo-inverse", n_singular, n,
        )
    if n_missing:
        logger.warning(
            "%d of %d target(s) have fewer than %d neighbour(s)%s and are left empty (nodata)",
            n_missing, n, config.min_neighbours,
            f" within {config.max_distance:g}" if config.max_distance else "",
        )
    logger.debug("kriged %d targets in %.2f s (%.0f per second)", n, seconds,
                 n / seconds if seconds > 0 else math.inf)


@stabilised
def krige(
    coords: np.ndarray,
    values: np.ndarray,
    targets: np.ndarray,
    model,
    config: KrigingConfig | None = None,
    *,
    exclude_self: bool = False,
    self_index: np.ndarray | None = None,
    return_details: bool = False,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> KrigingResult:
    """Ordinary (or simple) kriging at target points.

    Parameters
    ----------
    coords : ndarray, shape (n, 2) or (n, 3)
        Sample coordinates.
    values : ndarray, shape (n,)
        Sample values (already transformed, if a transform is used).
    targets : ndarray, shape (m, d)
        Target coordinates, same dimension as ``coords``.
    model : VariogramModel
        Variogram (with anisotropy, if any). Unbounded models are supported for ordinary
        kriging through a covariance shift (see :mod:`.solver`).
    config : KrigingConfig, optional
        Neighbourhood, simple/ordinary, memory and threads (default ``KrigingConfig()``).
    exclude_self : bool
        Targets are the samples themselves (``m == n``, same order) and each target's own
        sample is left out of its neighbourhood (leave-one-out). Other samples at the same
        location still count.
    self_index : ndarray of int, shape (m,), optional
        Leave-one-out for some samples: target ``r`` is sample ``self_index[r]`` (its
        coordinates), left out of its own neighbourhood (``exclude_self`` is
        ``self_index = arange(n)``).
    return_details : bool
        Also return neighbours, weights, distances and target covariances.
    progress, should_stop : callable, optional
        Progress callback ``(fraction, text)`` and cancellation test, called between chunks.

    Returns
    -------
    KrigingResult

    Raises
    ------
    InputDataError
        Bad shapes, non-finite values, simple kriging with an unbounded model.
    Cancelled
        When ``should_stop()`` turns true.

    Notes
    -----
    The kriging system of a target is that of gstat/PyKrige: the ``neighbours`` nearest
    samples by anisotropic distance (within ``max_distance``; sector limits if asked), the
    semivariogram with ``gamma(0) = 0`` so the estimate is exact at samples (variance 0) even
    with a nugget. Variances are clipped at 0 against rounding.
    """
    t0 = time.perf_counter()
    config = KrigingConfig() if config is None else config
    coords = _as_coords(coords, "sample coordinates")
    targets = _as_coords(targets, "target coordinates", coords.shape[1])
    values = np.asarray(values, dtype=float).ravel()
    if values.shape[0] != coords.shape[0]:
        raise InputDataError(
            f"{values.shape[0]} values for {coords.shape[0]} sample coordinates"
        )
    if coords.shape[0] == 0 or not np.isfinite(values).all():
        raise InputDataError("kriging needs at least one sample and finite values")
    if exclude_self and targets.shape[0] != coords.shape[0]:
        raise InputDataError(
            f"exclude_self needs the samples as targets ({coords.shape[0]}), "
            f"got {targets.shape[0]} targets"
        )
    if exclude_self:
        self_index = np.arange(coords.shape[0], dtype=np.int64)
    elif self_index is not None:
        self_index = np.asarray(self_index, dtype=np.int64).ravel()
        if self_index.shape[0] != targets.shape[0] or (
                self_index.size and not 0 <= self_index.min() <= self_index.max()
                < coords.shape[0]):
            raise InputDataError("self_index needs one sample index (0..n-1) per target")
    kr = _Kriger(coords, values, model, config, bounding_corners(coords, targets))
    kr.should_stop = should_stop
    _set_threads(kr.threads)
    m = targets.shape[0]
    est, var, lag = np.empty(m), np.empty(m), np.empty(m)
    det = None
    k = kr.k
    size = kr.chunk_size(return_details, self_index is not None)
    n_sing = n_miss = 0
    for start in range(0, m, size):
        check_cancel(should_stop)
        stop = min(m, start + size)
        own = None if self_index is None else self_index[start:stop]
        e, v, mu, ns, nm, extra = kr.run(targets[start:stop], own, return_details)
        est[start:stop], var[start:stop], lag[start:stop] = e, v, mu
        n_sing += ns
        n_miss += nm
        if extra is not None and det is None:
            if stop == m and all(src.shape[1] == k for src in extra):
                det = extra  # one chunk of full rows: its own arrays (the Kriger goes now)
            else:
                det = _empty_details(m, k)
        if extra is not None and det is not extra:
            for dst, src in zip(det, extra, strict=True):
                dst[start:stop, : src.shape[1]] = src
        if progress is not None:
            progress(stop / m, "kriging")
    check_cancel(should_stop)
    _report(n_sing, n_miss, config, m, time.perf_counter() - t0)
    if not return_details:
        return KrigingResult(est, var, n_sing, n_miss, lagrange=lag)
    if det is None:  # no targets
        det = _empty_details(m, k)
    nbr, w, dist, cov = det
    return KrigingResult(est, var, n_sing, n_miss, lagrange=lag, neighbours=nbr, weights=w,
                         distances=dist, cov_target=cov)


@stabilised
def krige_grid(
    coords: np.ndarray,
    values: np.ndarray,
    grid: Grid,
    model,
    config: KrigingConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> KrigingResult:
    """Kriging at every node of ``grid``, chunk by chunk in raster order.

    Parameters are those of :func:`krige`; ``grid`` (2D, or 3D with z levels matching 3D
    samples) replaces the targets. ``estimate``, ``variance`` and ``lagrange`` have the shape
    ``grid.shape``; no per-node details are kept.
    """
    t0 = time.perf_counter()
    config = KrigingConfig() if config is None else config
    coords = _as_coords(coords, "sample coordinates")
    if grid.ndim != coords.shape[1]:
        raise InputDataError(
            f"the grid is {grid.ndim}D but the samples are {coords.shape[1]}D"
            + ("; give z levels for 3D samples" if coords.shape[1] == 3 else "")
        )
    values = np.asarray(values, dtype=float).ravel()
    if values.shape[0] != coords.shape[0] or not np.isfinite(values).all():
        raise InputDataError("kriging needs one finite value per sample")
    xmin, ymin, xmax, ymax = grid.extent
    box = [[xmin, ymin], [xmax, ymax]]
    if grid.ndim == 3:
        box = [[xmin, ymin, min(grid.z_levels)], [xmax, ymax, max(grid.z_levels)]]
    kr = _Kriger(coords, values, model, config, bounding_corners(coords, np.asarray(box)))
    kr.should_stop = should_stop
    _set_threads(kr.threads)
    n = grid.n_nodes
    est, var, lag = np.empty(n), np.empty(n), np.empty(n)
    size = kr.chunk_size(False, False)
    n_sing = n_miss = 0
    for start, stop in grid.chunks(size):
        check_cancel(should_stop)
        e, v, mu, ns, nm, _ = kr.run(grid.node_coords(start, stop), None, False)
        est[start:stop], var[start:stop], lag[start:stop] = e, v, mu
        n_sing += ns
        n_miss += nm
        if progress is not None:
            progress(stop / n, "kriging")
    check_cancel(should_stop)
    _report(n_sing, n_miss, config, n, time.perf_counter() - t0)
    shape = grid.shape
    return KrigingResult(est.reshape(shape), var.reshape(shape), n_sing, n_miss,
                         lagrange=lag.reshape(shape))
