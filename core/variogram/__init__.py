"""Variography: variogram models, experimental variograms, fitting and serialisation.

The numba kernels (:mod:`.kernels`) are not imported here, so that importing the models stays
cheap; import them explicitly where compiled loops are needed.
"""

from .models import (
    ALIASES,
    MODELS,
    Anisotropy,
    BaseModel,
    Structure,
    VariogramModel,
    model_class,
    parse_model,
    register,
)

__all__ = [
    "ALIASES",
    "MODELS",
    "Anisotropy",
    "BaseModel",
    "Structure",
    "VariogramModel",
    "model_class",
    "parse_model",
    "register",
]
