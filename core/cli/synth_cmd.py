"""``gcnn-rnn synth``: a Gaussian random field with a known variogram, sampled at random points.

See :mod:`gcnn_rnn.core.synth` for the simulation, trend and layering formulas.
"""

from __future__ import annotations

import argparse

from ..synth import DEFAULT_CRS, SynthConfig, synthesize, write_samples
from ..variogram.io import load_variogram
from .session import Session

NAME = "synth"
HELP = "simulate a Gaussian random field with a given variogram and sample it (known truth)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dims", type=int, choices=(2, 3), default=2, help="2D or 3D")
    parser.add_argument("--n", type=int, default=200, metavar="N", help="number of samples")
    parser.add_argument(
        "--variogram",
        required=True,
        metavar="MODEL",
        help="bounded model as text, e.g. '0.1 Nug + 1 Sph(300)', or a V.json",
    )
    parser.add_argument(
        "--trend",
        type=float,
        default=0.0,
        metavar="A",
        help="amplitude of the nonlinear trend A*(sin(2 pi u) cos(pi v) + "
        "4 (u-1/2)(v-1/2) [+ (2w-1)^2 in 3D]); 0 = none (default)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=0,
        metavar="K",
        help="3D: K horizontal layers with different means (default 0)",
    )
    parser.add_argument(
        "--layer-contrast",
        type=float,
        default=2.0,
        metavar="S",
        help="sd of the layer means in units of sqrt(sill) (default 2)",
    )
    parser.add_argument("--mean", type=float, default=0.0, help="constant mean (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--size",
        type=float,
        default=1000.0,
        metavar="L",
        help="side of the square domain in CRS units (default 1000)",
    )
    parser.add_argument(
        "--cell-size",
        type=float,
        default=10.0,
        metavar="S",
        help="grid spacing of the truth (default 10)",
    )
    parser.add_argument(
        "--depth",
        type=float,
        default=50.0,
        metavar="D",
        help="3D: vertical extent, levels from -D to 0 (default 50)",
    )
    parser.add_argument(
        "--z-step", type=float, default=5.0, metavar="DZ", help="3D: level spacing (default 5)"
    )
    parser.add_argument(
        "--crs",
        default=DEFAULT_CRS,
        metavar="EPSG:n",
        help=f"projected CRS of the outputs (default {DEFAULT_CRS})",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="F.gpkg",
        help="sample points (layer 'samples', field 'value'; 3D: Z geometry, "
        "fields 'z' and 'hole')",
    )
    parser.add_argument(
        "--truth", metavar="T.tif", help="also write the exhaustive field (3D: one band per level)"
    )


def run(args: argparse.Namespace, session: Session) -> dict:
    config = SynthConfig(
        variogram=load_variogram(args.variogram),
        dims=args.dims,
        n=args.n,
        trend=args.trend,
        layers=args.layers,
        layer_contrast=args.layer_contrast,
        mean=args.mean,
        seed=args.seed,
        size=args.size,
        cell_size=args.cell_size,
        depth=args.depth,
        z_step=args.z_step,
        crs=args.crs,
    )
    result = synthesize(config, progress=session.progress, should_stop=session.should_stop)
    session.check()
    outputs = {"output": str(write_samples(result, args.output)), "n": int(result.values.size)}
    if args.truth:
        from ..raster import write_raster

        desc = f"synthetic truth: {config.variogram.to_text()} (seed {config.seed})"
        outputs["truth"] = str(write_raster(args.truth, result.truth, result.grid, desc))
    outputs["model"] = config.variogram.to_text()
    return outputs
