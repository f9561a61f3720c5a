"""Split-conformal prediction intervals and exceedance probabilities.

The hybrid model's out-of-fold residuals at the training samples (each sample predicted by
the member that did not train on it, :mod:`.train`) are normalised by the combined standard
deviation ``sigma = sqrt(ensemble variance + kriging variance)`` (transformed units). The
conformal quantile ``q`` of the absolute normalised residuals gives intervals
``prediction ± q · sigma`` with finite-sample marginal coverage ``>= 1 - alpha`` when the
calibration residuals are exchangeable with the new ones (Lei et al. 2018, "locally
weighted" split conformal). Exceedance probabilities use a Gaussian predictive distribution
whose scale is ``sigma`` times the root-mean-square normalised residual.

References
----------
Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J., Wasserman, L. (2018). Distribution-free
predictive inference for regression. *JASA* 113(523), 1094-1111.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from ..errors import InputDataError

logger = logging.getLogger(__name__)


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest score (the split-conformal quantile).

    With too few scores for that rank the largest score is returned and a warning logged
    (the nominal coverage can then not be guaranteed).

    Raises
    ------
    InputDataError
        No finite score, or ``alpha`` outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), not {alpha!r}")
    s = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    n = s.size
    if n == 0:
        raise InputDataError("no out-of-fold residuals to calibrate the intervals with")
    rank = math.ceil((n + 1) * (1.0 - alpha))
    if rank > n:
        logger.warning(
            "only %d calibration residuals: too few for %.0f%% conformal intervals; using the "
            "largest", n, 100 * (1 - alpha),
        )
        rank = n
    return float(s[rank - 1])


@dataclass(frozen=True)
class Calibration:
    """A fitted interval calibration (transformed units).

    Attributes
    ----------
    alpha : float
        Miscoverage; intervals are nominally ``1 - alpha``.
    quantile : float
        Conformal quantile ``q`` of ``|residual| / sigma``.
    scale : float
        Root-mean-square of ``residual / sigma`` (the Gaussian scale factor).
    n : int
        Number of calibration residuals.
    """

    alpha: float
    quantile: float
    scale: float
    n: int

    def interval(self, prediction: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds ``prediction ∓ q · sigma``."""
        half = self.quantile * np.asarray(sigma, dtype=float)
        return prediction - half, prediction + half

    def predictive_std(self, sigma: np.ndarray) -> np.ndarray:
        """Calibrated standard deviation ``scale · sigma``."""
        return self.scale * np.asarray(sigma, dtype=float)

    def exceedance(self, prediction: np.ndarray, sigma: np.ndarray,
                   threshold: float) -> np.ndarray:
        """``P(Y > threshold)`` under ``N(prediction, (scale · sigma)^2)``."""
        sd = np.maximum(self.predictive_std(sigma), 1e-300)
        with np.errstate(invalid="ignore"):
            return ndtr((np.asarray(prediction, dtype=float) - threshold) / sd)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(float(d["alpha"]), float(d["quantile"]), float(d["scale"]), int(d["n"]))


def calibrate(observed: np.ndarray, predicted: np.ndarray, sigma: np.ndarray,
              alpha: float = 0.1) -> Calibration:
    """Fit a :class:`Calibration` on out-of-fold predictions.

    Parameters
    ----------
    observed, predicted, sigma : ndarray, shape (n,)
        Observations, out-of-fold predictions and their combined standard deviations
        (transformed units). Non-finite entries and ``sigma <= 0`` are ignored.
    alpha : float
        Miscoverage (0.1 for 90 % intervals).

    Returns
    -------
    Calibration
    """
    obs = np.asarray(observed, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    ok = np.isfinite(obs) & np.isfinite(pred) & np.isfinite(sig) & (sig > 0)
    z = (obs[ok] - pred[ok]) / sig[ok]
    q = conformal_quantile(np.abs(z), alpha)
    scale = float(np.sqrt(np.mean(z * z))) if z.size else 1.0
    return Calibration(alpha=float(alpha), quantile=q, scale=max(scale, 1e-12), n=int(z.size))
