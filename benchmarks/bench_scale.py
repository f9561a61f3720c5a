"""Peak memory of ``gcnn-rnn krige`` against the grid size, and in-process vs a local Dask
cluster (issue 13).

The case of ``bench_kriging.py`` (10,000 samples of a smooth field in a 1000 m square, ordinary
kriging with the 32 nearest samples) on grids of growing size: the cell size shrinks so that the
grid has the asked number of nodes. Each run is a fresh ``gcnn-rnn krige`` process; its wall time
and peak RSS (``wait4``, the largest of the process and its waited-for children) are reported.

    python benchmarks/bench_scale.py --nodes 1e6,1e7 [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kriging import CRS, MODEL_TEXT, make_samples, run_child  # noqa: E402


def bench(work: Path, src: Path, nodes: float, workers: int | None) -> dict:
    cell = 1000.0 / math.sqrt(nodes)
    out = work / f"out-{int(nodes)}-{workers or 0}"
    cmd = [sys.executable, "-m", "gcnn_rnn.core", "krige", "--input", str(src), "--field", "v",
           "--variogram", MODEL_TEXT, "--neighbours", "32", "--cell-size", f"{cell:.12g}",
           "--extent=0,0,1000,1000", "--output-dir", str(out), "--quiet"]
    if workers:
        cmd += ["--workers", str(workers)]
    wall, rss, _, _ = run_child(cmd)
    summary = json.loads((out / "kriging.json").read_text())
    return {"nodes": summary["targets"], "workers": workers or 0, "wall_s": round(wall, 2),
            "rss_mb": round(rss), "kriging_s": summary["timings_s"]["kriging"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1e6,1e7", help="grid sizes, comma separated")
    ap.add_argument("--workers", type=int, default=0, help="also run on a local cluster")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    import geopandas as gpd

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        xy, v = make_samples(args.samples, 42, 1000.0)
        src = work / "samples.gpkg"
        gpd.GeoDataFrame({"v": v}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
                         crs=CRS).to_file(src, layer="samples")
        bench(work, src, 1e4, None)  # warm the numba cache
        for nodes in (float(t) for t in args.nodes.split(",")):
            for workers in ([None, args.workers] if args.workers else [None]):
                row = bench(work, src, nodes, workers)
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
