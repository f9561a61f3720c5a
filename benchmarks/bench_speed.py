"""Speed of the stages around kriging (issue 14), side by side with R gstat in the same run.

Parts (``--parts``, comma-separated; each is short on its own so that a loaded machine can run
them one at a time):

* ``variogram``: ``auto`` variogram (gstat-default experimental variogram + fit of sph, exp,
  gau) of ``--variogram-sizes`` random samples (default 1e4, 1e5, 1e6) in process, against
  gstat ``variogram()`` + ``fit.variogram(vgm(c("Sph", "Exp", "Gau")))`` timed inside R for
  the sizes up to ``--gstat-max`` (default 1e5). The engine uses a seeded subsample of
  50,000 points above that size (``n_used`` is reported).
* ``global``: global ordinary kriging (``neighbours = 0``) of 1e4 samples at 400 nodes, the
  engine as a child process (its peak RSS from ``wait4``) and gstat ``krige()`` without
  ``nmax`` (global) as a child process.
* ``cv``: ``cv --folds loo`` with ``--variogram auto`` (refitted per fold) against the same
  with the variogram fixed, in process, at ``--cv-sizes`` (default 1e3, 1e4).
* ``firstrun``: a fresh process running a 10,000-node ``krige`` just after ``gcnn-rnn
  warmup``, against a second identical process (the first-run compile pause).

Run: ``.venv/bin/python benchmarks/bench_speed.py --parts variogram --output-json v.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kriging import run_child  # noqa: E402
from emit import emit  # noqa: E402

MODEL_TEXT = "0.1 Nug + 1 Sph(200)"


def field(n: int, seed: int = 0, extent: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, extent, size=(n, 2))
    v = (np.sin(xy[:, 0] / 97.0) + np.cos(xy[:, 1] / 61.0) + rng.normal(scale=0.3, size=n))
    return xy, v


def _rscript() -> str | None:
    r = shutil.which("Rscript")
    if r is None or subprocess.run([r, "-e", "library(gstat)"], capture_output=True).returncode:
        return None
    return r


def _csv(path: Path, xy: np.ndarray, v: np.ndarray) -> None:
    np.savetxt(path, np.column_stack([xy, v]), delimiter=",", header="x,y,v", comments="",
               fmt="%.17g")


GSTAT_VARIOGRAM = textwrap.dedent("""
    suppressPackageStartupMessages({library(sp); library(gstat)})
    a <- commandArgs(trailingOnly = TRUE)
    d <- read.csv(a[1]); coordinates(d) <- ~x + y
    t <- system.time({
      e <- variogram(v ~ 1, d)
      f <- fit.variogram(e, vgm(c("Sph", "Exp", "Gau")))
    })[["elapsed"]]
    cat(t, sum(e$np), as.character(f$model[2]), "\\n")
""")

GSTAT_GLOBAL = textwrap.dedent("""
    suppressPackageStartupMessages({library(sp); library(gstat)})
    a <- commandArgs(trailingOnly = TRUE)
    d <- read.csv(a[1]); coordinates(d) <- ~x + y
    g <- read.csv(a[2]); coordinates(g) <- ~x + y
    m <- vgm(1, "Sph", 200, 0.1)
    t <- system.time(k <- krige(v ~ 1, d, g, m, debug.level = 0))[["elapsed"]]
    cat(t, "\\n")
    writeBin(c(k$var1.pred, k$var1.var), a[3])
""")


def bench_variogram(work: Path, sizes: list[int], gstat_max: int) -> list[dict]:
    from gcnn_rnn.core.variogram.empirical import empirical_variogram
    from gcnn_rnn.core.variogram.fit import fit_variogram

    empirical_variogram(*field(100))  # load the compiled kernels (not timed)
    rscript = _rscript()
    rows = []
    for n in sizes:
        xy, v = field(n)
        t0 = time.perf_counter()
        ev = empirical_variogram(xy, v)
        t1 = time.perf_counter()
        fit = fit_variogram(ev, ("sph", "exp", "gau"))
        t2 = time.perf_counter()
        row = {"n": n, "engine_s": t2 - t0, "engine_pairs_s": t1 - t0, "engine_fit_s": t2 - t1,
               "n_used": ev.n_used, "npairs": int(ev.npairs.sum()),
               "model": fit.model.to_text(4)}
        print({"engine": row}, flush=True)
        if rscript and n <= gstat_max:
            src = work / f"v{n}.csv"
            _csv(src, xy, v)
            script = work / "variogram.R"
            script.write_text(GSTAT_VARIOGRAM)
            _, _, out, _ = run_child([rscript, str(script), str(src)])
            t, npairs, model = out.split()[:3]
            row.update(gstat_s=float(t), gstat_npairs=int(float(npairs)), gstat_model=model,
                       speedup=float(t) / row["engine_s"])
        rows.append(row)
        print(row, flush=True)
    return rows


ENGINE_GLOBAL = textwrap.dedent("""
    import sys, time, numpy as np
    from gcnn_rnn.core.kriging import KrigingConfig, krige
    from gcnn_rnn.core.variogram.models import parse_model
    d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
    g = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
    m = parse_model(sys.argv[4])
    t = time.perf_counter()
    r = krige(d[:, :2], d[:, 2], g[:, :2], m, KrigingConfig(neighbours=0))
    print(time.perf_counter() - t)
    np.concatenate([r.estimate, r.variance]).tofile(sys.argv[3])
""")


def bench_global(work: Path, n: int, nodes: int) -> dict:
    xy, v = field(n)
    rng = np.random.default_rng(1)
    g = rng.uniform(0.0, 1000.0, size=(nodes, 2))
    src, grid = work / "g_samples.csv", work / "g_nodes.csv"
    _csv(src, xy, v)
    _csv(grid, g, np.zeros(nodes))
    script = work / "engine_global.py"
    script.write_text(ENGINE_GLOBAL)
    ours = work / "ours.bin"
    wall, rss, out, _ = run_child([sys.executable, str(script), str(src), str(grid), str(ours),
                                   MODEL_TEXT])
    row = {"n": n, "nodes": nodes, "engine_wall_s": wall, "engine_krige_s": float(out.split()[0]),
           "engine_rss_mb": rss, "matrix_mb": 8 * n * n / 1024**2}
    rscript = _rscript()
    if rscript:
        rs = work / "global.R"
        rs.write_text(GSTAT_GLOBAL)
        theirs = work / "gstat.bin"
        gwall, grss, gout, _ = run_child([rscript, str(rs), str(src), str(grid), str(theirs)])
        a, b = np.fromfile(ours), np.fromfile(theirs)
        row.update(gstat_wall_s=gwall, gstat_krige_s=float(gout.split()[0]), gstat_rss_mb=grss,
                   max_abs_diff_est=float(np.abs(a[:nodes] - b[:nodes]).max()),
                   max_abs_diff_var=float(np.abs(a[nodes:] - b[nodes:]).max()),
                   speedup=float(gout.split()[0]) / row["engine_krige_s"])
    print(row, flush=True)
    return row


def bench_cv(sizes: list[int]) -> list[dict]:
    from gcnn_rnn.core import cv
    from gcnn_rnn.core.io import PointData
    from gcnn_rnn.core.kriging import KrigingConfig
    from gcnn_rnn.core.variogram.models import parse_model

    rows = []
    for n in sizes:
        xy, v = field(n, extent=1000.0 * (n / 1e3) ** 0.5)  # constant density
        pts = PointData(xy, v, crs="", field="v", source="bench")
        folds = cv.make_folds(xy, "loo")
        cfg = KrigingConfig(neighbours=32)
        fixed = {"variogram": parse_model(MODEL_TEXT), "kriging": cfg}
        cv.cross_validate(PointData(xy[:50], v[:50], "", "v", "b"), ["ok"],
                          np.arange(50), fixed)  # load the kernels (not timed)
        t0 = time.perf_counter()
        cv.cross_validate(pts, ["ok"], folds, fixed)
        t1 = time.perf_counter()
        res = cv.cross_validate(pts, ["ok"], folds, {"variogram": None, "kriging": cfg})
        t2 = time.perf_counter()
        row = {"n": n, "fixed_s": t1 - t0, "auto_s": t2 - t1, "ratio": (t2 - t1) / (t1 - t0),
               "refits": min(n, cv.LOO_REFIT_GROUPS) if n > cv.LOO_EXACT_REFITS else n,
               "rmse_auto": res.metrics["ok"]["rmse"]}
        rows.append(row)
        print(row, flush=True)
    return rows


FIRST_KRIGE = textwrap.dedent("""
    import time; t = time.perf_counter()
    import numpy as np
    from gcnn_rnn.core.kriging import KrigingConfig, krige
    from gcnn_rnn.core.variogram.models import parse_model
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (2000, 2)); v = np.sin(xy[:, 0] / 97)
    g = np.stack(np.meshgrid(np.arange(100.0) * 10, np.arange(100.0) * 10), -1).reshape(-1, 2)
    krige(xy, v, g, parse_model("0.1 Nug + 1 Sph(200)"), KrigingConfig(neighbours=32))
    print(time.perf_counter() - t)
""")


def bench_firstrun(work: Path) -> dict:
    script = work / "first.py"
    script.write_text(FIRST_KRIGE)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gcnn_rnn.core", "warmup", "--quiet"], check=True)
    warm = time.perf_counter() - t0
    runs = [float(run_child([sys.executable, str(script)])[2].split()[0]) for _ in range(2)]
    row = {"warmup_s": warm, "first_krige_s": runs[0], "second_krige_s": runs[1]}
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="variogram,global,cv")
    ap.add_argument("--variogram-sizes", default="10000,100000,1000000")
    ap.add_argument("--gstat-max", type=int, default=100_000)
    ap.add_argument("--global-samples", type=int, default=10_000)
    ap.add_argument("--global-nodes", type=int, default=400)
    ap.add_argument("--cv-sizes", default="1000,10000")
    ap.add_argument("--output-json")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        work = Path(tmp)
        if "variogram" in parts:
            sizes = [int(float(s)) for s in args.variogram_sizes.split(",")]
            result["variogram"] = bench_variogram(work, sizes, args.gstat_max)
        if "global" in parts:
            result["global"] = bench_global(work, args.global_samples, args.global_nodes)
        if "cv" in parts:
            result["cv"] = bench_cv([int(float(s)) for s in args.cv_sizes.split(",")])
        if "firstrun" in parts:
            result["firstrun"] = bench_firstrun(work)
    result["load_average_after"] = os.getloadavg()
    return emit(result, args.output_json)


if __name__ == "__main__":
    raise SystemExit(main())
