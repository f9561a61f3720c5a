"""Cross-checks against PyKrige on identical models and neighbourhoods (to 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest
from pykrige.ok import OrdinaryKriging  # noqa: E402
from pykrige.ok3d import OrdinaryKriging3D  # noqa: E402

from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.variogram.models import Anisotropy, Structure, VariogramModel

TOL = 1e-6

# (our structure, PyKrige model name, PyKrige range for the same curve)
MODELS = [
    ("sph", "spherical", 1.0),
    ("exp", "exponential", 3.0),  # PyKrige: 1 - exp(-h / (r/3))
    ("gau", "gaussian", 7.0 / 4.0),  # PyKrige: 1 - exp(-h^2 / (4r/7)^2)
]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    coords = rng.uniform(0, 1000, size=(150, 2))
    values = np.sin(coords[:, 0] / 150) + 0.5 * np.cos(coords[:, 1] / 90) + rng.normal(
        scale=0.2, size=150)
    targets = rng.uniform(-50, 1050, size=(300, 2))
    targets[:10] = coords[:10]  # some targets on samples (exactness)
    return coords, values, targets


def _pykrige(coords, values, name, params, **kw):
    return OrdinaryKriging(coords[:, 0], coords[:, 1], values, variogram_model=name,
                           variogram_parameters=params, exact_values=True, **kw)


@pytest.mark.parametrize("ours,theirs,factor", MODELS)
@pytest.mark.parametrize("k", [12, 0])
def test_ordinary_kriging_matches_pykrige(data, ours, theirs, factor, k):
    coords, values, targets = data
    model = VariogramModel((Structure("nug", 0.05), Structure(ours, 0.9, 220.0)))
    ok = _pykrige(coords, values, theirs,
                  {"sill": 0.95, "range": 220.0 * factor, "nugget": 0.05})
    if k:
        est, var = ok.execute("points", targets[:, 0], targets[:, 1], backend="loop",
                              n_closest_points=k)
    else:
        est, var = ok.execute("points", targets[:, 0], targets[:, 1], backend="vectorized")
    res = krige(coords, values, targets, model, KrigingConfig(neighbours=k))
    np.testing.assert_allclose(res.estimate, est, atol=TOL, rtol=0)
    np.testing.assert_allclose(res.variance, var, atol=TOL, rtol=0)


def test_anisotropy_matches_pykrige(data):
    coords, values, targets = data
    # ours: major axis at azimuth 30 (clockwise from north), minor/major = 0.4
    model = VariogramModel((Structure("nug", 0.05), Structure("sph", 0.9, 400.0)),
                           Anisotropy(azimuth=30.0, ratio=0.4))
    # PyKrige: angle counter-clockwise from the x axis, y stretched by the major/minor ratio
    ok = _pykrige(coords, values, "spherical", {"sill": 0.95, "range": 400.0, "nugget": 0.05},
                  anisotropy_angle=60.0, anisotropy_scaling=2.5)
    est, var = ok.execute("points", targets[:, 0], targets[:, 1], backend="loop",
                          n_closest_points=16)
    res = krige(coords, values, targets, model, KrigingConfig(neighbours=16))
    np.testing.assert_allclose(res.estimate, est, atol=TOL, rtol=0)
    np.testing.assert_allclose(res.variance, var, atol=TOL, rtol=0)


def test_power_model_matches_pykrige(data):
    coords, values, targets = data
    model = VariogramModel((Structure("nug", 0.02), Structure("pow", 0.003, 1.0, 1.4)))
    ok = _pykrige(coords, values, "power", {"scale": 0.003, "exponent": 1.4, "nugget": 0.02})
    est, var = ok.execute("points", targets[:, 0], targets[:, 1], backend="loop",
                          n_closest_points=20)
    res = krige(coords, values, targets, model, KrigingConfig(neighbours=20))
    assert res.n_singular == 0
    np.testing.assert_allclose(res.estimate, est, atol=TOL, rtol=0)
    np.testing.assert_allclose(res.variance, var, atol=TOL, rtol=0)


def test_3d_matches_pykrige():
    rng = np.random.default_rng(3)
    coords = rng.uniform(0, 100, size=(120, 3))
    values = coords[:, 2] / 50 + rng.normal(scale=0.3, size=120)
    targets = rng.uniform(0, 100, size=(80, 3))
    model = VariogramModel((Structure("nug", 0.1), Structure("sph", 1.0, 60.0)))
    ok = OrdinaryKriging3D(coords[:, 0], coords[:, 1], coords[:, 2], values,
                           variogram_model="spherical",
                           variogram_parameters={"sill": 1.1, "range": 60.0, "nugget": 0.1},
                           exact_values=True)
    est, var = ok.execute("points", targets[:, 0], targets[:, 1], targets[:, 2],
                          backend="loop", n_closest_points=15)
    res = krige(coords, values, targets, model, KrigingConfig(neighbours=15))
    np.testing.assert_allclose(res.estimate, est, atol=TOL, rtol=0)
    np.testing.assert_allclose(res.variance, var, atol=TOL, rtol=0)
