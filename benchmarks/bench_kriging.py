"""Kriging benchmark (issue 3): the whole ``gcnn-rnn krige`` process against PyKrige and GSTools.

Case: ``--samples`` random samples (default 10,000) of a smooth field in a 1000 x 1000 m square,
a ``--size`` x ``--size`` grid of 1 m cells (default 1000 x 1000 = 1e6 nodes), ordinary kriging
with the ``--neighbours`` (32) nearest samples and the spherical model
``0.1 Nug + 1 Sph(200)``.

* **gcnn-rnn**: the CLI as a subprocess (start-up, reading the GeoPackage, kriging, writing both
  GeoTIFFs); wall time and the child's peak RSS (``wait4``).
* **PyKrige** ``OrdinaryKriging.execute(backend="C", n_closest_points=k)`` on the first
  ``--pykrige-rows`` grid rows (all by default), in a subprocess for its own RSS.
* **R gstat** ``krige(nmax = k)`` (the reference), when ``Rscript`` with gstat is installed,
  as a subprocess on the same grid rows as PyKrige; the issue's figures for this machine
  were measured with it.
* **GSTools** has no local neighbourhood: global ordinary kriging of a subset
  (``--gstools-samples`` samples, ``--gstools-nodes`` nodes) compared with the engine's global
  kriging of the same subset.

Reports nodes/s, peak RSS and the largest absolute differences, as a table and as JSON
(``--output-json``). Use ``--quick`` while developing (1000 x 100 nodes).

Run: ``.venv/bin/python benchmarks/bench_kriging.py [--quick]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MODEL_TEXT = "0.1 Nug + 1 Sph(200)"
NUGGET, PSILL, RANGE = 0.1, 1.0, 200.0
CRS = "EPSG:32633"


def make_samples(n: int, seed: int, extent: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, extent, size=(n, 2))
    v = (np.sin(xy[:, 0] / 97.0) + np.cos(xy[:, 1] / 61.0) + 0.5 * np.sin((xy[:, 0] + xy[:, 1])
         / 37.0) + rng.normal(scale=0.3, size=n))
    return xy, v


def run_child(cmd: list[str]) -> tuple[float, float, str, str]:
    """Run ``cmd``; return wall seconds, peak RSS in MB (from ``os.wait4``), stdout, stderr."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, out, err


PYKRIGE_SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np
    from pykrige.ok import OrdinaryKriging
    d = np.load(sys.argv[1])
    xy, v, xs, ys, k = d["xy"], d["v"], d["xs"], d["ys"], int(d["k"])
    t0 = time.perf_counter()
    ok = OrdinaryKriging(xy[:, 0], xy[:, 1], v, variogram_model="spherical",
                         variogram_parameters={"sill": %r, "range": %r, "nugget": %r},
                         exact_values=True)
    t1 = time.perf_counter()
    est, var = ok.execute("grid", xs, ys, backend="C", n_closest_points=k)
    t2 = time.perf_counter()
    np.savez(sys.argv[2], est=np.asarray(est), var=np.asarray(var), setup=t1 - t0,
             execute=t2 - t1)
""") % (NUGGET + PSILL, RANGE, NUGGET)


GSTAT_SCRIPT = textwrap.dedent("""
    suppressMessages({library(gstat); library(sp)})
    a <- commandArgs(TRUE)
    d <- read.csv(a[1]); coordinates(d) <- ~x+y
    rows <- as.integer(a[3])
    g <- expand.grid(x = seq(0.5, 999.5, by = 1), y = 1000 - (seq_len(rows) - 0.5))
    coordinates(g) <- ~x+y
    m <- vgm(%r, "Sph", %r, %r)
    t <- system.time(k <- krige(v~1, d, g, model = m, nmax = as.integer(a[4]),
                                debug.level = 0))[["elapsed"]]
    writeBin(c(t, k$var1.pred, k$var1.var), a[2])
""") % (PSILL, RANGE, NUGGET)


def bench_gstat(work: Path, xy, v, k: int, rows: int) -> dict | None:
    import shutil

    rscript = shutil.which("Rscript")
    if rscript is None or subprocess.run([rscript, "-e", "library(gstat)"],
                                         capture_output=True).returncode != 0:
        return None
    src = work / "samples.csv"
    np.savetxt(src, np.column_stack([xy, v]), delimiter=",", header="x,y,v", comments="",
               fmt="%.17g")
    script = work / "g.R"
    script.write_text(GSTAT_SCRIPT)
    out = work / "gstat.bin"
    wall, rss, _, _ = run_child([rscript, str(script), str(src), str(out), str(rows), str(k)])
    raw = np.fromfile(out, dtype=np.float64)
    n = 1000 * rows
    est = raw[1 : 1 + n].reshape(rows, 1000)  # expand.grid: x fastest, rows from the top
    var = raw[1 + n :].reshape(rows, 1000)
    return {"wall_s": wall, "rss_mb": rss, "krige_s": float(raw[0]), "nodes": n,
            "nodes_per_s": n / wall, "nodes_per_s_krige": n / float(raw[0]), "est": est,
            "var": var}


def bench_engine(work: Path, xy, v, size: int, k: int, model_text: str = MODEL_TEXT) -> dict:
    import geopandas as gpd
    import rasterio

    src = work / "samples.gpkg"
    gdf = gpd.GeoDataFrame({"v": v}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)
    gdf.to_file(src, layer="samples")
    out = work / "engine"
    cmd = [sys.executable, "-m", "gcnn_rnn.core", "krige", "--input", str(src), "--field", "v",
           "--variogram", model_text, "--neighbours", str(k), "--cell-size", "1",
           f"--extent=0,{1000 - size},1000,1000",  # the top `size` rows of the full grid
           "--output-dir", str(out), "--quiet"]
    # warm the numba cache once so that a first-ever run does not time compilation
    subprocess.run(cmd[:-3] + ["--extent=0,0,100,100", "--output-dir", str(work / "warm"),
                               "--quiet"], check=True, capture_output=True)
    wall, rss, _, _ = run_child(cmd)
    summary = json.loads((out / "kriging.json").read_text())
    with rasterio.open(out / "kriging_estimate.tif") as ds:
        est = ds.read(1).astype(float)
    with rasterio.open(out / "kriging_variance.tif") as ds:
        var = ds.read(1).astype(float)
    n_nodes = est.size
    return {"wall_s": wall, "rss_mb": rss, "nodes": n_nodes, "nodes_per_s": n_nodes / wall,
            "timings_s": summary["timings_s"], "est": est, "var": var}


def bench_pykrige(work: Path, xy, v, size: int, k: int, rows: int) -> dict:
    xs = np.arange(1000) + 0.5
    ys = 1000.0 - (np.arange(rows) + 0.5)  # top rows, as the raster
    ys = ys[::-1]  # PyKrige wants increasing coordinates
    data = work / "pk_in.npz"
    np.savez(data, xy=xy, v=v, xs=xs, ys=ys, k=k)
    script = work / "pk.py"
    script.write_text(PYKRIGE_SCRIPT)
    res = work / "pk_out.npz"
    wall, rss, _, _ = run_child([sys.executable, str(script), str(data), str(res)])
    d = np.load(res)
    est = d["est"][::-1]  # back to raster order (north row first)
    var = d["var"][::-1]
    return {"wall_s": wall, "rss_mb": rss, "nodes": est.size, "setup_s": float(d["setup"]),
            "execute_s": float(d["execute"]), "nodes_per_s": est.size / wall,
            "nodes_per_s_execute": est.size / float(d["execute"]), "est": est, "var": var}


def bench_gstools(xy, v, n_samples: int, n_nodes: int, seed: int) -> dict:
    import gstools as gs

    from gcnn_rnn.core.kriging import KrigingConfig, krige
    from gcnn_rnn.core.variogram.models import parse_model

    rng = np.random.default_rng(seed + 1)
    sub = xy[:n_samples], v[:n_samples]
    targets = rng.uniform(0, 1000, size=(n_nodes, 2))
    model = gs.Spherical(dim=2, var=PSILL, len_scale=RANGE, nugget=NUGGET)
    t0 = time.perf_counter()
    krig = gs.krige.Ordinary(model, cond_pos=(sub[0][:, 0], sub[0][:, 1]), cond_val=sub[1],
                             exact=True)
    est, var = krig((targets[:, 0], targets[:, 1]), return_var=True, store=False)
    t_gs = time.perf_counter() - t0
    ours_model = parse_model(MODEL_TEXT)
    krige(sub[0][:10], sub[1][:10], targets[:10], ours_model, KrigingConfig(neighbours=0))
    t0 = time.perf_counter()
    res = krige(sub[0], sub[1], targets, ours_model, KrigingConfig(neighbours=0))
    t_ours = time.perf_counter() - t0
    return {"samples": n_samples, "nodes": n_nodes, "gstools_s": t_gs,
            "gstools_nodes_per_s": n_nodes / t_gs, "engine_global_s": t_ours,
            "engine_global_nodes_per_s": n_nodes / t_ours,
            "max_abs_diff_estimate": float(np.abs(res.estimate - est).max()),
            "max_abs_diff_variance": float(np.abs(res.variance - var).max())}


def engine_float64_subset(xy, v, k: int, rows: int, cols: int = 1000) -> tuple:
    """The engine's float64 estimates on the top ``rows`` x ``cols`` nodes (in process)."""
    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.kriging import KrigingConfig, krige_grid
    from gcnn_rnn.core.variogram.models import parse_model

    grid = Grid(0.0, 1000.0, 1.0, cols, rows)
    res = krige_grid(xy, v, grid, parse_model(MODEL_TEXT), KrigingConfig(neighbours=k))
    return res.estimate, res.variance


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--size", type=int, default=1000, help="grid rows (1000 columns)")
    p.add_argument("--neighbours", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1000 x 100 nodes")
    p.add_argument("--model", default=MODEL_TEXT,
                   help="variogram of the engine run (the other tools keep the default: "
                        "use with --skip-pykrige --skip-gstat --skip-gstools)")
    p.add_argument("--pykrige-rows", type=int, default=None,
                   help="grid rows PyKrige computes (default: all)")
    p.add_argument("--skip-pykrige", action="store_true")
    p.add_argument("--skip-gstat", action="store_true")
    p.add_argument("--skip-gstools", action="store_true")
    p.add_argument("--gstools-samples", type=int, default=1000)
    p.add_argument("--gstools-nodes", type=int, default=10_000)
    p.add_argument("--output-json", type=Path)
    args = p.parse_args(argv)
    size = 100 if args.quick else args.size
    xy, v = make_samples(args.samples, args.seed, 1000.0)
    report: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "case": {"samples": args.samples, "nodes": 1000 * size, "neighbours": args.neighbours,
                 "model": args.model},
    }
    with tempfile.TemporaryDirectory(prefix="bench_kriging_") as tmp:
        work = Path(tmp)
        eng = bench_engine(work, xy, v, size, args.neighbours, args.model)
        report["engine"] = {k: v_ for k, v_ in eng.items() if k not in ("est", "var")}
        print(f"gcnn-rnn krige (whole process): {eng['nodes']:,} nodes in {eng['wall_s']:.2f} s "
              f"= {eng['nodes_per_s']:,.0f} nodes/s, peak RSS {eng['rss_mb']:.0f} MB; "
              f"stages {eng['timings_s']}")
        rows = min(size, args.pykrige_rows or size)
        e64 = v64 = None
        if not (args.skip_pykrige and args.skip_gstat):
            e64, v64 = engine_float64_subset(xy, v, args.neighbours, rows)
        if not args.skip_gstat:
            gst = bench_gstat(work, xy, v, args.neighbours, rows)
            if gst is None:
                print("R gstat: not installed (apt-get install r-base-core r-cran-gstat)")
            else:
                gdiff = {"max_abs_diff_estimate_float64": float(np.abs(e64 - gst["est"]).max()),
                         "max_abs_diff_variance_float64": float(np.abs(v64 - gst["var"]).max())}
                report["gstat"] = {k: v_ for k, v_ in gst.items() if k not in ("est", "var")}
                report["gstat"].update(gdiff)
                print(f"R gstat krige ({rows} rows): {gst['nodes']:,} nodes in "
                      f"{gst['wall_s']:.2f} s (krige() {gst['krige_s']:.2f} s) = "
                      f"{gst['nodes_per_s']:,.0f} nodes/s, peak RSS {gst['rss_mb']:.0f} MB; "
                      f"max |diff| est {gdiff['max_abs_diff_estimate_float64']:.2e}, var "
                      f"{gdiff['max_abs_diff_variance_float64']:.2e}")
        if not args.skip_pykrige:
            pk = bench_pykrige(work, xy, v, size, args.neighbours, rows)
            diff = {
                "max_abs_diff_estimate_float64": float(np.abs(e64 - pk["est"]).max()),
                "max_abs_diff_variance_float64": float(np.abs(v64 - pk["var"]).max()),
                "max_abs_diff_estimate_geotiff": float(np.abs(eng["est"][:rows] - pk["est"]).max()),
                "max_abs_diff_variance_geotiff": float(np.abs(eng["var"][:rows] - pk["var"]).max()),
            }
            report["pykrige"] = {k: v_ for k, v_ in pk.items() if k not in ("est", "var")}
            report["pykrige"].update(diff)
            print(f"PyKrige C backend ({rows} rows): {pk['nodes']:,} nodes in {pk['wall_s']:.2f} s "
                  f"(set-up {pk['setup_s']:.2f} s, execute {pk['execute_s']:.2f} s) = "
                  f"{pk['nodes_per_s']:,.0f} nodes/s, peak RSS {pk['rss_mb']:.0f} MB; "
                  f"max |diff| est {diff['max_abs_diff_estimate_float64']:.2e}, var "
                  f"{diff['max_abs_diff_variance_float64']:.2e} (float64), GeoTIFF (float32) "
                  f"{diff['max_abs_diff_estimate_geotiff']:.2e}")
    if not args.skip_gstools:
        gsr = bench_gstools(xy, v, args.gstools_samples, args.gstools_nodes, args.seed)
        report["gstools"] = gsr
        print(f"GSTools global OK (subset: {gsr['samples']} samples, {gsr['nodes']:,} nodes): "
              f"{gsr['gstools_nodes_per_s']:,.0f} nodes/s; engine global on the same subset "
              f"{gsr['engine_global_nodes_per_s']:,.0f} nodes/s; max |diff| est "
              f"{gsr['max_abs_diff_estimate']:.2e}, var {gsr['max_abs_diff_variance']:.2e}")
    if args.output_json:
        args.output_json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
