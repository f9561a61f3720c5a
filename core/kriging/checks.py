"""Checks of finished kriging results before they are written (used by the commands)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputDataError

logger = logging.getLogger(__name__)


def check_estimates(estimate: np.ndarray, result, model) -> None:
    """Refuse a result without a single finite estimate; warn about non-finite cells.

    ``estimate`` is what will be written (after any back-transform, which can overflow).
    """
    est = np.asarray(estimate, dtype=float)
    check_estimate_counts(est.size, int((~np.isfinite(est)).sum()), result.n_missing,
                          getattr(result, "n_unresolved", 0), model)


def check_estimate_counts(n: int, n_nonfinite: int, n_missing: int, n_unresolved: int,
                          model) -> None:
    """:func:`check_estimates` from counts (a streamed grid holds no estimate array)."""
    if n and n_nonfinite == n:
        why = ("no target has enough neighbours (see --min-neighbours / --max-distance)"
               if n_missing == n else
               f"the variogram {model.to_text()!r} does not suit the data (sill far from the "
               "data's variance?) or the back-transform overflows")
        raise InputDataError(f"no target got a finite estimate: {why}")
    n_bad = int(n_nonfinite) - int(n_missing) - int(n_unresolved)
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
