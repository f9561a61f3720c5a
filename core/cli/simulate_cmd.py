"""``gcnn-rnn simulate``: conditional sequential Gaussian simulation onto a grid.

Outputs in ``--output-dir`` (each raster with a ``.qml`` style): ``realisations.tif`` (one band
per realisation; in 3D one band per realisation and level), ``etype_mean.tif`` (mean of the
realisations), ``conditional_variance.tif`` (their variance), with ``--threshold T``
``exceedance_probability.tif`` (fraction of realisations above T), and ``simulation.json``.

``--path`` chooses how the nodes are visited: one random path over the whole grid (memory
grows with the grid), or slab after slab of ``--slab-rows`` rows (memory grows with a slab:
any number of rows; :mod:`gcnn_rnn.core.simulation.slabs`); ``auto`` takes the random path
when it fits ``--max-memory-gb`` (so results of grids that fit do not change), else slabs.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import GridTooLargeError, InputDataError
from ..output_set import final_paths
from .krige_cmd import AUTO_MODELS, _write_json, resolve_variogram
from .options import (
    add_grid_target,
    add_point_input,
    grid_from_args,
    memory_limit_bytes,
    points_from_args,
)
from .session import Session

logger = logging.getLogger(__name__)

NAME = "simulate"
HELP = "conditional sequential Gaussian simulation of a point field onto a grid"

REALISATIONS_TIF = "realisations.tif"
ETYPE_TIF = "etype_mean.tif"
VARIANCE_TIF = "conditional_variance.tif"
EXCEEDANCE_TIF = "exceedance_probability.tif"
SUMMARY_JSON = "simulation.json"
#: All-or-nothing output set (see ``core/output_set.py``): staged, then committed by the CLI.
OUTPUT_SET = ("output_dir", tuple(
    name for tif in (REALISATIONS_TIF, ETYPE_TIF, VARIANCE_TIF, EXCEEDANCE_TIF)
    for name in (tif, tif[:-4] + ".qml")) + (SUMMARY_JSON,))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_point_input(parser)
    g = parser.add_argument_group("simulation")
    g.add_argument("--realisations", type=int, default=10, metavar="N",
                   help="number of realisations (default 10)")
    g.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed (default 0); realisation r depends only on (S, r)")
    g.add_argument("--variogram", default="auto", metavar="V.json|auto|TEXT",
                   help="variogram of the normal scores: a V.json, a text model such as "
                        "'0.1 Nug + 0.9 Sph(900)', or auto (fitted to the normal scores, "
                        "default)")
    g.add_argument("--variogram-models", default=",".join(AUTO_MODELS), metavar="M1,M2",
                   help="candidate models of --variogram auto (default sph,exp,gau)")
    g.add_argument("--neighbours", type=int, default=16, metavar="N",
                   help="most conditioning values (data and simulated nodes) per node "
                        "(default 16, gstat's nmax)")
    g.add_argument("--max-distance", type=float, metavar="D",
                   help="search radius for data and simulated nodes (default: data at any "
                        "distance, simulated nodes within the variogram's practical range)")
    g.add_argument("--multigrid", type=int, default=0, metavar="L",
                   help="simulate L coarser sub-grids (every 2^L-th node) first (default 0)")
    g.add_argument("--threshold", type=float, metavar="T",
                   help="also write the probability of exceeding T (data units)")
    g.add_argument("--threads", type=int, default=0, metavar="T",
                   help="threads (default 0 = all cores)")
    g.add_argument("--path", choices=("auto", "random", "slabs"), default="auto",
                   help="order in which nodes are simulated: random = one random path over "
                        "the whole grid (holds every node of the realisations being "
                        "simulated); slabs = slab after slab of --slab-rows raster rows from "
                        "the top, each along its own random path and conditioned also on the "
                        "rows above it that the search reaches (memory grows with a slab, not "
                        "the grid; other realisations than random for the same seed); auto = "
                        "random when it fits --max-memory-gb, else slabs (default)")
    g.add_argument("--slab-rows", type=int, metavar="N",
                   help="raster rows per slab with slabs (default: about 2^20 nodes per "
                        "slab, at least the rows the search reaches above a node); the "
                        "realisations depend on it, never on memory or threads")
    add_grid_target(parser, points=False)
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="output folder")
    from ..cluster import add_cluster_arguments

    add_cluster_arguments(parser)  # batches of realisations run as tasks


def _config(args: argparse.Namespace):
    from ..simulation import SimulationConfig

    for flag, value, low in (("--realisations", args.realisations, 1),
                             ("--neighbours", args.neighbours, 1),
                             ("--multigrid", args.multigrid, 0), ("--seed", args.seed, 0),
                             ("--threads", args.threads, 0),
                             ("--slab-rows", 1 if args.slab_rows is None else args.slab_rows, 1)):
        if value < low:
            raise InputDataError(f"{flag} must be >= {low}, not {value!r}")
    if args.max_distance is not None and not args.max_distance > 0:
        raise InputDataError(f"--max-distance must be > 0, not {args.max_distance!r}")
    if args.threshold is not None and not np.isfinite(args.threshold):
        raise InputDataError(f"--threshold must be a finite number, not {args.threshold!r}")
    if args.slab_rows is not None and args.path == "random":
        raise InputDataError("--slab-rows applies to --path slabs (or auto), not to "
                             "--path random")
    return SimulationConfig(realisations=args.realisations, seed=args.seed,
                            neighbours=args.neighbours, max_distance=args.max_distance,
                            multigrid=args.multigrid, n_jobs=args.threads,
                            path="slabs" if args.path == "slabs" else "random",
                            slab_rows=args.slab_rows)


def _warn_if_not_nscore(spec: str) -> None:
    """A V.json fitted to other than normal scores gives realisations of the wrong spread."""
    spec = str(spec).strip()
    if not (spec.lower().endswith(".json") and Path(spec).is_file()):
        return
    from ..variogram.io import read_variogram_json

    recorded = read_variogram_json(spec).get("transform") or "none"
    if recorded != "nscore":
        logger.warning("%s is a variogram of %r values, but simulation needs the variogram of "
                       "the normal scores (gcnn-rnn variogram --transform nscore)", spec,
                       recorded)


def run(args: argparse.Namespace, session: Session) -> dict:
    from ..progress import scaled
    from ..simulation.memory import plan_batch, plan_slab_batch
    from ..simulation.sgs import SGSJob, _threads
    from ..simulation.slabs import SlabJob, slab_layout
    from ..simulation.stream import simulate_to_rasters
    from ..tiles import check_disk
    from ..transforms import fit_transform

    t0 = time.perf_counter()
    config = _config(args)
    session.progress(0.0, "reading samples")
    pts = points_from_args(args)
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    # the rasters are written stripe by stripe; what the simulation holds per node is
    # checked by plan_batch below
    grid = grid_from_args(args, pts.crs, (lo[0], lo[1], hi[0], hi[1]), streamed=True,
                          outputs=4, n_samples=pts.n)
    threads = _threads(config.n_jobs)
    max_bytes = memory_limit_bytes(args)
    # what the whole run holds at once (simulation.memory), before any work; the slab
    # layout needs the variogram (how far the search reaches), so slabs are checked below
    if args.path != "slabs":
        try:
            batch = plan_batch(grid, pts.n, config.realisations, config.neighbours, threads,
                               max_bytes)
        except GridTooLargeError as exc:
            if args.path == "random":
                raise
            logger.warning("--path auto: the random path over all %s nodes does not fit "
                           "--max-memory-gb %g (%s): simulating slab by slab (--path slabs; "
                           "other realisations than the random path's for the same seed)",
                           f"{grid.n_nodes:,}", args.max_memory_gb,
                           str(exc).split(";")[0])
            config = replace(config, path="slabs")
    n_rasters = config.realisations + (3 if args.threshold is not None else 2)
    check_disk(grid, n_rasters, args.output_dir)
    scores = fit_transform(pts.values, "nscore").forward(pts.values)
    session.check()
    session.progress(0.02, "variogram of the normal scores")
    _warn_if_not_nscore(args.variogram)
    model, vg_info = resolve_variogram(args.variogram, pts.coords, scores,
                                       args.variogram_models)
    layout = {"mode": config.path, "requested": args.path}
    if config.path == "random":
        config = replace(config, slab_rows=None)  # auto kept the random path: no slabs
    else:
        rows, halo = slab_layout(grid, model, config)
        config = replace(config, slab_rows=rows)
        batch = plan_slab_batch(grid, pts.n, config.realisations, config.neighbours, threads,
                                max_bytes, rows, halo)
        layout.update(slab_rows=rows, halo_rows=halo, slabs=-(-grid.nrows // rows))
        logger.info("simulating slab by slab: %d slab(s) of %d rows, each conditioned also on "
                    "the %d rows above it", layout["slabs"], rows, halo)
    if config.path == "random":
        logger.info("simulating along one random path over the whole grid per path group")
    t1 = time.perf_counter()
    job = (SlabJob if config.path == "slabs" else SGSJob).prepare(
        pts.coords, pts.values, grid, model, config)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    field = pts.field
    n_real = config.realisations
    names = [f"realisation {r + 1}" for r in range(n_real)]
    if grid.z_levels:
        names = [f"{nm}, z={z:g}" for nm in names for z in grid.z_levels]
    files = {
        "realisations": (out_dir / REALISATIONS_TIF, "value",
                         f"sequential Gaussian simulation of {field}"),
        "etype_mean": (out_dir / ETYPE_TIF, "value",
                       f"E-type mean of {field} over {n_real} realisations"),
        "conditional_variance": (out_dir / VARIANCE_TIF, "variance",
                                 f"conditional variance of {field} over {n_real} realisations"),
    }
    if args.threshold is not None:
        files["exceedance_probability"] = (
            out_dir / EXCEEDANCE_TIF, "probability",
            f"probability of {field} > {args.threshold:g} over {n_real} realisations")
    from ..cluster import cluster_client

    with cluster_client(args) as client:
        res = simulate_to_rasters(job, grid, batch, files, names, args.threshold, client,
                                  scaled(session.progress, 0.05, 1.0), session.should_stop)
    seconds = time.perf_counter() - t1
    outputs: dict[str, str] = {k: str(p) for k, (p, _, _) in files.items()}
    n_sim = grid.n_nodes * config.realisations
    summary = {
        "command": "simulate",
        "input": pts.source,
        "field": field,
        "n": pts.n,
        "dims": pts.ndim,
        "dropped": pts.dropped,
        "method": "sequential Gaussian simulation (simple kriging of normal scores)",
        "variogram": vg_info,
        "transform": job.ft.to_dict(),
        "config": config.to_dict(),
        # how the nodes were visited: random path or slabs (rows, halo rows, number)
        "path": layout,
        "threshold": args.threshold,
        "grid": grid.to_dict(),
        "sample_cells": int(job.fixed_nodes.size),
        "search_radius": float(job.radius),
        # histogram reproduction: about 0 and 1 (per realisation in the lists)
        "normal_scores": {"mean": float(np.mean(res.score_mean)),
                          "variance": float(np.mean(res.score_var)),
                          "mean_per_realisation": res.score_mean.tolist(),
                          "variance_per_realisation": res.score_var.tolist()},
        "etype_range": res.etype_range,
        "timings_s": {"simulation": round(seconds, 4),
                      "total": round(time.perf_counter() - t0, 4)},
        "nodes_realisations_per_second": n_sim / seconds if seconds > 0 else None,
        "outputs": final_paths(dict(outputs)),
    }
    path = out_dir / SUMMARY_JSON
    _write_json(path, summary)
    outputs["summary"] = str(path)
    session.progress(1.0, "done")
    return {**outputs, "variogram": vg_info["text"], "sample_cells": int(job.fixed_nodes.size)}
