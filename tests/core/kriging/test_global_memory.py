"""Global kriging holds one n x n matrix (factorised in place) and refuses what cannot fit.

Peak memory is measured with ``tracemalloc`` (NumPy reports its allocations to it), the
result checked against the ordinary-kriging system solved directly with NumPy.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.kriging import api as kriging_api
from gcnn_rnn.core.variogram.models import parse_model

MODEL = parse_model("0.1 Nug + 1.0 Sph(300)")


def _data(n: int, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, size=(n, 2))
    z = np.sin(xy[:, 0] / 150) + rng.normal(scale=0.3, size=n)
    return xy, z, rng.uniform(0, 1000, size=(m, 2))


def _direct_ok(xy, z, targets, model):
    """The ordinary-kriging system [[G, 1], [1', 0]] of semivariances, solved by NumPy."""
    n = len(xy)
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = np.where(d == 0, 0.0, model.gamma(d))
    a[n, n] = 0.0
    d0 = np.sqrt(((xy[:, None] - targets[None]) ** 2).sum(-1))
    b = np.vstack([model.gamma(d0), np.ones(len(targets))])
    w = np.linalg.solve(a, b)
    return w[:n].T @ z, (w * b).sum(axis=0)


def test_global_equals_the_direct_solve():
    xy, z, t = _data(300, 200)
    res = krige(xy, z, t, MODEL, KrigingConfig(neighbours=0))
    est, var = _direct_ok(xy, z, t, MODEL)
    np.testing.assert_allclose(res.estimate, est, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.variance, var, rtol=1e-8, atol=1e-9)


def test_peak_memory_is_one_and_a_half_matrices():
    n = 2000
    xy, z, t = _data(n, 3000, seed=1)
    tracemalloc.start()
    try:
        krige(xy, z, t, MODEL, KrigingConfig(neighbours=0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    matrix = 8 * n * n
    assert peak <= 1.5 * matrix, peak / matrix


def test_refused_early_with_the_size_that_fits(monkeypatch):
    monkeypatch.setattr(kriging_api, "available_bytes", lambda: 100 * 1024**2)
    xy, z, t = _data(5000, 10)
    with pytest.raises(InputDataError) as err:
        krige(xy, z, t, MODEL, KrigingConfig(neighbours=0))
    msg = str(err.value)
    # 100 MiB / (1.5 * 8 bytes) = 8,738,133 entries: 2,956 samples
    assert "5,000 samples" in msg and "at most 2,956 samples" in msg and "--neighbours" in msg
    # a local neighbourhood needs no such matrix
    krige(xy, z, t, MODEL, KrigingConfig(neighbours=16))
