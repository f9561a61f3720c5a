"""Sequential Gaussian simulation: data honoured, determinism, histogram and variogram
reproduction, agreement of the E-type mean with simple kriging, bad input, cancellation."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import MODEL, RANGE, check_normal_scores, field_samples, scores

from gcnn_rnn.core.errors import Cancelled, InputDataError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.kriging import KrigingConfig, krige_grid
from gcnn_rnn.core.simulation import SimulationConfig, simulate_grid
from gcnn_rnn.core.variogram.models import parse_model


@pytest.fixture(scope="module")
def square():
    """A 48 x 48 grid of unit cells, 25 samples of a field with a 12-unit range."""
    xy, z = field_samples(25, 48.0, seed=3)
    grid = Grid(0.0, 48.0, 1.0, 48, 48)
    res = simulate_grid(xy, np.exp(z), grid, MODEL,
                        SimulationConfig(realisations=40, seed=11, neighbours=16))
    return xy, np.exp(z), grid, res


def _axis_variogram(f: np.ndarray, lag: int) -> float:
    """Mean semivariance of pairs ``lag`` cells apart along rows and along columns."""
    dx = f[..., :, lag:] - f[..., :, :-lag]
    dy = f[..., lag:, :] - f[..., :-lag, :]
    return 0.5 * float(np.concatenate([dx.ravel() ** 2, dy.ravel() ** 2]).mean())


def test_data_honoured_at_their_cells(square):
    xy, z, grid, res = square
    col = np.floor(xy[:, 0]).astype(int)
    row = np.floor(48.0 - xy[:, 1]).astype(int)
    at = res.realisations[:, row, col]
    np.testing.assert_array_equal(at, np.broadcast_to(z.astype(np.float32), at.shape))
    assert res.n_sample_cells == len(np.unique(row * 48 + col))
    # elsewhere realisations differ: the simulation is not a smooth interpolator
    assert float(res.realisations.std(axis=0).mean()) > 0.1 * float(z.std())


def test_normal_score_histogram_reproduced(square):
    res = square[3]
    y = scores(res)
    free = np.ones(y.shape[1:], dtype=bool)
    xy = square[0]
    free[np.floor(48.0 - xy[:, 1]).astype(int), np.floor(xy[:, 0]).astype(int)] = False
    check_normal_scores(res, y, free)


def test_variogram_reproduced_within_ten_percent_up_to_the_range(square):
    y = scores(square[3])
    for lag in range(1, int(RANGE) + 1):
        got = _axis_variogram(y, lag)
        want = float(MODEL.gamma(float(lag)))
        assert got == pytest.approx(want, rel=0.10), f"lag {lag}: {got:.3f} vs model {want:.3f}"


def test_etype_mean_close_to_simple_kriging(square):
    xy, z, grid, res = square
    y_data = res.transform.forward(z)
    sk = krige_grid(xy, y_data, grid, MODEL, KrigingConfig(neighbours=0, mean=0.0))
    etype = scores(res).mean(axis=0)
    # they differ by the Monte Carlo error of a mean of 40 draws, sqrt(sigma_SK^2 / 40) (the
    # path shared by 16 realisations adds little); a biased simulation would exceed it
    diff = etype - sk.estimate
    mc = float(np.sqrt(sk.variance.mean() / res.realisations.shape[0]))
    assert float(np.sqrt(np.mean(diff**2))) < 1.25 * mc
    assert float(np.corrcoef(etype.ravel(), sk.estimate.ravel())[0, 1]) > 0.95
    # the spread of the realisations follows the kriging variance: small near data
    spread = scores(res).var(axis=0)
    near, far = sk.variance < 0.3, sk.variance > 0.8
    assert spread[near].mean() < 0.5 * spread[far].mean()


def test_deterministic_per_seed_and_realisation(square):
    xy, z, grid, _ = square
    small = Grid(0.0, 48.0, 2.0, 24, 24)
    a = simulate_grid(xy, z, small, MODEL, SimulationConfig(realisations=3, seed=5, n_jobs=1))
    b = simulate_grid(xy, z, small, MODEL, SimulationConfig(realisations=3, seed=5, n_jobs=2))
    c = simulate_grid(xy, z, small, MODEL, SimulationConfig(realisations=1, seed=5))
    d = simulate_grid(xy, z, small, MODEL, SimulationConfig(realisations=1, seed=6))
    np.testing.assert_array_equal(a.realisations, b.realisations)
    np.testing.assert_array_equal(a.realisations[:1], c.realisations)  # r depends on (seed, r)
    assert not np.array_equal(c.realisations, d.realisations)
    assert not np.array_equal(a.realisations[0], a.realisations[1])


def test_multigrid_honours_data_and_reproduces_variance(square):
    xy, z, grid, _ = square
    res = simulate_grid(xy, z, grid, MODEL,
                        SimulationConfig(realisations=10, seed=2, multigrid=3))
    col = np.floor(xy[:, 0]).astype(int)
    row = np.floor(48.0 - xy[:, 1]).astype(int)
    np.testing.assert_array_equal(res.realisations[:, row, col],
                                  np.broadcast_to(z.astype(np.float32), (10, z.size)))
    y = scores(res)
    assert float(y.var()) == pytest.approx(1.0, abs=0.2)
    assert _axis_variogram(y, 4) == pytest.approx(float(MODEL.gamma(4.0)), rel=0.15)


def test_mask_and_3d():
    rng = np.random.default_rng(0)
    xyz = np.column_stack([rng.uniform(0, 20, 30), rng.uniform(0, 20, 30),
                           rng.choice([0.0, 2.0, 4.0], 30)])
    z = rng.normal(size=30)
    model = parse_model("1 Exp(5)")
    grid = Grid(0.0, 20.0, 1.0, 20, 20, z_levels=(0.0, 2.0, 4.0))
    res = simulate_grid(xyz, z, grid, model, SimulationConfig(realisations=2, seed=1))
    assert res.realisations.shape == (2, 3, 20, 20)
    assert np.isfinite(res.realisations).all()
    lev = (xyz[:, 2] / 2).astype(int)
    col, row = np.floor(xyz[:, 0]).astype(int), np.floor(20 - xyz[:, 1]).astype(int)
    cells = lev * 400 + row * 20 + col
    single = np.flatnonzero(np.bincount(cells, minlength=1200)[cells] == 1)
    got = res.realisations[:, lev[single], row[single], col[single]]
    np.testing.assert_array_equal(got, np.broadcast_to(z[single].astype(np.float32), got.shape))
    mask = np.ones((20, 20), dtype=bool)
    mask[:5] = False
    masked = Grid(0.0, 20.0, 1.0, 20, 20, z_levels=(0.0, 2.0, 4.0), mask=mask)
    res2 = simulate_grid(xyz, z, masked, model, SimulationConfig(realisations=1, seed=1))
    assert np.isnan(res2.realisations[:, :, :5]).all()
    assert np.isfinite(res2.realisations[:, :, 5:]).all()


def test_bad_input():
    xy, z = field_samples(10, 10.0, seed=1)
    grid = Grid(0.0, 10.0, 1.0, 10, 10)
    with pytest.raises(InputDataError, match="bounded"):
        simulate_grid(xy, z, grid, parse_model("1 Pow(1.5)"))
    with pytest.raises(InputDataError, match="z levels"):
        simulate_grid(np.column_stack([xy, z]), z, grid, MODEL)
    with pytest.raises(InputDataError, match="finite"):
        simulate_grid(xy, np.r_[z[:-1], np.nan], grid, MODEL)
    with pytest.raises(InputDataError, match="realisations"):
        SimulationConfig(realisations=0)
    with pytest.raises(InputDataError, match="neighbours"):
        SimulationConfig(neighbours=0)
    with pytest.raises(InputDataError, match="distinct"):
        simulate_grid(xy, np.ones(10), grid, MODEL)


def test_progress_and_cancel(monkeypatch):
    from gcnn_rnn.core.simulation import sgs

    xy, z = field_samples(10, 30.0, seed=1)
    grid = Grid(0.0, 30.0, 1.0, 30, 30)
    monkeypatch.setattr(sgs, "PATH_STEP", 100)  # many steps, so cancel lands mid-path
    seen: list[float] = []
    simulate_grid(xy, z, grid, MODEL, SimulationConfig(realisations=2),
                  progress=lambda f, t="": seen.append(f))
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) > 5
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        simulate_grid(xy, z, grid, MODEL, SimulationConfig(realisations=2), should_stop=stop)
    assert len(calls) == 4


def test_anisotropy_reproduced_along_both_axes():
    # major range 16 east-west (azimuth 90), minor 8 north-south
    model = parse_model("1 Sph(16, anis=(90, 0.5))")
    xy, z = field_samples(2, 40.0, seed=4, model=model)
    grid = Grid(0.0, 40.0, 1.0, 40, 40)
    res = simulate_grid(xy, z, grid, model, SimulationConfig(realisations=32, seed=3))
    y = scores(res)
    for lag in (2, 4, 6):
        along_x = 0.5 * float(((y[..., :, lag:] - y[..., :, :-lag]) ** 2).mean())
        along_y = 0.5 * float(((y[..., lag:, :] - y[..., :-lag, :]) ** 2).mean())
        # in units of the major range: lag h east-west is h, north-south 2 h
        assert along_x == pytest.approx(float(model.gamma(float(lag))), rel=0.15)
        assert along_y == pytest.approx(float(model.gamma(2.0 * lag)), rel=0.15)
        assert along_y > 1.3 * along_x
