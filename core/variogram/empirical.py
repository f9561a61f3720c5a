"""Experimental (sample) variograms: omnidirectional and directional, 2D and 3D.

Defaults follow gstat's ``variogram()``: the cutoff is 0.33333 times the diagonal of the data's
bounding box and the lag width is ``cutoff / 15``. Bins are gstat's ``(lo, hi]``: a pair at
distance ``0 < d <= cutoff`` goes to bin ``ceil(d / width) - 1`` (a distance that is an exact
multiple of the width to the lower bin; zero distances to the first); per bin the result holds
the mean pair distance, the estimate and the pair count; empty bins are dropped.

Directions are azimuths in degrees clockwise from north (the +y axis). A pair belongs to
direction ``phi`` when the horizontal angle between its offset (either orientation) and ``phi``
is at most ``tolerance`` (default ``90 / number of directions``, as gstat) and, if
``bandwidth`` is given, its horizontal distance from the line through the first point in
direction ``phi`` is at most ``bandwidth`` (GSLIB). A horizontal pair exactly on the edge of a
cone narrower than 90 degrees is counted on the clockwise edge only (angle ``tolerance``, not
``-tolerance``), so adjacent directions whose cones touch never both count it. In 3D this uses
the horizontal projection (gstat with ``tol.ver = 90``) unless ``dip`` is given; then the
angle is measured in 3D between the offset and the unit vector ``(sin az cos dip,
cos az cos dip, sin dip)`` (dip in degrees, positive upwards; 90 = vertical) and the bandwidth,
if any, is the 3D distance from that line.

Estimators are plug-ins of one shape (:class:`Estimator`): a per-pair statistic that is summed
per bin and a function of the bin mean and pair count giving the semivariance:

* ``matheron``: ``gamma = mean((z_i - z_j)**2) / 2``;
* ``cressie`` (Cressie & Hawkins 1980): ``gamma = mean(|z_i - z_j|**0.5)**4 /
  (2 (0.457 + 0.494 / N))``.

Pairs are found with a grid of cells (:mod:`.pairs`): only pairs of neighbouring cells are
looked at, on all cores, and memory does not grow with the number of pairs;
``progress``/``should_stop`` are honoured between rounds. Above :data:`DEFAULT_MAX_POINTS`
points a seeded random subsample of points is used (recorded as ``n_used`` and
``subsample_seed``); below it the pair counts are exactly those of all pairs.

Remaining differences from gstat: a pair of coincident points (or, in 3D on the horizontal
projection, a vertical pair) has no direction and is left out of directional variograms,
whereas gstat counts it in every direction; in 3D with a dip the cone edge is inclusive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputDataError, UnknownModelError
from ..progress import ProgressFn, StopFn, check_cancel
from .pairs import N_CHUNKS, SELECTOR_WIDTH, grid_sums

logger = logging.getLogger(__name__)

DEFAULT_LAGS = 15
#: Angular tolerance of one direction among four (gstat's default is 90 / number of
#: directions; :func:`default_tolerance`).
DEFAULT_TOLERANCE = 22.5
#: Above this many points a seeded random subsample of this many is used (as GSTools'
#: ``sampling_size``): 50,000 points give about 1.25e9 pairs (5e8 within gstat's default
#: cutoff), far more than a variogram estimate needs, found in seconds on two cores; all
#: pairs of 1e6 points would take about 400 times as long.
DEFAULT_MAX_POINTS = 50_000
#: Seed of that subsample.
DEFAULT_SUBSAMPLE_SEED = 0


@dataclass(frozen=True)
class Estimator:
    """A semivariance estimator.

    Every estimator has the same shape: a per-pair statistic of ``z_j - z_i`` (selected by
    ``stat_code`` in the compiled pair loop: 0 = square, 1 = square root of the absolute
    value) is averaged per bin, then ``finalize(mean, n_pairs) -> gamma``.
    """

    name: str
    stat_code: int
    finalize: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _matheron(mean_sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    return 0.5 * mean_sq


def _cressie(mean_root: np.ndarray, n: np.ndarray) -> np.ndarray:
    return mean_root**4 / (2.0 * (0.457 + 0.494 / n))


ESTIMATORS: dict[str, Estimator] = {
    "matheron": Estimator("matheron", 0, _matheron),
    "cressie": Estimator("cressie", 1, _cressie),
}


@dataclass(frozen=True)
class EmpiricalVariogram:
    """An experimental variogram (non-empty bins only).

    Attributes
    ----------
    lags : ndarray, shape (n_bins,)
        Mean pair distance of each bin.
    gamma : ndarray, shape (n_bins,)
        Semivariance estimate of each bin.
    npairs : ndarray of int64, shape (n_bins,)
        Pair count of each bin.
    direction : float or None
        Azimuth in degrees clockwise from north, None when omnidirectional.
    tolerance : float
        Angular tolerance in degrees (meaningful for directional variograms).
    estimator : str
        ``"matheron"`` or ``"cressie"``.
    cutoff : float
        Largest pair distance used.
    width : float
        Lag width.
    bandwidth : float or None
        Maximum distance from the direction line, None when not used.
    dip : float or None
        3D dip of the direction in degrees (positive upwards), None when horizontal-only.
    n_points : int or None
        Points given (None when unknown, e.g. read from an old file).
    n_used : int or None
        Points whose pairs were used: ``n_points`` unless a random subsample was drawn.
    subsample_seed : int or None
        Seed of that subsample, None when every point was used.
    """

    lags: np.ndarray
    gamma: np.ndarray
    npairs: np.ndarray
    direction: float | None
    tolerance: float
    estimator: str
    cutoff: float
    width: float
    bandwidth: float | None = None
    dip: float | None = None
    n_points: int | None = None
    n_used: int | None = None
    subsample_seed: int | None = None

    @property
    def n_bins(self) -> int:
        """Number of non-empty bins."""
        return int(self.lags.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"lag": [...], "gamma": [...], "npairs": [...], ...}``."""
        return {
            "lag": [float(v) for v in self.lags],
            "gamma": [float(v) for v in self.gamma],
            "npairs": [int(v) for v in self.npairs],
            "direction": self.direction,
            "tolerance": self.tolerance,
            "bandwidth": self.bandwidth,
            "dip": self.dip,
            "estimator": self.estimator,
            "cutoff": self.cutoff,
            "width": self.width,
            "n_points": self.n_points,
            "n_used": self.n_used,
            "subsample_seed": self.subsample_seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmpiricalVariogram:
        """Inverse of :meth:`to_dict` (missing settings take the defaults)."""
        return cls(
            lags=np.asarray(d["lag"], dtype=float),
            gamma=np.asarray(d["gamma"], dtype=float),
            npairs=np.asarray(d["npairs"], dtype=np.int64),
            direction=d.get("direction"),
            tolerance=float(d.get("tolerance", DEFAULT_TOLERANCE)),
            estimator=str(d.get("estimator", "matheron")),
            cutoff=float(d.get("cutoff", np.nan)),
            width=float(d.get("width", np.nan)),
            bandwidth=d.get("bandwidth"),
            dip=d.get("dip"),
            n_points=d.get("n_points"),
            n_used=d.get("n_used"),
            subsample_seed=d.get("subsample_seed"),
        )


#: gstat's "one third" of the bounding-box diagonal is this constant (src/defaults.h
#: ``DEF_fraction``); with exactly 1/3 a 10 m grid's (30, 30) offsets would fall on the cutoff.
CUTOFF_FRACTION = 0.33333


def default_cutoff(coords: np.ndarray) -> float:
    """gstat's default cutoff: :data:`CUTOFF_FRACTION` (about a third) of the bounding-box
    diagonal of ``coords``."""
    coords = np.asarray(coords, dtype=float)
    span = coords.max(axis=0) - coords.min(axis=0)
    return float(math.sqrt(float(span @ span)) * CUTOFF_FRACTION)


def get_estimator(name: str) -> Estimator:
    """The estimator registered under ``name``.

    Raises
    ------
    UnknownModelError
        For an unknown name (the message lists the known ones).
    """
    key = str(name).strip().lower()
    if key not in ESTIMATORS:
        raise UnknownModelError(
            f"unknown variogram estimator {name!r}; known: {', '.join(ESTIMATORS)}"
        )
    return ESTIMATORS[key]


def _check_inputs(coords, values) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(coords, dtype=float)
    v = np.asarray(values, dtype=float).ravel()
    if c.ndim != 2 or c.shape[1] not in (2, 3):
        raise InputDataError(f"coordinates must have shape (n, 2) or (n, 3), got {c.shape!r}")
    if c.shape[0] != v.shape[0]:
        raise InputDataError(f"{c.shape[0]!r} coordinates but {v.shape[0]!r} values")
    if c.shape[0] < 2:
        raise InputDataError(f"a variogram needs at least 2 points, got {c.shape[0]!r}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(v))):
        raise InputDataError("coordinates and values must be finite (no NaN or inf)")
    return c, v


@dataclass(frozen=True)
class _Selector:
    direction: float | None
    tolerance: float
    bandwidth: float | None
    dip: float | None

    def row(self, ndim: int) -> np.ndarray:
        """``[omni, use_3d, ux, uy, uz, cos_lo, bandwidth, cos_hi, edge_rule]`` for the
        compiled loop (:func:`.pairs._add_pair`)."""
        if self.direction is None:
            return np.array([1.0, 0, 0, 0, 0, 0, 0, 0, 0])
        az = math.radians(self.direction)
        use_3d = self.dip is not None and ndim == 3
        dp = math.radians(self.dip) if use_3d else 0.0
        u = (math.sin(az) * math.cos(dp), math.cos(az) * math.cos(dp), math.sin(dp))
        cos_tol = math.cos(math.radians(self.tolerance))
        # a relative slack keeps pairs exactly on the cone's edge despite round-off; those
        # within the slack are counted on one side only (horizontal cones of < 90 degrees)
        cos_lo, cos_hi = cos_tol * (1.0 - 1e-12), cos_tol * (1.0 + 1e-12)
        edge_rule = float(self.tolerance < 90.0 and not use_3d)
        bw = math.inf if self.bandwidth is None else self.bandwidth * (1.0 + 1e-12)
        return np.array([0.0, float(use_3d), *u, cos_lo, bw, cos_hi, edge_rule])


def selector_rows(selectors: Sequence[_Selector], ndim: int) -> np.ndarray:
    """The selectors as rows of the compiled loop's table."""
    return np.array([s.row(ndim) for s in selectors], dtype=float).reshape(-1, SELECTOR_WIDTH)


def _accumulate(
    coords: np.ndarray,
    values: np.ndarray,
    cutoff: float,
    width: float,
    n_bins: int,
    est: Estimator,
    selectors: Sequence[_Selector],
    progress: ProgressFn | None,
    should_stop: StopFn | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per selector and bin: sum of distances, sum of the pair statistic, pair count."""
    sel = selector_rows(selectors, coords.shape[1])
    # rounds of about 200 points each (each point pairs with thousands: at 50,000 points a
    # round takes about 0.1 s), at least one, and at least two chunks per thread in a round:
    # progress and cancel between them. The sums are per chunk, so rounds change no float.
    import numba

    per_round = 2 * max(1, numba.get_num_threads())
    rounds = min(max(1, N_CHUNKS // per_round), max(1, coords.shape[0] // 200))

    def on_round(fraction: float) -> None:
        check_cancel(should_stop)
        if progress is not None:
            progress(fraction, "variogram pairs")

    check_cancel(should_stop)
    return grid_sums(coords, values, cutoff, width, n_bins, est.stat_code, sel, rounds,
                     on_round)


def subsample(n: int, max_points: int | None, seed: int) -> np.ndarray | None:
    """Indices (sorted) of the seeded random subsample of ``max_points`` of ``n`` points, or
    None when all are used (``n <= max_points`` or ``max_points`` is None/0)."""
    if max_points is not None and (int(max_points) < 0 or int(max_points) == 1):
        raise InputDataError(f"the variogram subsample needs at least 2 points (or 0 for all "
                             f"points), not {max_points!r}")
    if not max_points or n <= max_points:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(max_points), replace=False))


def default_tolerance(directions: Sequence[float | None]) -> float:
    """gstat's default angular tolerance: 90 degrees / the number of directions."""
    k = sum(d is not None for d in directions)
    return 90.0 / k if k else 90.0


def _settings(coords, cutoff, width, n_lags, tolerance, bandwidth) -> tuple[float, float, int]:
    if cutoff is None:
        cutoff = default_cutoff(coords)
    cutoff = float(cutoff)
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise InputDataError(f"the variogram cutoff must be > 0, got {cutoff!r}")
    if width is None:
        if int(n_lags) < 1:
            raise InputDataError(f"the number of lags must be >= 1, got {n_lags!r}")
        width = cutoff / int(n_lags)
    width = float(width)
    if not (math.isfinite(width) and width > 0):
        raise InputDataError(f"the lag width must be > 0, got {width!r}")
    n_bins = max(1, int(math.ceil(cutoff / width - 1e-9)))
    if not 0.0 < float(tolerance) <= 90.0:
        raise InputDataError(f"the angular tolerance must be in (0, 90], got {tolerance!r}")
    if bandwidth is not None and not float(bandwidth) > 0:
        raise InputDataError(f"the bandwidth must be > 0, got {bandwidth!r}")
    return cutoff, width, n_bins


@dataclass(frozen=True)
class VariogramPlan:
    """Everything fixed before the pairs are visited: the points used (after any subsample),
    the bins and the direction selectors. :meth:`sums` visits the pairs,
    :meth:`variograms` turns (possibly edited, see :mod:`.folds`) sums into variograms."""

    coords: np.ndarray
    values: np.ndarray
    used: np.ndarray | None
    n_points: int
    seed: int
    est: Estimator
    cutoff: float
    width: float
    n_bins: int
    directions: tuple[float | None, ...]
    selectors: tuple[_Selector, ...]

    @classmethod
    def build(cls, coords, values, directions, *, cutoff=None, width=None,
              n_lags=DEFAULT_LAGS, estimator="matheron", tolerance=None, bandwidth=None,
              dip=None, max_points=DEFAULT_MAX_POINTS,
              seed=DEFAULT_SUBSAMPLE_SEED) -> VariogramPlan:
        """Check the inputs and settings (see :func:`directional_variograms`)."""
        c, v = _check_inputs(coords, values)
        est = get_estimator(estimator)
        if tolerance is None:
            tolerance = default_tolerance(directions)
        cutoff, width, n_bins = _settings(c, cutoff, width, n_lags, tolerance, bandwidth)
        bw = None if bandwidth is None else float(bandwidth)
        dp = None if dip is None or c.shape[1] == 2 else float(dip)
        selectors = tuple(
            _Selector(None if d is None else float(d) % 180.0, float(tolerance), bw, dp)
            for d in directions
        )
        used = subsample(c.shape[0], max_points, seed)
        if used is not None:
            logger.info("variogram: a random subsample of %d of %d points (seed %d)",
                        used.size, c.shape[0], seed)
            c, v = c[used], v[used]
        return cls(np.ascontiguousarray(c), np.ascontiguousarray(v), used,
                   int(len(values)), int(seed), est, cutoff, width, n_bins,
                   tuple(None if d is None else float(d) for d in directions), selectors)

    @property
    def rows(self) -> np.ndarray:
        """The direction selectors as the compiled loop's table."""
        return selector_rows(self.selectors, self.coords.shape[1])

    def sums(self, progress: ProgressFn | None = None, should_stop: StopFn | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per direction and bin: sums of distances and of the pair statistic, pair counts."""
        return _accumulate(self.coords, self.values, self.cutoff, self.width, self.n_bins,
                           self.est, self.selectors, progress, should_stop)

    def variograms(self, sd: np.ndarray, ss: np.ndarray, sc: np.ndarray,
                   n_used: int | None = None) -> list[EmpiricalVariogram]:
        """The variograms of these sums (``n_used``: points behind them, default all used)."""
        n_used = self.coords.shape[0] if n_used is None else int(n_used)
        out, empty = [], []
        for d, sel, sdk, ssk, sck in zip(self.directions, self.selectors, sd, ss, sc):
            ok = sck > 0
            cnt = sck[ok]
            gamma = self.est.finalize(ssk[ok] / cnt, cnt.astype(float))
            out.append(
                EmpiricalVariogram(
                    lags=sdk[ok] / cnt,
                    gamma=np.asarray(gamma, dtype=float),
                    npairs=cnt,
                    direction=d,
                    tolerance=sel.tolerance,
                    estimator=self.est.name,
                    cutoff=self.cutoff,
                    width=self.width,
                    bandwidth=None if d is None else sel.bandwidth,
                    dip=None if d is None else sel.dip,
                    n_points=self.n_points,
                    n_used=n_used,
                    subsample_seed=None if self.used is None else self.seed,
                )
            )
            if not np.any(ok):
                empty.append(d)
        if empty:  # one warning, however many directions (3,600 printed 849 lines)
            shown = ", ".join(repr(d) for d in empty[:5]) + (", ..." if len(empty) > 5 else "")
            logger.warning("no pairs within the cutoff %r for %d of %d direction(s): %s",
                           self.cutoff, len(empty), len(self.directions), shown)
        return out


def directional_variograms(
    coords: np.ndarray,
    values: np.ndarray,
    directions: Sequence[float | None],
    *,
    cutoff: float | None = None,
    width: float | None = None,
    n_lags: int = DEFAULT_LAGS,
    estimator: str = "matheron",
    tolerance: float | None = None,
    bandwidth: float | None = None,
    dip: float | None = None,
    max_points: int | None = DEFAULT_MAX_POINTS,
    seed: int = DEFAULT_SUBSAMPLE_SEED,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> list[EmpiricalVariogram]:
    """Several experimental variograms from one pass over the pairs.

    Parameters
    ----------
    coords : ndarray, shape (n_points, 2) or (n_points, 3)
        Point coordinates.
    values : ndarray, shape (n_points,)
        Values at the points.
    directions : sequence of float or None
        Azimuths in degrees clockwise from north; None gives the omnidirectional variogram.
    cutoff, width, n_lags, estimator, bandwidth, dip, max_points, seed
        See :func:`empirical_variogram`.
    tolerance : float, optional
        Angular tolerance in degrees; default 90 / the number of directions (gstat).
    progress, should_stop : callable, optional
        Progress and cancellation callbacks (checked between rounds of pairs).

    Returns
    -------
    list of EmpiricalVariogram
        One per direction, in the given order.
    """
    plan = VariogramPlan.build(coords, values, directions, cutoff=cutoff, width=width,
                               n_lags=n_lags, estimator=estimator, tolerance=tolerance,
                               bandwidth=bandwidth, dip=dip, max_points=max_points, seed=seed)
    return plan.variograms(*plan.sums(progress, should_stop))


def empirical_variogram(
    coords: np.ndarray,
    values: np.ndarray,
    *,
    cutoff: float | None = None,
    width: float | None = None,
    n_lags: int = DEFAULT_LAGS,
    estimator: str = "matheron",
    direction: float | None = None,
    tolerance: float | None = None,
    bandwidth: float | None = None,
    dip: float | None = None,
    max_points: int | None = DEFAULT_MAX_POINTS,
    seed: int = DEFAULT_SUBSAMPLE_SEED,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> EmpiricalVariogram:
    """Experimental variogram of ``values`` at ``coords``.

    Parameters
    ----------
    coords : ndarray, shape (n_points, 2) or (n_points, 3)
        Point coordinates (projected units).
    values : ndarray, shape (n_points,)
        Values at the points.
    cutoff : float, optional
        Largest pair distance; default one third of the bounding-box diagonal (gstat).
    width : float, optional
        Lag width; default ``cutoff / n_lags``.
    n_lags : int
        Number of lags when ``width`` is not given (default 15, as gstat).
    estimator : {"matheron", "cressie"}
        Semivariance estimator.
    direction : float, optional
        Azimuth in degrees clockwise from north; None (default) for omnidirectional.
    tolerance : float, optional
        Angular tolerance in degrees, in (0, 90]; default 90 for one direction (gstat's
        ``90 / number of directions``).
    bandwidth : float, optional
        Maximum distance of a pair offset from the direction line.
    dip : float, optional
        3D only: dip of the direction in degrees (positive upwards); None = horizontal
        projection only.
    max_points : int or None
        Above this many points, the pairs of a seeded random subsample of ``max_points``
        points are used (:data:`DEFAULT_MAX_POINTS`; None or 0: always all points). The
        result records ``n_used`` and ``subsample_seed``.
    seed : int
        Seed of that subsample.
    progress, should_stop : callable, optional
        Progress and cancellation callbacks.

    Returns
    -------
    EmpiricalVariogram

    Raises
    ------
    InputDataError
        Bad shapes, non-finite values, fewer than 2 points, bad settings.
    UnknownModelError
        Unknown estimator.

    Notes
    -----
    Matheron: :math:`\\hat\\gamma(h) = \\frac{1}{2N(h)} \\sum (z_i - z_j)^2`.
    Cressie-Hawkins: :math:`2\\hat\\gamma(h) = \\bar{|z_i - z_j|^{1/2}}^4 / (0.457 + 0.494/N(h))`.

    References
    ----------
    Cressie, N. & Hawkins, D. M. (1980). Robust estimation of the variogram: I.
    Mathematical Geology 12, 115-125.
    """
    return directional_variograms(
        coords,
        values,
        [direction],
        cutoff=cutoff,
        width=width,
        n_lags=n_lags,
        estimator=estimator,
        tolerance=tolerance,
        bandwidth=bandwidth,
        dip=dip,
        max_points=max_points,
        seed=seed,
        progress=progress,
        should_stop=should_stop,
    )[0]
