"""Configuration and result types of kriging (frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..errors import InputDataError
from ..variogram.anisotropy import finite_number


@dataclass(frozen=True)
class KrigingConfig:
    """How to krige: neighbourhood, simple or ordinary kriging, memory and threads.

    Parameters
    ----------
    neighbours : int
        Number of nearest samples used per target (gstat ``nmax``); ``0`` means all samples
        (global kriging). Nearest by anisotropic distance when the model has an anisotropy
        (as PyKrige, and gstat with ``vdist = TRUE``; gstat's default ranks by Euclidean
        distance).
    min_neighbours : int
        Fewest samples a target needs within ``max_distance`` (gstat ``nmin``); targets with
        fewer get NaN estimate and variance (counted in ``KrigingResult.n_missing``).
    max_distance : float or None
        Only samples at most this far from the target are used (gstat ``maxdist``). Measured
        like the neighbour search: anisotropic distance in units of the major range axis.
    sectors : {0, 4, 8}
        Sector search: samples are taken in order of distance, skipping those whose sector
        already holds ``max(1, neighbours // sectors)``, until ``neighbours`` are chosen
        (GSLIB's octant search, ``noct``; gstat's ``omax`` instead thins the nearest ``nmax``,
        which gives fewer, less spread neighbours). In 2D, 4 sectors are quadrants and 8 are
        45-degree wedges; in 3D, 4 are quadrants of the horizontal offset and 8 are octants.
    mean : float or None
        Known mean: simple kriging with it. ``None``: ordinary kriging.
    chunk_size : int
        Targets per chunk; ``0`` chooses it from ``memory_budget_mb``.
    memory_budget_mb : int
        Working memory allowed for neighbour lists and per-chunk buffers.
    n_jobs : int
        Threads (neighbour search and kriging); ``0`` means all cores.
    """

    neighbours: int = 32
    min_neighbours: int = 1
    max_distance: float | None = None
    sectors: int = 0
    mean: float | None = None
    chunk_size: int = 0
    memory_budget_mb: int = 256
    n_jobs: int = 0

    def __post_init__(self) -> None:
        for name in ("neighbours", "min_neighbours", "chunk_size", "memory_budget_mb", "n_jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise InputDataError(f"{name} must be a non-negative integer, not {value!r}")
            object.__setattr__(self, name, int(value))
        if self.min_neighbours < 1:
            raise InputDataError(f"min_neighbours must be >= 1, not {self.min_neighbours!r}")
        if self.neighbours and self.min_neighbours > self.neighbours:
            raise InputDataError(
                f"min_neighbours ({self.min_neighbours!r}) exceeds neighbours "
                f"({self.neighbours!r})"
            )
        if self.memory_budget_mb < 1:
            raise InputDataError(f"memory_budget_mb must be >= 1, not {self.memory_budget_mb!r}")
        if self.max_distance is not None:
            d = finite_number(self.max_distance, "max_distance")
            if d <= 0:
                raise InputDataError(f"max_distance must be > 0, not {self.max_distance!r}")
            object.__setattr__(self, "max_distance", d)
        if self.sectors not in (0, 4, 8):
            raise InputDataError(f"sectors must be 0, 4 or 8, not {self.sectors!r}")
        if self.mean is not None:
            object.__setattr__(self, "mean", finite_number(self.mean, "mean"))

    @property
    def simple(self) -> bool:
        """True for simple kriging (a known mean)."""
        return self.mean is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KrigingConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        extra = set(d) - known
        if extra:
            raise InputDataError(f"unknown kriging option(s) {sorted(extra)!r}")
        return cls(**dict(d))


@dataclass(frozen=True)
class KrigingResult:
    """Kriging estimates and variances, with optional per-target neighbourhood details.

    Attributes
    ----------
    estimate : ndarray, shape (n_targets,) or the grid's shape
        Kriging estimate; NaN where a target had fewer than ``min_neighbours`` samples.
    variance : ndarray, same shape
        Kriging variance, never negative, 0 at sample locations.
    n_singular : int
        Targets whose kriging system was singular or numerically unstable (duplicate or
        coincident neighbours, ...) and were solved by the pseudo-inverse fallback.
    n_missing : int
        Targets left NaN for lack of neighbours.
    lagrange : ndarray or None
        Ordinary-kriging Lagrange multiplier ``mu`` in the variogram convention
        ``Gamma w + mu 1 = gamma_0`` (so ``variance = w' gamma_0 + mu``); 0 for simple kriging
        and at sample locations. Always filled (it is needed by the lognormal back-transform).
    neighbours : ndarray of int64, shape (n_targets, k) or None
        Sample indices used per target ordered by distance, ``-1`` padding.
    weights : ndarray, shape (n_targets, k) or None
        Kriging weights, aligned with ``neighbours`` (0 at padding).
    distances : ndarray, shape (n_targets, k) or None
        Anisotropic (reduced) distances to the neighbours (``inf`` at padding).
    cov_target : ndarray, shape (n_targets, k) or None
        Covariance between each neighbour and the target (``shift - gamma`` for unbounded
        models; 0 at padding).
    n_unstable : int
        Targets whose estimate was not finite or far outside the data's range (an
        ill-conditioned system, see :mod:`.stability`); re-solved with a tiny nugget.
    n_unresolved : int
        Of those, targets still unstable after that and left NaN.
    """

    estimate: np.ndarray
    variance: np.ndarray
    n_singular: int = 0
    n_missing: int = 0
    lagrange: np.ndarray | None = None
    neighbours: np.ndarray | None = None
    weights: np.ndarray | None = None
    distances: np.ndarray | None = None
    cov_target: np.ndarray | None = None
    n_unstable: int = 0
    n_unresolved: int = 0
