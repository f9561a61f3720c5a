"""The provider's algorithms, listed explicitly (one per module)."""

from .cross_validate import CrossValidate
from .fit_variogram import FitVariogram
from .gaussian_simulation import GaussianSimulation
from .hybrid_interpolation import HybridInterpolation
from .kriging_external_drift import KrigingExternalDrift
from .ordinary_kriging import OrdinaryKriging
from .predict_hybrid import PredictHybrid
from .train_hybrid import TrainHybrid

ALGORITHMS = (
    FitVariogram,
    OrdinaryKriging,
    KrigingExternalDrift,
    CrossValidate,
    TrainHybrid,
    PredictHybrid,
    HybridInterpolation,
    GaussianSimulation,
)

__all__ = ["ALGORITHMS"]
