"""The hybrid at scale (issue 14): ``train`` at n = 155 (Meuse), 1e3, 1e4, 1e5 samples and
``predict`` at 1e6 / 4e6 cells, wall time and peak RSS of each command, with the growth
exponents (log-log slopes between successive sizes). Not a test; prints JSON.

Each command runs as its own process under ``/usr/bin/time`` (peak RSS of that process).
The synthetic samples are a smooth field plus noise on a square whose side grows as
``sqrt(n)`` (constant density), written as CSV.

Usage::

    .venv/bin/python benchmarks/bench_hybrid_scale.py [--sizes 155,1000,10000,100000]
        [--cells 1e6,4e6] [--predict-model 10000] [--no-gate-predict] [--workers 2]
        [--output res.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from emit import emit  # benchmarks/ is the script directory, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
MEUSE = ROOT / "sample_data" / "meuse.gpkg"


def samples(n: int, folder: Path) -> tuple[list[str], tuple[float, float, float, float]]:
    """Point-input arguments of the ``n``-sample data set, and its extent."""
    if n == 155:
        return ["--input", str(MEUSE), "--layer", "meuse", "--field", "zinc",
                "--transform", "log"], (178605.0, 329714.0, 181390.0, 333611.0)
    rng = np.random.default_rng(0)
    s = math.sqrt(n / 1e4)
    xy = rng.uniform(0, 10000 * s, (n, 2))
    z = (np.sin(xy[:, 0] / 1500 / s) + np.cos(xy[:, 1] / 900 / s)
         + 0.3 * np.sin((xy[:, 0] + xy[:, 1]) / 400 / s) + rng.normal(0, 0.2, n))
    path = folder / f"samples_{n}.csv"
    np.savetxt(path, np.column_stack([xy, z]), delimiter=",", header="x,y,z", comments="",
               fmt="%.6f")
    return ["--input", str(path), "--field", "z", "--crs", "EPSG:28992"], \
        (0.0, 0.0, 10000 * s, 10000 * s)


def timed(args: list[str]) -> dict:
    """Run the engine CLI with ``args``: wall seconds, peak RSS (MB), exit code."""
    cmd = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "gcnn_rnn.core", "--quiet",
           *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1].split()
    out = {"seconds": float(last[0]), "peak_rss_mb": round(int(last[1]) / 1024),
           "exit_code": proc.returncode}
    if proc.returncode:
        out["stderr_tail"] = proc.stderr[-1500:]
    return out


def train(n: int, folder: Path, extra: list[str]) -> dict:
    args, extent = samples(n, folder)
    model = folder / f"model_{n}{'_nogate' if '--no-gate' in extra else ''}"
    res = {"n": n, **timed(["train", *args, *extra, "--model-dir", str(model)])}
    if res["exit_code"] == 0:
        doc = json.loads((model / "model.json").read_text())
        tr = doc["training"]
        res.update(epochs=tr["epochs"], network_seconds=round(tr["seconds"], 1),
                   gate_weight=doc["metrics"]["shrinkage"],
                   hybrid_oof_rmse=round(doc["metrics"]["hybrid_oof_rmse"], 5),
                   ok_loo_rmse=round(doc["metrics"]["ok_loo_rmse"], 5),
                   bundle_bytes=sum(p.stat().st_size for p in model.iterdir()),
                   samples_file_bytes=(model / "training_data.npz").stat().st_size)
    return {**res, "model": str(model), "extent": extent}


def predict(model: str, extent, cells: float, folder: Path, extra: list[str]) -> dict:
    xmin, ymin, xmax, ymax = extent
    cell = math.sqrt((xmax - xmin) * (ymax - ymin) / cells)
    out = folder / f"pred_{Path(model).name}_{int(cells)}"
    res = timed(["predict", "--model-dir", model, "--extent", f"{xmin},{ymin},{xmax},{ymax}",
                 "--cell-size", repr(cell), "--output-dir", str(out), *extra])
    n_cells = math.ceil((xmax - xmin) / cell) * math.ceil((ymax - ymin) / cell)
    res.update(cells=n_cells, cells_per_second=round(n_cells / res["seconds"]))
    return res


def slopes(xs: list[float], ys: list[float]) -> list[float]:
    """Log-log slope between successive points (time ∝ size^slope)."""
    return [round(math.log(ys[i + 1] / ys[i]) / math.log(xs[i + 1] / xs[i]), 2)
            for i in range(len(xs) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="155,1000,10000,100000")
    ap.add_argument("--cells", default="1e6,4e6")
    ap.add_argument("--predict-model", type=int, default=10000,
                    help="the training size whose model predicts the grids")
    ap.add_argument("--no-gate-predict", action="store_true",
                    help="also train that model with --no-gate and predict with it (the "
                         "network always evaluated)")
    ap.add_argument("--workers", type=int, default=0,
                    help="also predict each grid on a local cluster of this many workers")
    ap.add_argument("--model", help="predict only, with this trained bundle (no training)")
    ap.add_argument("--extent", help="xmin,ymin,xmax,ymax of the grids predicted with --model")
    ap.add_argument("--keep", help="keep the data, models and rasters in this folder")
    ap.add_argument("--output", help="also write the results to this JSON file")
    args = ap.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="hscale_"))
    folder.mkdir(parents=True, exist_ok=True)
    res = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                      f"{os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M"), "load_before": os.getloadavg()}
    if args.model:
        doc = json.loads((Path(args.model) / "model.json").read_text())
        models = [{"model": args.model, "gate_weight": doc["metrics"]["shrinkage"],
                   "extent": tuple(float(v) for v in args.extent.split(","))}]
    else:
        runs = [train(int(float(n)), folder, []) for n in args.sizes.split(",")]
        ok = [r for r in runs if r["exit_code"] == 0]
        res["train"] = [{k: v for k, v in r.items() if k not in ("model", "extent")}
                        for r in runs]
        res["train_exponents"] = {
            "seconds": slopes([r["n"] for r in ok], [r["seconds"] for r in ok]),
            "peak_rss": slopes([r["n"] for r in ok], [r["peak_rss_mb"] for r in ok]),
            "bundle_bytes": slopes([r["n"] for r in ok], [r["bundle_bytes"] for r in ok]),
        }
        models = [r for r in ok if r["n"] == args.predict_model]
    if args.no_gate_predict and models:
        models.append(train(args.predict_model, folder, ["--no-gate"]))
    res["predict"] = []
    for m in models:
        rows = []
        for cells in (float(c) for c in args.cells.split(",")):
            rows.append({"model": Path(m["model"]).name, "gate_weight": m.get("gate_weight"),
                         **predict(m["model"], m["extent"], cells, folder, [])})
            if args.workers:
                rows.append({"model": Path(m["model"]).name, "workers": args.workers,
                             **predict(m["model"], m["extent"], cells, folder,
                                       ["--workers", str(args.workers)])})
        res["predict"].extend(rows)
        plain = [r for r in rows if "workers" not in r]
        res.setdefault("predict_exponents", {})[Path(m["model"]).name] = {
            "seconds": slopes([r["cells"] for r in plain], [r["seconds"] for r in plain]),
            "peak_rss": slopes([r["cells"] for r in plain], [r["peak_rss_mb"] for r in plain]),
        }
    res["load_after"] = os.getloadavg()
    return emit(res, args.output)


if __name__ == "__main__":
    sys.exit(main())
