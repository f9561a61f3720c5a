"""Raster output formats: the engine writes GeoTIFF; another extension gets GDAL's driver for it.

A destination such as ``est.asc`` or ``var.img`` must contain what its name says (an Arc/Info
ASCII grid, an ERDAS Imagine file), not GeoTIFF bytes under another name. The GeoTIFF the engine
wrote is converted with ``gdal.Translate`` (CRS, nodata, band descriptions where the format keeps
them) into a private folder first and then moved, so a failed conversion leaves no partial file.
An extension no GDAL driver can write is refused before the engine starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qgis.core import QgsProcessingException, QgsRasterFileWriter

GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: Drivers whose files reference other files instead of holding the data.
NOT_SELF_CONTAINED = ("VRT",)


def writable_extensions() -> list[str]:
    """Raster extensions the outputs can have (GeoTIFF first), for the file dialogs: those of
    every GDAL raster driver that can create or copy a self-contained file."""
    from osgeo import gdal

    found = set()
    for i in range(gdal.GetDriverCount()):
        driver = gdal.GetDriver(i)
        meta = driver.GetMetadata() or {}
        if (meta.get("DCAP_RASTER") != "YES" or driver.ShortName in NOT_SELF_CONTAINED
                or not _can_write(driver.ShortName)):
            continue
        found.update(e.lower() for e in (meta.get("DMD_EXTENSIONS") or "").split() if e)
    found -= {"tif", "tiff"}
    return ["tif", *sorted(found)]


def driver_for(path: str) -> str:
    """GDAL's short driver name for the raster file ``path`` (``GTiff`` for .tif/.tiff).

    Raises
    ------
    QgsProcessingException
        No GDAL driver writes files with that extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix in GEOTIFF_SUFFIXES or not suffix:
        return "GTiff"
    driver = QgsRasterFileWriter.driverForExtension(suffix[1:])
    if driver in NOT_SELF_CONTAINED:
        raise QgsProcessingException(
            f"cannot write {Path(path).name!r} as {driver}: such a file only points at the data "
            "(which is temporary here); use .tif (GeoTIFF) or another self-contained format")
    if not driver or not _can_write(driver):
        raise QgsProcessingException(
            f"cannot write a raster named {Path(path).name!r}: no GDAL driver writes "
            f"'{suffix}' files; use .tif (GeoTIFF) or another raster format GDAL can create")
    return driver


def _can_write(driver_name: str) -> bool:
    from osgeo import gdal

    driver = gdal.GetDriverByName(driver_name)
    if driver is None:
        return False
    meta = driver.GetMetadata() or {}
    return meta.get("DCAP_CREATECOPY") == "YES" or meta.get("DCAP_CREATE") == "YES"


def write_raster_as(src: Path, dest: Path, scratch: Path) -> list[Path]:
    """Put the GeoTIFF ``src`` at ``dest`` in the format of ``dest``'s extension.

    Returns the files placed beside ``dest`` (``dest`` first; side-car files such as ``.prj``
    follow). ``scratch`` is an empty private folder for the conversion.
    """
    driver = driver_for(str(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if driver == "GTiff":
        shutil.move(str(src), str(dest))
        return [dest]
    from osgeo import gdal

    scratch.mkdir(parents=True, exist_ok=True)
    converted = scratch / dest.name
    options = gdal.TranslateOptions(format=driver)
    ds = gdal.Translate(str(converted), str(src), options=options)
    if ds is None:
        shutil.rmtree(scratch, ignore_errors=True)
        raise QgsProcessingException(
            f"GDAL could not write {dest.name!r} as {driver}: {gdal.GetLastErrorMsg()}")
    ds = None  # closes and flushes the file
    placed = []
    for produced in sorted(scratch.iterdir(), key=lambda p: p != converted):
        target = dest.parent / produced.name
        if target.exists():
            target.unlink()
        shutil.move(str(produced), str(target))
        placed.append(target)
    return placed
