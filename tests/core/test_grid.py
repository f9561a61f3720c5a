"""Grid construction, snapping, node order and the memory check."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.errors import GridTooLargeError, InputDataError
from gcnn_rnn.core.grid import BYTES_PER_NODE, Grid, parse_extent, parse_z_levels


def test_extent_is_snapped_outwards_to_cell_multiples():
    g = Grid.from_extent((178605, 329714, 181390, 333611), 40)
    assert (g.xmin, g.ymax) == (178600, 333640)
    assert g.extent[0] <= 178605 and g.extent[2] >= 181390
    assert g.extent[1] <= 329714 and g.extent[3] >= 333611
    assert (g.ncols, g.nrows) == (70, 99)  # 2800 / 40; ceil(3926 / 40)


def test_node_coords_raster_order_and_centres():
    g = Grid(0.0, 30.0, 10.0, 4, 3)
    xy = g.node_coords()
    assert xy.shape == (12, 2)
    np.testing.assert_allclose(xy[0], [5, 25])      # upper-left cell centre
    np.testing.assert_allclose(xy[3], [35, 25])     # end of the first row
    np.testing.assert_allclose(xy[4], [5, 15])      # next row is further south
    np.testing.assert_allclose(g.node_coords(5, 7), xy[5:7])
    assert list(g.chunks(5)) == [(0, 5), (5, 10), (10, 12)]
    np.testing.assert_allclose(g.x_centres(), [5, 15, 25, 35])
    np.testing.assert_allclose(g.y_centres(), [25, 15, 5])


def test_3d_grid_levels():
    g = Grid.from_extent((0, 0, 20, 20), 10, z_levels=parse_z_levels("-10:0:5"))
    assert g.shape == (3, 2, 2) and g.ndim == 3 and g.n_nodes == 12
    xyz = g.node_coords()
    np.testing.assert_allclose(xyz[:4, 2], -10)
    np.testing.assert_allclose(xyz[8:, 2], 0)
    np.testing.assert_allclose(xyz[4, :2], xyz[0, :2])


def test_parse_helpers():
    assert parse_z_levels("0:1:0.5") == (0.0, 0.5, 1.0)
    assert parse_z_levels("0:1:0.3") == pytest.approx((0.0, 0.3, 0.6, 0.9))
    assert parse_extent("1,2,3,4 [EPSG:28992]") == (1, 2, 3, 4)
    with pytest.raises(InputDataError, match="START:STOP:STEP"):
        parse_z_levels("1:2")
    with pytest.raises(InputDataError, match="4 numbers"):
        parse_extent("1,2,3")


def test_bad_cell_size_and_extent():
    with pytest.raises(InputDataError, match="positive"):
        Grid.from_extent((0, 0, 1, 1), 0)
    with pytest.raises(InputDataError, match="empty"):
        Grid.from_extent((5, 0, 1, 1), 1)


def test_too_large_grid_says_what_fits():
    with pytest.raises(GridTooLargeError) as info:
        Grid.from_extent((0, 0, 100_000, 100_000), 1.0, max_bytes=1024**3)
    msg = str(info.value)
    assert "10,000,000,000 nodes" in msg and "100,000 columns" in msg
    fits = float(msg.split("cell size of at least ")[1].split(" ")[0])
    g = Grid.from_extent((0, 0, 100_000, 100_000), fits, max_bytes=1024**3)
    assert g.n_nodes * BYTES_PER_NODE <= 1024**3


def test_from_template(meuse_dist_tif):
    g = Grid.from_template(meuse_dist_tif)
    assert (g.ncols, g.nrows, g.cell_size) == (78, 104, 40.0)
    assert (g.xmin, g.ymax) == (178440.0, 333760.0)
    assert "Amersfoort" in g.crs


def test_template_nodata_becomes_mask_of_outputs(meuse_dist_tif, tmp_path):
    from gcnn_rnn.core.raster import read_raster, write_raster

    g = Grid.from_template(meuse_dist_tif)
    assert g.mask is not None and g.mask.sum() == 3103  # the meuse_grid nodes
    out = write_raster(tmp_path / "est.tif", np.ones(g.shape), g, "ones")
    back, _, _ = read_raster(out)
    np.testing.assert_array_equal(np.isfinite(back), g.mask)
    g3 = Grid.from_template(meuse_dist_tif, z_levels=(0.0, 1.0))
    out3 = write_raster(tmp_path / "est3.tif", np.ones(g3.shape), g3, "ones")
    back3, _, _ = read_raster(out3, band=2)
    np.testing.assert_array_equal(np.isfinite(back3), g.mask)
