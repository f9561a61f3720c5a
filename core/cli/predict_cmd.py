"""``gcnn-rnn predict``: apply a model bundle on a grid (GeoTIFFs) or at points (GeoPackage)."""

from __future__ import annotations

import argparse

from .options import add_grid_target, grid_from_args
from .session import Session

NAME = "predict"
HELP = "predict with a trained hybrid model on a grid or at target points"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, metavar="M",
                        help="model bundle written by gcnn-rnn train")
    add_grid_target(parser, points=True)
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
    estimator, doc = load_bundle(args.model_dir)
    crs = doc.get("crs")
    coords = estimator.coords_
    bounds = (coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max())
    grid = grid_from_args(args, crs, bounds, streamed=True)  # written range by range
    progress = scaled(session.progress, 0.05, 1.0)
    if grid is None:
        outputs = predict_points(estimator, args.points, args.output_dir,
                                 layer=getattr(args, "points_layer", None),
                                 threshold=args.threshold, crs=crs, progress=progress,
                                 should_stop=session.should_stop)
    else:
        from ..cluster import cluster_client
        from ..tiles import check_disk

        check_disk(grid, 7 if args.threshold is not None else 6, args.output_dir, args.cog)
        with cluster_client(args) as client:
            outputs = predict_grid(estimator, grid, args.output_dir, threshold=args.threshold,
                                   crs=crs, progress=progress, should_stop=session.should_stop,
                                   client=client, model_dir=args.model_dir, cog=args.cog)
    return {**outputs, "output_dir": args.output_dir, "model_dir": args.model_dir}
