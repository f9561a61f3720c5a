"""``krige --method idw`` and the IDW flags shared with ``cv --method idw``.

With ``--method idw`` ``krige`` writes ``idw_estimate.tif`` (with ``--points``:
``kriging_points.gpkg`` with an ``idw_estimate`` column) and ``kriging.json``; there is no
variance, and the variogram flags do not apply.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..errors import InputDataError
from ..output_set import final_paths
from .session import Session

logger = logging.getLogger(__name__)

IDW_TIF = "idw_estimate.tif"


def add_idw_arguments(parser: argparse.ArgumentParser) -> None:
    """``--idw-power P --idw-neighbours N``."""
    g = parser.add_argument_group("inverse distance weighting (method idw)")
    g.add_argument("--idw-power", type=float, default=2.0, metavar="P",
                   help="IDW distance power (default 2, as QGIS and gstat)")
    g.add_argument("--idw-neighbours", type=int, default=0, metavar="N",
                   help="nearest samples IDW uses (default 0 = all, as QGIS's IDW)")


def check_idw_arguments(args: argparse.Namespace) -> None:
    if not args.idw_power > 0:
        raise InputDataError(f"--idw-power must be > 0, not {args.idw_power!r}")
    if args.idw_neighbours < 0:
        raise InputDataError(f"--idw-neighbours must be >= 0, not {args.idw_neighbours!r}")


def run_idw(args: argparse.Namespace, session: Session) -> dict:
    """``krige --method idw``: IDW onto the grid (or the target points)."""
    from ..idw import idw
    from ..progress import scaled
    from ..raster import write_raster
    from .krige_cmd import POINTS_GPKG, SUMMARY_JSON, _range, _write_json
    from .options import grid_from_args, points_from_args, target_points_from_args

    check_idw_arguments(args)
    if args.transform not in (None, "none"):
        raise InputDataError(f"--transform {args.transform} does not apply to --method idw, "
                             "which weights the data values themselves")
    kriging_only = [flag for flag, value in (
        ("--covariates", args.covariates), ("--covariate-fields", args.covariate_fields),
        ("--drift", args.drift), ("--block", args.block)) if value]
    if kriging_only:
        raise InputDataError(f"{', '.join(kriging_only)} apply to kriging, not to --method idw "
                             "(inverse distance weighting has no drift and no block support)")
    t0 = time.perf_counter()
    session.progress(0.0, "reading samples")
    pts = points_from_args(args)
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    grid = grid_from_args(args, pts.crs, (lo[0], lo[1], hi[0], hi[1]))
    if grid is None:
        gdf, targets = target_points_from_args(args, pts)
    else:
        if grid.ndim != pts.ndim:
            raise InputDataError(f"the grid is {grid.ndim}D but the samples are {pts.ndim}D")
        targets = grid.node_coords(0, grid.n_nodes)
    est = idw(pts.coords, pts.values, targets, args.idw_power, args.idw_neighbours,
              progress=scaled(session.progress, 0.05, 0.9), should_stop=session.should_stop)
    session.check()
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    what = f"inverse distance weighting (power {args.idw_power:g})"
    if grid is None:
        from ..io import write_points

        out = gdf.copy()
        out["idw_estimate"] = est
        outputs = {"points": str(write_points(out, out_dir / POINTS_GPKG, "kriging_points"))}
    else:
        est = est.reshape(grid.shape)
        outputs = {"estimate": str(write_raster(out_dir / IDW_TIF, est, grid,
                                                f"{what} of {pts.field}", kind="value"))}
    summary = {
        "command": "krige", "method": what, "input": pts.source, "field": pts.field,
        "n": pts.n, "dims": pts.ndim, "dropped": pts.dropped,
        "idw": {"power": args.idw_power, "neighbours": args.idw_neighbours},
        "targets": int(est.size), "grid": grid.to_dict() if grid is not None else None,
        "estimate_range": _range(est),
        "timings_s": {"total": round(time.perf_counter() - t0, 4)},
        "outputs": final_paths(dict(outputs)),
    }
    path = out_dir / SUMMARY_JSON
    _write_json(path, summary)
    outputs["summary"] = str(path)
    session.progress(1.0, "done")
    return outputs
