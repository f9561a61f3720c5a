"""Ordinary and simple kriging (local or global neighbourhood, 2D/3D, anisotropic).

Public API::

    from gcnn_rnn.core.kriging import KrigingConfig, KrigingResult, krige, krige_grid
"""

from __future__ import annotations

from .api import krige, krige_grid
from .config import KrigingConfig, KrigingResult

__all__ = ["KrigingConfig", "KrigingResult", "krige", "krige_grid"]
