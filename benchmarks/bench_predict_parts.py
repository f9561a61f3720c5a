"""Where hybrid ``predict`` spends its time (issue 14): one range of 65,536 grid nodes in
raster order, in process after a warm-up: the kriging features, the network through Keras
(TensorFlow) and through the NumPy forward pass (1 thread and the kriging threads), and the
whole chunk. Wall and CPU seconds of each. Not a test; prints JSON.

Usage::

    .venv/bin/python benchmarks/bench_predict_parts.py MODEL_DIR [--output res.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from emit import emit  # benchmarks/ is the script directory, first on sys.path


def timed(fn) -> tuple[object, dict]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, {"wall_s": round(time.perf_counter() - w, 3),
                 "cpu_s": round(time.process_time() - c, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--nodes", type=int, default=65_536)
    ap.add_argument("--output")
    args = ap.parse_args()
    from gcnn_rnn.core.features import compute_features
    from gcnn_rnn.core.model.bundle import load_bundle
    from gcnn_rnn.core.model.estimator import _threads

    est = load_bundle(args.model)[0]
    lo, hi = est.coords_.min(0), est.coords_.max(0)
    side = int(np.ceil(np.sqrt(args.nodes)))
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], side), np.linspace(hi[1], lo[1], side))
    xy = np.column_stack([gx.ravel(), gy.ravel()])[: args.nodes]
    est.predict_full(xy[:2000])  # kernels loaded, tables built
    res = {"model": args.model, "variogram": est.variogram_.to_text(), "nodes": len(xy),
           "threads": _threads(), "load_before": os.getloadavg()}
    feats, res["features"] = timed(lambda: compute_features(
        est.coords_, est.values_t_, xy, est.variogram_, est.feature_config_,
        exclude_self=False, extra=None, extra_names=(), sample_extra=est._sample_extra()))
    inputs = est._scaled_inputs(feats, clip=True)
    forward = est._forward()
    out1, res["network_numpy_1_thread"] = timed(lambda: forward(inputs, threads=1))
    _, res["network_numpy"] = timed(lambda: forward(inputs, threads=_threads()))
    try:
        from gcnn_rnn.core.model.train import get_runtime

        rt = get_runtime(est.model_config_, *est.input_shapes_)
        rt.set_weights(est.weights_)
        rt.predict(inputs)  # traced
        ref, res["network_keras"] = timed(lambda: rt.predict(inputs))
        res["numpy_vs_keras_max_abs_diff"] = float(np.abs(out1 - ref).max())
    except ImportError:  # pragma: no cover - without the dl extra
        res["network_keras"] = None
    _, res["predict_full"] = timed(lambda: est.predict_full(xy))
    res["cells_per_second_in_process"] = round(len(xy) / res["predict_full"]["wall_s"])
    res["load_after"] = os.getloadavg()
    return emit(res, args.output)


if __name__ == "__main__":
    sys.exit(main())
