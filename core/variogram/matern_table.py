"""Interpolation table of the unit Matérn semivariogram for the compiled kernels.

The exact Matérn value costs a Bessel function ``K_nu`` (series or continued fraction plus a
forward recurrence in the order) per call, several times a spherical or Gaussian one; the
kriging loops call it ``k**2`` times per target. :func:`matern_table` tabulates the unit
semivariogram ``g(x) = 1 - x**nu K_nu(x) / (2**(nu-1) Gamma(nu))`` (``x = h / range``) once per
``nu`` as quintic Hermite pieces on a uniform grid (value, first and second derivative at
every node, all exact):

    g'(x)  = c x**nu K_{nu-1}(x)
    g''(x) = c (x**(nu-1) K_{nu-1}(x) - x**nu K_{nu-2}(x)),   c = 2**(1-nu) / Gamma(nu)

(from ``d/dx [x**v K_v(x)] = -x**v K_{v-1}(x)``). Every piece is then checked against the
exact function (:meth:`.models.Matern.gamma_unit`, scipy) at 7 points (midpoint included); the table is used only
from the first grid point above which *every* piece agrees within :data:`TABLE_TOL` of the
unit sill, and up to ``x_max`` where the correlation has fallen below 1e-17. Outside
``[x_lo, x_max)`` the kernels evaluate the exact function, so the compiled value is within
``TABLE_TOL`` of the exact one everywhere. Near ``x = 0`` a small ``nu`` (below about 1.5) is
not smooth (the ``x**(2 nu)`` term), so ``x_lo > 0`` there; for large ``nu`` the table starts
at 0.

Layout of the row (columns ``3..`` of :meth:`.models.VariogramModel.kernel_arrays`'s
``params``; see :data:`HEADER`): ``[n_pieces, 1/dx, x_lo, x_max, log_c, a0, ..., a5, a0, ...]``
with ``log_c = (1 - nu) log 2 - lgamma(nu)`` for the exact path and the six polynomial
coefficients of each piece in ``t = x/dx - j`` (``a0 + a1 t + ... + a5 t**5``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import gammaln, kve

#: Largest error of the table against the exact unit semivariogram (fraction of the sill).
TABLE_TOL = 1e-12
#: Columns before the pieces: n_pieces, 1/dx, x_lo, x_max, log_c.
HEADER = 5
#: Grid steps tried, coarsest first (in units of the range), and the smallest ``nu`` at which
#: each is tried first (the Matérn is smoother on the scale of the range as ``nu`` grows; a
#: small ``nu`` fails the coarse steps near 0 anyway).
_STEPS = (0.4, 0.2, 0.1, 0.05, 0.025)
_FIRST_STEP_NU = (50.0, 20.0, 8.0, 3.0, 0.0)
#: Correlation below which the table ends (the exact path takes over beyond).
_TAIL = 1e-17
#: Where each piece is checked (its midpoint, where the Hermite error peaks, and six more).
_CHECK = np.arange(1, 8) / 8.0


def _term(nu: float, x: np.ndarray, power: float, order: float) -> np.ndarray:
    """``c x**power K_order(x)`` with ``c = 2**(1-nu) / Gamma(nu)`` (in logs: no overflow of
    the constant; ``inf``/``nan`` where ``K`` itself overflows)."""
    with np.errstate(all="ignore"):
        return np.exp((1.0 - nu) * math.log(2.0) - gammaln(nu) + power * np.log(x)
                      + np.log(kve(order, x)) - x)


def _exact(nu: float, x: np.ndarray) -> np.ndarray:
    from .models import Matern

    return Matern.gamma_unit(x, 1.0, nu)


def _pieces(nu: float, dx: float) -> tuple[np.ndarray, float]:
    """Coefficients ``(n, 6)`` of the Hermite pieces on ``[0, x_max]`` and ``x_max``."""
    x_end = 1.0
    while _term(nu, np.array([x_end]), nu, nu)[0] > _TAIL and x_end < 600.0:
        x_end *= 1.25
    n = int(math.ceil(x_end / dx))
    xs = np.arange(n + 1) * dx
    f = _exact(nu, xs)
    d1 = _term(nu, xs, nu, nu - 1.0) * dx
    d2 = (_term(nu, xs, nu - 1.0, nu - 1.0) - _term(nu, xs, nu, nu - 2.0)) * dx * dx
    # limits at x = 0 (g = x**2 / (4 (nu - 1)) + ... for nu > 1; not smooth otherwise, and
    # the pieces there then fail the check below)
    f[0], d1[0] = 0.0, (0.0 if nu > 1.0 else math.inf)
    d2[0] = dx * dx / (2.0 * (nu - 1.0)) if nu > 1.0 else math.inf
    df = np.diff(f)
    q0, q1, s0, s1 = d1[:-1], d1[1:], d2[:-1], d2[1:]
    coef = np.stack([
        f[:-1], q0, 0.5 * s0,
        10.0 * df - 6.0 * q0 - 4.0 * q1 - 1.5 * s0 + 0.5 * s1,
        -15.0 * df + 8.0 * q0 + 7.0 * q1 + 1.5 * s0 - s1,
        6.0 * df - 3.0 * q0 - 3.0 * q1 - 0.5 * s0 + 0.5 * s1,
    ], axis=1)
    return coef, n * dx


def _first_good(nu: float, coef: np.ndarray, dx: float) -> int:
    """Index of the first piece from which every piece is within :data:`TABLE_TOL`."""
    t = _CHECK[None, :]
    x = (np.arange(coef.shape[0])[:, None] + t) * dx
    with np.errstate(invalid="ignore", over="ignore"):
        p = coef[:, 5:6]
        for k in (4, 3, 2, 1, 0):
            p = p * t + coef[:, k:k + 1]
        err = np.abs(p - _exact(nu, x)).max(axis=1)
    bad = np.flatnonzero(~(err <= TABLE_TOL))  # nan (overflowed node) counts as bad
    return 0 if bad.size == 0 else int(bad[-1]) + 1


@lru_cache(maxsize=64)
def _table(nu: float) -> np.ndarray:
    best = None
    first = next(k for k, lo in enumerate(_FIRST_STEP_NU) if nu >= lo)
    for dx in _STEPS[first:]:
        coef, x_max = _pieces(nu, dx)
        j0 = _first_good(nu, coef, dx)
        if best is None or j0 * dx < best[0]:
            best = (j0 * dx, dx, coef[j0:] if j0 < coef.shape[0] else coef[:0], x_max, j0)
        if j0 <= 4:  # starts within a few steps of 0: a finer grid gains little
            break
    x_lo, dx, coef, x_max, j0 = best
    log_c = (1.0 - nu) * math.log(2.0) - float(gammaln(nu))
    if coef.shape[0] == 0:
        head = [0.0, 1.0 / dx, math.inf, 0.0, log_c]
        return np.array(head)
    # pieces below x_lo are kept (zeros) so that the piece index stays x / dx
    full = np.zeros((j0 + coef.shape[0], 6))
    full[j0:] = coef
    inv_dx = 1.0 / dx
    # the kernels take piece int(x * inv_dx) for x >= x_lo: never one of those zeros, however
    # j0 * dx * inv_dx rounds (the product is monotonic in x)
    while int(x_lo * inv_dx) < j0:
        x_lo = float(np.nextafter(x_lo, math.inf))
    head = [float(full.shape[0]), inv_dx, x_lo, x_max, log_c]
    out = np.concatenate([head, full.ravel()])
    out.setflags(write=False)
    return out


def matern_unit(x: np.ndarray, nu: float) -> np.ndarray:
    """The unit Matérn semivariogram at ``x > 0`` (1-D) as the compiled kernels give it: the
    table inside ``[x_lo, x_max)``, the exact function elsewhere (within :data:`TABLE_TOL`
    of the exact one everywhere)."""
    row = matern_table(nu)
    n, inv_dx, x_lo, x_max = row[:4]
    x = np.asarray(x, dtype=float)
    inside = (x >= x_lo) & (x < x_max)
    out = np.empty_like(x)
    if (~inside).any():
        out[~inside] = _exact(float(nu), x[~inside])
    u = x[inside] * inv_dx
    j = np.minimum(u.astype(np.int64), int(n) - 1)
    t = u - j
    coef = row[HEADER:].reshape(-1, 6)[j]
    p = coef[:, 5]
    for k in (4, 3, 2, 1, 0):
        p = p * t + coef[:, k]
    out[inside] = p
    return out


def matern_table(nu: float) -> np.ndarray:
    """The row ``[n_pieces, 1/dx, x_lo, x_max, log_c, coefficients...]`` for ``nu > 0``
    (built once per ``nu``; read-only)."""
    return _table(float(nu))
