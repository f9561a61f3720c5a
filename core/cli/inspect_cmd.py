"""``gcnn-rnn inspect``: read and validate a point layer and summarise it (no computation)."""

from __future__ import annotations

import argparse

import numpy as np

from .options import add_point_input, points_from_args
from .session import Session

NAME = "inspect"
HELP = "validate a point layer and field, and print a summary (count, extent, CRS, statistics)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)


def run(args: argparse.Namespace, session: Session) -> dict:
    pts = points_from_args(args)
    v = pts.values
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    return {
        "source": pts.source,
        "field": pts.field,
        "n": pts.n,
        "dims": pts.ndim,
        "epsg": pts.epsg,
        "crs": pts.crs,
        "extent": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])],
        "z_range": [float(lo[2]), float(hi[2])] if pts.ndim == 3 else None,
        "dropped": pts.dropped,
        "stats": {
            "min": float(v.min()),
            "max": float(v.max()),
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)),
            "median": float(np.median(v)),
            "positive": bool((v > 0).all()),
        },
    }
