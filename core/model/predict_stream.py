"""Hybrid prediction of a grid range by range, in-process or on a Dask cluster, streamed into
the ``predict`` layers' GeoTIFFs (:mod:`gcnn_rnn.core.tiles`).

The ranges are the chunks of :data:`~.estimator.PREDICT_CHUNK` targets that
:meth:`~.estimator.HybridRegressor.predict_full` has always used, and every layer is computed
row by row within a chunk, so the streamed grid has the floats of a whole-grid prediction. On a
cluster each worker loads the model bundle once from ``model_dir`` (a path the workers must
see: the same machine, or a shared file system).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..grid import Grid
from ..progress import ProgressFn, StopFn


@dataclass
class PredictJob:
    """``(start, stop)`` → ``{layer: values}`` of the grid nodes in that range."""

    grid: Grid
    names: tuple[str, ...]
    threshold: float | None = None
    model_dir: str | None = None
    _estimator: object = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:  # the estimator is loaded where the job runs
        if self.model_dir is None:
            raise ValueError("a prediction job without model_dir cannot run on a cluster")
        return {**self.__dict__, "_estimator": None}

    def estimator(self):
        if self._estimator is None:
            from .bundle import load_bundle

            self._estimator = load_bundle(self.model_dir)[0]
        return self._estimator

    def ranges(self) -> list[tuple[int, int]]:
        from .estimator import PREDICT_CHUNK

        return list(self.grid.chunks(PREDICT_CHUNK))

    def __call__(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return self.finish(start, stop, self.prepare(start, stop))

    # In-process, :func:`~gcnn_rnn.core.tiles.run_ranges` overlaps the kriging features of
    # the next range (``prepare``) with the network of this one (``finish``): the features'
    # serial parts then no longer leave a core idle. Each range is one chunk of
    # ``predict_full``, so the floats are the same either way.
    def prepare(self, start: int, stop: int):
        return self.estimator().chunk_features(self.grid.node_coords(start, stop))

    def finish(self, start: int, stop: int, prepared) -> dict[str, np.ndarray]:
        pred = self.estimator().chunk_prediction(prepared, self.threshold)
        return {n: np.asarray(getattr(pred, n), dtype=float) for n in self.names}


def stream_predictions(estimator, grid: Grid, out_dir: Path, layers: dict, threshold,
                       model_dir: str | None = None, client=None, cog: bool = False,
                       progress: ProgressFn | None = None,
                       should_stop: StopFn | None = None) -> tuple[dict[str, str], int, int]:
    """Write every layer (``layers``: name → (kind, description)) of ``grid``; returns
    ``({name: path}, nodes without a prediction inside the grid's mask, nodes outside it)``
    (a template's own nodata cells are expected to stay nodata)."""
    from ..tiles import inside_mask, stream_to_rasters

    job = PredictJob(grid, tuple(layers), threshold, model_dir, estimator)
    counts = [0, 0]

    def convert(r, res):
        missing = np.isnan(res["prediction"])
        inside = inside_mask(grid, *r)
        if inside is not None:
            outside = missing & ~inside
            counts[1] += int(outside.sum())
            missing &= ~outside
        counts[0] += int(missing.sum())
        return res

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {n: (out_dir / f"{n}.tif", kind, desc) for n, (kind, desc) in layers.items()}
    stream_to_rasters(job, job.ranges(), grid, files, convert, cog, client, progress,
                      should_stop, text="predicting")
    return {n: str(p) for n, (p, _, _) in files.items()}, counts[0], counts[1]
