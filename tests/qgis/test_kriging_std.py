"""D12/D13 of the QGIS user report: the kriging variance is also shown as a standard deviation
(in the field's units), every variance says it is in squared units, and a run's layers load
into one group with the prediction on top."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)
from qgis_helpers import MEUSE, SAMPLE_DATA, engine_cli, needs_engine, read_raster


@pytest.fixture(autouse=True)
def _provider(provider):
    return provider


def write_tif(path, bands, nodata=-9999.0, descriptions=()):
    """A small EPSG:28992 GeoTIFF with the given 2-D float bands."""
    from osgeo import gdal, osr

    rows, cols = bands[0].shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, len(bands),
                                              gdal.GDT_Float32)
    ds.SetGeoTransform((178000.0, 40.0, 0.0, 334000.0, 0.0, -40.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(28992)
    ds.SetProjection(srs.ExportToWkt())
    for i, arr in enumerate(bands, start=1):
        band = ds.GetRasterBand(i)
        band.SetNoDataValue(nodata)
        band.WriteArray(np.asarray(arr, dtype=np.float32))
        if i <= len(descriptions):
            band.SetDescription(descriptions[i - 1])
    ds = None


def test_std_is_the_square_root_of_every_band_by_stripes(tmp_path, monkeypatch):
    """Hand values: sqrt(4) = 2, sqrt(0.25) = 0.5, a -0.0 rounding is 0; nodata and NaN stay
    nodata; every band and stripe (3 rows a stripe here) is done; no partial file stays."""
    from osgeo import gdal

    from gcnn_rnn.processing import derived

    monkeypatch.setattr(derived, "STRIPE_ROWS", 3)
    b1 = np.array([[4.0, 0.25, -9999.0], [9.0, np.nan, -0.0], [16.0, 1e6, 2.0],
                   [100.0, 0.0, 1.0], [0.01, 25.0, -9999.0]])
    b2 = b1[::-1] * 4.0
    b2[b2 == -39996.0] = -9999.0
    write_tif(tmp_path / "kriging_variance.tif", [b1, b2],
              descriptions=["ordinary kriging variance of zinc (log, original units)",
                            "level 2"])
    assert derived.derive(tmp_path, "kriging_std.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kriging_std.tif",
                                                          "kriging_variance.tif"]
    ds = gdal.Open(str(tmp_path / "kriging_std.tif"))
    assert ds.RasterCount == 2 and ds.GetGeoTransform()[1] == 40.0
    expected1 = [[2.0, 0.5, -9999.0], [3.0, -9999.0, 0.0], [4.0, 1000.0, math.sqrt(2)],
                 [10.0, 0.0, 1.0], [0.1, 5.0, -9999.0]]
    got1 = ds.GetRasterBand(1).ReadAsArray()
    np.testing.assert_allclose(got1, expected1, rtol=1e-7)
    got2 = ds.GetRasterBand(2).ReadAsArray()
    missing = (b2 == -9999.0) | np.isnan(b2)
    expected2 = np.where(missing, -9999.0, np.sqrt(np.abs(np.where(missing, 0.0, b2))))
    np.testing.assert_allclose(got2, expected2, rtol=1e-7)
    assert got2[3, 1] == -9999.0  # the NaN, mirrored
    band = ds.GetRasterBand(1)
    assert band.GetNoDataValue() == -9999.0
    assert band.GetDescription() == ("ordinary kriging standard deviation (square root of the "
                                     "variance) of zinc (log, original units)")
    assert ds.GetRasterBand(2).GetDescription() == "standard deviation (square root of level 2)"
    assert "28992" in ds.GetProjection()
    assert not derived.derive(tmp_path, "kriging_estimate.tif")  # not a derived raster


def test_every_variance_says_squared_units_and_every_std_field_units(qgis_processing):
    """Help texts and the loaded layer names of all algorithms agree on the units."""
    from gcnn_rnn.processing.algorithms.base import SQUARED_UNITS

    seen = set()
    for algorithm in QgsApplication.processingRegistry().providerById("gcnnrnn").algorithms():
        for param in algorithm.destinationParameterDefinitions():
            name, text = param.name(), param.help()
            if "VARIANCE" in name:
                seen.add(name)
                assert "squared units" in text, (algorithm.id(), name)
                assert name in SQUARED_UNITS, name  # its layer name says "squared units"
            elif name.endswith("STD"):
                assert "squared" not in text and "units" in text, (algorithm.id(), name)
    assert seen == {"VARIANCE", "KRIGING_VARIANCE", "CONDITIONAL_VARIANCE"}
    for alg_id in ("ordinarykriging", "krigingexternaldrift"):
        std = QgsApplication.processingRegistry().algorithmById(
            f"gcnnrnn:{alg_id}").parameterDefinition("STD")
        assert std is not None and "square root of the kriging variance" in std.help()


@needs_engine("krige")
def test_ordinarykriging_loads_the_std_in_one_group_under_the_estimate(tmp_path):
    """The STD raster is the square root of the CLI's kriging variance on the same grid; the
    run's three layers load into one group: estimate, standard deviation, variance."""
    import processing

    cli = tmp_path / "cli"
    engine_cli("krige", ["--input", SAMPLE_DATA / "meuse.gpkg", "--layer", "meuse",
                         "--field", "zinc", "--transform", "log", "--cell-size", "200",
                         "--output-dir", cli])
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = {k: str(tmp_path / f"{k.lower()}.tif") for k in ("ESTIMATE", "VARIANCE", "STD")}
    processing.runAndLoadResults("gcnnrnn:ordinarykriging", {
        "INPUT": MEUSE, "FIELD": "zinc", "TRANSFORM": 1, "CELL_SIZE": 200, **out},
        context=context)
    try:
        std, gt, epsg, nodata, nbands = read_raster(out["STD"])
        var_cli, gt_cli, *_ = read_raster(cli / "kriging_variance.tif")
        assert (gt, epsg, nodata, nbands) == (gt_cli, "28992", -9999.0, 1)
        valid = var_cli != -9999.0
        assert valid.sum() > 50 and ((std == -9999.0) == ~valid).all()
        np.testing.assert_allclose(std[valid], np.sqrt(var_cli[valid]), rtol=1e-6)
        assert 10 < float(np.median(std[valid])) < 1839  # ppm, the data's scale (113-1839)
        from osgeo import gdal
        ds = gdal.Open(out["STD"])
        desc = ds.GetRasterBand(1).GetDescription()
        ds = None
        assert "standard deviation" in desc and "zinc" in desc

        groups = QgsProject.instance().layerTreeRoot().children()
        assert len(groups) == 1 and groups[0].name().startswith("Ordinary kriging (zinc) — ")
        names = [node.name() for node in groups[0].children()]
        assert names == ["Kriging estimate (zinc)", "Kriging standard deviation (zinc)",
                         "Kriging variance (zinc, squared units)"]
        for node in groups[0].children():
            assert isinstance(node.layer().renderer(), QgsSingleBandPseudoColorRenderer)
    finally:
        QgsProject.instance().removeAllMapLayers()
        QgsProject.instance().layerTreeRoot().removeAllChildren()
