"""``gcnn-rnn cv``: cross-validation of one or several methods on identical folds.

Writes ``--output-json M.json``::

    {"metrics": {"ok": {"me", "mae", "rmse", "r2", "msdr", "ccc", "n", "n_missing"}, ...},
     "folds": {"scheme", "n_folds", "seed", "block_size", "fold": [...]},
     "units": "original" | "transformed", "protocol": "...",
     "per_point": [{"x", "y", ("z",) "fold", "observed", "ok_prediction", "ok_residual",
                    "ok_variance", ...}, ...],
     "per_fold": {"ok": [{"fold", "n", "rmse", ...}, ...]}, ...}

Methods other than ``ok`` come from :data:`gcnn_rnn.core.cv.CV_METHODS` (the hybrid model adds
its own, and its flags through ``gcnn_rnn.core.model.options.add_model_arguments``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from ..errors import InputDataError
from .krige_cmd import (
    _write_json,
    add_kriging_arguments,
    kriging_config,
    resolve_transform,
    resolve_variogram,
)
from .options import add_point_input, parse_csv_list, points_from_args
from .session import Session

logger = logging.getLogger(__name__)

NAME = "cv"
HELP = "cross-validate kriging (and other methods) with leave-one-out, k-fold or spatial folds"

#: ``(module, function)`` pairs adding the argument groups of other methods, if importable.
EXTRA_ARGUMENTS = (("gcnn_rnn.core.model.options", "add_model_arguments"),
                   ("gcnn_rnn.core.cli.idw_mode", "add_idw_arguments"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)
    parser.add_argument("--method", default="ok", metavar="M1,M2",
                        help="comma list of methods: ok, ked (kriging with external drift "
                             "in --covariates), uk (universal kriging, drift in the "
                             "coordinates --drift), idw (inverse distance weighting, "
                             "--idw-power), linear, hybrid (default ok)")
    parser.add_argument("--drift", metavar="x,y[,x2,xy,y2]",
                        help="coordinate drift terms of method uk (default x,y; 3D also z)")
    parser.add_argument("--folds", default="loo", metavar="loo|K|spatial:SIZE",
                        help="leave-one-out (default), K random folds, or spatial blocks: "
                             "spatial:SIZE[:K] or spatial:auto[:K] (K default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (default 0)")
    parser.add_argument("--output-units", choices=("original", "transformed"),
                        default="original",
                        help="score back-transformed (default) or transformed values")
    parser.add_argument("--refit-variogram", action="store_true",
                        help="refit the variogram inside every fold (no leakage; slower)")
    parser.add_argument("--output-json", required=True, metavar="M.json",
                        help="metrics, folds and per-point residuals")
    add_kriging_arguments(parser, neighbours_flag="--kriging-neighbours")
    from ..cluster import add_cluster_arguments

    add_cluster_arguments(parser)
    for modname, fname in EXTRA_ARGUMENTS:
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        getattr(module, fname)(parser)


def _practical_range(model) -> float:
    """Distance at which the model reaches 95 % of its sill (the largest range if unbounded)."""
    import numpy as np

    if not model.bounded or model.sill <= model.nugget:
        return model.max_range
    h = np.linspace(0.0, 10.0 * max(model.max_range, 1e-12), 4001)[1:]
    g = model.gamma(h)
    reach = np.flatnonzero(g >= model.nugget + 0.95 * (model.sill - model.nugget))
    return float(h[reach[0]]) if reach.size else model.max_range


def run(args: argparse.Namespace, session: Session) -> dict:
    from .. import cv
    from ..progress import scaled
    from ..transforms import fit_transform

    if args.seed < 0:
        raise InputDataError(f"--seed must be >= 0, not {args.seed!r}")
    methods = parse_csv_list(args.method)
    if not methods:
        raise InputDataError("--method needs at least one method, e.g. ok")
    if "idw" in methods:
        from .idw_mode import check_idw_arguments

        check_idw_arguments(args)
    for m in methods:
        cv.get_cv_method(m)  # unknown names fail before any work
    scheme = cv.parse_folds(args.folds)
    session.progress(0.0, "reading samples")
    pts = points_from_args(args)
    if "uk" in methods:
        from ..kriging.universal import parse_drift_terms

        parse_drift_terms(args.drift or "x,y", pts.ndim)  # bad terms fail before any work
    elif args.drift:
        raise InputDataError("--drift is for method uk; add uk to --method")
    kind = resolve_transform(args)
    config = kriging_config(args, pts.n)
    fixed = str(args.variogram).strip().lower() != "auto" and not args.refit_variogram
    model = None
    vg_text = "auto (fitted inside each fold)"
    range_hint = None
    auto_blocks = scheme.kind == "spatial" and scheme.block is None
    if fixed or auto_blocks:
        ft = fit_transform(pts.values, kind)
        fitted, info = resolve_variogram(args.variogram, pts.coords, ft.forward(pts.values),
                                         args.variogram_models, args.select,
                                         args.kriging_neighbours)
        range_hint = _practical_range(fitted)
        if auto_blocks:
            logger.info("spatial:auto: block size from the variogram's practical range %.4g "
                        "(variogram fitted on all samples for this only)", range_hint)
        if fixed:
            model, vg_text = fitted, info["text"]
    folds = cv.make_folds(pts.coords, scheme, seed=args.seed, range_hint=range_hint)
    session.check()
    options = vars(args).copy()
    options.update(
        transform=kind,
        variogram=model,
        variogram_spec=args.variogram,
        variogram_models=parse_csv_list(args.variogram_models),
        refit_variogram=bool(args.refit_variogram or not fixed),
        kriging=config,
        output_units=args.output_units,
    )
    from ..cluster import cluster_client

    with cluster_client(args) as client:
        res = cv.cross_validate(pts, methods, folds, options,
                                progress=scaled(session.progress, 0.05, 0.95),
                                should_stop=session.should_stop, client=client)
    block = None
    if scheme.kind == "spatial":
        block = scheme.block or cv.auto_block_size(pts.coords, scheme.k, range_hint)
    fold_ids = sorted(set(folds.tolist()))
    doc = {
        "command": "cv",
        "input": pts.source,
        "field": pts.field,
        "n": pts.n,
        "dims": pts.ndim,
        "methods": list(res.methods),
        "metrics": res.metrics,
        **({"metrics_transformed": res.extra["metrics_transformed"]}
           if res.extra.get("metrics_transformed") else {}),
        "folds": {"scheme": scheme.text, "n_folds": len(fold_ids), "seed": args.seed,
                  "block_size": block, "fold": folds.tolist()},
        "units": args.output_units,
        "transform": kind,
        "variogram": vg_text,
        "kriging": config.to_dict(),
        "protocol": f"{cv.folds_text(pts.coords, scheme)} (seed {args.seed}), identical for "
                    "all methods; "
                    + res.protocol,
        "per_point": res.per_point(pts.coords),
        "per_fold": res.per_fold,
    }
    path = Path(args.output_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, _clean(doc))
    session.progress(1.0, "done")
    return {"output_json": str(path), "metrics": res.metrics, "units": args.output_units}


def _clean(obj):
    """Non-finite floats become ``null`` (strict JSON)."""
    import math

    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
