"""Kriging features of 65,536 raster-ordered grid nodes with a Matérn, a spherical and a
Gaussian model (issue 14, "Matérn kernel by table"). Not a test; prints JSON.

Uses a trained bundle's samples and feature configuration (``--bundle``), the grid a
1000 x 1000 raster over the samples' extent, first 65,536 nodes in raster order. CPU time
(``time.process_time``, all threads) is reported besides wall time: it is less sensitive
to other processes on a shared machine.

Usage::

    .venv/bin/python benchmarks/bench_matern_features.py --bundle PATH [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from emit import emit  # benchmarks/ is the script directory, first on sys.path

from gcnn_rnn.core.features import compute_features
from gcnn_rnn.core.model.bundle import load_bundle
from gcnn_rnn.core.variogram import parse_model

MODELS = ("0.0554 Nug + 1.1715 Mat(320.9, nu=12.17)", "0.0554 Nug + 1.1715 Sph(900)",
          "0.0554 Nug + 1.1715 Gau(500)", "0.0554 Nug + 1.1715 Mat(300, nu=0.5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=65536)
    ap.add_argument("--output")
    args = ap.parse_args()
    est = load_bundle(args.bundle)[0]
    lo, hi = est.coords_.min(0), est.coords_.max(0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 1000), np.linspace(hi[1], lo[1], 1000))
    grid = np.column_stack([gx.ravel(), gy.ravel()])[:args.nodes]
    rows = []
    for text in MODELS:
        model = parse_model(text)

        def run(targets, model=model):
            return compute_features(est.coords_, est.values_t_, targets, model,
                                    est.feature_config_, exclude_self=False, extra=None,
                                    extra_names=(), sample_extra=None)

        run(grid[:100])  # compile
        wall, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            run(grid)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        rows.append({"model": text, "nodes": len(grid), "wall_s_min": min(wall),
                     "cpu_s_min": min(cpu)})
        print(rows[-1], flush=True)
    emit({"features": rows}, args.output)


if __name__ == "__main__":
    main()
