"""Cost of choosing the ``auto`` variogram by cross-validation (issue 9; not a test; JSON).

For each data set: the time of ``auto_variogram`` with ``select="sse"`` (fitting only) and
``select="cv"`` (fitting + scoring every candidate with the shared neighbour search), the
selection alone (the scorer's set-up and the raced scoring of the fitted candidates, best of
``--repeat``), and the time of one leave-one-out kriging cross-validation of the chosen model
with the kriging engine (``krige(..., exclude_self=True)``, warm, best of ``--repeat``).
Target: the selection at most 2 x that one kriging CV. Also how much better the cv choice is
than the sse choice (leave-one-out RMSE of each, by the engine).

Usage::

    .venv/bin/python benchmarks/bench_variogram_selection.py [--sizes 155,1000,3000,10000,100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from emit import emit

ROOT = Path(__file__).resolve().parents[1]


def _data(n: int):
    from gcnn_rnn.core.io import read_points
    from gcnn_rnn.core.synth import SynthConfig, synthesize
    from gcnn_rnn.core.variogram.models import parse_model

    if n == 155:
        pts = read_points(ROOT / "sample_data" / "meuse.gpkg", "zinc", layer="meuse")
        return "Meuse log(zinc)", pts.coords, np.log(pts.values)
    cell = 1000.0 / max(np.sqrt(4 * n), 10)
    r = synthesize(SynthConfig(parse_model("0.1 Nug + 0.9 Sph(250)"), n=n, seed=0,
                               cell_size=cell))
    jitter = np.random.default_rng(0).uniform(-cell / 4, cell / 4, r.coords.shape)
    return f"synthetic Sph, n={n}", r.coords + jitter, r.values


def one(n: int, k: int, repeat: int) -> dict:
    from gcnn_rnn.core.kriging import KrigingConfig, krige
    from gcnn_rnn.core.kriging.model_cv import CandidateCV
    from gcnn_rnn.core.variogram.fit import auto_variogram, choose, score_all

    name, coords, values = _data(n)

    def loo(model) -> tuple[float, float]:
        t0 = time.perf_counter()
        res = krige(coords, values, coords, model, KrigingConfig(neighbours=k),
                    exclude_self=True)
        return float(np.sqrt(np.mean((res.estimate - values) ** 2))), time.perf_counter() - t0

    t0 = time.perf_counter()
    sse = auto_variogram(coords, values, select="sse", neighbours=k)
    t_sse = time.perf_counter() - t0
    t0 = time.perf_counter()
    cv = auto_variogram(coords, values, select="cv", neighbours=k)
    t_cv = time.perf_counter() - t0
    t_select = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scored = score_all(sse.candidates, CandidateCV(coords, values, k))
        choose(scored, "cv")
        t_select.append(time.perf_counter() - t0)
    loo(cv.model)  # warm the compiled kernel
    runs = [loo(cv.model) for _ in range(repeat)]
    rmse_cv, t_krige = runs[0][0], min(r[1] for r in runs)
    rmse_sse, _ = loo(sse.model)
    return {"data": name, "n": int(n), "neighbours": k,
            "scheme": cv.selected_candidate.cv_scheme,
            "seconds_fit_sse": round(t_sse, 3), "seconds_fit_cv": round(t_cv, 3),
            "seconds_selection": round(min(t_select), 3),
            "seconds_one_kriging_loo": round(t_krige, 3),
            "selection_cost_over_one_loo": round(min(t_select) / t_krige, 2),
            "dropped_early": [c.model.to_text(4) for c in cv.candidates if not c.cv_complete],
            "chosen_cv": cv.model.to_text(4), "chosen_sse": sse.model.to_text(4),
            "loo_rmse_cv_choice": round(rmse_cv, 5), "loo_rmse_sse_choice": round(rmse_sse, 5)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="155,1000,3000,10000")
    ap.add_argument("--neighbours", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--output")
    args = ap.parse_args()
    res = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                      f"{os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M"),
           "runs": [one(int(n), args.neighbours, args.repeat) for n in args.sizes.split(",")]}
    return emit(res, args.output)


if __name__ == "__main__":
    sys.exit(main())
