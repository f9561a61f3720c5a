"""``gcnn-rnn krige``: ordinary, simple or universal kriging (external drift in covariates,
polynomial drift in the coordinates), point or block support, onto a grid or at target points.

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
from ..kriging.checks import (
    check_estimate_counts,
    check_estimates,
    check_variance_counts,
    drop_implausible,
    narrowed_by_log_band,
    plausible_band,
    stability_summary,
    warn_implausible,
)
from ..output_set import final_paths
from .options import (
    add_grid_target,
    add_point_input,
    grid_from_args,
    parse_csv_list,
    points_from_args,
    target_points_from_args,
)
from .session import Session

logger = logging.getLogger(__name__)

NAME = "krige"
HELP = ("ordinary, simple or universal kriging (external drift), point or block, of a point "
        "field onto a grid or at target points")

ESTIMATE_TIF = "kriging_estimate.tif"
VARIANCE_TIF = "kriging_variance.tif"
POINTS_GPKG = "kriging_points.gpkg"
SUMMARY_JSON = "kriging.json"
AUTO_MODELS = ("sph", "exp", "gau", "mat")
#: All-or-nothing output set (see ``core/output_set.py``): staged, then committed by the CLI.
OUTPUT_SET = ("output_dir", (ESTIMATE_TIF, "kriging_estimate.qml", VARIANCE_TIF,
                             "kriging_variance.qml", POINTS_GPKG, SUMMARY_JSON,
                             "idw_estimate.tif", "idw_estimate.qml"))  # --method idw


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
                   help="candidate models of --variogram auto (default sph,exp,gau,mat)")
    g.add_argument("--select", choices=("cv", "sse"), default="cv",
                   help="how --variogram auto picks among its candidates: lowest kriging "
                        "cross-validation RMSE with this neighbourhood (default; leave-one-out, "
                        "10-fold above 3000 samples) or lowest weighted SSE")
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


def add_drift_arguments(parser: argparse.ArgumentParser, block: bool = True) -> None:
    """``--covariates``, ``--covariate-fields``, ``--drift`` (and ``--block...``)."""
    g = parser.add_argument_group("drift (universal kriging) and support")
    g.add_argument("--covariates", metavar="A.tif[,B.tif]",
                   help="kriging with an external drift in these rasters (gstat krige(z ~ a + "
                        "b)): each is read at the containing cell of every sample and target "
                        "(nearest cell, no interpolation); targets without a value stay "
                        "nodata, samples without one are left out (counted)")
    g.add_argument("--covariate-fields", metavar="F1,F2",
                   help="external drift in these numeric fields of the samples and of the "
                        "--points targets")
    g.add_argument("--drift", metavar="x,y[,x2,xy,y2]",
                   help="universal kriging with a polynomial drift in the coordinates: terms "
                        "x, y, x2, xy, y2 (3D also z, z2, xz, yz); a term needs its "
                        "lower-order terms")
    if not block:
        return
    g.add_argument("--block", metavar="DX,DY[,DZ]|cell",
                   help="block kriging: estimate the mean over a DX x DY (x DZ) block "
                        "centred on each target, with the block kriging variance; 'cell' = "
                        "the output cell (and the z step in 3D). Default: point support")
    g.add_argument("--block-discretisation", type=int, metavar="N",
                   help="points per block side, on a regular grid (gstat nblockdiscr); "
                        "default gstat's 4 x 4 Gauss-Legendre points")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .idw_mode import add_idw_arguments

    add_point_input(parser)
    parser.add_argument("--method", choices=("ok", "idw"), default="ok",
                        help="ok: kriging (default; simple kriging with --mean); idw: inverse "
                             "distance weighting, writes idw_estimate.tif, no variance")
    add_kriging_arguments(parser)
    add_drift_arguments(parser)
    add_idw_arguments(parser)
    add_grid_target(parser)
    parser.add_argument("--output-units", choices=("original", "transformed"),
                        default="original",
                        help="with a transform: back-transformed (default) or transformed units")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--cog", action="store_true",
                        help="write the rasters as Cloud-Optimized GeoTIFFs")
    from ..cluster import add_cluster_arguments

    add_cluster_arguments(parser)


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
                      models_text: str = ",".join(AUTO_MODELS), select: str = "cv",
                      neighbours: int = 32):
    """``(model, description)`` from a V.json path, a text model or ``auto`` (fitted here;
    candidates compared by kriging cross-validation with ``neighbours``, or by SSE)."""
    from ..variogram.io import load_variogram

    spec = str(spec).strip()
    if spec.lower() != "auto":
        model = load_variogram(spec)
        return model, {"source": spec, "text": model.to_text()}
    from ..variogram.fit import auto_variogram

    models = parse_csv_list(models_text) or list(AUTO_MODELS)
    fitted = auto_variogram(coords, values, models, select=select, neighbours=neighbours)
    logger.info("fitted variogram: %s (selected by %s)", fitted.model.to_text(),
                fitted.selected_by)
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


def parse_block(text: str | None, grid, ndim: int) -> tuple[float, ...] | None:
    """``--block``: sizes ``(dx, dy[, dz])`` or the output cell; ``None`` for point support."""
    if text is None:
        return None
    text = text.strip().lower()
    if text == "cell":
        if grid is None:
            raise InputDataError("--block cell needs an output grid, not --points; give sizes "
                                 "such as --block 40,40")
        size = [grid.cell_size, grid.cell_size]
        if ndim == 3:
            levels = sorted(grid.z_levels or ())
            size.append(float(np.diff(levels).min()) if len(levels) > 1 else 0.0)
        return tuple(size)
    try:
        size = tuple(float(v) for v in parse_csv_list(text))
    except ValueError:
        size = ()
    if len(size) not in (2, 3) or not all(np.isfinite(v) and v >= 0 for v in size) or not any(
            size):
        raise InputDataError(f"--block must be DX,DY[,DZ] (sizes >= 0, not all 0) or 'cell', "
                             f"not {text!r}")
    if len(size) == 3 and ndim == 2:
        raise InputDataError(f"--block {text!r} has a DZ but the samples are 2D")
    return size


class _Drift:
    """What the drift and support flags ask for, read and checked before any output."""

    def __init__(self, args, pts, grid, targets_gdf, targets):
        self.paths = parse_csv_list(args.covariates)
        self.fields = parse_csv_list(args.covariate_fields)
        from ..kriging.universal import parse_drift_terms

        self.terms = parse_drift_terms(args.drift, pts.ndim)
        self.block = parse_block(args.block, grid, pts.ndim)
        self.discretisation = args.block_discretisation
        if self.discretisation is not None and (self.block is None or self.discretisation < 1):
            raise InputDataError("--block-discretisation N needs --block and N >= 1, not "
                                 f"{self.discretisation!r}")
        if self.fields and grid is not None:
            raise InputDataError("--covariate-fields needs --points targets (fields of both "
                                 "layers); for a grid use --covariates rasters")
        self.names = [Path(p).name for p in self.paths] + list(self.fields)
        self.crs = pts.crs  # of the samples, the grid and the covariate rasters (checked)
        self.sample_cov = self.target_cov = None
        if self.paths or self.fields:
            self.sample_cov, self.target_cov = self._read(pts, grid, targets_gdf, targets)

    @property
    def active(self) -> bool:
        return bool(self.paths or self.fields or self.terms or self.block)

    def _read(self, pts, grid, targets_gdf, targets):
        from ..features import sample_covariates

        s_cols, t_cols = [], []
        if self.paths:
            for p in self.paths:
                if not Path(p).is_file():
                    raise InputDataError(f"--covariates: raster not found: {p!r}")
            s_cols.append(sample_covariates(self.paths, pts.coords, pts.crs, "samples",
                                            allow_missing=True))
            if grid is None:  # a grid's nodes read them range by range (UniversalGridJob)
                t_cols.append(sample_covariates(self.paths, targets, pts.crs, "targets",
                                                allow_missing=True))
        if self.fields:
            s_cols.append(_numeric_fields(pts.attributes, self.fields, pts.source))
            t_cols.append(_numeric_fields(targets_gdf, self.fields, "the --points targets"))
        return np.hstack(s_cols), np.hstack(t_cols) if t_cols else None

    def method(self, simple: bool) -> str:
        what = ("kriging with external drift" if self.paths or self.fields
                else "universal kriging" if self.terms else
                "simple kriging" if simple else "ordinary kriging")
        return ("block " + what) if self.block else what

    def to_dict(self) -> dict:
        return {"covariates": self.paths, "covariate_fields": self.fields,
                "terms": list(self.terms), "block": list(self.block) if self.block else None,
                "block_discretisation": self.discretisation or "gauss 4x4 (gstat default)"}


def _numeric_fields(frame, names, what: str) -> np.ndarray:
    import pandas as pd

    cols = []
    for name in names:
        if name not in frame.columns:
            raise InputDataError(f"{what}: no field {name!r} for --covariate-fields; fields "
                                 f"are {[c for c in frame.columns if c != 'geometry']}")
        col = pd.to_numeric(frame[name], errors="coerce")
        if col.isna().all():
            raise InputDataError(f"{what}: field {name!r} of --covariate-fields is not numeric "
                                 "(or all NULL)")
        cols.append(col.to_numpy(dtype=float))
    return np.column_stack(cols)


def _check_universal(args, config, kind: str, block) -> None:
    """Flags the universal-kriging path does not take: refuse them clearly."""
    if config.simple:
        raise InputDataError("--mean (simple kriging) cannot be combined with a drift, --block "
                             "or a measurement-error (Err) variogram")
    for flag, given in (("--max-distance", args.max_distance is not None),
                        ("--sectors", bool(args.sectors)),
                        ("--min-neighbours", args.min_neighbours > 1)):
        if given:
            raise InputDataError(f"{flag} is not available with a drift, --block or an Err "
                                 "variogram (they use the nearest --neighbours samples, as "
                                 "gstat's nmax)")
    if block and kind != "none" and args.output_units == "original":
        raise InputDataError(
            f"--block with --transform {kind}: the back-transform of a block mean of "
            f"{kind} values is not the block mean of the values; use --output-units "
            "transformed, or krige untransformed values"
        )


def _write_points(path: Path, gdf, estimate: np.ndarray, variance: np.ndarray) -> None:
    from ..io import write_points

    out = gdf.copy()
    out["kriging_estimate"] = estimate
    out["kriging_variance"] = variance
    write_points(out, path, "kriging_points")


def run(args: argparse.Namespace, session: Session) -> dict:
    if getattr(args, "method", "ok") == "idw":
        from .idw_mode import run_idw

        return run_idw(args, session)
    from ..kriging import krige
    from ..progress import scaled
    from ..transforms import Transform, fit_transform

    t0 = time.perf_counter()
    times: dict[str, float] = {}
    session.progress(0.0, "reading samples")
    pts = points_from_args(args, parse_csv_list(args.covariate_fields))
    out_dir = Path(args.output_dir)
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    # A grid is streamed to disk range by range (covariate rasters too: read per range).
    grid = grid_from_args(args, pts.crs, (lo[0], lo[1], hi[0], hi[1]), streamed=True,
                          n_samples=len(pts.values))
    if grid is not None:
        from ..tiles import check_disk

        check_disk(grid, 2, out_dir, args.cog)
    targets_gdf = targets = None
    if grid is None:
        targets_gdf, targets = target_points_from_args(args, pts)
    drift = _Drift(args, pts, grid, targets_gdf, targets)
    coords, values, n_no_cov = pts.coords, pts.values, 0
    if drift.sample_cov is not None:
        from ..kriging.universal import drop_samples_without_covariates

        coords, values, drift.sample_cov, n_no_cov = drop_samples_without_covariates(
            coords, values, drift.sample_cov, drift.names)
    kind = resolve_transform(args)
    ft = fit_transform(values, kind)
    y = ft.forward(values)
    times["read"] = time.perf_counter() - t0
    session.check()
    session.progress(0.02, "variogram")
    config = kriging_config(args, len(values))  # bad flags fail before the fit
    fit_to = y
    if drift.sample_cov is not None or drift.terms:
        from ..kriging.drift import drift_residuals
        from ..kriging.universal import drift_matrix

        fit_to = drift_residuals(y, drift_matrix(coords, drift.sample_cov, drift.terms))
    model, vg_info = resolve_variogram(args.variogram, coords, fit_to, args.variogram_models,
                                       args.select, config.neighbours)
    if fit_to is not y:
        vg_info["fitted_to"] = "drift residuals"
    if args.variogram.strip().lower() == "auto" and args.mean is not None:
        logger.info("simple kriging with mean %g and an automatically fitted variogram",
                    args.mean)
    universal = drift.active or bool(model.measurement_error)
    if universal:
        _check_universal(args, config, kind, drift.block)
    times["variogram"] = time.perf_counter() - t0 - times["read"]
    prog = scaled(session.progress, 0.05, 0.9)
    t1 = time.perf_counter()
    units = args.output_units if kind != "none" else "original"
    label = f"{pts.field}" + (f" ({kind}, {units} units)" if kind != "none" else "")
    what = drift.method(config.simple)
    if model.measurement_error:
        what += " with measurement error"
    # estimates far outside the data's range (in output units) are nodata, counted
    band = plausible_band(values if units == "original" else y)
    if units == "original" and ft.kind is Transform.LOG:
        band = narrowed_by_log_band(band, y)
    if grid is not None:
        from .krige_stream import krige_grid_to_rasters

        res = krige_grid_to_rasters(args, grid, out_dir, coords, y, model, config, drift,
                                    universal, ft if units == "original" and kind != "none" else None,
                                    {"estimate": f"{what} estimate of {label}",
                                     "variance": f"{what} variance of {label}"}, prog,
                                    session.should_stop, band)
        est = var = None
    elif universal:
        from ..kriging import krige_universal

        res = krige_universal(coords, y, targets, model, target_covariates=drift.target_cov,
                              covariates=drift.sample_cov, drift=drift.terms,
                              neighbours=config.neighbours, block=drift.block,
                              block_discretisation=drift.discretisation, progress=prog,
                              should_stop=session.should_stop)
    else:
        res = krige(pts.coords, y, targets, model, config, progress=prog,
                    should_stop=session.should_stop)
    times["kriging"] = time.perf_counter() - t1
    session.check()
    if grid is None:
        est, var = res.estimate, res.variance
        if units == "original" and kind != "none":
            est, var = ft.back(est, var, None if config.simple or universal else res.lagrange)
        with np.errstate(over="ignore"):
            est, var, implausible = drop_implausible(est, var, band)
        n_implausible = int(implausible.sum())
        warn_implausible(n_implausible, est.size, band, model)
        check_estimates(est, res, model, n_implausible)
        stability = {**stability_summary(est, var, res), "n_implausible": n_implausible}
    else:
        stability = res.stability
        inside = grid.n_inside
        warn_implausible(stability["n_implausible"], inside, band, model)
        check_estimate_counts(inside, stability["n_nonfinite_estimate"], res.n_missing,
                              stability["n_unresolved"], model, stability["n_implausible"])
        check_variance_counts(inside, stability["n_nonfinite_variance"],
                              stability["n_nonfinite_estimate"], model)
    session.progress(0.9, "writing")
    t2 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, str] = {}
    if grid is None:
        path = out_dir / POINTS_GPKG
        _write_points(path, targets_gdf, est, var)
        outputs["points"] = str(path)
    else:
        outputs.update(res.outputs)
    times["writing"] = time.perf_counter() - t2
    times["total"] = time.perf_counter() - t0
    n_targets = int(np.size(est)) if grid is None else grid.n_nodes
    summary = {
        "command": "krige",
        "input": pts.source,
        "field": pts.field,
        "n": len(values),
        "dims": pts.ndim,
        "dropped": {**pts.dropped, **({"no_covariate": n_no_cov} if n_no_cov else {})},
        "variogram": vg_info,
        "transform": ft.to_dict(),
        "units": units,
        "method": what,
        "config": config.to_dict(),
        "drift": drift.to_dict() if drift.active or universal else None,
        "targets": n_targets,
        "grid": grid.to_dict() if grid is not None else None,
        "n_singular": res.n_singular,
        "n_missing": res.n_missing,
        **stability,
        "estimate_range": _range(est) if grid is None else res.estimate_range,
        "variance_range": _range(var) if grid is None else res.variance_range,
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
