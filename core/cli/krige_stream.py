"""``krige`` onto a grid in bounded memory: ranges kriged in-process or on a Dask cluster,
back-transformed and streamed into the estimate and variance GeoTIFFs as they finish.

Both files are written under temporary names and renamed only when both are complete
(:func:`~gcnn_rnn.core.tiles.stream_to_rasters`), so a failure or a cancel leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid
from ..kriging.checks import Band, drop_implausible
from ..progress import ProgressFn, StopFn
from ..tiles import inside_mask, stream_to_rasters


@dataclass
class StreamedGrid:
    """What the summary needs of a streamed grid."""

    outputs: dict[str, str]
    n_singular: int
    n_missing: int
    estimate_range: list[float] | None
    variance_range: list[float] | None
    stability: dict


def stream_krige_grid(job, grid: Grid, paths: dict[str, Path], descriptions: dict[str, str],
                      back: Callable | None, cog: bool = False, client=None,
                      progress: ProgressFn | None = None,
                      should_stop: StopFn | None = None,
                      band: Band | None = None) -> StreamedGrid:
    """Krige ``job`` (:mod:`~gcnn_rnn.core.kriging.tiled`) range by range into the rasters
    ``paths["estimate"]`` and ``paths["variance"]``.

    ``back(estimate, variance, lagrange) -> (estimate, variance)`` converts each range to
    output units (None: as kriged). Estimates outside ``band`` (output units,
    :func:`~gcnn_rnn.core.kriging.checks.plausible_band`) are written as nodata and counted.
    """
    kinds = {"estimate": "value", "variance": "variance"}
    counts = [0, 0]
    # counted inside the grid's mask (a template's own nodata cells stay nodata by design),
    # as float32 (the rasters' type: values beyond its range are written as nodata)
    stability = dict.fromkeys(("n_unstable", "n_unresolved", "n_nonfinite_estimate",
                               "n_nonfinite_variance", "n_implausible"), 0)

    def convert(r, res) -> dict:
        est, var = res.estimate, res.variance
        with np.errstate(over="ignore"):
            if back is not None:
                est, var = back(est, var, res.lagrange)
            est, var, implausible = drop_implausible(est, var, band)
        inside = inside_mask(grid, *r)
        sel = slice(None) if inside is None else inside
        stability["n_implausible"] += int(implausible[sel].sum())
        counts[0] += res.n_singular
        counts[1] += res.n_missing
        stability["n_unstable"] += getattr(res, "n_unstable", 0)
        stability["n_unresolved"] += getattr(res, "n_unresolved", 0)
        with np.errstate(over="ignore"):  # what the float32 file can hold: beyond is nodata
            e32, v32 = np.asarray(est[sel], np.float32), np.asarray(var[sel], np.float32)
        stability["n_nonfinite_estimate"] += int((~np.isfinite(e32)).sum())
        stability["n_nonfinite_variance"] += int((~np.isfinite(v32)).sum())
        return {"estimate": est, "variance": var}

    layers = {k: (p, kinds[k], descriptions[k]) for k, p in paths.items()}
    ranges = stream_to_rasters(job, job.ranges(), grid, layers, convert, cog, client, progress,
                               should_stop)
    return StreamedGrid({k: str(p) for k, p in paths.items()}, counts[0], counts[1],
                        ranges["estimate"], ranges["variance"], stability)


def krige_grid_to_rasters(args, grid: Grid, out_dir: Path, coords, values, model, config,
                          drift, universal: bool, ft, descriptions: dict[str, str],
                          progress: ProgressFn | None,
                          should_stop: StopFn | None,
                          band: Band | None = None) -> StreamedGrid:
    """The ``krige`` command's grid branch: the job of its flags, on the cluster they name
    (:func:`~gcnn_rnn.core.cluster.cluster_client`) or in-process."""
    import time

    from ..cluster import cluster_client
    from .krige_cmd import ESTIMATE_TIF, VARIANCE_TIF

    t0 = time.perf_counter()
    if universal:
        from ..kriging.tiled import UniversalGridJob

        job = UniversalGridJob(coords, values, model, grid, drift.sample_cov, None,
                               drift.terms, config.neighbours, drift.block,
                               drift.discretisation, tuple(drift.paths), drift.crs)
    else:
        from ..kriging.tiled import GridKrigingJob

        job = GridKrigingJob(coords, values, model, config, grid)
        job.should_stop = should_stop  # in-process ranges check it inside (not pickled)
    back = None
    if ft is not None:
        def back(est, var, lag):
            return ft.back(est, var, None if config.simple or universal else lag)
    out_dir.mkdir(parents=True, exist_ok=True)
    with cluster_client(args) as client:
        res = stream_krige_grid(job, grid, {"estimate": out_dir / ESTIMATE_TIF,
                                            "variance": out_dir / VARIANCE_TIF},
                                descriptions, back, getattr(args, "cog", False), client,
                                progress, should_stop, band)
    if universal:
        from ..kriging.universal import _warn_missing

        inside = grid.n_inside
        _warn_missing(res.n_missing, inside)
    else:
        from ..kriging.api import _report
        from ..kriging.stability import warn_unstable

        _report(res.n_singular, res.n_missing, config, grid.n_nodes, time.perf_counter() - t0)
        warn_unstable(res.stability["n_unstable"], res.stability["n_unresolved"],
                      grid.n_inside, values)
    return res
