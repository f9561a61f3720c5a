"""Experimental variograms of cross-validation training parts without a pass per fold.

The experimental variogram of a training part is the variogram of all samples minus the
pairs that involve a held-out sample. :class:`FoldVariograms` visits all pairs once
(:mod:`.pairs`), then each fold subtracts its held-out samples' own pairs: ``O(n · held-out)``
per fold instead of ``O(n²)``, so leave-one-out costs one pass over the pairs in all.

Pair counts equal those of a variogram computed from scratch on the training part with the
same bins; mean distances and semivariances agree to round-off (sums minus sums). The bins
(cutoff and width) are those of *all* samples (gstat's defaults from the bounding box of all
coordinates): they depend on the coordinates only, never on a held-out value, and one set of
bins for every fold keeps the subtraction exact. Above
:data:`~.empirical.DEFAULT_MAX_POINTS` samples the seeded subsample of all samples is used,
and a fold's variogram is that of the subsample's training members.
"""

from __future__ import annotations

import numpy as np

from ..progress import ProgressFn, StopFn
from .empirical import DEFAULT_MAX_POINTS, DEFAULT_SUBSAMPLE_SEED, EmpiricalVariogram, VariogramPlan
from .pairs import held_out_sums


class FoldVariograms:
    """The omnidirectional experimental variogram of all samples, and of any part of them.

    Parameters
    ----------
    coords : ndarray, shape (n, 2) or (n, 3)
    values : ndarray, shape (n,)
        Values as modelled (transformed, if a transform without fitted parameters is used).
    max_points, seed : int
        Subsample settings (:func:`~.empirical.empirical_variogram`).
    progress, should_stop : callable, optional
        For the one pass over all pairs.
    **settings
        ``cutoff``, ``width``, ``n_lags``, ``estimator`` as :func:`~.empirical.empirical_variogram`.
    """

    def __init__(self, coords: np.ndarray, values: np.ndarray, *,
                 max_points: int | None = DEFAULT_MAX_POINTS,
                 seed: int = DEFAULT_SUBSAMPLE_SEED, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None, **settings) -> None:
        self.plan = VariogramPlan.build(coords, values, [None], max_points=max_points,
                                        seed=seed, **settings)
        self.sd, self.ss, self.sc = self.plan.sums(progress, should_stop)
        n = self.plan.n_points
        if self.plan.used is None:
            self.pos = np.arange(n, dtype=np.int64)
        else:  # position of each sample in the subsample, -1 when not drawn
            self.pos = np.full(n, -1, dtype=np.int64)
            self.pos[self.plan.used] = np.arange(self.plan.used.size)

    @property
    def full(self) -> EmpiricalVariogram:
        """The variogram of all samples."""
        return self.plan.variograms(self.sd, self.ss, self.sc)[0]

    def without(self, held_out: np.ndarray) -> EmpiricalVariogram:
        """The variogram of all samples but ``held_out`` (indices into the samples)."""
        idx = self.pos[np.unique(np.asarray(held_out, dtype=np.int64))]
        idx = idx[idx >= 0]
        p = self.plan
        sd, ss, sc = held_out_sums(p.coords, p.values, idx, p.cutoff, p.width, p.n_bins,
                                   p.est.stat_code, p.rows)
        # sums of non-negative terms: clip the round-off of the difference at zero
        return p.variograms(np.maximum(self.sd - sd, 0.0), np.maximum(self.ss - ss, 0.0),
                            self.sc - sc, n_used=p.coords.shape[0] - idx.size)[0]
