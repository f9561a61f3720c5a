"""Kriging cross-validation of candidate variogram models, cheap enough to run on every fit.

``--variogram auto`` picks among its fitted candidates by the kriging cross-validation error
with the neighbourhood that will be used (:func:`~gcnn_rnn.core.variogram.fit.fit_variogram`
with ``select="cv"``): a good weighted SSE does not make a good kriging model (a Gaussian
fit with a small nugget can have the lowest SSE and a CV error 10 % above a spherical one).

:class:`CandidateCV` scores one data set for any number of models. What does not depend on
the model is done once and shared by every candidate with the same anisotropy: the neighbour
search of every held-out sample and the distances inside each neighbourhood. Each candidate
then costs one batched solve of the ordinary kriging systems (numpy), far cheaper than a
kriging run. The scheme is leave-one-out up to :data:`MAX_LOO` samples and K-fold above
(random folds from a fixed seed). With a global neighbourhood, leave-one-out uses the closed
form of Dubrule (1983) on the inverse of the one global system.

Large data sets are scored on a seeded subset: above :data:`MAX_TARGETS` samples only that
many held-out samples (drawn once, the same for every candidate, so the comparison is paired)
are predicted, each from its full neighbourhood among the others (leave-one-out) or among the
other folds (K-fold). Several candidates are raced (:meth:`CandidateCV.race`): all are scored
on the first :data:`RACE_TARGETS` of those samples, and a candidate whose squared errors there
are significantly larger than the best one's (paired test, :data:`RACE_Z` standard errors, and
at least :data:`RACE_MARGIN` higher RMSE) is dropped; only the others are scored on the rest.
A dropped candidate keeps its partial score, marked as such, and is never selected. With ``drift`` columns the
systems are those of kriging with an external drift (:mod:`.drift`, the same neighbourhoods),
which gives leave-one-out KED at every sample in one pass (:meth:`CandidateCV.predictions`).

Reference: Dubrule, O. (1983) Cross validation of kriging in a unique neighborhood.
*Mathematical Geology* 15(6), 687-699.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputDataError
from .api import bounding_corners, covariance_shift

#: Largest sample count scored by leave-one-out; above it, :data:`K_FOLDS`-fold CV.
MAX_LOO = 3000
#: Folds of the K-fold scheme (large data sets).
K_FOLDS = 10
#: Held-out samples scored at most (a seeded random subset above it, in both schemes; bounds
#: time and memory, and the candidates are compared on the same samples).
MAX_TARGETS = 2000
#: Samples of the first round of :meth:`CandidateCV.race` (racing only with at least twice
#: as many scored samples).
RACE_TARGETS = 500
#: A candidate is dropped after the first round when its mean squared error exceeds the best
#: one's by more than this many standard errors of the paired difference...
RACE_Z = 3.0
#: ... and its RMSE there is more than this fraction above the best one's.
RACE_MARGIN = 0.01
#: Neighbours of the K-fold scheme with a global neighbourhood (a full system per held-out
#: sample of thousands of samples is not affordable; the nearest ones carry the weight).
GLOBAL_KFOLD_NEIGHBOURS = 128
#: Targets per batched solve (bounds memory at about CHUNK * (k + 1)^2 * 8 bytes * 3).
CHUNK = 2048


@dataclass(frozen=True)
class CVScore:
    """Cross-validation score of one model: RMSE, mean squared deviation ratio, scheme."""

    rmse: float
    msdr: float
    scheme: str  # "loo" or "10-fold" (", N of M samples" when scored on a subset)
    n: int
    complete: bool = True  # False: dropped by the race after its first round


class CandidateCV:
    """Kriging cross-validation of variogram models on one data set (see module doc).

    Parameters
    ----------
    coords : ndarray, shape (n, d)
        Sample coordinates (2D or 3D).
    values : ndarray, shape (n,)
        Values in the units the model is fitted in (transformed, if a transform is used).
    neighbours : int
        Kriging neighbours (0 = all samples: global kriging).
    max_loo : int
        Leave-one-out up to this many samples, K-fold above.
    seed : int
        Seed of the K-fold assignment.
    drift : ndarray, shape (n, p), optional
        External drift covariates at the samples: kriging with an external drift instead of
        ordinary kriging (the constant term is added here).
    max_targets : int, optional
        Score at most this many held-out samples (a seeded subset above it; default
        :data:`MAX_TARGETS`); pass ``n`` for predictions at every sample.
    """

    def __init__(self, coords: np.ndarray, values: np.ndarray, neighbours: int = 32, *,
                 max_loo: int = MAX_LOO, seed: int = 0, drift: np.ndarray | None = None,
                 max_targets: int | None = None) -> None:
        self.coords = np.asarray(coords, dtype=float)
        self.values = np.asarray(values, dtype=float).ravel()
        n = self.values.size
        if self.coords.ndim != 2 or self.coords.shape[0] != n or n < 3:
            raise InputDataError("cross-validating a variogram needs at least 3 samples")
        if isinstance(neighbours, bool) or int(neighbours) < 0:
            raise InputDataError(f"kriging neighbours must be >= 0 (0 = all), not {neighbours!r}")
        self.n = n
        self.loo = n <= max_loo
        self.scheme = "loo" if self.loo else f"{K_FOLDS}-fold"
        rng = np.random.default_rng(seed)
        self.folds = np.arange(n) if self.loo else rng.permutation(n) % K_FOLDS
        n_train = n - 1 if self.loo else int(n - np.bincount(self.folds).max())
        if neighbours == 0 and not self.loo:
            neighbours = GLOBAL_KFOLD_NEIGHBOURS
        self.k = n_train if neighbours == 0 else min(int(neighbours), n_train)
        self.global_loo = self.loo and self.k == n - 1
        # the scored samples: all, or a seeded subset (Dubrule's form gives all at once)
        max_targets = MAX_TARGETS if max_targets is None else int(max_targets)
        if n <= max_targets or self.global_loo:
            self.targets = np.arange(n)
        else:
            self.targets = np.sort(rng.permutation(n)[:max_targets])
            self.scheme += f", {max_targets} of {n} samples"
        # rows of ``targets`` per round: the race's first round, then the rest
        m = self.targets.size
        if self.global_loo or m < 2 * RACE_TARGETS:
            self._parts = [np.arange(m)]
        else:
            first = np.sort(rng.permutation(m)[:RACE_TARGETS])
            self._parts = [first, np.setdiff1d(np.arange(m), first)]
        self.corners = bounding_corners(self.coords)
        # centring changes nothing (the constant is a drift term) but keeps sums well scaled
        self.z = self.values - float(np.mean(self.values))
        f = np.zeros((n, 0)) if drift is None else np.asarray(drift, dtype=float).reshape(n, -1)
        if not np.isfinite(f).all():
            raise InputDataError("external drift: a covariate is NULL or not finite somewhere")
        self.f = np.hstack([np.ones((n, 1)), f])  # the drift columns, constant first
        if self.k < self.f.shape[1] + 1:
            raise InputDataError(f"kriging with {f.shape[1]} drift term(s) needs at least "
                                 f"{f.shape[1] + 2} neighbours, not {self.k}")
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ neighbourhoods
    def _neighbourhoods(self, model, part: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model-free part of round ``part``, shared by every model with the same
        anisotropy: ``(nbr (m, k), pair_dist (m, k(k-1)/2), target_dist (m, k))``, the
        neighbours of each held-out sample, the reduced distances between them (upper
        triangle) and to the held-out sample."""
        key = (repr(model.anisotropy), part)
        if key in self._cache:
            return self._cache[key]
        red = model.reduce(self.coords)
        k, tg = self.k, self.targets[self._parts[part]]
        if self.loo:
            nbr = _loo_neighbours(red, k, tg)
        else:
            nbr = np.empty((tg.size, k), dtype=np.int64)
            fold_of = self.folds[tg]
            for f in np.unique(fold_of):
                rows = np.flatnonzero(fold_of == f)
                train = np.flatnonzero(self.folds != f)
                _, idx = cKDTree(red[train]).query(red[tg[rows]], k=k)
                nbr[rows] = train[np.asarray(idx).reshape(rows.size, k)]
        iu, ju = np.triu_indices(k, 1)
        pn = red[nbr]  # (m, k, d)
        pair_dist = np.sqrt(((pn[:, iu] - pn[:, ju]) ** 2).sum(-1))
        target_dist = np.sqrt(((pn - red[tg][:, None, :]) ** 2).sum(-1))
        self._cache[key] = (nbr, pair_dist, target_dist)
        return self._cache[key]

    # ------------------------------------------------------------------ scoring
    def predictions(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Cross-validation estimates and kriging variances at the scored samples
        (``targets``; all samples up to :data:`MAX_TARGETS`), in the units of ``values``."""
        err, var = self._errors(model)
        return self.values[self.targets] + err, var

    def _errors(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Errors and variances at every scored sample, in ``targets`` order."""
        if self.global_loo:
            return self._global_loo(model)
        err, var = np.empty(self.targets.size), np.empty(self.targets.size)
        for p, rows in enumerate(self._parts):
            err[rows], var[rows] = self._local(model, p)
        return err, var

    def __call__(self, model) -> CVScore:
        """Cross-validation RMSE and MSDR of kriging with ``model``."""
        return self._score(*self._errors(model), self.scheme)

    def race(self, models, eligible=None) -> list[CVScore]:
        """Scores of several models, raced (see module doc): every model is scored on the
        first round of samples; one significantly worse there than the best of the
        ``eligible`` ones (default: all) is dropped with that partial score
        (``complete=False``); the others are scored on every sample, as by ``self(model)``."""
        models = list(models)
        if len(self._parts) == 1 or len(models) < 2:
            return [self(m) for m in models]
        first = [self._local(m, 0) for m in models]
        sq = [np.where(np.isfinite(e), e * e, np.inf) for e, _ in first]
        mse = np.array([float(np.mean(s)) for s in sq])
        pool = [i for i in range(len(models)) if eligible is None or eligible[i]] \
            or list(range(len(models)))
        ref = min(pool, key=lambda i: mse[i])
        rows0 = self._parts[0]
        out = []
        for i, m in enumerate(models):
            d = sq[i] - sq[ref]
            worse = (i != ref and mse[i] > (1.0 + RACE_MARGIN) ** 2 * mse[ref]
                     and (not np.isfinite(d).all()
                          or d.mean() > RACE_Z * d.std(ddof=1) / np.sqrt(d.size)))
            if worse:
                out.append(self._score(*first[i], f"{self.scheme}, dropped after "
                                       f"{rows0.size} samples", complete=False))
                continue
            err, var = np.empty(self.targets.size), np.empty(self.targets.size)
            err[rows0], var[rows0] = first[i]
            for p in range(1, len(self._parts)):
                err[self._parts[p]], var[self._parts[p]] = self._local(m, p)
            out.append(self._score(err, var, self.scheme))
        return out

    @staticmethod
    def _score(err: np.ndarray, var: np.ndarray, scheme: str, complete: bool = True
               ) -> CVScore:
        ok = np.isfinite(err)
        rmse = float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else float("inf")
        pos = ok & (var > 1e-12 * max(float(np.nanmax(var)), 1e-300))
        msdr = float(np.mean(err[pos] ** 2 / var[pos])) if pos.any() else float("nan")
        return CVScore(rmse, msdr, scheme, int(err.size), complete)

    def _local(self, model, part: int) -> tuple[np.ndarray, np.ndarray]:
        nbr, pair_dist, target_dist = self._neighbourhoods(model, part)
        shift = covariance_shift(model, self.corners)
        cov_pairs = shift - _gamma(model, pair_dist)
        cov_target = shift - _gamma(model, target_dist)
        c0 = shift - float(model.gamma(np.zeros(1))[0])
        n, k = nbr.shape
        iu, ju = np.triu_indices(k, 1)
        diag = np.arange(k)
        q = self.f.shape[1]  # drift terms (1: ordinary kriging)
        tg = self.targets[self._parts[part]]
        z_t, f_t = self.z[tg], self.f[tg]
        err, var = np.empty(n), np.empty(n)
        chunk = max(16, min(CHUNK, int(2e7) // (k + q) ** 2))  # bounds the batch's memory
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            m = sl.stop - sl.start
            a = np.empty((m, k + q, k + q))
            a[:, iu, ju] = cov_pairs[sl]
            a[:, ju, iu] = cov_pairs[sl]
            a[:, diag, diag] = c0
            fn = self.f[nbr[sl]]  # (m, k, q)
            a[:, :k, k:] = fn
            a[:, k:, :k] = np.swapaxes(fn, 1, 2)
            a[:, k:, k:] = 0.0
            b = np.empty((m, k + q))
            b[:, :k] = cov_target[sl]
            b[:, k:] = f_t[sl]
            sol = _solve_batch(a, b)
            est = np.einsum("ij,ij->i", sol[:, :k], self.z[nbr[sl]])
            err[sl] = est - z_t[sl]
            var[sl] = np.maximum(shift - np.einsum("ij,ij->i", sol, b), 0.0)
        return err, var

    def _global_loo(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Dubrule's closed form: with ``Q`` the inverse of the bordered OK matrix and
        ``lam = Q [z; 0]``, the LOO error at sample i is ``-lam_i / Q_ii`` and the LOO
        kriging variance ``1 / Q_ii``."""
        red = model.reduce(self.coords)
        n, q = self.n, self.f.shape[1]
        shift = covariance_shift(model, self.corners)
        d = np.sqrt(((red[:, None, :] - red[None, :, :]) ** 2).sum(-1))
        a = np.zeros((n + q, n + q))
        a[:n, :n] = shift - model.gamma(d)
        a[:n, n:] = self.f
        a[n:, :n] = self.f.T
        try:
            q = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            q = np.linalg.pinv(a)
        lam = q[:n, :n] @ self.z
        qd = np.diag(q)[:n]
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(qd > 0, -lam / qd, np.nan)
            var = np.where(qd > 0, 1.0 / qd, np.nan)
        return err, var


#: Distances above which a Matérn semivariogram is evaluated by the compiled kernels' table
#: (:mod:`..variogram.matern_table`; the Bessel function costs about a microsecond per call).
MATERN_TABLE_ABOVE = 20000


def _gamma(model, d: np.ndarray) -> np.ndarray:
    """``model.gamma(d)``; with a Matérn structure and many distances, its Matérn part by the
    table the kriging kernels use (within 1e-12 of the sill of the exact value; zero
    distances stay exactly 0)."""
    if d.size <= MATERN_TABLE_ABOVE or not any(s.model == "mat" for s in model.structures):
        return model.gamma(d)
    from ..variogram.matern_table import matern_unit

    pos = d > 0
    out = np.zeros_like(d)
    for s in model.structures:
        if s.model == "mat":
            out[pos] += s.psill * matern_unit(d[pos] / s.range_, s.extra)
        else:
            out += s.gamma(d)
    return out


def _loo_neighbours(red: np.ndarray, k: int, targets: np.ndarray) -> np.ndarray:
    """The ``k`` nearest other samples of each target sample: one query of ``k + 1``
    neighbours, the sample's own index removed (the farthest one when coincident samples hide
    it)."""
    m = targets.size
    _, idx = cKDTree(red).query(red[targets], k=k + 1)
    idx = np.asarray(idx).reshape(m, k + 1)
    own = idx == targets[:, None]
    missing = ~own.any(axis=1)
    own[missing, k] = True
    return idx[~own].reshape(m, k)


def _solve_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve every system of the batch; singular ones (coincident samples without a nugget)
    by least squares, as the kriging fallback does with its pseudo-inverse."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty_like(b)
        for i in range(a.shape[0]):
            out[i] = np.linalg.lstsq(a[i], b[i], rcond=None)[0]
        return out
