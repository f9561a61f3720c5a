"""``gcnn-rnn warmup``: compile the numba kernels into their cache (see :mod:`..warmup`)."""

from __future__ import annotations

import argparse

from ..warmup import warm_up
from .session import Session

NAME = "warmup"
HELP = ("compile the engine's kernels ahead of time (once after installing; the first krige "
        "then starts without a compile pause)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, session: Session) -> dict:
    out = warm_up(session.progress)
    session.info(f"kernels compiled or loaded from the cache in {out['seconds']:.1f} s")
    return out
