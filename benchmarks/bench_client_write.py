"""How fast a client writes the six layers of hybrid ``predict`` (issue 13's extrapolation to
many workers: past this rate the writing, not the workers, sets the pace). Streams a smooth
field with noise, 65,536 nodes at a time, into six DEFLATE GeoTIFFs through
``RasterStreamWriter``, as ``stream_to_rasters`` does; only the writing is timed. Prints JSON.

Usage::

    .venv/bin/python benchmarks/bench_client_write.py [--side 3163] [--output res.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from emit import emit  # benchmarks/ is the script directory, first on sys.path

LAYERS = ("prediction", "kriging_estimate", "kriging_variance", "prediction_std",
          "interval_lower", "interval_upper")
CHUNK = 65_536


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=3163, help="grid of SIDE x SIDE nodes")
    ap.add_argument("--output")
    args = ap.parse_args()
    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.tiles import RasterStreamWriter, streaming_env

    side = args.side
    grid = Grid(0.0, float(side), 1.0, side, side, "EPSG:28992")
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="client_write_"))
    spent = 0.0
    load = os.getloadavg()
    try:
        with streaming_env():
            writers = [RasterStreamWriter(folder / f"{n}.tif", grid, n, "value") for n in LAYERS]
            for s in range(0, grid.n_nodes, CHUNK):
                idx = np.arange(s, min(grid.n_nodes, s + CHUNK))
                base = np.sin(idx // side / 300.0) + np.cos(idx % side / 200.0)
                values = [base * (1 + 0.1 * k) + rng.normal(0, 0.05, idx.size)
                          for k in range(len(LAYERS))]
                t = time.perf_counter()
                for w, v in zip(writers, values):
                    w.write(s, v)
                spent += time.perf_counter() - t
            t = time.perf_counter()
            for w in writers:
                w.close()
            spent += time.perf_counter() - t
        size = sum(p.stat().st_size for p in folder.iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return emit({"nodes": grid.n_nodes, "layers": len(LAYERS), "write_s": round(spent, 2),
                 "cells_per_second": round(grid.n_nodes / spent), "bytes_written": size,
                 "load_before": load, "load_after": os.getloadavg()}, args.output)


if __name__ == "__main__":
    sys.exit(main())
