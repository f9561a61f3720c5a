"""The Matérn interpolation table of the compiled kernels against an independent Matérn
(scipy's Bessel function, mpmath where it overflows), and kriging with it against the exact
Bessel path."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special as sp

from gcnn_rnn.core.variogram.kernels import gamma_array_nb
from gcnn_rnn.core.variogram.matern_table import HEADER, TABLE_TOL, matern_table, matern_unit
from gcnn_rnn.core.variogram.models import Structure, VariogramModel

NUS = [0.3, 0.5, 1.0, 1.5, 2.5, 5.0, 12.17, 30.0, 100.0]


def _matern_ref(nu: float, x: np.ndarray) -> np.ndarray:
    """``1 - x**nu K_nu(x) / (2**(nu-1) Gamma(nu))`` by scipy's (Amos) ``K_nu``, and in
    40-digit arithmetic (mpmath) where that overflows (large ``nu`` at small ``x``)."""
    with np.errstate(all="ignore"):
        corr = np.exp((1 - nu) * math.log(2.0) - sp.gammaln(nu) + nu * np.log(x)
                      + np.log(sp.kve(nu, x)) - x)
    out = 1.0 - corr
    for k in np.flatnonzero(~np.isfinite(corr)):
        with mpmath.workdps(40):
            nu_, x_ = mpmath.mpf(nu), mpmath.mpf(float(x[k]))
            c = x_**nu_ * mpmath.besselk(nu_, x_) / (2 ** (nu_ - 1) * mpmath.gamma(nu_))
            out[k] = float(1 - c)
    return out


@pytest.mark.parametrize("nu", NUS)
def test_table_matches_high_precision_matern(nu):
    table = matern_table(nu)
    x_lo, x_max = table[2], table[3]
    # the table covers [x_lo, x_max); check across it (piece midpoints and ends) and
    # on both sides, where the exact Bessel path answers
    x = np.unique(np.concatenate([
        np.geomspace(1e-8, 2.0 * x_max, 160),
        np.linspace(max(x_lo, 1e-8), x_max, 97),
        x_lo + (np.arange(8) + 0.5) / table[1],
        [max(x_lo, 1e-8), np.nextafter(max(x_lo, 1e-8), 0.0)],  # both sides of the switch
    ]))
    m = VariogramModel((Structure("mat", 1.0, 1.0, nu),))
    codes, params = m.kernel_arrays()
    got = gamma_array_nb(codes, params, x)
    ref = _matern_ref(nu, x)
    assert np.abs(got - ref).max() <= 1e-10


@pytest.mark.parametrize("nu", NUS)
def test_table_is_used_where_it_verifies(nu):
    """Large nu is tabulated from 0; small nu only away from the x**(2 nu) corner."""
    table = matern_table(nu)
    n, inv_dx, x_lo, x_max = table[:4]
    assert table.size == HEADER + 6 * int(n)
    assert x_max > 30.0 and math.isclose(x_max * inv_dx, round(x_max * inv_dx))
    if nu >= 1.5:
        assert x_lo == 0.0
    else:
        assert 0.0 < x_lo < 1.0
    assert TABLE_TOL <= 1e-12


_FULL_ARRAYS = VariogramModel.kernel_arrays


def _without_table(self):
    codes, params = _FULL_ARRAYS(self)
    return codes, np.ascontiguousarray(params[:, :3])


def test_kriging_with_table_equals_exact_path(monkeypatch):
    """Ordinary kriging (estimate and variance, local and global) with the table as with the
    exact Bessel path (``params`` cut to its first three columns: no table)."""
    from gcnn_rnn.core.kriging.api import krige
    from gcnn_rnn.core.kriging.config import KrigingConfig

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 1000, (150, 2))
    z = np.sin(xy[:, 0] / 200.0) + 0.1 * rng.normal(size=150)
    grid = rng.uniform(0, 1000, (400, 2))
    for nu in (0.3, 1.5, 12.17):
        model = VariogramModel((Structure("nug", 0.05), Structure("mat", 1.0, 60.0, nu)))
        cfg = KrigingConfig(neighbours=24)
        with_table = krige(xy, z, grid, model, cfg)
        assert model.kernel_arrays()[1].shape[1] > 3
        with monkeypatch.context() as mp:
            mp.setattr(VariogramModel, "kernel_arrays", _without_table)
            exact = krige(xy, z, grid, model, cfg)
        np.testing.assert_allclose(with_table.estimate, exact.estimate, rtol=0, atol=1e-9)
        np.testing.assert_allclose(with_table.variance, exact.variance, rtol=0, atol=1e-9)
        assert np.all(with_table.variance >= 0)


@pytest.mark.parametrize("nu", [0.3, 2.5, 12.17])
def test_numpy_table_equals_compiled_kernels(nu):
    """:func:`matern_unit` (model selection's vectorised Matérn) gives the kernels' values
    (the same table; below ``x_lo`` scipy's and the compiled Bessel function, ~1e-15 apart)."""
    x = np.concatenate([np.geomspace(1e-6, 300.0, 400), np.linspace(0.01, 20.0, 400)])
    codes, params = VariogramModel((Structure("mat", 1.0, 1.0, nu),)).kernel_arrays()
    np.testing.assert_allclose(matern_unit(x, nu), gamma_array_nb(codes, params, x),
                               rtol=0, atol=1e-14)
