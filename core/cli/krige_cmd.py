"""``gcnn-rnn krige``: ordinary (or simple) kriging onto a grid or at target points.

Outputs in ``--output-dir``: ``kriging_estimate.tif`` and ``kriging_variance.tif`` (each with a
``.qml`` style), or with ``--points`` ``kriging_points.gpkg`` (the target points with
``kriging_estimate`` and ``kriging_variance`` columns); always ``kriging.json``, a summary
(model, configuration, counts of singular and empty nodes, timings, units).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..kriging.checks import check_estimates, stability_summary
from ..output_set import final_paths
from .options import (
    add_grid_target,
    add_point_input,
    grid_from_args,
    parse_csv_list,
    points_from_args,
)
from .session import Session

logger = logging.getLogger(__name__)

NAME = "krige"
HELP = "ordinary or simple kriging of a point field onto a grid or at target points"

ESTIMATE_TIF = "kriging_estimate.tif"
VARIANCE_TIF = "kriging_variance.tif"
POINTS_GPKG = "kriging_points.gpkg"
SUMMARY_JSON = "kriging.json"
AUTO_MODELS = ("sph", "exp", "gau")
#: All-or-nothing output set (see ``core/output_set.py``): staged, then committed by the CLI.
OUTPUT_SET = ("output_dir", (ESTIMATE_TIF, "kriging_estimate.qml", VARIANCE_TIF,
                             "kriging_variance.qml", POINTS_GPKG, SUMMARY_JSON))


def add_kriging_arguments(parser: argparse.ArgumentParser,
                          neighbours_flag: str = "--neighbours") -> None:
    """Transform, variogram and neighbourhood flags (shared with ``cv``)."""
    g = parser.add_argument_group("kriging")
    g.add_argument("--transform", choices=("none", "log", "nscore"), default=None,
                   help="krige transformed values and back-transform (default none, or the "
                        "transform recorded in V.json)")
    g.add_argument("--variogram", default="auto", metavar="V.json|auto|TEXT",
                   help="variogram: a V.json from 'gcnn-rnn variogram', a text model such as "
                        "'0.0507 Nug + 0.5906 Sph(897)', or auto (fitted, default)")
    g.add_argument("--variogram-models", default=",".join(AUTO_MODELS), metavar="M1,M2",
                   help="candidate models of --variogram auto (default sph,exp,gau)")
    g.add_argument(neighbours_flag, dest="kriging_neighbours", type=int, default=32,
                   metavar="N", help="nearest samples per target (default 32; 0 = all, global)")
    g.add_argument("--min-neighbours", type=int, default=1, metavar="N",
                   help="fewer samples within --max-distance leave the target empty (default 1)")
    g.add_argument("--max-distance", type=float, metavar="D",
                   help="use only samples within this (anisotropic) distance")
    g.add_argument("--sectors", type=int, choices=(0, 4, 8), default=0,
                   help="at most N/sectors samples per quadrant (4) or octant (8); default 0")
    g.add_argument("--mean", type=float, metavar="M",
                   help="simple kriging with this known mean (in transformed units)")
    g.add_argument("--threads", type=int, default=0, metavar="T",
                   help="threads (default 0 = all cores)")
    g.add_argument("--memory-mb", type=int, default=256, metavar="MB",
                   help="working memory for neighbour lists per chunk (default 256)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)
    add_kriging_arguments(parser)
    add_grid_target(parser)
    parser.add_argument("--output-units", choices=("original", "transformed"),
                        default="original",
                        help="with a transform: back-transformed (default) or transformed units")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="output folder")


def kriging_config(args: argparse.Namespace, n: int):
    """The :class:`KrigingConfig` of the flags (neighbours capped at ``n``)."""
    from ..kriging import KrigingConfig

    k = args.kriging_neighbours
    if k < 0:
        raise InputDataError(f"--neighbours must be >= 0, not {k!r}")
    if args.min_neighbours < 1:
        raise InputDataError(f"--min-neighbours must be >= 1, not {args.min_neighbours!r}")
    if args.threads < 0 or args.memory_mb < 1:
        raise InputDataError("--threads must be >= 0 and --memory-mb >= 1")
    return KrigingConfig(
        neighbours=min(k, n) if k else 0,
        min_neighbours=min(args.min_neighbours, k or n),
        max_distance=args.max_distance,
        sectors=args.sectors,
        mean=args.mean,
        memory_budget_mb=args.memory_mb,
        n_jobs=args.threads,
    )


def resolve_transform(args: argparse.Namespace) -> str:
    """``--transform``, else the transform recorded in a ``V.json``, else ``none``."""
    recorded = None
    spec = str(args.variogram).strip()
    if spec.lower().endswith(".json") and Path(spec).is_file():
        from ..variogram.io import read_variogram_json

        recorded = read_variogram_json(spec).get("transform")
    if args.transform is None:
        if recorded and recorded != "none":
            logger.info("using the transform %r recorded in %s", recorded, spec)
        return recorded or "none"
    if recorded and recorded != args.transform:
        logger.warning("%s was fitted to %r values but --transform is %r", spec, recorded,
                       args.transform)
    return args.transform


def resolve_variogram(spec: str, coords: np.ndarray, values: np.ndarray,
                      models_text: str = ",".join(AUTO_MODELS)):
    """``(model, description)`` from a V.json path, a text model or ``auto`` (fitted here)."""
    from ..variogram.io import load_variogram

    spec = str(spec).strip()
    if spec.lower() != "auto":
        model = load_variogram(spec)
        return model, {"source": spec, "text": model.to_text()}
    from ..variogram.fit import auto_variogram

    models = parse_csv_list(models_text) or list(AUTO_MODELS)
    fitted = auto_variogram(coords, values, models)
    logger.info("fitted variogram: %s", fitted.model.to_text())
    return fitted.model, {"source": "auto", "text": fitted.model.to_text(),
                          "fit": fitted.to_dict()}


def _write_json(path: Path, doc: dict) -> None:
    from ..safe_write import write_json_verified

    write_json_verified(path, doc, default=_json_default)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _write_points(path: Path, gdf, estimate: np.ndarray, variance: np.ndarray) -> None:
    from ..io import write_points

    out = gdf.copy()
    out["kriging_estimate"] = estimate
    out["kriging_variance"] = variance
    write_points(out, path, "kriging_points")


def run(args: argparse.Namespace, session: Session) -> dict:
    from ..kriging import krige, krige_grid
    from ..progress import scaled
    from ..raster import write_raster
    from ..transforms import fit_transform

    t0 = time.perf_counter()
    times: dict[str, float] = {}
    session.progress(0.0, "reading samples")
    pts = points_from_args(args)
    out_dir = Path(args.output_dir)
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    grid = grid_from_args(args, pts.crs, (lo[0], lo[1], hi[0], hi[1]))
    targets_gdf = None
    if grid is None:
        from ..model.outputs import read_target_points

        targets_gdf, targets = read_target_points(args.points, args.points_layer, pts.crs)
        if targets.shape[1] < pts.ndim:
            raise InputDataError(f"the samples are 3D but the target points {args.points!r} "
                                 "have no z coordinate")
        targets = targets[:, : pts.ndim]
    kind = resolve_transform(args)
    ft = fit_transform(pts.values, kind)
    y = ft.forward(pts.values)
    times["read"] = time.perf_counter() - t0
    session.check()
    session.progress(0.02, "variogram")
    model, vg_info = resolve_variogram(args.variogram, pts.coords, y, args.variogram_models)
    if args.variogram.strip().lower() == "auto" and args.mean is not None:
        logger.info("simple kriging with mean %g and an automatically fitted variogram",
                    args.mean)
    config = kriging_config(args, pts.n)
    times["variogram"] = time.perf_counter() - t0 - times["read"]
    prog = scaled(session.progress, 0.05, 0.9)
    t1 = time.perf_counter()
    if grid is None:
        res = krige(pts.coords, y, targets, model, config, progress=prog,
                    should_stop=session.should_stop)
    else:
        res = krige_grid(pts.coords, y, grid, model, config, progress=prog,
                         should_stop=session.should_stop)
    times["kriging"] = time.perf_counter() - t1
    session.check()
    units = args.output_units if kind != "none" else "original"
    est, var = res.estimate, res.variance
    if units == "original" and kind != "none":
        est, var = ft.back(est, var, None if config.simple else res.lagrange)
    check_estimates(est, res, model)
    session.progress(0.9, "writing")
    t2 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, str] = {}
    label = f"{pts.field}" + (f" ({kind}, {units} units)" if kind != "none" else "")
    what = "simple kriging" if config.simple else "ordinary kriging"
    if grid is None:
        path = out_dir / POINTS_GPKG
        _write_points(path, targets_gdf, est, var)
        outputs["points"] = str(path)
    else:
        outputs["estimate"] = str(write_raster(out_dir / ESTIMATE_TIF, est, grid,
                                               f"{what} estimate of {label}", kind="value"))
        session.check()
        outputs["variance"] = str(write_raster(out_dir / VARIANCE_TIF, var, grid,
                                               f"{what} variance of {label}", kind="variance"))
    times["writing"] = time.perf_counter() - t2
    times["total"] = time.perf_counter() - t0
    n_targets = int(np.size(est))
    summary = {
        "command": "krige",
        "input": pts.source,
        "field": pts.field,
        "n": pts.n,
        "dims": pts.ndim,
        "dropped": pts.dropped,
        "variogram": vg_info,
        "transform": ft.to_dict(),
        "units": units,
        "method": what,
        "config": config.to_dict(),
        "targets": n_targets,
        "grid": grid.to_dict() if grid is not None else None,
        "n_singular": res.n_singular,
        "n_missing": res.n_missing,
        **stability_summary(est, var, res),
        "estimate_range": _range(est),
        "variance_range": _range(var),
        "timings_s": {k: round(v, 4) for k, v in times.items()},
        "nodes_per_second": n_targets / times["kriging"] if times["kriging"] > 0 else None,
        "outputs": final_paths(dict(outputs)),
    }
    path = out_dir / SUMMARY_JSON
    _write_json(path, summary)
    outputs["summary"] = str(path)
    session.progress(1.0, "done")
    return {**outputs, "variogram": vg_info["text"], "n_singular": res.n_singular,
            "n_missing": res.n_missing, "units": units}


def _range(a: np.ndarray) -> list[float] | None:
    finite = np.asarray(a)[np.isfinite(a)]
    return [float(finite.min()), float(finite.max())] if finite.size else None
