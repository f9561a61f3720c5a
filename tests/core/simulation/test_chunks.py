"""SGS in memory that does not hold the whole grid's data neighbours, draws or realisations
of all threads: what is computed per path chunk (data neighbours, normal draws) or per part
of a batch gives the floats of the whole computation.

Before/after: the realisations and score moments of fixed-seed cases (2D, 3D, mask,
multigrid, anisotropy, search radius, few samples, all cells fixed, 1 and 2 threads, up to
40,000 nodes through ``simulate_grid``; 2.5e5 and 1e6 nodes through ``gcnn-rnn simulate``)
were compared once, outside the suite, with the implementation that held them for the whole
grid (commit 6e185cd): all identical. Here the pieces are checked against their whole
counterparts.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.kriging.neighbours import find_neighbours, search_part, whole_tiling
from gcnn_rnn.core.simulation import SimulationConfig, sgs, simulate_grid
from gcnn_rnn.core.variogram.models import parse_model

MODEL = parse_model("0.1 Nug + 0.9 Sph(200)")


def _samples(n: int = 120, seed: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, size=(n, 2))
    return xy, np.exp(np.sin(xy[:, 0] / 150) + rng.normal(0, 0.3, n))


def test_normals_drawn_in_pieces_are_the_stream_drawn_at_once():
    whole = np.random.default_rng([7, 0, 3]).standard_normal(10_001)
    gen = np.random.default_rng([7, 0, 3])
    pieces = [gen.standard_normal(n) for n in (1, 4096, 4095, 1809)]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_path_of_int32_nodes_is_the_path_of_int64_nodes():
    free = np.flatnonzero(np.random.default_rng(1).random(5000) > 0.1)
    a = np.random.default_rng([3, 1, 0]).permutation(free)
    b = np.random.default_rng([3, 1, 0]).permutation(free.astype(np.int32))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("max_distance", [None, 60.0])
@pytest.mark.parametrize("side", [40, 120])  # 1,600 nodes: direct search; 14,400: tiled
def test_data_neighbours_of_a_subset_are_those_of_the_whole_search(side, max_distance):
    xy, _ = _samples()
    tree = cKDTree(xy)
    nodes = Grid(0.0, 1000.0, 1000.0 / side, side, side).node_coords()
    whole_i, whole_d = find_neighbours(tree, nodes, 16, max_distance=max_distance)
    tiling = whole_tiling(tree, nodes, 16, max_distance=max_distance, chunk=1000)
    if max_distance is None:  # a tiled search, or a direct one for the small grid
        assert (tiling is None) == (side == 40)
    rows = np.random.default_rng(2).permutation(nodes.shape[0])[:3000]
    for part in (rows[:7], rows[7:2000], rows[2000:]):
        idx, dist = search_part(tree, nodes[part], 16, tiling, max_distance=max_distance)
        np.testing.assert_array_equal(idx, whole_i[part])
        np.testing.assert_array_equal(dist, whole_d[part])


def _run(monkeypatch, step: int, blocks: int, grid: Grid, model, config, coords, values):
    monkeypatch.setattr(sgs, "PATH_STEP", step)
    monkeypatch.setattr(sgs, "NEIGHBOUR_STEPS", blocks)
    return simulate_grid(coords, values, grid, model, config)


@pytest.mark.parametrize("case", ["2d", "3d_mask_multigrid", "anisotropic"])
def test_realisations_do_not_depend_on_the_path_chunk(monkeypatch, case):
    if case == "2d":
        coords, values = _samples()
        grid, model = Grid(0.0, 1000.0, 12.5, 80, 80), MODEL  # 6,400 nodes: tiled search
        config = SimulationConfig(realisations=18, seed=4, neighbours=8)
        assert sgs.SGSJob.prepare(coords, values, grid, model, config).tiling is not None
    elif case == "anisotropic":
        coords, values = _samples(40, 3)
        grid, model = Grid(0.0, 1000.0, 25.0, 40, 40), parse_model("1 Sph(300, anis=(60, 0.4))")
        config = SimulationConfig(realisations=3, seed=2, neighbours=12, max_distance=250.0)
    else:
        rng = np.random.default_rng(0)
        coords = np.column_stack([rng.uniform(0, 20, 30), rng.uniform(0, 20, 30),
                                  rng.choice([0.0, 2.0, 4.0], 30)])
        values = rng.normal(size=30)
        mask = np.ones((20, 20), dtype=bool)
        mask[:4] = False
        grid = Grid(0.0, 20.0, 1.0, 20, 20, z_levels=(0.0, 2.0, 4.0), mask=mask)
        model = parse_model("1 Exp(5)")
        config = SimulationConfig(realisations=17, seed=1, multigrid=2, neighbours=10)
    whole = _run(monkeypatch, 1 << 20, 1, grid, model, config, coords, values)
    for step, blocks in ((97, 1), (64, 5)):
        part = _run(monkeypatch, step, blocks, grid, model, config, coords, values)
        np.testing.assert_array_equal(part.realisations, whole.realisations)
        np.testing.assert_array_equal(part.score_mean, whole.score_mean)
        np.testing.assert_array_equal(part.score_var, whole.score_var)


def test_a_group_run_in_parts_gives_the_same_realisations():
    """Memory-bound batches of fewer than 16 realisations walk their group's path again."""
    coords, values = _samples()
    grid = Grid(0.0, 1000.0, 25.0, 40, 40)
    config = SimulationConfig(realisations=21, seed=8, neighbours=8)
    job = sgs.SGSJob.prepare(coords, values, grid, MODEL, config)
    assert job.batches(32) == [(0, 21)]
    assert job.batches(16) == [(0, 16), (16, 21)]
    parts = job.batches(5)
    assert parts == [(0, 5), (5, 10), (10, 15), (15, 16), (16, 21)]
    whole = job.run(0, 21)[0]
    for r0, r1 in parts:
        real, mean, var = job.run(r0, r1)
        np.testing.assert_array_equal(real, whole[r0:r1])
