"""The ``simulate`` memory guard: a run that cannot fit is refused before any work with the
size that fits; a run that fits only with fewer realisations at once is simulated so, with
the same rasters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from sim_helpers import GIB, meuse_grid, simulate_meuse

from gcnn_rnn.core.errors import GridTooLargeError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.simulation.memory import bytes_per_node, plan_batch, run_bytes


def test_per_node_bytes_of_one_group_of_16():
    grid = Grid(0.0, 100.0, 1.0, 100, 100)
    # coordinates 16, raster index + lookup + free place 12, path 4, scores 128, copies 48
    assert bytes_per_node(grid, 1, 16) == 16 + 12 + 4 + 128 + 48
    assert bytes_per_node(grid, 2, 32) - bytes_per_node(grid, 1, 16) == 4 + 128


def test_oversized_grid_refused_with_the_size_that_fits(meuse_gpkg, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = simulate_meuse(meuse_gpkg, out, "--cell-size", "2", "--realisations", "4",
                          "--max-memory-gb", "0.1", "--path", "random")
    assert code == 2
    assert "even one realisation at a time" in err and "nodes fit" in err
    assert "--path slabs" in err  # the way out that keeps the grid
    assert not out.exists() or not any(out.iterdir())
    # the cell size it names fits, the one it refused does not
    fits = float(err.split("cell size of at least ")[1].split()[0])
    grid, n = meuse_grid(meuse_gpkg, fits)
    assert plan_batch(grid, n, 4, 16, 1, int(0.1 * GIB)) >= 1
    big, _ = meuse_grid(meuse_gpkg, 2.0)
    with pytest.raises(GridTooLargeError):
        plan_batch(big, n, 4, 16, 1, int(0.1 * GIB))


def test_fewer_realisations_at_once_give_the_same_rasters(meuse_gpkg, tmp_path):
    grid, n = meuse_grid(meuse_gpkg, 50.0)
    # a limit between what 5 and 6 realisations at once need: batches of 5
    limit = (run_bytes(grid, n, 12, 16, 5) + run_bytes(grid, n, 12, 16, 6)) / 2
    assert plan_batch(grid, n, 12, 16, 1, int(limit)) == 5
    args = ["--cell-size", "50", "--realisations", "12", "--threshold", "400"]
    assert simulate_meuse(meuse_gpkg, tmp_path / "a", *args)[0] == 0
    code, err = simulate_meuse(meuse_gpkg, tmp_path / "b", *args, "--max-memory-gb",
                          repr(limit / GIB))
    assert code == 0 and "simulating 5 realisations at once instead of 12" in err
    for name in ("realisations", "etype_mean", "conditional_variance",
                 "exceedance_probability"):
        with rasterio.open(tmp_path / "a" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "b" / f"{name}.tif") as b:
            assert np.array_equal(a.read(), b.read()), name
    a, b = (json.loads((tmp_path / d / "simulation.json").read_text())["normal_scores"]
            for d in "ab")
    assert a == b


def test_summaries_read_fewer_rows_when_many_realisations(meuse_gpkg, tmp_path,
                                                          monkeypatch):
    """The summaries of all realisations are read as many rows at a time as fit: one row
    here, with the floats of 256-row stripes."""
    from gcnn_rnn.core.simulation import memory

    args = ["--cell-size", "100", "--realisations", "20", "--threshold", "400"]
    assert simulate_meuse(meuse_gpkg, tmp_path / "a", *args)[0] == 0
    grid, _ = meuse_grid(meuse_gpkg, 100.0)
    monkeypatch.setattr(memory, "SUMMARY_BUDGET", 20 * grid.ncols * 20)
    assert memory.summary_rows(grid, 20, 256) == 1
    assert simulate_meuse(meuse_gpkg, tmp_path / "b", *args)[0] == 0
    for name in ("etype_mean", "conditional_variance", "exceedance_probability"):
        with rasterio.open(tmp_path / "a" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "b" / f"{name}.tif") as b:
            assert np.array_equal(a.read(), b.read()), name
