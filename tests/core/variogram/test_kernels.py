"""The numba kernels agree with the numpy models and with scipy's Bessel function."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp

from gcnn_rnn.core.variogram.kernels import covariance_nb, gamma_array_nb, gamma_nb, kv_nb
from gcnn_rnn.core.variogram.models import MODELS, Structure, VariogramModel

SHAPES = {"mat": [0.2, 0.5, 1.0, 1.5, 2.7, 12.0], "ste": [0.3, 1.0, 2.0], "pow": [0.4, 1.0, 1.9]}


@pytest.mark.parametrize("name", list(MODELS))
def test_numba_equals_numpy(name):
    h = np.concatenate(
        [[0.0, 1e-12, 1e-6], np.random.default_rng(0).uniform(0, 800, 300), [100.0, 250.0, 7e4]]
    )
    for extra in SHAPES.get(name, [None]):
        m = VariogramModel((Structure("nug", 0.2), Structure(name, 1.7, 100.0, extra)))
        codes, params = m.kernel_arrays()
        np.testing.assert_allclose(
            gamma_array_nb(codes, params, h), m.gamma(h), rtol=1e-11, atol=1e-13
        )
        assert gamma_nb(codes, params, 0.0) == 0.0
        if m.bounded:
            for hv in (0.0, 50.0, 300.0):
                assert covariance_nb(codes, params, m.sill, hv) == pytest.approx(
                    float(m.covariance(hv)), abs=1e-12
                )


def test_nested_with_all_models():
    structs = [
        Structure(n, 0.1 * (i + 1), 10.0 * (i + 1), {"mat": 1.2}.get(n))
        for i, n in enumerate(MODELS)
    ]
    m = VariogramModel(tuple(structs))
    codes, params = m.kernel_arrays()
    h = np.linspace(0.0, 200.0, 101)
    np.testing.assert_allclose(gamma_array_nb(codes, params, h), m.gamma(h), rtol=1e-11)


@pytest.mark.parametrize("nu", [0.01, 0.25, 0.4999, 0.5, 0.5001, 1.0, 1.5, 3.3, 10.0, 40.0])
def test_bessel_k_matches_scipy(nu):
    x = np.geomspace(1e-5, 500.0, 120)
    ref = sp.kv(nu, x)
    got = np.array([kv_nb(nu, v) for v in x])
    ok = np.isfinite(ref) & (ref > 1e-290)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-11)
