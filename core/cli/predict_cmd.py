"""``gcnn-rnn predict``: apply a model bundle on a grid (GeoTIFFs) or at points (GeoPackage)."""

from __future__ import annotations

import argparse
import math

from ..errors import InputDataError
from ..model.outputs import OUTPUT_FILES
from .options import add_grid_target, grid_from_args, memory_limit_bytes, parse_csv_list
from .session import Session

NAME = "predict"
HELP = "predict with a trained hybrid model on a grid or at target points"
#: All-or-nothing output set (see ``core/output_set.py``): staged, then committed by the CLI.
OUTPUT_SET = ("output_dir", OUTPUT_FILES)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, metavar="M",
                        help="model bundle written by gcnn-rnn train")
    add_grid_target(parser, points=True)
    parser.add_argument("--covariates", metavar="a.tif,b.tif",
                        help="covariate rasters, in the order the model was trained with; "
                             "replace the paths stored in the bundle (e.g. a moved bundle)")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="also write the probability of exceeding T (data units)")
    parser.add_argument("--output-dir", required=True, metavar="DIR",
                        help="directory for the output rasters or prediction_points.gpkg")
    parser.add_argument("--cog", action="store_true",
                        help="write the rasters as Cloud-Optimized GeoTIFFs")
    from ..cluster import add_cluster_arguments

    add_cluster_arguments(parser)


def run(args: argparse.Namespace, session: Session) -> dict:
    from ..model.bundle import load_bundle
    from ..model.outputs import predict_grid, predict_points
    from ..progress import scaled

    session.progress(0.0, "loading model")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise InputDataError(f"--threshold must be a finite number, not {args.threshold!r}")
    estimator, doc = load_bundle(args.model_dir, covariates=parse_csv_list(args.covariates),
                                 should_stop=session.should_stop)
    if (args.threshold is not None and args.threshold <= 0
            and estimator.transform_.kind.value == "log"):
        raise InputDataError(f"--threshold {args.threshold:g} is not above 0: the model was "
                             "trained on log values, which are all positive")
    crs = doc.get("crs")
    coords = estimator.coords_
    bounds = (coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max())
    n_layers = 7 if args.threshold is not None else 6
    grid = grid_from_args(args, crs, bounds, streamed=True, outputs=n_layers,
                          n_samples=len(coords))  # written range by range
    progress = scaled(session.progress, 0.05, 1.0)
    max_bytes = memory_limit_bytes(args)
    if grid is None:
        outputs = predict_points(estimator, args.points, args.output_dir,
                                 layer=getattr(args, "points_layer", None),
                                 threshold=args.threshold, crs=crs, progress=progress,
                                 should_stop=session.should_stop, max_bytes=max_bytes)
    else:
        from ..model.predict_memory import check_predict_memory

        check_predict_memory(estimator, grid.n_nodes, max_bytes, streamed=True)
        from ..cluster import cluster_client
        from ..tiles import check_disk

        check_disk(grid, n_layers, args.output_dir, args.cog)
        with cluster_client(args) as client:
            outputs = predict_grid(estimator, grid, args.output_dir, threshold=args.threshold,
                                   crs=crs, progress=progress, should_stop=session.should_stop,
                                   client=client, model_dir=args.model_dir, cog=args.cog)
    return {**outputs, "output_dir": args.output_dir, "model_dir": args.model_dir}
