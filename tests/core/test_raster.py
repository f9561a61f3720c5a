"""GeoTIFF writing: round trip of values, geometry, CRS, nodata, descriptions; atomicity; styles."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from pyproj import CRS

from gcnn_rnn.core.errors import EngineIOError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.raster import NODATA, read_raster, sample_raster, write_raster

WKT = CRS.from_epsg(28992).to_wkt()


def _grid(z=None):
    return Grid(1000.0, 2000.0, 10.0, 5, 4, WKT, z)


def test_round_trip_2d(tmp_path):
    g = _grid()
    data = np.arange(20, dtype=float).reshape(4, 5) / 3
    data[1, 2] = np.nan
    out = write_raster(tmp_path / "est.tif", data, g, "kriging estimate of zinc", units="ppm")
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 28992
        assert ds.nodata == NODATA
        assert ds.transform == g.transform
        assert ds.descriptions == ("kriging estimate of zinc",)
        assert ds.profile["compress"] == "deflate" and ds.profile["tiled"]
        assert ds.tags(1)["UNITS"] == "ppm"
        arr = ds.read(1)
    assert arr[1, 2] == NODATA
    back, g2, nodata = read_raster(out)
    assert np.isnan(back[1, 2])
    np.testing.assert_allclose(back[~np.isnan(back)], data[~np.isnan(data)].astype(np.float32))
    assert (g2.xmin, g2.ymax, g2.cell_size, g2.ncols, g2.nrows) == (1000, 2000, 10, 5, 4)


def test_3d_grid_one_band_per_level(tmp_path):
    g = _grid(z=(-5.0, -2.5))
    data = np.stack([np.zeros((4, 5)), np.ones((4, 5))])
    out = write_raster(tmp_path / "v.tif", data, g, "variance", kind="variance")
    with rasterio.open(out) as ds:
        assert ds.count == 2
        assert ds.descriptions == ("z=-5", "z=-2.5")
        np.testing.assert_array_equal(ds.read(2), 1)


def test_qml_sidecar_ramps_differ(tmp_path):
    g = _grid()
    data = np.linspace(0, 1, 20).reshape(4, 5)
    a = write_raster(tmp_path / "a.tif", data, g, "estimate", kind="value")
    b = write_raster(tmp_path / "b.tif", data, g, "variance", kind="variance")
    qa, qb = (ET.parse(p.with_suffix(".qml")).getroot() for p in (a, b))
    for q in (qa, qb):
        r = q.find("pipe/rasterrenderer")
        assert r.get("type") == "singlebandpseudocolor"
        assert len(r.findall("rastershader/colorrampshader/item")) == 5
    ca = [i.get("color") for i in qa.iter("item")]
    cb = [i.get("color") for i in qb.iter("item")]
    assert ca != cb


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    g = _grid()
    with pytest.raises(ValueError, match="does not match"):
        write_raster(tmp_path / "bad.tif", np.zeros((3, 3)), g, "x")
    # fail after the GeoTIFF data went into the temporary file (while styling): nothing may
    # remain, neither the final name nor the temporary one
    import gcnn_rnn.core.raster as raster

    def boom(*args, **kwargs):
        raise RuntimeError("disk full while styling")

    monkeypatch.setattr(raster, "qml_pseudocolor", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_raster(tmp_path / "bad2.tif", np.zeros((4, 5)), g, "x")
    assert list(tmp_path.iterdir()) == []
    # an earlier good file of the same name survives a failed overwrite untouched
    monkeypatch.undo()
    good = write_raster(tmp_path / "keep.tif", np.ones((4, 5)), g, "x")
    monkeypatch.setattr(raster, "qml_pseudocolor", boom)
    with pytest.raises(RuntimeError):
        write_raster(good, np.zeros((4, 5)), g, "x")
    np.testing.assert_array_equal(read_raster(good)[0], 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.qml", "keep.tif"]


def test_unwritable_destination(tmp_path):
    target = tmp_path / "file"
    target.write_text("a file, not a folder")
    with pytest.raises(EngineIOError, match="cannot write raster"):
        write_raster(target / "sub" / "x.tif", np.zeros((4, 5)), _grid(), "x")


def test_sample_raster(tmp_path, meuse_dist_tif):
    vals = sample_raster(meuse_dist_tif, np.array([[181180.0, 333740.0], [0.0, 0.0]]),
                         crs="EPSG:28992")
    assert vals[0] == 0.0 and np.isnan(vals[1])  # first meuse_grid node; far outside
    from gcnn_rnn.core.errors import InputDataError

    with pytest.raises(InputDataError, match="not in the points' CRS"):
        sample_raster(meuse_dist_tif, np.zeros((1, 2)), crs="EPSG:32631")
