"""Ordinary and simple kriging (local or global neighbourhood, 2D/3D, anisotropic), and
kriging with an external drift / universal kriging, block kriging and measurement error
(:mod:`.universal` over :mod:`.drift`).

Public API::

    from gcnn_rnn.core.kriging import KrigingConfig, KrigingResult, krige, krige_grid
    from gcnn_rnn.core.kriging import krige_external_drift
    from gcnn_rnn.core.kriging import krige_universal, krige_universal_grid
"""

from __future__ import annotations

from .api import krige, krige_grid
from .config import KrigingConfig, KrigingResult
from .drift import DriftResult, krige_external_drift
from .universal import krige_universal, krige_universal_grid

__all__ = ["DriftResult", "KrigingConfig", "KrigingResult", "krige", "krige_external_drift",
           "krige_grid", "krige_universal", "krige_universal_grid"]
