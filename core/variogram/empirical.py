"""Experimental (sample) variograms: omnidirectional and directional, 2D and 3D.

Defaults follow gstat's ``variogram()``: the cutoff is one third of the diagonal of the data's
bounding box and the lag width is ``cutoff / 15``. A pair at distance ``d <= cutoff`` goes to
bin ``floor(d / width)`` (the last bin also takes ``d == cutoff``); per bin the result holds the
mean pair distance, the estimate and the pair count; empty bins are dropped.

Directions are azimuths in degrees clockwise from north (the +y axis). A pair belongs to
direction ``phi`` when the horizontal angle between its offset (either orientation) and ``phi``
is at most ``tolerance`` and, if ``bandwidth`` is given, its horizontal distance from the line
through the first point in direction ``phi`` is at most ``bandwidth`` (GSLIB). In 3D this uses
the horizontal projection (gstat with ``tol.ver = 90``) unless ``dip`` is given; then the
angle is measured in 3D between the offset and the unit vector ``(sin az cos dip,
cos az cos dip, sin dip)`` (dip in degrees, positive upwards; 90 = vertical) and the bandwidth,
if any, is the 3D distance from that line.

Estimators are plug-ins of one shape (:class:`Estimator`): a per-pair statistic that is summed
per bin and a function of the bin mean and pair count giving the semivariance:

* ``matheron``: ``gamma = mean((z_i - z_j)**2) / 2``;
* ``cressie`` (Cressie & Hawkins 1980): ``gamma = mean(|z_i - z_j|**0.5)**4 /
  (2 (0.457 + 0.494 / N))``.

Pairs are visited by a compiled loop in blocks of rows, so memory does not grow with the
number of pairs and ``progress``/``should_stop`` are honoured between blocks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ..errors import InputDataError, UnknownModelError
from ..progress import ProgressFn, StopFn, check_cancel

logger = logging.getLogger(__name__)

DEFAULT_LAGS = 15
DEFAULT_TOLERANCE = 22.5
_BLOCK_PAIRS = 2_000_000


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
        )


def default_cutoff(coords: np.ndarray) -> float:
    """gstat's default cutoff: one third of the bounding-box diagonal of ``coords``."""
    coords = np.asarray(coords, dtype=float)
    return float(np.linalg.norm(coords.max(axis=0) - coords.min(axis=0)) / 3.0)


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
        """``[omni, use_3d, ux, uy, uz, cos_tol, bandwidth]`` for the compiled loop."""
        if self.direction is None:
            return np.array([1.0, 0, 0, 0, 0, 0, 0])
        az = math.radians(self.direction)
        use_3d = self.dip is not None and ndim == 3
        dp = math.radians(self.dip) if use_3d else 0.0
        u = (math.sin(az) * math.cos(dp), math.cos(az) * math.cos(dp), math.sin(dp))
        # a relative slack keeps pairs exactly on the cone's edge despite round-off
        cos_tol = math.cos(math.radians(self.tolerance)) * (1.0 - 1e-12)
        bw = math.inf if self.bandwidth is None else self.bandwidth * (1.0 + 1e-12)
        return np.array([0.0, float(use_3d), *u, cos_tol, bw])


@njit(cache=True)
def _pair_loop(coords, values, start, stop, cutoff, width, n_bins, stat_code, sel, sd, ss, sc):
    n, ndim = coords.shape
    n_sel = sel.shape[0]
    for i in range(start, stop):
        for j in range(i + 1, n):
            dx = coords[j, 0] - coords[i, 0]
            dy = coords[j, 1] - coords[i, 1]
            dz = coords[j, 2] - coords[i, 2] if ndim == 3 else 0.0
            hor2 = dx * dx + dy * dy
            d2 = hor2 + dz * dz
            dist = math.sqrt(d2)
            if dist > cutoff:
                continue
            b = min(int(dist / width), n_bins - 1)
            diff = values[j] - values[i]
            stat = diff * diff if stat_code == 0 else math.sqrt(abs(diff))
            for k in range(n_sel):
                if sel[k, 0] == 0.0:
                    if sel[k, 1] != 0.0:
                        length2 = d2
                        along = abs(dx * sel[k, 2] + dy * sel[k, 3] + dz * sel[k, 4])
                    else:
                        length2 = hor2
                        along = abs(dx * sel[k, 2] + dy * sel[k, 3])
                    if length2 <= 0.0 or along < math.sqrt(length2) * sel[k, 5]:
                        continue
                    if length2 - along * along > sel[k, 6] * sel[k, 6]:
                        continue
                sd[k, b] += dist
                ss[k, b] += stat
                sc[k, b] += 1


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
    n, ndim = coords.shape
    sel = np.array([s.row(ndim) for s in selectors], dtype=float).reshape(-1, 7)
    sd = np.zeros((len(selectors), n_bins))
    ss = np.zeros((len(selectors), n_bins))
    sc = np.zeros((len(selectors), n_bins), dtype=np.int64)
    block = max(1, _BLOCK_PAIRS // max(n, 1))
    c = np.ascontiguousarray(coords, dtype=float)
    v = np.ascontiguousarray(values, dtype=float)
    for start in range(0, n - 1, block):
        check_cancel(should_stop)
        stop = min(start + block, n - 1)
        _pair_loop(c, v, start, stop, cutoff, width, n_bins, est.stat_code, sel, sd, ss, sc)
        if progress is not None:
            progress(stop * (2 * n - stop - 1) / (n * (n - 1)), "variogram pairs")
    return sd, ss, sc


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


def directional_variograms(
    coords: np.ndarray,
    values: np.ndarray,
    directions: Sequence[float | None],
    *,
    cutoff: float | None = None,
    width: float | None = None,
    n_lags: int = DEFAULT_LAGS,
    estimator: str = "matheron",
    tolerance: float = DEFAULT_TOLERANCE,
    bandwidth: float | None = None,
    dip: float | None = None,
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
    cutoff, width, n_lags, estimator, tolerance, bandwidth, dip
        See :func:`empirical_variogram`.
    progress, should_stop : callable, optional
        Progress and cancellation callbacks (checked between blocks of pairs).

    Returns
    -------
    list of EmpiricalVariogram
        One per direction, in the given order.
    """
    c, v = _check_inputs(coords, values)
    est = get_estimator(estimator)
    cutoff, width, n_bins = _settings(c, cutoff, width, n_lags, tolerance, bandwidth)
    bw = None if bandwidth is None else float(bandwidth)
    dp = None if dip is None or c.shape[1] == 2 else float(dip)
    selectors = [
        _Selector(None if d is None else float(d) % 180.0, float(tolerance), bw, dp)
        for d in directions
    ]
    sums = _accumulate(c, v, cutoff, width, n_bins, est, selectors, progress, should_stop)
    out = []
    for d, sd, ss, sc in zip(directions, *sums):
        ok = sc > 0
        cnt = sc[ok]
        gamma = est.finalize(ss[ok] / cnt, cnt.astype(float))
        out.append(
            EmpiricalVariogram(
                lags=sd[ok] / cnt,
                gamma=np.asarray(gamma, dtype=float),
                npairs=cnt,
                direction=None if d is None else float(d),
                tolerance=float(tolerance),
                estimator=est.name,
                cutoff=cutoff,
                width=width,
                bandwidth=None if d is None else bw,
                dip=None if d is None else dp,
            )
        )
        if not np.any(ok):
            logger.warning("no pairs within the cutoff %r for direction %r", cutoff, d)
    return out


def empirical_variogram(
    coords: np.ndarray,
    values: np.ndarray,
    *,
    cutoff: float | None = None,
    width: float | None = None,
    n_lags: int = DEFAULT_LAGS,
    estimator: str = "matheron",
    direction: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    bandwidth: float | None = None,
    dip: float | None = None,
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
    tolerance : float
        Angular tolerance in degrees, in (0, 90] (default 22.5).
    bandwidth : float, optional
        Maximum distance of a pair offset from the direction line.
    dip : float, optional
        3D only: dip of the direction in degrees (positive upwards); None = horizontal
        projection only.
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
        progress=progress,
        should_stop=should_stop,
    )[0]
