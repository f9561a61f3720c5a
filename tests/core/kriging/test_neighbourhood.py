"""Neighbour search: nearest k, maximum distance, sectors, leave-self-out, tiled search."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.kriging import neighbours as nb


def _brute(data, t, k, max_d=np.inf, sectors=0, own=-1):
    d = np.sqrt(((data - t) ** 2).sum(1))
    order = np.argsort(d, kind="stable")
    cap = nb.sector_cap(k, sectors)
    counts: dict[int, int] = {}
    out = []
    for j in order:
        if j == own or d[j] > max_d:
            continue
        if sectors:
            off = data[j] - t
            if sectors == 4:
                s = int(off[0] < 0) + 2 * int(off[1] < 0)
            else:
                s = min(7, int((math.atan2(off[1], off[0]) % (2 * math.pi)) / (math.pi / 4)))
            if counts.get(s, 0) >= cap:
                continue
            counts[s] = counts.get(s, 0) + 1
        out.append(j)
        if len(out) == k:
            break
    return out


@pytest.mark.parametrize("sectors", [0, 4, 8])
@pytest.mark.parametrize("max_d", [None, 120.0])
def test_search_matches_brute_force(rng, sectors, max_d):
    data = rng.uniform(0, 1000, size=(300, 2))
    targets = rng.uniform(0, 1000, size=(60, 2))
    tree = cKDTree(data)
    idx, dist = nb.find_neighbours(tree, targets, 12, max_distance=max_d, sectors=sectors,
                                   data=data, targets=targets)
    for r, t in enumerate(targets):
        want = _brute(data, t, 12, np.inf if max_d is None else max_d, sectors)
        got = idx[r][idx[r] >= 0].tolist()
        assert got == want
        assert np.all(np.diff(dist[r][idx[r] >= 0]) >= 0)
        assert np.all(np.isinf(dist[r][idx[r] < 0]))


def test_sector_search_reaches_far_samples_in_empty_sectors():
    # 40 samples clustered east of the target, one far west: octants must still find it
    rng = np.random.default_rng(1)
    data = np.vstack([rng.uniform([10, -5], [30, 5], size=(40, 2)), [[-500.0, 0.0]]])
    tree = cKDTree(data)
    t = np.zeros((1, 2))
    idx, _ = nb.find_neighbours(tree, t, 8, sectors=4, data=data, targets=t)
    assert 40 in idx[0]
    assert (idx[0] >= 0).sum() == 5  # 2 per quadrant: 2 NE + 2 SE + the far one (W)


def test_self_is_excluded_but_coincident_others_count():
    data = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    idx, dist = nb.find_neighbours(cKDTree(data), data, 2, self_index=np.arange(4))
    assert idx[0].tolist() == [1, 2] and dist[0, 0] == 0.0
    assert idx[1].tolist() == [0, 2]
    assert idx[3].tolist() == [2, 0] or idx[3].tolist() == [2, 1]


def test_tiled_search_equals_plain_search(rng):
    data = rng.uniform(0, 1000, size=(2000, 2))
    xs = np.arange(0.5, 300, 2.0)
    gx, gy = np.meshgrid(xs, xs)
    targets = np.column_stack([gx.ravel(), gy.ravel()])
    tree = cKDTree(data)
    for max_d in (None, 25.0):
        tiled = nb._tiled(tree, targets, 16, max_d, np.inf, 1)
        assert tiled is not None
        back = np.argsort(tiled[2])
        got = (tiled[0][back], tiled[1][back])
        d, i = tree.query(targets, k=16, distance_upper_bound=np.inf if max_d is None else max_d)
        i = np.where(i >= tree.n, -1, i)
        if max_d is not None:
            i = np.where(d <= max_d, i, -1)
        np.testing.assert_array_equal(got[0], i)
        np.testing.assert_allclose(got[1][i >= 0], d[i >= 0], rtol=1e-12)


def test_max_distance_and_min_neighbours_leave_nan_and_warn(rng, sph_model, caplog):
    data = rng.uniform(0, 100, size=(50, 2))
    values = rng.normal(size=50)
    targets = np.array([[50.0, 50.0], [5000.0, 5000.0]])
    res = krige(data, values, targets, sph_model(),
                KrigingConfig(neighbours=10, min_neighbours=3, max_distance=500.0))
    assert np.isfinite(res.estimate[0]) and np.isnan(res.estimate[1])
    assert np.isnan(res.variance[1]) and res.n_missing == 1
    assert "fewer than 3 neighbour(s) within 500" in caplog.text


def test_max_distance_uses_only_samples_within_it(rng, sph_model, dense_ok):
    data = rng.uniform(0, 1000, size=(200, 2))
    values = rng.normal(size=200)
    targets = rng.uniform(100, 900, size=(10, 2))
    model = sph_model()
    res = krige(data, values, targets, model, KrigingConfig(neighbours=0, max_distance=150.0),
                return_details=True)
    for r, t in enumerate(targets):
        near = np.flatnonzero(np.sqrt(((data - t) ** 2).sum(1)) <= 150.0)
        assert sorted(res.neighbours[r][res.neighbours[r] >= 0].tolist()) == near.tolist()
        est, var, _, _ = dense_ok(data[near], values[near], t, model)
        assert res.estimate[r] == pytest.approx(est, abs=1e-9)
        assert res.variance[r] == pytest.approx(var, abs=1e-9)


def test_tiled_search_in_3d(rng):
    data = rng.uniform(0, 100, size=(1500, 3))
    g = np.arange(40.75, 70, 1.5)  # dense enough for tiles to pay off
    targets = np.array(np.meshgrid(g, g, g[:12], indexing="ij")).reshape(3, -1).T
    tree = cKDTree(data)
    tiled = nb._tiled(tree, targets, 10, None, np.inf, 1)
    assert tiled is not None
    back = np.argsort(tiled[2])
    d, i = tree.query(targets, k=10)
    np.testing.assert_array_equal(tiled[0][back], i)
    np.testing.assert_allclose(tiled[1][back], d, rtol=1e-12)


def test_tiled_and_direct_searches_break_ties_alike(meuse_gpkg):
    """Meuse and a 40 m grid (many targets equidistant, or within rounding, from two samples):
    the tiled search (a big chunk) and the direct one (small chunks) return the same
    neighbours and distances, ties going to the lower sample index; so kriging the grid does
    not depend on the chunk size (before: up to 2.7e-3 apart)."""
    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.io import read_points
    from gcnn_rnn.core.kriging import krige_grid
    from gcnn_rnn.core.kriging.neighbours import find_neighbours
    from gcnn_rnn.core.variogram.models import parse_model

    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    lo, hi = pts.coords.min(0), pts.coords.max(0)
    grid = Grid.from_extent((lo[0], lo[1], hi[0], hi[1]), 40.0)
    nodes = grid.node_coords()
    tree = cKDTree(pts.coords)
    whole = find_neighbours(tree, nodes, 20)  # 6,930 targets: tiled
    parts = [find_neighbours(tree, nodes[a:a + 300], 20) for a in range(0, len(nodes), 300)]
    for got, want in zip(whole, (np.vstack(p) for p in zip(*parts)), strict=True):
        np.testing.assert_array_equal(got, want)
    # among exactly tied candidates the lower index comes first
    d2 = ((pts.coords[whole[0]] - nodes[:, None, :]) ** 2).sum(-1)
    tied = d2[:, 1:] == d2[:, :-1]
    assert tied.any()
    assert (whole[0][:, 1:][tied] > whole[0][:, :-1][tied]).all()
    model = parse_model("0.0507 Nug + 0.5906 Sph(897)")
    y = np.log(pts.values)
    a = krige_grid(pts.coords, y, grid, model, KrigingConfig(neighbours=20, chunk_size=300))
    b = krige_grid(pts.coords, y, grid, model, KrigingConfig(neighbours=20, chunk_size=10**5))
    # the same systems; only the solver's incremental updates round differently per chunk
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.variance, b.variance, rtol=0, atol=1e-12)
