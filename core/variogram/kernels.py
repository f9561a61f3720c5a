"""Compiled (numba) variogram kernels for the kriging inner loops.

A model is passed as the arrays of :meth:`~.models.VariogramModel.kernel_arrays`:
``codes`` (int64, ``(m,)``, the model classes' ``code``) and ``params`` (float64,
``(m, 3 + T)``, rows ``[psill, range_, extra, ...]``). The functions give the same values as
:meth:`~.models.VariogramModel.gamma` (tested to ~1e-12), including ``gamma(0) = 0`` and the
nugget for ``h > 0``. ``h`` is the anisotropy-reduced distance.

Columns ``3..`` of a Matérn row hold its interpolation table (:mod:`.matern_table`: header
``[n_pieces, 1/dx, x_lo, x_max, log_c]`` then six polynomial coefficients per piece), zeros in
other rows; :func:`matern_row_nb` reads it, the exact Bessel-function path being taken outside
``[x_lo, x_max)``. ``params`` with only three columns (no table) still works (exact path).

The Matérn model needs ``K_nu(x)`` for real ``nu``, which numba cannot take from scipy; it is
computed here by Temme's series (``x < 2``) or Steed's continued fraction (``x >= 2``) for
``|mu| <= 1/2`` followed by forward recurrence in the order (Temme 1975; Press et al.,
*Numerical Recipes*, ``bessik``), and checked against :func:`scipy.special.kv` in the tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_EULER = 0.5772156649015329
# Taylor coefficients of 1/Gamma(z) (a4, a6, a8) for gam1 near mu = 0
_A4 = -0.0420026350340952
_A6 = -0.0421977345555443
_A8 = 0.0072189432466630
_EPS = 1e-16
_MAXIT = 10000
_BIG = 1e250
_LOG_BIG = math.log(_BIG)


@njit(cache=True)
def _log_kve(nu: float, x: float) -> float:
    """``log(K_nu(x) * exp(x))`` for ``nu >= 0``, ``x > 0``; ``inf`` on overflow."""
    nl = int(nu + 0.5)
    mu = nu - nl  # -1/2 <= mu < 1/2
    mu2 = mu * mu
    xi = 1.0 / x
    xi2 = 2.0 * xi
    if x < 2.0:
        x2 = 0.5 * x
        pimu = math.pi * mu
        fact = 1.0 if abs(pimu) < 1e-300 else pimu / math.sin(pimu)
        d = -math.log(x2)
        e = mu * d
        fact2 = 1.0 if abs(e) < 1e-300 else math.sinh(e) / e
        gampl = 1.0 / math.gamma(1.0 + mu)
        gammi = 1.0 / math.gamma(1.0 - mu)
        if abs(mu) < 1e-3:
            m2 = mu * mu
            gam1 = -(_EULER + m2 * (_A4 + m2 * (_A6 + m2 * _A8)))
        else:
            gam1 = (gammi - gampl) / (2.0 * mu)
        gam2 = 0.5 * (gammi + gampl)
        ff = fact * (gam1 * math.cosh(e) + gam2 * fact2 * d)
        total = ff
        e = math.exp(e)
        p = 0.5 * e / gampl
        q = 0.5 / (e * gammi)
        c = 1.0
        d = x2 * x2
        total1 = p
        for i in range(1, _MAXIT):
            ff = (i * ff + p + q) / (i * i - mu2)
            c *= d / i
            p /= i - mu
            q /= i + mu
            delta = c * ff
            total += delta
            total1 += c * (p - i * ff)
            if abs(delta) < abs(total) * _EPS:
                break
        scale = math.exp(x)
        rkmu = total * scale
        rk1 = total1 * xi2 * scale
    else:
        b = 2.0 * (1.0 + x)
        d = 1.0 / b
        h = d
        delh = d
        q1 = 0.0
        q2 = 1.0
        a1 = 0.25 - mu2
        q = a1
        c = a1
        a = -a1
        s = 1.0 + q * delh
        for i in range(2, _MAXIT):
            a -= 2.0 * (i - 1)
            c = -a * c / i
            qnew = (q1 - b * q2) / a
            q1 = q2
            q2 = qnew
            q += c * qnew
            b += 2.0
            d = 1.0 / (b + a * d)
            delh = (b * d - 1.0) * delh
            h += delh
            dels = q * delh
            s += dels
            if abs(dels / s) < _EPS:
                break
        h = a1 * h
        rkmu = math.sqrt(math.pi / (2.0 * x)) / s  # scaled by exp(x)
        rk1 = rkmu * (mu + x + 0.5 - h) * xi
    # the recurrence grows like (2 nu / x)**nu at small x: rescaled (in logs) so that large
    # orders at small x do not overflow (x**nu K_nu(x) stays finite there)
    log_scale = 0.0
    for i in range(1, nl + 1):
        tmp = (mu + i) * xi2 * rk1 + rkmu
        rkmu = rk1
        rk1 = tmp
        if rk1 > _BIG:
            rkmu /= _BIG
            rk1 /= _BIG
            log_scale += _LOG_BIG
        if not math.isfinite(rk1):
            if i < nl:
                return math.inf
    if not (rkmu > 0.0) or not math.isfinite(rkmu):
        return math.inf
    return math.log(rkmu) + log_scale


@njit(cache=True)
def kv_nb(nu: float, x: float) -> float:
    """Modified Bessel function of the second kind ``K_nu(x)`` (``x > 0``), for tests."""
    return math.exp(_log_kve(abs(nu), x) - x)


@njit(cache=True)
def matern_unit_array_nb(x: np.ndarray, nu: float) -> np.ndarray:
    """Exact unit Matérn semivariogram at ``x > 0`` (:meth:`.models.Matern.gamma_unit` uses
    it where scipy's ``K_nu`` overflows: large ``nu`` at small ``x``)."""
    out = np.empty(x.shape[0])
    for k in range(x.shape[0]):
        out[k] = _matern_unit(x[k], nu)
    return out


@njit(cache=True)
def _matern_unit(x: float, nu: float) -> float:
    return _matern_exact(x, nu, (1.0 - nu) * math.log(2.0) - math.lgamma(nu))


@njit(cache=True)
def _matern_exact(x: float, nu: float, log_c: float) -> float:
    """Unit Matérn semivariogram by the Bessel function; ``log_c = log(2**(1-nu)/Gamma(nu))``."""
    if x > 600.0:
        return 1.0
    lk = _log_kve(nu, x)
    if not math.isfinite(lk):
        return 0.0
    corr = math.exp(log_c + nu * math.log(x) + lk - x)
    if not math.isfinite(corr) or corr > 1.0:
        corr = 1.0
    return 1.0 - corr


@njit(cache=True)
def gamma_unit_nb(code: int, h: float, range_: float, extra: float) -> float:
    """Unit-sill semivariogram of one model (``h > 0``); same codes as :data:`.models.MODELS`."""
    if code == 0:  # nug
        return 1.0
    x = h / range_
    if code == 1:  # sph
        if x >= 1.0:
            return 1.0
        return x * (1.5 - 0.5 * x * x)
    if code == 2:  # exp
        return -math.expm1(-x)
    if code == 3:  # gau
        return -math.expm1(-x * x)
    if code == 4:  # mat
        return _matern_unit(x, extra)
    if code == 5:  # ste
        return -math.expm1(-(x**extra))
    if code == 6:  # cub
        if x >= 1.0:
            return 1.0
        x2 = x * x
        return x2 * (7.0 + x * (-8.75 + x2 * (3.5 - 0.75 * x2)))
    if code == 7:  # lin
        return min(x, 1.0)
    if code == 8:  # pow
        return x**extra
    if code == 9:  # hol
        return 1.0 - math.sin(x) / x
    return math.nan


#: Code of the Matérn model (:class:`.models.Matern`) and the first column of its table.
MAT = 4
_T0 = 3


@njit(cache=True, inline="always")
def matern_row_nb(params: np.ndarray, i: int, x: float) -> float:
    """Unit Matérn semivariogram of row ``i`` at ``x = h / range > 0``: its table inside
    ``[x_lo, x_max)``, else the exact value (within 1e-12 of each other, :mod:`.matern_table`)."""
    if params.shape[1] <= _T0 + 4:
        return _matern_unit(x, params[i, 2])
    if x >= params[i, _T0 + 2] and x < params[i, _T0 + 3]:
        u = x * params[i, _T0 + 1]
        j = min(int(u), int(params[i, _T0]) - 1)
        t = u - j
        b = _T0 + 5 + 6 * j
        return params[i, b] + t * (params[i, b + 1] + t * (params[i, b + 2] + t * (
            params[i, b + 3] + t * (params[i, b + 4] + t * params[i, b + 5]))))
    return _matern_exact(x, params[i, 2], params[i, _T0 + 4])


@njit(cache=True)
def gamma_nb(codes: np.ndarray, params: np.ndarray, h: float) -> float:
    """Semivariogram of a nested model at the reduced distance ``h`` (0 exactly at ``h == 0``)."""
    if h <= 0.0:
        return 0.0
    total = 0.0
    for i in range(codes.shape[0]):
        if codes[i] == MAT:
            total += params[i, 0] * matern_row_nb(params, i, h / params[i, 1])
        else:
            total += params[i, 0] * gamma_unit_nb(codes[i], h, params[i, 1], params[i, 2])
    return total


@njit(cache=True)
def covariance_nb(codes: np.ndarray, params: np.ndarray, sill_shift: float, h: float) -> float:
    """``sill_shift - gamma(h)``: the covariance when ``sill_shift`` is the sill."""
    return sill_shift - gamma_nb(codes, params, h)


@njit(cache=True)
def gamma_array_nb(codes: np.ndarray, params: np.ndarray, h: np.ndarray) -> np.ndarray:
    """:func:`gamma_nb` over a 1-D array of distances."""
    out = np.empty(h.shape[0])
    for k in range(h.shape[0]):
        out[k] = gamma_nb(codes, params, h[k])
    return out
