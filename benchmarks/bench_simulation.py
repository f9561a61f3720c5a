"""Conditional simulation benchmark (issue 10): ``gcnn-rnn simulate`` against R gstat's
sequential Gaussian simulation ``krige(..., nsim = N, nmax = 16)`` in the same run.

Case: ``--samples`` random samples (default 400) of a smooth field in a 1000 x 1000 m square,
a ``--size`` x ``--size`` grid over that square (default 100 x 100 = 1e4 nodes), ``--nsim``
realisations (default 10), 16 neighbours, the normal-score variogram ``0.1 Nug + 0.9 Sph(200)``.

* **gcnn-rnn**: the CLI as a subprocess (start-up, reading the CSV, normal scores, simulation,
  writing four GeoTIFFs); wall time, and the simulation stage alone from ``simulation.json``
  (which includes loading the compiled numba code, about a second once per process); and
  ``simulate_grid`` in this process after a warm-up call (the compiled code loaded).
* **R gstat** ``krige(y ~ 1, ..., nsim, nmax = 16, beta = 0)``: sequential Gaussian simulation
  with simple kriging of the same normal scores (the engine's own transform, so both simulate
  the same data), whole ``Rscript`` and the ``krige()`` call alone.

Reports node x realisation rates (wall clock), CPU time per node x realisation (less
sensitive to other load on a shared machine) and, as a sanity check, the mean and variance of the simulated
normal scores of both (about 0 and 1). Run:
``.venv/bin/python benchmarks/bench_simulation.py [--size 100 --nsim 10] [--output-json F]``.

``--memory 500,1000`` measures instead the peak RSS of whole ``gcnn-rnn simulate`` processes
(``--nsim`` realisations, default 16 here, ``--neighbours`` 8) on grids of 500 x 500 and
1000 x 1000 nodes and on a 50 x 50 baseline, and the bytes per node above the baseline
(what grows with the grid; issue 13). ``--path slabs`` (and ``--slab-rows N``) runs them
slab by slab: ``--memory 1000,2000,4000 --path slabs`` is the slab benchmark of
BENCHMARKS.md (1e6, 4e6 and 1.6e7 nodes). Each run also reports the simulation stage's
seconds, the path layout from ``simulation.json`` and what the memory guard counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bench_kriging import make_samples, run_child
from emit import emit

MODEL_TEXT = "0.1 Nug + 0.9 Sph(200)"
EXTENT = 1000.0

GSTAT_SCRIPT = textwrap.dedent("""
    suppressMessages({library(gstat); library(sp)})
    a <- commandArgs(TRUE)
    d <- read.csv(a[1]); coordinates(d) <- ~x+y
    size <- as.integer(a[3]); cell <- 1000 / size
    g <- expand.grid(x = (seq_len(size) - 0.5) * cell, y = 1000 - (seq_len(size) - 0.5) * cell)
    coordinates(g) <- ~x+y
    m <- vgm(0.9, "Sph", 200, 0.1)
    set.seed(1)
    t <- system.time(s <- krige(score~1, d, g, model = m, nmax = 16, nsim = as.integer(a[4]),
                                beta = 0, debug.level = 0))
    writeBin(c(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]], as.vector(as.matrix(s@data))),
             a[2])
""")


def bench_gstat(work: Path, xy, y, size: int, nsim: int) -> dict | None:
    rscript = shutil.which("Rscript")
    if rscript is None or subprocess.run([rscript, "-e", "library(gstat)"],
                                         capture_output=True).returncode != 0:
        return None
    src = work / "scores.csv"
    np.savetxt(src, np.column_stack([xy, y]), delimiter=",", header="x,y,score", comments="",
               fmt="%.17g")
    script = work / "sgs.R"
    script.write_text(GSTAT_SCRIPT)
    out = work / "gstat.bin"
    wall, rss, _, _ = run_child([rscript, str(script), str(src), str(out), str(size), str(nsim)])
    raw = np.fromfile(out, dtype=np.float64)
    sims = raw[2:].reshape(nsim, size * size)
    n = size * size * nsim
    return {"wall_s": wall, "rss_mb": rss, "krige_s": float(raw[0]), "krige_cpu_s": float(raw[1]),
            "cpu_us_per_node_realisation": float(raw[1]) / n * 1e6,
            "node_realisations": n, "per_s": n / wall, "per_s_krige": n / float(raw[0]),
            "score_mean": float(sims.mean()), "score_var": float(sims.var())}


def bench_engine(work: Path, xy, v, size: int, nsim: int) -> dict:
    import rasterio

    from gcnn_rnn.core.transforms import FittedTransform

    src = work / "samples.csv"
    np.savetxt(src, np.column_stack([xy, v]), delimiter=",", header="x,y,v", comments="",
               fmt="%.17g")
    out = work / "engine"
    cmd = [sys.executable, "-m", "gcnn_rnn.core", "simulate", "--quiet", "--input", str(src),
           "--field", "v", "--crs", "EPSG:32633", "--variogram", MODEL_TEXT,
           "--realisations", str(nsim), "--neighbours", "16", "--seed", "1",
           "--extent", f"0,0,{EXTENT:g},{EXTENT:g}", "--cell-size", repr(EXTENT / size),
           "--output-dir", str(out)]
    wall, rss, _, _ = run_child(cmd)
    summary = json.loads((out / "simulation.json").read_text())
    ft = FittedTransform.from_dict(summary["transform"])
    with rasterio.open(out / "realisations.tif") as ds:
        scores = ft.forward(ds.read().astype(float))
    n = size * size * nsim
    sim_s = summary["timings_s"]["simulation"]
    warm_s, warm_cpu_s = _warm_seconds(xy, v, size, nsim)
    return {"wall_s": wall, "rss_mb": rss, "simulation_s": sim_s, "node_realisations": n,
            "per_s": n / wall, "per_s_simulation": n / sim_s, "warm_s": warm_s,
            "per_s_warm": n / warm_s, "warm_cpu_s": warm_cpu_s,
            "cpu_us_per_node_realisation": warm_cpu_s / n * 1e6,
            "score_mean": float(scores.mean()), "score_var": float(scores.var())}


def _warm_seconds(xy, v, size: int, nsim: int) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of ``simulate_grid`` in this process once its
    compiled code is loaded."""
    import time

    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.simulation import SimulationConfig, simulate_grid
    from gcnn_rnn.core.variogram.models import parse_model

    grid = Grid(0.0, EXTENT, EXTENT / size, size, size)
    model = parse_model(MODEL_TEXT)
    simulate_grid(xy, v, Grid(0.0, EXTENT, EXTENT / 10, 10, 10), model)  # loads the code
    t0, c0 = time.perf_counter(), time.process_time()
    simulate_grid(xy, v, grid, model, SimulationConfig(realisations=nsim, seed=1))
    return time.perf_counter() - t0, time.process_time() - c0


def simulate_cmd(src: Path, out: Path, size: int, nsim: int, neighbours: int,
                 path: str = "auto", slab_rows: int | None = None) -> list[str]:
    """The ``gcnn-rnn simulate`` command line on a ``size`` x ``size`` grid of the square."""
    return [sys.executable, "-m", "gcnn_rnn.core", "simulate", "--quiet", "--input", str(src),
            "--field", "v", "--crs", "EPSG:32633", "--variogram", MODEL_TEXT,
            "--realisations", str(nsim), "--neighbours", str(neighbours), "--seed", "1",
            "--extent", f"0,0,{EXTENT:g},{EXTENT:g}", "--cell-size", repr(EXTENT / size),
            "--max-memory-gb", "64", "--path", path,
            *(["--slab-rows", str(slab_rows)] if slab_rows else []), "--output-dir", str(out)]


def _guard_mb(size: int, nsim: int, neighbours: int, n: int, layout: dict) -> float:
    """What the memory guard counts for the run (MiB), at one path group per thread."""
    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.simulation.memory import run_bytes, slab_run_bytes
    from gcnn_rnn.core.simulation.sgs import PATH_GROUP, _threads

    grid = Grid(0.0, EXTENT, EXTENT / size, size, size)
    batch = min(nsim, PATH_GROUP * _threads(0))
    if layout.get("mode") == "slabs":
        window = min(size, layout["slab_rows"] + layout["halo_rows"]) * size
        need = slab_run_bytes(grid, n, nsim, neighbours, batch, window)
    else:
        need = run_bytes(grid, n, nsim, neighbours, batch)
    return need / 1024**2


def bench_memory(work: Path, xy, v, sizes: list[int], nsim: int, neighbours: int,
                 path: str = "auto", slab_rows: int | None = None) -> dict:
    """Peak RSS of ``simulate`` per grid size, and the bytes per node above a small grid."""
    src = work / "samples.csv"
    np.savetxt(src, np.column_stack([xy, v]), delimiter=",", header="x,y,v", comments="",
               fmt="%.17g")
    rows = []
    for size in [50, *sizes]:
        out = work / f"mem{size}"
        wall, rss, _, _ = run_child(simulate_cmd(src, out, size, nsim, neighbours, path,
                                                 slab_rows))
        summary = json.loads((out / "simulation.json").read_text())
        shutil.rmtree(out)
        rows.append({"nodes": size * size, "wall_s": wall, "peak_rss_mb": rss,
                     "simulation_s": summary["timings_s"]["simulation"],
                     "path": summary["path"],
                     "guard_mb": _guard_mb(size, nsim, neighbours, len(v), summary["path"])})
    base = rows[0]
    for row in rows[1:]:
        row["bytes_per_node"] = ((row["peak_rss_mb"] - base["peak_rss_mb"]) * 1024**2
                                 / (row["nodes"] - base["nodes"]))
    return {"realisations": nsim, "neighbours": neighbours, "path": path,
            "slab_rows": slab_rows, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    from gcnn_rnn.core.transforms import fit_transform

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--size", type=int, default=100, help="grid is SIZE x SIZE nodes")
    ap.add_argument("--nsim", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-gstat", action="store_true")
    ap.add_argument("--memory", metavar="S1,S2",
                    help="peak RSS of simulate on S x S grids instead (16 realisations unless "
                         "--nsim, 8 neighbours)")
    ap.add_argument("--path", choices=("auto", "random", "slabs"), default="auto",
                    help="simulate --path of the --memory runs (default auto)")
    ap.add_argument("--slab-rows", type=int, help="simulate --slab-rows of the --memory runs")
    ap.add_argument("--output-json")
    args = ap.parse_args(argv)
    xy, v = make_samples(args.samples, args.seed, EXTENT)
    v = np.exp(v / 2.0)  # skewed, like concentrations
    if args.memory:
        nsim = args.nsim if "--nsim" in (argv or sys.argv) else 16
        with tempfile.TemporaryDirectory() as tmp:
            mem = bench_memory(Path(tmp), xy, v, [int(s) for s in args.memory.split(",")],
                               nsim, 8, args.path, args.slab_rows)
        return emit({"date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
                     "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "load": os.getloadavg()},
                     "case": {"samples": args.samples, "model": MODEL_TEXT}, "memory": mem},
                    args.output_json)
    y = fit_transform(v, "nscore").forward(v)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine = bench_engine(work, xy, v, args.size, args.nsim)
        gstat = None if args.skip_gstat else bench_gstat(work, xy, y, args.size, args.nsim)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load": os.getloadavg()},
        "case": {"samples": args.samples, "nodes": args.size**2, "realisations": args.nsim,
                 "neighbours": 16, "model": MODEL_TEXT},
        "engine": engine,
        "gstat": gstat,
    }
    if gstat:
        result["speed-up"] = {"whole_process": engine["per_s"] / gstat["per_s"],
                              "simulation_vs_krige_call": engine["per_s_simulation"]
                              / gstat["per_s_krige"],
                              "warm_vs_krige_call": engine["per_s_warm"] / gstat["per_s_krige"],
                              "cpu_time_warm_vs_krige_call": gstat["krige_cpu_s"]
                              / engine["warm_cpu_s"],
                              "whole_process_vs_krige_call": engine["per_s"]
                              / gstat["per_s_krige"]}
    return emit(result, args.output_json)


if __name__ == "__main__":
    sys.exit(main())
