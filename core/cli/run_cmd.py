"""``gcnn-rnn run``: variogram → cross-validation → train → predict → report, end to end."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..model.options import add_model_arguments, model_options, parse_csv
from ..model.outputs import OUTPUT_FILES
from ..output_set import final_paths
from .options import add_grid_target, add_point_input, grid_from_args, points_from_args
from .session import Session

NAME = "run"
HELP = ("end to end: variogram, cross-validation (OK vs hybrid on identical folds), training, "
        "prediction and an HTML report")
#: All-or-nothing output set (see ``core/output_set.py``): staged, then committed by the CLI.
OUTPUT_SET = ("output_dir", OUTPUT_FILES + ("cv.json", "model/", "report.html"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)
    add_model_arguments(parser)
    add_grid_target(parser, points=True)
    g = parser.add_argument_group("run")
    g.add_argument("--threshold", type=float, metavar="T",
                   help="also map the probability of exceeding T (data units)")
    g.add_argument("--folds", default="10", metavar="K|loo|spatial:SIZE",
                   help="cross-validation folds (default 10; 0 skips cross-validation)")
    g.add_argument("--cv-methods", metavar="ok,linear,hybrid,ked",
                   help="methods compared in cross-validation (default ok,hybrid; with "
                        "--covariates ok,ked,hybrid: kriging with external drift is the "
                        "classical baseline for a covariate)")
    g.add_argument("--output-dir", required=True, metavar="DIR",
                   help="directory for report.html, cv.json, model/ and the rasters")
    from ..cluster import add_cluster_arguments

    add_cluster_arguments(parser)


def run(args: argparse.Namespace, session: Session) -> dict:
    from pyproj import CRS

    from ..model.bundle import package_versions, save_bundle
    from ..model.cv_methods import compare_methods
    from ..model.options import estimator_from_args
    from ..model.outputs import predict_grid, predict_points
    from ..progress import scaled
    from ..report import ReportContext, write_report
    from ..safe_write import write_json_verified
    from ..variogram.empirical import empirical_variogram

    t0 = time.perf_counter()
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    points = points_from_args(args, extra_fields=parse_csv(args.co_fields))
    opts = model_options(args)
    coords = points.coords
    bounds = (coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max())
    grid = grid_from_args(args, points.crs, bounds)  # checked before the long work
    if grid is None:  # so are the target points: a typo must not cost a CV and a training
        from ..model.outputs import read_target_points

        read_target_points(args.points, getattr(args, "points_layer", None), points.crs)
    outputs: dict = {}

    # one cluster (or none) for the CV folds and the final model's leave-out features
    from ..cluster import cluster_client

    with cluster_client(args) as client:
        # 1. cross-validation on identical folds (nested: everything refitted per fold)
        session.progress(0.01, "cross-validation")
        cv = None
        if str(args.folds).strip().lower() not in ("0", "none", "no"):
            methods = tuple(parse_csv(args.cv_methods)) or (
                ("ok", "ked", "hybrid") if opts["covariates"] else ("ok", "hybrid"))
            cv = compare_methods(points, methods, folds=args.folds, seed=opts["seed"],
                                 options=vars(args), progress=scaled(session.progress, 0.01, 0.6),
                                 should_stop=session.should_stop, client=client)
            cv_path = out_dir / "cv.json"
            write_json_verified(cv_path, cv, indent=1, default=float)
            outputs["cv"] = str(cv_path)

        # 2. the final model on all samples
        session.progress(0.6, "training")
        estimator = estimator_from_args(args, crs=points.crs)
        estimator.fit(coords, points.values, attributes=points.attributes,
                      progress=scaled(session.progress, 0.6, 0.8), should_stop=session.should_stop)
    model_dir = save_bundle(estimator, out_dir / "model", crs=points.crs, field=points.field,
                            source=points.source,
                            extra={"cv": cv["metrics"] if cv else None})
    outputs["model_dir"] = str(model_dir)

    # 3. prediction
    session.progress(0.8, "predicting")
    pred_progress = scaled(session.progress, 0.8, 0.92)
    if grid is None:
        outputs.update(predict_points(estimator, args.points, out_dir,
                                      layer=getattr(args, "points_layer", None),
                                      threshold=args.threshold, crs=points.crs,
                                      progress=pred_progress, should_stop=session.should_stop))
        maps = None
    else:
        rasters = predict_grid(estimator, grid, out_dir, threshold=args.threshold,
                               crs=points.crs, progress=pred_progress,
                               should_stop=session.should_stop)
        outputs.update(rasters)
        maps = {"extent": grid.extent, "layers": _read_layers(rasters)}

    # 4. report
    session.progress(0.92, "report")
    yt = estimator.transform_.forward(points.values)
    ev = empirical_variogram(coords, yt)
    versions = package_versions()
    report = write_report(out_dir / "report.html", ReportContext(
        title=f"GCNN-RNN hybrid interpolation of {points.field}",
        data={"field": points.field, "values": points.values, "values_t": yt,
              "transform": opts["transform"], "coords": coords,
              "crs_name": CRS.from_wkt(points.crs).name, "source": points.source,
              "dropped": points.dropped},
        variogram={"model": estimator.variogram_, "experimental": ev,
                   "fit": getattr(estimator, "variogram_fit_", None),
                   "title": f"{opts['transform']}({points.field}), all samples"},
        cv=cv,
        training={"history": estimator.train_result_.history,
                  "best_epochs": list(estimator.train_result_.best_epochs),
                  "metrics": estimator.training_metrics_,
                  "calibration": estimator.calibration_.to_dict()},
        maps=maps,
        parameters=final_paths({"command": "run", **{k: v for k, v in vars(args).items()
                                if k not in ("json_progress", "quiet", "verbose")},
                    "model_options": opts, "variogram_fitted": estimator.variogram_.to_text()}),
        versions=versions,
        outputs=final_paths(dict(outputs)),
    ))
    outputs["report"] = str(report)
    outputs["seconds"] = round(time.perf_counter() - t0, 2)
    if cv:
        outputs["cv_metrics"] = {m: {k: cv["metrics"][m].get(k) for k in ("rmse", "mae", "r2",
                                                                          "coverage")}
                                 for m in cv["metrics"]}
    session.progress(1.0, "done")
    return outputs


def _read_layers(rasters: dict) -> dict:
    from ..raster import read_raster

    wanted = ("prediction", "prediction_std", "kriging_variance", "interval_lower",
              "interval_upper", "exceedance_probability")
    return {name: read_raster(rasters[name])[0] for name in wanted if name in rasters}
