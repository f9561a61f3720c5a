"""``simulate`` writes the realisations batch by batch and the summaries stripe by stripe:
the files hold the floats of :func:`simulate_grid` (all realisations in memory) and of the
summaries of :class:`SimulationResult`, band for band, style for style."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.raster import write_raster
from gcnn_rnn.core.simulation import SimulationConfig, simulate_grid
from gcnn_rnn.core.variogram.models import parse_model

VG = "0.1 Nug + 0.9 Sph(900)"


def _read(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(masked=True).filled(np.nan)


def _case_3d(tmp_path):
    rng = np.random.default_rng(5)
    xyz = rng.uniform(0, 1000, size=(90, 3)) * [1, 1, 0.1]
    v = np.exp(np.sin(xyz[:, 0] / 200) + xyz[:, 2] / 50 + rng.normal(0, 0.2, 90))
    csv = tmp_path / "s.csv"
    np.savetxt(csv, np.column_stack([xyz, v]), delimiter=",", header="x,y,depth,v",
               comments="")
    return (["--input", csv, "--field", "v", "--z-field", "depth", "--crs", "EPSG:32631",
             "--cell-size", "100", "--extent", "0,0,1000,1000", "--z-levels", "0:100:50"],
            read_points(csv, "v", z_field="depth", crs="EPSG:32631"))


@pytest.mark.parametrize("dims", [2, 3])
def test_streamed_simulation_equals_the_whole_array(meuse_gpkg, tmp_path, capsys, dims):
    if dims == 2:
        flags = ["--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                 "--cell-size", "100"]
        pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    else:
        flags, pts = _case_3d(tmp_path)
    out = tmp_path / "out"
    # 40 realisations at one thread: three batches of path groups (16, 16, 8)
    args = ["simulate", "--quiet", *flags, "--variogram", VG, "--realisations", "40",
            "--seed", "7", "--threads", "1", "--threshold", "300", "--output-dir", out]
    assert main(list(map(str, args))) == 0, capsys.readouterr().err
    with rasterio.open(out / "etype_mean.tif") as ds:
        t = ds.transform
        grid = Grid(t.c, t.f, 100.0, ds.width, ds.height, ds.crs.to_wkt(),
                    (0.0, 50.0, 100.0) if dims == 3 else None)
    res = simulate_grid(pts.coords, pts.values, grid, parse_model(VG),
                        SimulationConfig(realisations=40, seed=7, n_jobs=1))
    nz = 3 if dims == 3 else 1
    real = res.realisations.reshape(40 * nz, grid.nrows, grid.ncols)
    np.testing.assert_array_equal(_read(out / "realisations.tif"), real)
    f32 = np.float32
    for name, want in (("etype_mean", res.etype_mean()),
                       ("conditional_variance", res.conditional_variance()),
                       ("exceedance_probability", res.exceedance_probability(300.0))):
        got = _read(out / f"{name}.tif")
        np.testing.assert_array_equal(got, want.reshape(nz, grid.nrows, grid.ncols).astype(f32))
    # the same style and band descriptions as a whole-array write
    names = [f"realisation {r + 1}" + (f", z={z:g}" if dims == 3 else "")
             for r in range(40) for z in (grid.z_levels or (0,))]
    write_raster(tmp_path / "w.tif", real, grid, "x", band_descriptions=names)
    assert (out / "realisations.qml").read_text() == (tmp_path / "w.qml").read_text()
    with rasterio.open(out / "realisations.tif") as ds:
        assert list(ds.descriptions) == names
