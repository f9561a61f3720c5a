"""The ``MASK`` parameter: set raster cells outside polygons to nodata (GDAL, in QGIS's Python).

The engine has no mask option; the algorithms apply the mask to the engine's rasters before
moving them to their destinations. A cell is inside when its centre is inside a polygon.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProcessingException,
)


def _memory_layer(osr_srs):
    from osgeo import ogr

    for driver_name in ("Memory", "MEM"):
        driver = ogr.GetDriverByName(driver_name)
        if driver is not None:
            ds = driver.CreateDataSource("mask")
            return ds, ds.CreateLayer("mask", srs=osr_srs, geom_type=ogr.wkbMultiPolygon)
    raise QgsProcessingException("GDAL has no in-memory vector driver for the mask")


def apply_mask(rasters: Iterable[str | Path], source, context, feedback=None) -> int:
    """Set cells of ``rasters`` outside the polygons of ``source`` to each band's nodata.

    Parameters
    ----------
    rasters : iterable of path
        GeoTIFFs on one grid, updated in place.
    source : QgsFeatureSource
        Polygon features (any CRS; reprojected to the rasters' CRS).
    context : QgsProcessingContext
        For the transform context.

    Returns
    -------
    int
        Number of cells masked per band.
    """
    import numpy as np
    from osgeo import gdal, ogr, osr

    rasters = [str(p) for p in rasters]
    if not rasters:
        return 0
    first = gdal.Open(rasters[0])
    if first is None:
        raise QgsProcessingException(f"cannot open {rasters[0]!r} to apply the mask")
    wkt = first.GetProjection()
    gt = first.GetGeoTransform()
    xsize, ysize = first.RasterXSize, first.RasterYSize
    first = None

    dest_crs = QgsCoordinateReferenceSystem.fromWkt(wkt)
    transform = QgsCoordinateTransform(source.sourceCrs(), dest_crs, context.transformContext())
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    mem_ds, layer = _memory_layer(srs)
    count = 0
    request = QgsFeatureRequest().setNoAttributes()
    for feature in source.getFeatures(request):
        geom = feature.geometry()
        if geom is None or geom.isEmpty():
            continue
        geom = type(geom)(geom)
        if source.sourceCrs().isValid() and dest_crs.isValid():
            geom.transform(transform)
        ogr_feature = ogr.Feature(layer.GetLayerDefn())
        ogr_feature.SetGeometry(ogr.CreateGeometryFromWkb(bytes(geom.asWkb())))
        layer.CreateFeature(ogr_feature)
        count += 1
    if count == 0:
        raise QgsProcessingException("the mask layer has no polygons")

    mask_ds = gdal.GetDriverByName("MEM").Create("", xsize, ysize, 1, gdal.GDT_Byte)
    mask_ds.SetGeoTransform(gt)
    mask_ds.SetProjection(wkt)
    gdal.RasterizeLayer(mask_ds, [1], layer, burn_values=[1])
    outside = mask_ds.GetRasterBand(1).ReadAsArray() == 0
    mask_ds = None
    del mem_ds, layer

    for path in rasters:
        ds = gdal.Open(path, gdal.GA_Update)
        if ds is None:
            raise QgsProcessingException(f"cannot open {path!r} to apply the mask")
        if (ds.RasterXSize, ds.RasterYSize) != (xsize, ysize):
            raise QgsProcessingException(f"{path!r} is not on the grid of {rasters[0]!r}")
        for b in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(b)
            nodata = band.GetNoDataValue()
            if nodata is None:
                nodata = -9999.0
                band.SetNoDataValue(nodata)
            arr = band.ReadAsArray()
            arr[outside] = np.asarray(nodata, dtype=arr.dtype)
            band.WriteArray(arr)
            band.FlushCache()
        ds = None
    if feedback is not None:
        feedback.pushInfo(f"mask: {int(outside.sum())} of {outside.size} cells outside the polygons")
    return int(outside.sum())
