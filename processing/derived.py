"""Rasters the plugin derives from the engine's: the kriging standard deviation.

A kriging variance is in squared units of the field (ppm² for zinc in ppm, up to about 10⁶ on
Meuse), which reads badly in a legend and cannot be compared with the estimate. Its square
root, the kriging standard deviation, is in the field's own units. The engine writes only the
variance; this module writes the standard deviation beside it with GDAL (in QGIS's Python),
stripe by stripe so a streamed grid of any size fits in memory, keeping the grid, CRS, nodata
and a band description. It is written under a temporary name and renamed, so a failure never
leaves a partial file.
"""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsProcessingException

#: Derived file name -> the engine file it is the square root of.
STD_OF = {"kriging_std.tif": "kriging_variance.tif"}
NODATA = -9999.0
#: Rows read and written at a time (a stripe of a wide grid stays a few MB).
STRIPE_ROWS = 256


def derive(work: Path, fname: str) -> bool:
    """Write ``work / fname`` when it is a derived raster whose source the engine wrote.

    Returns
    -------
    bool
        True when the file now exists.
    """
    source = STD_OF.get(fname)
    if source is None or not (work / source).is_file():
        return False
    write_std(work / source, work / fname)
    return True


def std_description(variance_description: str) -> str:
    """The standard deviation's band description from the variance's."""
    text = variance_description.strip()
    if "variance" in text:
        return text.replace("variance", "standard deviation (square root of the variance)", 1)
    return f"standard deviation (square root of {text or 'the variance'})"


def write_std(variance: Path, dest: Path) -> None:
    """Write ``sqrt(variance)`` of every band of the GeoTIFF ``variance`` to ``dest``.

    Nodata and non-finite cells stay nodata (-9999); the variance is never negative, but a
    rounding ``-0.0`` is taken as 0.
    """
    import numpy as np
    from osgeo import gdal

    src = gdal.Open(str(variance))
    if src is None:
        raise QgsProcessingException(f"cannot read the engine's {variance.name!r}")
    tmp = dest.with_name(f".{dest.name}.part")
    driver = gdal.GetDriverByName("GTiff")
    out = driver.Create(str(tmp), src.RasterXSize, src.RasterYSize, src.RasterCount,
                        gdal.GDT_Float32,
                        options=["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"])
    if out is None:
        raise QgsProcessingException(f"GDAL cannot create {dest.name!r}: {gdal.GetLastErrorMsg()}")
    try:
        out.SetGeoTransform(src.GetGeoTransform())
        out.SetProjection(src.GetProjection())
        for b in range(1, src.RasterCount + 1):
            band_in, band_out = src.GetRasterBand(b), out.GetRasterBand(b)
            nodata_in = band_in.GetNoDataValue()
            band_out.SetNoDataValue(NODATA)
            band_out.SetDescription(std_description(band_in.GetDescription()))
            for row in range(0, src.RasterYSize, STRIPE_ROWS):
                rows = min(STRIPE_ROWS, src.RasterYSize - row)
                var = band_in.ReadAsArray(0, row, src.RasterXSize, rows).astype(np.float64)
                bad = ~np.isfinite(var)
                if nodata_in is not None:
                    bad |= var == nodata_in
                std = np.sqrt(np.maximum(np.where(bad, 0.0, var), 0.0))
                std[bad] = NODATA
                band_out.WriteArray(std.astype(np.float32), 0, row)
        out.FlushCache()
    except Exception:
        out = None
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src = None
    out = None  # closes and flushes the file
    os.replace(tmp, dest)
