"""Geometric anisotropy of variogram models (GSLIB / gstat rotation convention)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputDataError


def finite_number(value: Any, what: str) -> float:
    """``float(value)``, or :class:`InputDataError` naming ``what`` if not a finite number."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputDataError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InputDataError(f"{what} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Anisotropy:
    """Geometric anisotropy (GSLIB / gstat convention), shared by all structures.

    Parameters
    ----------
    azimuth : float
        Direction of the major axis in degrees clockwise from north (GSLIB ``ang1``).
    ratio : float
        Minor (horizontal) / major range ratio, in (0, 1] (GSLIB ``anis1``).
    dip : float
        3D only: dip of the major axis in degrees, positive upwards as in GSLIB's
        ``ang2`` (GSLIB rotates by ``-ang2``; a negative value dips downwards).
    plunge : float
        3D only: rotation about the major axis in degrees (GSLIB ``ang3``).
    ratio_vertical : float
        3D only: vertical / major range ratio, in (0, 1] (GSLIB ``anis2``).

    Notes
    -----
    :meth:`matrix` is GSLIB's ``setrot`` matrix: row 1 is the major axis, row 2 the minor axis
    divided by ``ratio``, row 3 the vertical axis divided by ``ratio_vertical``. In 2D it is the
    upper-left 2x2 block (the 3D angles must then be 0). gstat's ``anis = c(p, s)`` and
    ``anis = c(p, q, r, s, t)`` map to ``(azimuth, ratio)`` and
    ``(azimuth, dip, plunge, ratio, ratio_vertical)``.
    """

    azimuth: float = 0.0
    ratio: float = 1.0
    dip: float = 0.0
    plunge: float = 0.0
    ratio_vertical: float = 1.0

    def __post_init__(self) -> None:
        for name in ("azimuth", "dip", "plunge"):
            object.__setattr__(self, name, finite_number(getattr(self, name), f"anisotropy {name}"))
        for name in ("ratio", "ratio_vertical"):
            value = finite_number(getattr(self, name), f"anisotropy {name}")
            if not 0.0 < value <= 1.0:
                raise InputDataError(f"anisotropy {name} must be in (0, 1], got {value!r}")
            object.__setattr__(self, name, value)

    @classmethod
    def from_gslib(cls, angles: Iterable[float], ratios: Iterable[float]) -> Anisotropy:
        """Build from GSLIB ``(ang1, ang2, ang3)`` and ``(anis1, anis2)`` (2D: one of each)."""
        a = [float(v) for v in angles]
        r = [float(v) for v in ratios]
        if not (1 <= len(a) <= 3 and 1 <= len(r) <= 2):
            raise InputDataError(f"anisotropy needs 1-3 angles and 1-2 ratios, got {a!r}, {r!r}")
        a += [0.0] * (3 - len(a))
        r += [1.0] * (2 - len(r))
        return cls(azimuth=a[0], ratio=r[0], dip=a[1], plunge=a[2], ratio_vertical=r[1])

    @property
    def angles(self) -> tuple[float, float, float]:
        """GSLIB ``(ang1, ang2, ang3)`` = ``(azimuth, dip, plunge)``."""
        return (self.azimuth, self.dip, self.plunge)

    @property
    def ratios(self) -> tuple[float, float]:
        """GSLIB ``(anis1, anis2)`` = ``(ratio, ratio_vertical)``."""
        return (self.ratio, self.ratio_vertical)

    @property
    def is_3d(self) -> bool:
        """True when a 3D-only parameter differs from its default."""
        return self.dip != 0.0 or self.plunge != 0.0 or self.ratio_vertical != 1.0

    def matrix(self, ndim: int) -> np.ndarray:
        """Reduction matrix ``(ndim, ndim)``: ``reduced = matrix @ offset``.

        Raises
        ------
        InputDataError
            If ``ndim`` is not 2 or 3, or a 3D anisotropy is applied to 2D data.
        """
        if ndim not in (2, 3):
            raise InputDataError(f"anisotropy needs 2 or 3 dimensions, got {ndim!r}")
        if ndim == 2 and self.is_3d:
            raise InputDataError(f"3D anisotropy {self!r} cannot be applied to 2D coordinates")
        ang1 = self.azimuth % 360.0
        alpha = math.radians(90.0 - ang1 if ang1 < 270.0 else 450.0 - ang1)
        beta, theta = math.radians(-self.dip), math.radians(self.plunge)
        sa, ca = math.sin(alpha), math.cos(alpha)
        sb, cb = math.sin(beta), math.cos(beta)
        st, ct = math.sin(theta), math.cos(theta)
        f1, f2 = 1.0 / self.ratio, 1.0 / self.ratio_vertical
        rot = np.array(
            [
                [cb * ca, cb * sa, -sb],
                [f1 * (-ct * sa + st * sb * ca), f1 * (ct * ca + st * sb * sa), f1 * st * cb],
                [f2 * (st * sa + ct * sb * ca), f2 * (-st * ca + ct * sb * sa), f2 * ct * cb],
            ]
        )
        return rot[:ndim, :ndim].copy()

    def transform(self, offsets: np.ndarray) -> np.ndarray:
        """Reduce offsets (or coordinates) ``(n, d)`` to ``(n, d)``.

        The Euclidean norm of a reduced offset is the isotropic-equivalent distance in units of
        the major range. The map is linear, so it can be applied to coordinates once.
        """
        arr = np.asarray(offsets, dtype=float)
        if arr.ndim != 2:
            raise InputDataError(f"offsets must have shape (n, d), got {arr.shape!r}")
        return arr @ self.matrix(arr.shape[1]).T
