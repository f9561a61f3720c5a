"""``gcnn-rnn demo``: ``run`` on the bundled Meuse data (log zinc, 40 m grid) into demo_output/.

The demo shows the best honest case: the bundled distance-to-river raster (``meuse_dist.tif``)
is a covariate, and the report compares ordinary kriging, kriging with an external drift in
it (the classical method a user would try), the ridge baseline and the hybrid (whose base is
chosen among OK and KED) on identical folds. ``--without-covariate`` runs the plain case.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .run_cmd import OUTPUT_SET  # noqa: F401 - the same all-or-nothing set as `run`
from .session import Session

NAME = "demo"
HELP = "run the whole pipeline on the bundled Meuse zinc data (what `make demo` calls)"

#: The plugin folder's sample data (the repository root is the package root).
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="demo_output", metavar="DIR",
                        help="where the report, rasters and model go (default demo_output)")
    parser.add_argument("--with-covariate", action="store_true", default=True,
                        help="use the distance-to-river raster (meuse_dist.tif) as a covariate "
                             "(the default)")
    parser.add_argument("--without-covariate", dest="with_covariate", action="store_false",
                        help="no covariate: OK, ridge and hybrid from the samples alone")
    parser.add_argument("--folds", default="10", metavar="K",
                        help="cross-validation folds (default 10)")
    parser.add_argument("--ensemble", type=int, default=5, metavar="M",
                        help="ensemble members (default 5)")
    parser.add_argument("--epochs", type=int, default=None, metavar="N",
                        help="maximum epochs (default: the train command's)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed")


def run(args: argparse.Namespace, session: Session) -> dict:
    from . import run_cmd

    parser = argparse.ArgumentParser(prog="gcnn-rnn run")
    run_cmd.add_arguments(parser)
    argv = [
        "--input", str(SAMPLE_DATA / "meuse.gpkg"), "--field", "zinc", "--transform", "log",
        "--template", str(SAMPLE_DATA / "meuse_dist.tif"), "--output-dir", args.output_dir,
        "--folds", str(args.folds), "--ensemble", str(args.ensemble), "--seed", str(args.seed),
        "--threshold", "500",
    ]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    if args.with_covariate:
        argv += ["--covariates", str(SAMPLE_DATA / "meuse_dist.tif"),
                 "--cv-methods", "ok,ked,linear,hybrid"]
    else:
        argv += ["--cv-methods", "ok,linear,hybrid"]
    session.log("info", "demo: gcnn-rnn run " + " ".join(argv))
    return run_cmd.run(parser.parse_args(argv), session)
