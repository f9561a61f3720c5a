"""``gcnn-rnn train``: fit the hybrid model on point samples and save a model bundle."""

from __future__ import annotations

import argparse

from ..model.options import add_model_arguments, estimator_from_args, parse_csv
from .options import add_point_input, points_from_args
from .session import Session

NAME = "train"
HELP = "train the hybrid GCNN-RNN model (kriging features + Conv1D/BiLSTM ensemble)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)
    add_model_arguments(parser)
    parser.add_argument("--model-dir", required=True, metavar="M",
                        help="directory of the model bundle to write (replaced if it exists)")
    from ..cluster import add_cluster_arguments

    add_cluster_arguments(parser)  # the leave-out features of large training sets


def run(args: argparse.Namespace, session: Session) -> dict:
    from ..model.bundle import MODEL_JSON, check_bundle_target, save_bundle
    from ..progress import scaled

    check_bundle_target(args.model_dir)
    points = points_from_args(args, extra_fields=parse_csv(args.co_fields))
    session.progress(0.02, "read points")
    estimator = estimator_from_args(args, crs=points.crs)
    from ..cluster import cluster_client

    with cluster_client(args):  # the leave-out features run there (features.py)
        estimator.fit(points.coords, points.values, attributes=points.attributes,
                      progress=scaled(session.progress, 0.02, 0.95),
                      should_stop=session.should_stop)
    session.check()
    path = save_bundle(estimator, args.model_dir, crs=points.crs, field=points.field,
                       source=points.source)
    session.progress(1.0, "saved")
    return {
        "model_dir": str(path),
        "model_json": str(path / MODEL_JSON),
        "members": [str(path / f"member_{i}.keras") for i in range(estimator.ensemble)],
        "variogram": estimator.variogram_.to_text(),
        "metrics": estimator.training_metrics_,
        "calibration": estimator.calibration_.to_dict(),
        "epochs": estimator.train_result_.epochs,
    }
