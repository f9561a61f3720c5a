"""Streaming grids into GeoTIFFs range by range (:mod:`gcnn_rnn.core.tiles`): the files are
those a whole-grid write gives (same float32 cells, metadata and style), in any order."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import rasterio

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.cli.options import grid_from_args
from gcnn_rnn.core.errors import EngineIOError, GridTooLargeError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging import KrigingConfig, krige_grid, krige_universal_grid
from gcnn_rnn.core.raster import write_raster
from gcnn_rnn.core.tiles import RasterStreamWriter, check_disk, flat_ranges, streaming_env
from gcnn_rnn.core.variogram.models import parse_model

CRS = 'PROJCS["x",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",3],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'  # noqa: E501
VG = "0.0507 Nug + 0.5906 Sph(897)"


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.nodata, ds.crs, ds.descriptions, ds.tags()


def _stream(path, grid, data, ranges, **kw):
    with streaming_env():
        w = RasterStreamWriter(path, grid, "a field", "value", qml_path=path.with_suffix(".qml"),
                               **kw)
        flat = data.ravel()
        for a, b in ranges:
            w.write(a, flat[a:b])
        return w.close()


@pytest.mark.parametrize("levels", [None, (0.0, -5.0)])
def test_ranges_in_any_order_give_the_whole_grid_file(tmp_path, levels):
    rng = np.random.default_rng(3)
    mask = rng.random((300, 520)) > 0.1
    grid = Grid(1000.0, 9000.0, 10.0, 520, 300, CRS, levels, mask)
    data = rng.normal(size=grid.shape)
    data.ravel()[rng.integers(0, data.size, 50)] = np.nan
    ranges = flat_ranges(grid.n_nodes, 7777)  # crosses rows, stripes and levels
    order = rng.permutation(len(ranges))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = write_raster(tmp_path / "a" / "f.tif", data, grid, "a field", kind="value")
    got = _stream(tmp_path / "b" / "f.tif", grid, data, [ranges[i] for i in order])
    a, b = _read(whole), _read(tmp_path / "b" / "f.tif")
    assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    assert a[0].shape[0] == (2 if levels else 1)
    assert (tmp_path / "a" / "f.qml").read_text() == (tmp_path / "b" / "f.qml").read_text()
    inside = np.where(np.broadcast_to(mask, grid.shape), data, np.nan)
    assert got["range"] == [np.nanmin(inside), np.nanmax(inside)]


def test_cog_has_the_same_cells_and_overviews(tmp_path):
    grid = Grid(0.0, 6000.0, 10.0, 600, 600, CRS)
    data = np.add.outer(np.arange(600.0), np.arange(600.0))
    _stream(tmp_path / "c.tif", grid, data, flat_ranges(grid.n_nodes, 50_000), cog=True)
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1) and ds.descriptions == ("a field",)
        assert np.array_equal(ds.read(1), data.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.qml", "c.tif"]


def test_a_missing_range_fails_and_leaves_nothing(tmp_path):
    grid = Grid(0.0, 3000.0, 10.0, 300, 300, CRS)
    data = np.ones(grid.shape)
    with pytest.raises(EngineIOError, match="never computed"):
        _stream(tmp_path / "m.tif", grid, data, flat_ranges(grid.n_nodes, 1000)[:-1])
    assert list(tmp_path.iterdir()) == []


def test_the_memory_guard_is_a_stripe_and_the_disk(tmp_path):
    # --max-nodes (a separate guard: hours of work, issue 11) raised out of the way
    args = argparse.Namespace(cell_size=1.0, template=None, points=None, z_levels=None,
                              extent="0,0,100000,100000", max_memory_gb=2.0, max_nodes=1e12)
    with pytest.raises(GridTooLargeError, match="GiB"):  # 1e10 nodes held whole: refused
        grid_from_args(args, None, None)
    grid = grid_from_args(args, None, None, streamed=True)  # streamed: only a stripe is held
    assert grid.n_nodes == 10**10
    with pytest.raises(GridTooLargeError, match=r"need up to 7\.28 TiB of disk"):
        check_disk(Grid(0.0, 1e9, 1.0, 10**6, 10**6), 2, tmp_path)  # 1e12 nodes
    assert check_disk(Grid(0.0, 1e3, 1.0, 1000, 1000), 2, tmp_path) == 8 * 10**6
    args.extent, args.max_memory_gb = "0,0,10000000,100", 0.5  # 1e7 columns: a stripe is 24 GiB
    with pytest.raises(GridTooLargeError, match="columns"):
        grid_from_args(args, None, None, streamed=True)
    # what is held also counts the samples: 4e6 x 160 B = 0.6 GiB
    args.extent = "0,0,1000,1000"
    assert grid_from_args(args, None, None, streamed=True, n_samples=10**6).n_nodes == 10**6
    with pytest.raises(GridTooLargeError, match="4,000,000 samples"):
        grid_from_args(args, None, None, streamed=True, n_samples=4 * 10**6)


def test_krige_command_streams_the_floats_of_a_whole_grid_call(meuse_gpkg, tmp_path, capsys):
    """Several ranges (--memory-mb 1), log back-transform, template mask: cell for cell the
    whole-grid kriging written at once."""
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    args = ["krige", "--quiet", "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
            "--transform", "log", "--variogram", VG, "--neighbours", "20", "--memory-mb", "1",
            "--cell-size", "40", "--output-dir", tmp_path / "s"]
    assert main(list(map(str, args))) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "s" / "kriging_estimate.tif") as ds:
        t = ds.transform
        grid = Grid(t.c, t.f, 40.0, ds.width, ds.height, ds.crs.to_wkt())
    assert grid.n_nodes > 4 * 1000  # more than a few ranges of ~900 nodes
    res = krige_grid(pts.coords, np.log(pts.values), grid, parse_model(VG),
                     KrigingConfig(neighbours=20, memory_budget_mb=1))
    est = np.exp(res.estimate + res.variance / 2 - res.lagrange)
    var = est * est * np.expm1(res.variance)
    (tmp_path / "w").mkdir()
    for name, data, kind in (("kriging_estimate", est, "value"),
                             ("kriging_variance", var, "variance")):
        want = write_raster(tmp_path / "w" / f"{name}.tif", data, grid, "x", kind=kind)
        assert np.array_equal(_read(want)[0], _read(tmp_path / "s" / f"{name}.tif")[0])
        assert ((tmp_path / "w" / f"{name}.qml").read_text()
                == (tmp_path / "s" / f"{name}.qml").read_text())


def test_krige_command_3d_and_universal_stream_the_same_floats(tmp_path, capsys):
    rng = np.random.default_rng(5)
    xyz = rng.uniform(0, 1000, size=(120, 3)) * [1, 1, 0.1]
    z = np.sin(xyz[:, 0] / 200) + xyz[:, 2] / 50 + rng.normal(0, 0.1, 120)
    csv = tmp_path / "s.csv"
    np.savetxt(csv, np.column_stack([xyz, z]), delimiter=",", header="x,y,depth,v",
               comments="")
    model = parse_model("0.05 Nug + 1 Exp(300)")
    common = ["krige", "--quiet", "--input", csv, "--field", "v", "--z-field", "depth", "--crs", "EPSG:32631",
              "--variogram", model.to_text(), "--cell-size", "20", "--extent", "0,0,1000,1000",
              "--z-levels", "0:100:50", "--memory-mb", "1"]
    assert main(list(map(str, [*common, "--output-dir", tmp_path / "ok"]))) == 0, \
        capsys.readouterr().err
    assert main(list(map(str, [*common, "--drift", "x,z", "--neighbours", "16",
                               "--output-dir", tmp_path / "uk"]))) == 0, capsys.readouterr().err
    grid = Grid(0.0, 1000.0, 20.0, 50, 50, None, (0.0, 50.0, 100.0))
    ok = krige_grid(xyz, z, grid, model, KrigingConfig(neighbours=32, memory_budget_mb=1))
    uk = krige_universal_grid(xyz, z, grid, model, drift="x,z", neighbours=16)
    for folder, res in (("ok", ok), ("uk", uk)):
        for name, data in (("estimate", res.estimate), ("variance", res.variance)):
            got = _read(tmp_path / folder / f"kriging_{name}.tif")[0]
            assert got.shape == (3, 50, 50)
            assert np.array_equal(got, np.where(np.isfinite(data), data, -9999.0).astype(
                np.float32)), (folder, name)


def test_disk_sizes_read_well_at_any_scale():
    from gcnn_rnn.core.tiles import _size

    assert [_size(n) for n in (5, 2048, 3.5 * 1024**2, 7450.6 * 1024**3)] == [
        "5 bytes", "2 KiB", "3.5 MiB", "7.28 TiB"]


def test_inside_mask_repeats_the_2d_mask_on_every_level():
    from gcnn_rnn.core.tiles import inside_mask

    mask = np.array([[True, False, True], [False, True, True]])
    grid = Grid(0.0, 2.0, 1.0, 3, 2, None, (0.0, 5.0), mask=mask)
    assert inside_mask(Grid(0.0, 2.0, 1.0, 3, 2), 0, 6) is None
    want = np.tile(mask.ravel(), 2)  # level 0, then level 1
    np.testing.assert_array_equal(inside_mask(grid, 0, 12), want)
    np.testing.assert_array_equal(inside_mask(grid, 4, 9), want[4:9])  # across the levels


class _TwoStages:
    """A job whose ``prepare`` (the next range) may overlap ``finish`` (this range)."""

    def __init__(self, slow_range=None):
        self.prepared, self.finished, self.threads = [], [], []
        self.slow_range = slow_range

    def prepare(self, a, b):
        import time

        import numba

        self.prepared.append((a, b))
        self.threads.append(numba.get_num_threads())
        if (a, b) == self.slow_range:
            time.sleep(3.0)
        return np.arange(a, b, dtype=float)

    def finish(self, a, b, prepared):
        self.finished.append((a, b))
        return prepared * 2.0

    def __call__(self, a, b):
        return self.finish(a, b, self.prepare(a, b))


def test_two_stage_ranges_arrive_in_order_with_each_stage_once():
    import numba

    from gcnn_rnn.core.tiles import run_ranges

    job, got = _TwoStages(), []
    ranges = [(0, 5), (5, 9), (9, 20)]
    before = numba.get_num_threads()
    numba.set_num_threads(1)  # per thread in numba: the preparing thread must use it too
    try:
        run_ranges(job, ranges, lambda r, res: got.append((r, res)))
    finally:
        numba.set_num_threads(before)
    assert [r for r, _ in got] == ranges == job.prepared == job.finished
    for (a, b), res in got:
        np.testing.assert_array_equal(res, 2.0 * np.arange(a, b))
    assert job.threads == [1, 1, 1]


def test_a_cancel_does_not_wait_for_a_slow_prepare():
    import time

    from gcnn_rnn.core.errors import Cancelled
    from gcnn_rnn.core.tiles import run_ranges

    job = _TwoStages(slow_range=(5, 9))
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        run_ranges(job, [(0, 5), (5, 9), (9, 20)], lambda r, res: None,
                   should_stop=lambda: time.monotonic() - t0 > 0.5)
    assert time.monotonic() - t0 < 1.5  # the 3 s prepare of (5, 9) was not waited for
    assert (9, 20) not in job.prepared


def test_a_grid_crs_given_as_an_authority_code_is_written(tmp_path):
    """A bundle saved from Python with ``crs="EPSG:28992"`` (not WKT) must predict: the
    writers read any CRS text GDAL/PROJ understand (it crashed with a WKT parse error)."""
    grid = Grid(0.0, 100.0, 10.0, 10, 10, "EPSG:28992")
    data = np.arange(100, dtype=float).reshape(10, 10)
    _stream(tmp_path / "s.tif", grid, data, [(0, 100)])
    write_raster(tmp_path / "w.tif", data, grid, "a field")
    for name in ("s.tif", "w.tif"):
        with rasterio.open(tmp_path / name) as ds:
            assert ds.crs.to_epsg() == 28992
            np.testing.assert_array_equal(ds.read(1), data)
