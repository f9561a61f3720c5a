"""The cell-grid pair search gives the all-pairs variogram; the subsample is seeded.

The reference here is a NumPy brute force over every pair (the full distance matrix), binned
with gstat's ``(lo, hi]`` rule written independently (``ceil(d / w) - 1``). Pair counts must
be identical; mean distances and semivariances equal to round-off (the sums are added in
another order).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from gcnn_rnn.core.variogram.empirical import (
    directional_variograms,
    empirical_variogram,
    subsample,
)


def _brute(coords, values, cutoff, width, keep=None):
    """(npairs, mean distance, matheron gamma) per non-empty bin, from all pairs."""
    n = len(coords)
    i, j = np.triu_indices(n, 1)
    off = coords[j] - coords[i]
    d = np.sqrt((off**2).sum(axis=1))
    ok = d <= cutoff
    if keep is not None:
        ok &= keep(off)
    d, diff = d[ok], (values[j] - values[i])[ok]
    n_bins = math.ceil(cutoff / width - 1e-9)
    b = np.where(d > 0, np.ceil(d / width) - 1, 0).astype(int)
    b = np.minimum(b, n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    sd = np.bincount(b, d, minlength=n_bins)
    sq = np.bincount(b, diff**2, minlength=n_bins)
    nz = cnt > 0
    return cnt[nz], sd[nz] / cnt[nz], 0.5 * sq[nz] / cnt[nz]


def _check(ev, ref):
    np.testing.assert_array_equal(ev.npairs, ref[0])
    np.testing.assert_allclose(ev.lags, ref[1], rtol=1e-12)
    np.testing.assert_allclose(ev.gamma, ref[2], rtol=1e-10)


@pytest.mark.parametrize(("cutoff", "width"), [(12.0, 3.0), (3.0, 1.0), (200.0, 25.0)])
def test_integer_coordinates_match_all_pairs(cutoff, width):
    """Integer coordinates put many pairs exactly on bin edges and on the cutoff; a short
    cutoff (many cells), a medium one and one longer than the extent."""
    rng = np.random.default_rng(11)
    xy = rng.integers(0, 60, size=(700, 2)).astype(float)
    z = rng.normal(size=700)
    ev = empirical_variogram(xy, z, cutoff=cutoff, width=width)
    _check(ev, _brute(xy, z, cutoff, width))
    assert ev.n_used == ev.n_points == 700 and ev.subsample_seed is None


def test_clustered_3d_matches_all_pairs():
    rng = np.random.default_rng(4)
    centres = rng.uniform(0, 1000, size=(6, 3))
    pts = np.concatenate([c + rng.normal(scale=20, size=(100, 3)) for c in centres])
    z = rng.normal(size=len(pts))
    ev = empirical_variogram(pts, z, cutoff=150.0, n_lags=10)
    _check(ev, _brute(pts, z, 150.0, 15.0))


def test_directions_match_all_pairs():
    rng = np.random.default_rng(8)
    xy = rng.uniform(0, 500, size=(800, 2))
    z = rng.normal(size=800)
    evs = directional_variograms(xy, z, [30.0, 120.0], cutoff=100.0, width=10.0,
                                 tolerance=22.5)
    for az, ev in zip((30.0, 120.0), evs):
        u = np.array([math.sin(math.radians(az)), math.cos(math.radians(az))])

        def keep(off, u=u):
            cos = np.abs(off @ u) / np.sqrt((off**2).sum(axis=1))
            return cos >= math.cos(math.radians(22.5))

        _check(ev, _brute(xy, z, 100.0, 10.0, keep))


def test_same_bits_on_one_core_and_two():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 100, size=(3000, 2))
    z = rng.normal(size=3000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = empirical_variogram(xy, z, cutoff=30.0)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = empirical_variogram(xy, z, cutoff=30.0)
    finally:
        numba.set_num_threads(before)
    for name in ("npairs", "lags", "gamma"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


def test_subsample_is_seeded_and_recorded():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 100, size=(2500, 2))
    z = xy[:, 0] / 10 + rng.normal(size=2500)
    a = empirical_variogram(xy, z, max_points=1000, seed=7)
    b = empirical_variogram(xy, z, max_points=1000, seed=7)
    c = empirical_variogram(xy, z, max_points=1000, seed=8)
    assert (a.n_points, a.n_used, a.subsample_seed) == (2500, 1000, 7)
    np.testing.assert_array_equal(a.gamma, b.gamma)
    assert not np.array_equal(a.npairs, c.npairs)
    # it is the variogram of those 1000 points (the cutoff from all 2500)
    idx = subsample(2500, 1000, 7)
    assert idx is not None and idx.size == np.unique(idx).size == 1000
    ref = empirical_variogram(xy[idx], z[idx], cutoff=a.cutoff, max_points=None)
    np.testing.assert_array_equal(a.npairs, ref.npairs)
    np.testing.assert_allclose(a.gamma, ref.gamma, rtol=1e-12)
    # below the size, every point: the result does not depend on the seed
    full = empirical_variogram(xy, z, seed=1)
    assert full.n_used == 2500 and full.subsample_seed is None
    d = full.to_dict()
    assert (d["n_points"], d["n_used"], d["subsample_seed"]) == (2500, 2500, None)


def test_pooled_directions_keep_the_bins():
    """3D ``auto`` pools horizontal directions bin by bin: on a regular grid the 0-degree
    (10, 20] bin (all pairs at 20 m, mean lag on the bin's upper edge) and the 45-degree one
    (pairs at 14.1 m) are the same bin."""
    from gcnn_rnn.core.variogram.fit import _pool

    x, y = np.meshgrid(np.arange(0.0, 100.0, 10.0), np.arange(0.0, 100.0, 10.0))
    xy = np.column_stack([x.ravel(), y.ravel()])
    z = np.random.default_rng(0).normal(size=len(xy))
    evs = directional_variograms(xy, z, [0.0, 45.0], cutoff=30.0, width=10.0, tolerance=10.0)
    assert evs[0].lags.tolist() == [10.0, 20.0, 30.0]
    pooled = _pool(evs)
    assert pooled.npairs.tolist() == [evs[0].npairs[0], evs[0].npairs[1] + evs[1].npairs[0],
                                      evs[0].npairs[2] + evs[1].npairs[1]]


def test_chunks_split_crowded_cells_so_cancel_is_prompt():
    """A cutoff as wide as the extent makes a few crowded cells; chunks of whole cells took
    seconds each at 50,000 points, and a cancel waited for them (reliability report row 283).
    Chunks now hold equal numbers of points, and the same pairs are found."""
    from gcnn_rnn.core.variogram.pairs import N_CHUNKS, CellGrid

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, size=(3000, 2))
    z = rng.normal(size=3000)
    grid = CellGrid(xy, 90.0)
    assert int(np.prod(grid.dims)) <= 9  # crowded cells
    sizes = np.diff(grid.chunk_points)
    assert sizes.sum() == 3000 and sizes.max() <= math.ceil(3000 / N_CHUNKS)
    rounds = []
    ev = empirical_variogram(xy, z, cutoff=90.0, width=10.0,
                             progress=lambda f, text: rounds.append(f))
    _check(ev, _brute(xy, z, 90.0, 10.0))
    assert len(rounds) >= 10  # progress (and cancel) between many short rounds
