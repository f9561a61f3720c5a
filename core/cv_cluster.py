"""Cross-validation folds × methods as tasks on a Dask cluster (:mod:`.cluster`).

Each task is one method on one fold (or one method's leave-one-out shortcut on all points),
exactly the call :func:`~gcnn_rnn.core.cv.cross_validate` makes in-process, so the assembled
predictions are the same floats. Progress counts finished tasks; a cancel cancels the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .progress import ProgressFn, StopFn


@dataclass
class FoldTask:
    """``(method, fold)`` → that method's result on that fold (``fold=None``: its ``loo``)."""

    points: object
    folds: np.ndarray
    options: dict

    def __call__(self, method: str, fold: int | None, extra: dict | None = None) -> dict | None:
        from .cv import get_cv_method

        fn = get_cv_method(method)
        if fold is None:
            return fn.loo(self.points, self.options, None, None)
        test_idx = np.flatnonzero(self.folds == fold)
        train_idx = np.flatnonzero(self.folds != fold)
        options = self.options if extra is None else {**self.options, **extra}
        return fn(self.points.subset(train_idx), self.points.subset(test_idx), options,
                  None, None)


def outputs_on_cluster(client, points, folds: np.ndarray, fold_ids: np.ndarray, fns: dict,
                       options: dict, loo: bool, progress: ProgressFn | None,
                       should_stop: StopFn | None) -> dict[str, dict]:
    """``{method: out}`` as :func:`~gcnn_rnn.core.cv.cross_validate` builds it per method."""
    from .cluster import map_unordered
    from .cv import assemble_folds

    job = FoldTask(points, folds, options)
    outs: dict[str, dict] = {}
    shortcut = [m for m, fn in fns.items() if loo and hasattr(fn, "loo")]
    done, total = 0, len(fns) * len(fold_ids)
    if shortcut:
        for (name, _), out in map_unordered(client, job, [(m, None) for m in shortcut],
                                            should_stop):
            if out is not None:
                outs[name] = out
                done += len(fold_ids)
    rest = [m for m in fns if m not in outs]
    per_fold: dict[str, dict] = {m: {} for m in rest}
    items = []
    for m in rest:
        # A method's ``prepare`` (shared work such as the fold variograms from one pass over
        # all pairs) runs here once, as in-process, so each task gets the same fold options.
        prepare = getattr(fns[m], "prepare", None)
        fold_options = prepare(points, options, should_stop) if prepare else None
        items += [(m, int(f), None if fold_options is None
                   else fold_options(np.flatnonzero(folds == f))) for f in fold_ids]
    for (name, fold, _), res in map_unordered(client, job, items, should_stop):
        per_fold[name][fold] = res
        done += 1
        if progress is not None:
            progress(done / total, "cross-validation")
    for name in rest:
        outs[name] = assemble_folds(points.n, folds, fold_ids,
                                    [per_fold[name][int(f)] for f in fold_ids])
    return outs
