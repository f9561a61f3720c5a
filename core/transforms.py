"""Data transforms applied before variography and kriging, and their back-transforms.

Three transforms share one interface (:func:`fit_transform` → :class:`FittedTransform` with
``forward``, ``back`` and ``inverse``), so the CLI, cross-validation and the hybrid model treat
them alike:

``none``
    Identity.
``log``
    Natural logarithm; every value must be ``> 0`` (no automatic shift is offered: a shifted
    log changes the meaning of the map and the user must decide it).
``nscore``
    Normal-score (Gaussian anamorphosis) with ties and a tail model; see :func:`fit_transform`.

The back-transform of a *kriged* value uses the kriging variance (and, for ordinary kriging
with ``log``, the Lagrange multiplier), see :meth:`FittedTransform.back`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
from scipy.special import ndtri

from .errors import InputDataError

logger = logging.getLogger(__name__)

#: Normal scores beyond which the nscore tails are clamped (``Phi(-5) ~ 2.9e-7``).
TAIL_SCORE = 5.0
#: Data-derived tail limits extend the data range by this fraction of it on each side.
TAIL_FRACTION = 0.05
#: Gauss-Hermite nodes for the expectation back-transform of normal scores.
HERMITE_NODES = 40
_CHUNK = 65536


class Transform(str, Enum):
    """The transforms known to the engine (values used on the CLI and in JSON)."""

    NONE = "none"
    LOG = "log"
    NSCORE = "nscore"


def parse_transform(kind: str | Transform | None) -> Transform:
    """``"log"`` → :attr:`Transform.LOG` etc.; ``None`` means ``none``.

    Raises
    ------
    InputDataError
        For an unknown name.
    """
    if kind is None:
        return Transform.NONE
    if isinstance(kind, Transform):
        return kind
    try:
        return Transform(str(kind).strip().lower())
    except ValueError:
        known = ", ".join(t.value for t in Transform)
        raise InputDataError(f"unknown transform {kind!r}; one of {known}") from None


@dataclass(frozen=True)
class FittedTransform:
    """A transform fitted to one set of values (immutable; serialisable with :meth:`to_dict`).

    Attributes
    ----------
    kind : Transform
        Which transform.
    table_z, table_y : tuple of float
        ``nscore`` only: the sorted distinct data values and their normal scores.
    zmin, zmax : float or None
        ``nscore`` only: the tail limits in data units (values reached at scores
        ``-TAIL_SCORE`` and ``+TAIL_SCORE``).
    n : int
        Number of values the transform was fitted on.
    """

    kind: Transform
    table_z: tuple[float, ...] = field(default=(), repr=False)
    table_y: tuple[float, ...] = field(default=(), repr=False)
    zmin: float | None = None
    zmax: float | None = None
    n: int = 0

    # ----------------------------------------------------------------- forward / inverse
    def forward(self, values: np.ndarray) -> np.ndarray:
        """Transform data values (NaN stays NaN).

        Raises
        ------
        InputDataError
            ``log`` with a value ``<= 0``.
        """
        z = np.asarray(values, dtype=float)
        if self.kind is Transform.NONE:
            return z.copy()
        if self.kind is Transform.LOG:
            _check_positive(z)
            with np.errstate(invalid="ignore"):
                return np.log(z)
        tz, ty = self._table()
        return np.interp(z, tz, ty)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Plain inverse of :meth:`forward` (no variance correction): ``exp`` or the table."""
        y = np.asarray(values, dtype=float)
        if self.kind is Transform.NONE:
            return y.copy()
        if self.kind is Transform.LOG:
            with np.errstate(over="ignore"):
                return np.exp(y)
        tz, ty = self._table()
        return np.interp(y, ty, tz)

    def back(
        self,
        estimate: np.ndarray,
        variance: np.ndarray,
        lagrange: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Back-transform a kriged estimate and variance to data units.

        Parameters
        ----------
        estimate, variance : ndarray, shape (n,)
            Kriging estimate and variance in transformed units (NaN passes through).
        lagrange : ndarray, shape (n,), optional
            Ordinary-kriging Lagrange multiplier ``mu`` in the variogram convention
            (``Gamma w + mu 1 = gamma_0``, ``sigma^2 = w' gamma_0 + mu``), as returned in
            :class:`~gcnn_rnn.core.kriging.KrigingResult`. ``None`` (or simple kriging, where it
            is 0) uses the simple-kriging formula. Only ``log`` uses it.

        Returns
        -------
        estimate, variance : ndarray
            In data units.

        Notes
        -----
        ``log`` (lognormal kriging):

        .. math::  \\hat z = \\exp(\\hat y + \\sigma^2 / 2 - \\mu), \\qquad
                   \\operatorname{var} = \\hat z^2 (\\exp(\\sigma^2) - 1)

        With ``mu = 0`` this is the conditional mean of a lognormal variable under simple
        kriging; with the ordinary-kriging multiplier it is Journel's (1980) unbiased
        lognormal OK estimator (Cressie 1993, eq. 3.2.40). The variance is that of a lognormal
        variable with this mean and log-variance ``sigma^2`` (exact for simple kriging of a
        Gaussian log field, an approximation for OK).

        ``nscore``: the conditional expectation under a Gaussian distribution of the score,
        ``E[phi^-1(Y)]`` and ``Var[phi^-1(Y)]`` with ``Y ~ N(y_hat, sigma^2)``, integrated by
        Gauss-Hermite quadrature with :data:`HERMITE_NODES` nodes, where ``phi^-1`` is the
        table back-transform with its linear tails (multi-Gaussian kriging; exact for simple
        kriging, the usual approximation for OK). With ``sigma^2 = 0`` it is the plain
        table value.

        References
        ----------
        Journel, A. G. (1980). The lognormal approach to predicting local distributions of
        selective mining unit grades. *Mathematical Geology* 12(4), 285-303.
        Cressie, N. (1993). *Statistics for Spatial Data*, revised ed., Wiley, section 3.2.2.
        """
        y = np.asarray(estimate, dtype=float)
        v = np.clip(np.asarray(variance, dtype=float), 0.0, None)
        if self.kind is Transform.NONE:
            return y.copy(), v.copy()
        if self.kind is Transform.LOG:
            mu = 0.0 if lagrange is None else np.asarray(lagrange, dtype=float)
            with np.errstate(over="ignore", invalid="ignore"):
                est = np.exp(y + 0.5 * v - mu)
                var = est * est * np.expm1(v)
            return est, var
        return self._back_nscore(y, v)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (inverse of :meth:`from_dict`)."""
        d: dict[str, Any] = {"kind": self.kind.value, "n": self.n}
        if self.kind is Transform.NSCORE:
            d.update(
                table_z=list(self.table_z), table_y=list(self.table_y),
                zmin=self.zmin, zmax=self.zmax, tail_score=TAIL_SCORE,
            )
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FittedTransform:
        """Rebuild from :meth:`to_dict` output."""
        try:
            kind = parse_transform(d["kind"])
            if kind is not Transform.NSCORE:
                return cls(kind, n=int(d.get("n", 0)))
            return cls(
                kind,
                table_z=tuple(float(v) for v in d["table_z"]),
                table_y=tuple(float(v) for v in d["table_y"]),
                zmin=float(d["zmin"]),
                zmax=float(d["zmax"]),
                n=int(d.get("n", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputDataError(f"invalid transform description {dict(d)!r} ({exc})") from None

    # ----------------------------------------------------------------- internals
    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """The nscore table with its two tail points, both columns increasing."""
        tz, ty = list(self.table_z), list(self.table_y)
        if self.zmin < tz[0]:  # a tail limit equal to the data extreme means a flat tail
            tz, ty = [self.zmin, *tz], [-TAIL_SCORE, *ty]
        if self.zmax > tz[-1]:
            tz, ty = [*tz, self.zmax], [*ty, TAIL_SCORE]
        return np.asarray(tz), np.asarray(ty)

    def _back_nscore(self, y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tz, ty = self._table()
        nodes, weights = np.polynomial.hermite.hermgauss(HERMITE_NODES)
        weights = weights / math.sqrt(math.pi)
        shape = y.shape
        yf, vf = y.ravel(), np.broadcast_to(v, shape).ravel()
        est = np.empty(yf.shape)
        var = np.empty(yf.shape)
        for start in range(0, yf.size, _CHUNK):
            sl = slice(start, start + _CHUNK)
            s = np.sqrt(2.0 * vf[sl])[:, None]
            z = np.interp(yf[sl, None] + s * nodes[None, :], ty, tz)
            m1 = z @ weights
            m2 = (z * z) @ weights
            est[sl] = m1
            var[sl] = np.clip(m2 - m1 * m1, 0.0, None)
        zero = vf == 0.0
        est[zero] = np.interp(yf[zero], ty, tz)
        var[zero] = 0.0
        bad = ~(np.isfinite(yf) & np.isfinite(vf))
        est[bad] = np.nan
        var[bad] = np.nan
        return est.reshape(shape), var.reshape(shape)


def _check_positive(z: np.ndarray) -> None:
    bad = np.flatnonzero(np.isfinite(z) & (z <= 0))
    if bad.size:
        first = float(z.ravel()[bad[0]])
        raise InputDataError(
            f"the log transform needs values > 0, but {bad.size} value(s) are <= 0 "
            f"(first: {first!r} at position {int(bad[0])}); use --transform none or nscore"
        )


def fit_transform(
    values: np.ndarray,
    kind: str | Transform,
    *,
    zmin: float | None = None,
    zmax: float | None = None,
) -> FittedTransform:
    """Fit a transform to data values.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Finite data values.
    kind : {"none", "log", "nscore"} or Transform
        Which transform.
    zmin, zmax : float, optional
        ``nscore`` only: tail limits in data units (must bracket the data). By default they are
        derived from the data: the range extended by :data:`TAIL_FRACTION` of it on each side,
        and ``zmin`` not below 0 when all values are ``>= 0``.

    Returns
    -------
    FittedTransform

    Raises
    ------
    InputDataError
        Non-finite values, ``log`` of values ``<= 0``, fewer than 2 values for ``nscore``, or
        tail limits that do not bracket the data.

    Notes
    -----
    Normal scores: the ``n`` values are ranked; tied values share the mean of their ranks
    ``r``, and score ``y = Phi^-1((r - 0.5) / n)`` (Hazen plotting position), so the scores of
    untied data are symmetric about 0. New values and back-transforms interpolate linearly in
    the table of distinct values and scores. Tails: below the smallest score the table is
    extended linearly to ``(zmin, -TAIL_SCORE)`` and above the largest to
    ``(zmax, +TAIL_SCORE)``; beyond them values are clamped (Deutsch & Journel 1998, GSLIB
    ``nscore``/``backtr`` with linear tails).
    """
    kind = parse_transform(kind)
    z = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(z).all():
        bad = int(np.flatnonzero(~np.isfinite(z))[0])
        raise InputDataError(f"cannot fit a transform to non-finite value {z[bad]!r} at {bad}")
    if kind is Transform.NONE:
        return FittedTransform(kind, n=z.size)
    if kind is Transform.LOG:
        _check_positive(z)
        return FittedTransform(kind, n=z.size)
    if z.size < 2:
        raise InputDataError(f"the normal-score transform needs at least 2 values, got {z.size}")
    uniq, counts = np.unique(z, return_counts=True)
    if uniq.size < 2:
        raise InputDataError(f"the normal-score transform needs distinct values; all are {z[0]!r}")
    upper = np.cumsum(counts)  # rank of the last member of each tie group
    mean_rank = upper - (counts - 1) / 2.0
    scores = ndtri((mean_rank - 0.5) / z.size)
    lo, hi = float(uniq[0]), float(uniq[-1])
    pad = TAIL_FRACTION * (hi - lo)
    if zmin is None:
        zmin = lo - pad
        if lo >= 0 and zmin < 0:
            zmin = 0.0
    if zmax is None:
        zmax = hi + pad
    if not (zmin <= lo and zmax >= hi):
        raise InputDataError(
            f"nscore tail limits zmin={zmin!r}, zmax={zmax!r} must bracket the data [{lo}, {hi}]"
        )
    return FittedTransform(
        kind,
        table_z=tuple(float(v) for v in uniq),
        table_y=tuple(float(v) for v in scores),
        zmin=float(zmin),
        zmax=float(zmax),
        n=z.size,
    )
