"""Checks of finished kriging results before they are written (used by the commands).

**Implausible estimates** (issue 11, B1): after any back-transform, an estimate more than
:data:`OUTPUT_RANGE_FACTOR` data ranges outside the data's range, or of the wrong sign when every
sample has one sign (zinc is never negative; with zeros among the samples a dip of
:data:`SIGN_TOLERANCE` of the range is kept), is not a prediction but the symptom of an unsuitable model (a power model near
alpha 2 under a log transform: log-variances of 1e6, back-transformed to 3e38) or of an
ill-conditioned system. Such an estimate is written as **nodata**, with its variance, and
counted (``n_implausible`` in ``kriging.json``, one warning). So no value beyond float32's range
is ever written as valid data, and the map never shows negative concentrations.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np

from ..errors import InputDataError

logger = logging.getLogger(__name__)


def check_estimates(estimate: np.ndarray, result, model, n_implausible: int = 0) -> None:
    """Refuse a result without a single finite estimate; warn about non-finite cells.

    ``estimate`` is what will be written (after any back-transform, which can overflow).
    """
    est = np.asarray(estimate, dtype=float)
    check_estimate_counts(est.size, int((~np.isfinite(est)).sum()), result.n_missing,
                          getattr(result, "n_unresolved", 0), model, n_implausible)


#: Estimates more than this many data ranges outside the data's range are implausible.
OUTPUT_RANGE_FACTOR = 1.0
#: For data with zeros and no negatives (or the mirror image), estimates of the other sign
#: beyond this fraction of the range are implausible (ordinary kriging may dip slightly below
#: 0 next to zeros: that is kept). For strictly positive data (zinc), any negative estimate is.
SIGN_TOLERANCE = 0.02


class Band(NamedTuple):
    """Plausible estimates lie in ``low..high`` with a variance of at most ``max_variance``
    (bounded only under a log back-transform: :func:`narrowed_by_log_band`)."""

    low: float
    high: float
    max_variance: float = math.inf


def plausible_band(values: np.ndarray) -> Band:
    """The :class:`Band` of plausible estimates for data ``values`` (in the same units)."""
    v = np.asarray(values, dtype=float)
    lo, hi = float(v.min()), float(v.max())
    span = (hi - lo) or max(abs(hi), 1.0)
    low, high = lo - OUTPUT_RANGE_FACTOR * span, hi + OUTPUT_RANGE_FACTOR * span
    if lo >= 0:
        low = max(low, 0.0 if lo > 0 else -SIGN_TOLERANCE * span)
    if hi <= 0:
        high = min(high, 0.0 if hi < 0 else SIGN_TOLERANCE * span)
    return Band(low, high)


def narrowed_by_log_band(band: Band, log_values: np.ndarray) -> Band:
    """``band`` (data units) narrowed to the back-transformed plausible band of the log data.

    Under a log transform the kriging is done in log units, so an estimate more than a log
    range below the data (``exp`` of it, e.g. 0 ppm after an underflow) is as implausible as
    one far above (reliability report, row 75: 965 cells of exactly 0 ppm with data 113..1839).
    ``max_variance`` bounds the back-transformed variance: there the estimate is
    ``exp(m + s2/2)``, so a huge log-variance ``s2`` makes it garbage even where it lands in
    the band by chance (row 75: variances up to 1.8e38 beside plausible-looking estimates). A
    standard deviation of more than :data:`LOG_STD_FACTOR` band widths is refused; only under
    a log transform, because elsewhere the estimate does not depend on the variance (a sill of
    1e300 keeps its map, issue 11 D6).
    """
    log_band = plausible_band(log_values)
    with np.errstate(over="ignore", under="ignore"):
        low = max(band.low, float(np.exp(log_band.low)))
        high = min(band.high, float(np.exp(log_band.high)))
    return Band(low, high, (LOG_STD_FACTOR * (high - low)) ** 2)


#: Under a log transform, a back-transformed standard deviation of more than this many
#: plausible-band widths marks the estimate implausible.
LOG_STD_FACTOR = 10.0


def drop_implausible(estimate: np.ndarray, variance: np.ndarray,
                     band: Band | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(estimate, variance, mask)``: both set to NaN where the estimate is outside ``band``
    (or its variance above the band's bound) or infinite (``mask``; NaN estimates, left empty
    on purpose, are not in it)."""
    est = np.asarray(estimate, dtype=float)
    var = np.asarray(variance, dtype=float)
    if band is None:
        return est, var, np.zeros(est.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(est) | (est < band.low) | (est > band.high) | (var > band.max_variance)
    if not bad.any():
        return est, var, bad
    return np.where(bad, np.nan, est), np.where(bad, np.nan, var), bad


def warn_implausible(n_implausible: int, n: int, band: Band | None, model) -> None:
    if n_implausible:
        logger.warning(
            "%d of %d estimate(s) are implausible (outside %.4g..%.4g, far beyond the data's "
            "range) and are written as nodata: the variogram %r does not suit the data (a "
            "smooth model or near-duplicate samples without nugget, or variances that overflow "
            "the back-transform); add a nugget or choose another model", n_implausible, n,
            band.low, band.high, model.to_text())


def check_estimate_counts(n: int, n_nonfinite: int, n_missing: int, n_unresolved: int,
                          model, n_implausible: int = 0) -> None:
    """:func:`check_estimates` from counts (a streamed grid holds no estimate array)."""
    if n and n_nonfinite == n:
        why = ("no target has enough neighbours (see --min-neighbours / --max-distance)"
               if n_missing == n else
               f"the variogram {model.to_text()!r} does not suit the data (sill far from the "
               "data's variance?) or the back-transform overflows")
        raise InputDataError(f"no target got a finite estimate: {why}")
    n_bad = int(n_nonfinite) - int(n_missing) - int(n_unresolved) - int(n_implausible)
    if n_bad > 0:
        logger.warning("%d of %d estimate(s) are not finite (overflow) and are written as "
                       "nodata", n_bad, n)


def check_variance_counts(n: int, n_nonfinite: int, n_nonfinite_estimate: int, model) -> None:
    """Warn where kriging variances are nodata although the estimate is not: beyond the
    float32 range of the raster (a sill of 1e39 or more). The estimates do not depend on the
    sill's scale, so the map itself is kept."""
    extra = int(n_nonfinite) - int(n_nonfinite_estimate)
    if extra > 0:
        logger.warning("%d of %d kriging variance(s) are beyond the float32 range of the "
                       "raster and are written as nodata: the variogram %r has a sill far from "
                       "the data's variance; rescale the data or the model", extra, n,
                       model.to_text())


def stability_summary(estimate: np.ndarray, variance: np.ndarray, result) -> dict:
    """Counts for ``kriging.json``: unstable systems and non-finite (nodata) cells."""
    return {
        "n_unstable": int(getattr(result, "n_unstable", 0)),
        "n_unresolved": int(getattr(result, "n_unresolved", 0)),
        "n_nonfinite_estimate": int((~np.isfinite(np.asarray(estimate, dtype=float))).sum()),
        "n_nonfinite_variance": int((~np.isfinite(np.asarray(variance, dtype=float))).sum()),
    }
