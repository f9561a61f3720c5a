"""Ordinary and simple kriging (local or global neighbourhood, 2D/3D, anisotropic), and
kriging with an external drift (:mod:`.drift`).

Public API::

    from gcnn_rnn.core.kriging import KrigingConfig, KrigingResult, krige, krige_grid
    from gcnn_rnn.core.kriging import krige_external_drift
"""

from __future__ import annotations

from .api import krige, krige_grid
from .config import KrigingConfig, KrigingResult
from .drift import DriftResult, krige_external_drift

__all__ = ["DriftResult", "KrigingConfig", "KrigingResult", "krige", "krige_external_drift",
           "krige_grid"]
