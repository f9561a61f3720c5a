"""Build sample_data/ from the Meuse CSV files (run once; the outputs are committed).

Usage: .venv/bin/python scripts/make_sample_data.py SRC_DIR
SRC_DIR holds meuse.csv and meuse_grid.csv (the R package sp's data sets, EPSG:28992).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import GPKG_OPTIONS
from gcnn_rnn.core.raster import write_raster

CRS = "EPSG:28992"
CELL = 40.0


def main(src: Path, dst: Path) -> None:
    dst.mkdir(exist_ok=True)
    for name in ("meuse.csv", "meuse_grid.csv"):
        shutil.copyfile(src / name, dst / name)
    samples = pd.read_csv(src / "meuse.csv")
    gdf = gpd.GeoDataFrame(
        samples, geometry=gpd.points_from_xy(samples.x, samples.y), crs=CRS
    )
    out = dst / "meuse.gpkg"
    out.unlink(missing_ok=True)
    gdf.to_file(out, layer="meuse", driver="GPKG", **GPKG_OPTIONS)  # 1.2: no GDAL 3.6 warning

    grid_nodes = pd.read_csv(src / "meuse_grid.csv")
    from pyproj import CRS as PCRS

    xmin = grid_nodes.x.min() - CELL / 2
    ymax = grid_nodes.y.max() + CELL / 2
    ncols = int(round((grid_nodes.x.max() + CELL / 2 - xmin) / CELL))
    nrows = int(round((ymax - (grid_nodes.y.min() - CELL / 2)) / CELL))
    grid = Grid(xmin, ymax, CELL, ncols, nrows, PCRS.from_user_input(CRS).to_wkt())
    arr = np.full(grid.shape, np.nan)
    col = np.rint((grid_nodes.x - xmin - CELL / 2) / CELL).astype(int)
    row = np.rint((ymax - grid_nodes.y - CELL / 2) / CELL).astype(int)
    arr[row, col] = grid_nodes["dist"].to_numpy(float)
    write_raster(
        dst / "meuse_dist.tif", arr, grid,
        "distance to the river Meuse, normalised to [0, 1]", kind="value",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent.parent / "sample_data")
