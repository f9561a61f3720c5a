"""``krige --covariates`` on a grid reads the covariate rasters range by range (only each
range's window), with the floats of a whole-grid call that holds them at every node."""

from __future__ import annotations

import numpy as np
import rasterio

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.features import sample_covariates
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging import krige_universal_grid
from gcnn_rnn.core.raster import sample_raster
from gcnn_rnn.core.variogram.models import parse_model

VG = "0.05 Nug + 0.35 Sph(800)"


def test_sample_raster_reads_a_window_with_the_values_of_the_whole_band(meuse_dist_tif):
    with rasterio.open(meuse_dist_tif) as ds:
        band = ds.read(1).astype(float)
        band[band == ds.nodata] = np.nan
        t, (h, w) = ds.transform, band.shape
    rng = np.random.default_rng(3)
    # a cluster of points in one corner (a small window), points outside and a wide scatter
    xs = t.c + t.a * np.r_[rng.uniform(2, 9, 40), rng.uniform(-5, w + 5, 200)]
    ys = t.f + t.e * np.r_[rng.uniform(h - 9, h - 2, 40), rng.uniform(-5, h + 5, 200)]
    coords = np.column_stack([xs, ys])
    cols = np.floor((xs - t.c) / t.a).astype(int)
    rows = np.floor((ys - t.f) / t.e).astype(int)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    want = np.full(len(xs), np.nan)
    want[inside] = band[rows[inside], cols[inside]]
    assert (~inside).sum() > 10 and np.isnan(want[inside]).sum() > 10  # outside and nodata
    for part in (slice(0, 40), slice(None), slice(40, 41)):
        np.testing.assert_array_equal(sample_raster(meuse_dist_tif, coords[part]), want[part])
    assert np.isnan(sample_raster(meuse_dist_tif, coords[~inside])).all()


def test_krige_covariates_on_a_grid_equals_the_whole_grid_call(meuse_gpkg, meuse_dist_tif,
                                                               tmp_path, capsys):
    """10 m cells: 108,810 nodes, two ranges of the streamed job, the covariate read per range;
    the files hold the float32 of the whole-grid call with covariates at every node."""
    args = ["krige", "--quiet", "--input", meuse_gpkg, "--field", "zinc", "--transform", "log",
            "--output-units", "transformed", "--covariates", meuse_dist_tif, "--variogram", VG,
            "--neighbours", "16", "--cell-size", "10", "--output-dir", tmp_path]
    assert main(list(map(str, args))) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "kriging_estimate.tif") as ds:
        t = ds.transform
        grid = Grid(t.c, t.f, 10.0, ds.width, ds.height, ds.crs.to_wkt())
        got_est = ds.read(1, masked=True).filled(np.nan)
    with rasterio.open(tmp_path / "kriging_variance.tif") as ds:
        got_var = ds.read(1, masked=True).filled(np.nan)
    assert grid.n_nodes > 65_536  # more than one range (universal.GRID_CHUNK)
    pts = read_points(meuse_gpkg, "zinc")
    cov = sample_covariates([str(meuse_dist_tif)], pts.coords, pts.crs, allow_missing=True)
    every = sample_covariates([str(meuse_dist_tif)], grid.node_coords(), pts.crs,
                              allow_missing=True)
    want = krige_universal_grid(pts.coords, np.log(pts.values), grid, parse_model(VG),
                                covariates=cov, grid_covariates=every, neighbours=16)
    assert np.isnan(want.estimate).sum() > 1000  # nodes without a covariate stay empty
    np.testing.assert_array_equal(got_est, want.estimate.astype(np.float32))
    np.testing.assert_array_equal(got_var, want.variance.astype(np.float32))
