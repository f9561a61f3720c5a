"""Helpers for the kriging tests: small models and a dense reference solver."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.variogram.models import Structure, VariogramModel


def _sph_model(nugget: float = 0.1, psill: float = 1.0, range_: float = 300.0):
    structs = [Structure("sph", psill, range_)]
    if nugget:
        structs.insert(0, Structure("nug", nugget))
    return VariogramModel(tuple(structs))


def _dense_ok(coords, values, target, model, simple_mean=None):
    """Ordinary (or simple) kriging of one target by a dense solve of the textbook system.

    Variogram form for OK (``Gamma w + mu 1 = gamma0``, ``var = w'gamma0 + mu``) and
    covariance form for SK; an implementation independent of the engine's Cholesky kernel.
    """
    red = model.reduce(np.asarray(coords, float))
    t = model.reduce(np.asarray(target, float)[None, :])[0]
    d = np.sqrt(((red[:, None] - red[None]) ** 2).sum(-1))
    d0 = np.sqrt(((red - t) ** 2).sum(-1))
    g, g0 = model.gamma(d), model.gamma(d0)
    n = len(values)
    if simple_mean is not None:
        c, c0 = model.sill - g, model.sill - g0
        w = np.linalg.solve(c, c0)
        return simple_mean + w @ (values - simple_mean), model.sill - w @ c0, 0.0, w
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = g
    a[n, n] = 0.0
    sol = np.linalg.solve(a, np.append(g0, 1.0))
    w, mu = sol[:n], sol[n]
    return w @ values, w @ g0 + mu, mu, w


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def sph_model():
    """``sph_model(nugget=0.1, psill=1.0, range_=300.0)`` -> VariogramModel."""
    return _sph_model


@pytest.fixture
def dense_ok():
    """The dense reference solver ``dense_ok(coords, values, target, model, simple_mean)``."""
    return _dense_ok
