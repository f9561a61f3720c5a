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
form of Dubrule (1983) on the inverse of the one global system. With ``drift`` columns the
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
#: Held-out samples scored by the K-fold scheme (a random subset; bounds time and memory).
MAX_TARGETS = 5000
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
    scheme: str  # "loo" or "10-fold"
    n: int


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
    """

    def __init__(self, coords: np.ndarray, values: np.ndarray, neighbours: int = 32, *,
                 max_loo: int = MAX_LOO, seed: int = 0, drift: np.ndarray | None = None) -> None:
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
        if self.loo:
            self.folds = np.arange(n)
            self.targets = np.arange(n)
        else:
            self.folds = rng.permutation(n) % K_FOLDS
            self.targets = np.sort(rng.permutation(n)[:MAX_TARGETS])
        n_train = n - 1 if self.loo else int(n - np.bincount(self.folds).max())
        if neighbours == 0 and not self.loo:
            neighbours = GLOBAL_KFOLD_NEIGHBOURS
        self.k = n_train if neighbours == 0 else min(int(neighbours), n_train)
        self.global_loo = self.loo and self.k == n - 1
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
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ neighbourhoods
    def _neighbourhoods(self, model) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The model-free part, shared by every model with the same anisotropy:
        ``(nbr (m, k), pair_dist (p,), tri_pairs (m, k(k-1)/2), target_pairs (m, k))``.

        Neighbourhoods of nearby samples overlap, so the sample pairs inside them (and
        between each held-out sample and its neighbours) repeat many times: each distinct
        pair's reduced distance is stored once (``pair_dist``) and the systems index it, so a
        candidate evaluates its semivariogram once per distinct pair.
        """
        key = repr(model.anisotropy)
        if key in self._cache:
            return self._cache[key]
        red = model.reduce(self.coords)
        k, tg, n = self.k, self.targets, self.n
        if self.loo:
            nbr = _loo_neighbours(red, k)
        else:
            nbr = np.empty((tg.size, k), dtype=np.int64)
            fold_of = self.folds[tg]
            for f in np.unique(fold_of):
                rows = np.flatnonzero(fold_of == f)
                train = np.flatnonzero(self.folds != f)
                _, idx = cKDTree(red[train]).query(red[tg[rows]], k=k)
                nbr[rows] = train[np.asarray(idx).reshape(rows.size, k)]
        iu, ju = np.triu_indices(k, 1)
        a, b = nbr[:, iu], nbr[:, ju]
        tri = np.minimum(a, b) * n + np.maximum(a, b)
        tgt = np.minimum(nbr, tg[:, None]) * n + np.maximum(nbr, tg[:, None])
        codes, inv = np.unique(np.concatenate([tri.ravel(), tgt.ravel()]), return_inverse=True)
        inv = inv.ravel().astype(np.int32 if codes.size < 2**31 - 1 else np.int64)
        lo, hi = codes // n, codes % n
        # the distinct pairs' distances, then 0 (the diagonal) as the last entry
        pair_dist = np.append(np.sqrt(((red[lo] - red[hi]) ** 2).sum(-1)), 0.0)
        split = tri.size
        # each system's (k, k) block as indices into pair_dist: one gather per candidate
        block = np.full((tg.size, k, k), codes.size, dtype=inv.dtype)
        block[:, iu, ju] = inv[:split].reshape(tri.shape)
        block[:, ju, iu] = block[:, iu, ju]
        self._cache[key] = (nbr, pair_dist, block, inv[split:].reshape(tgt.shape))
        return self._cache[key]

    # ------------------------------------------------------------------ scoring
    def predictions(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Cross-validation estimates and kriging variances at the scored samples
        (``targets``; all samples with leave-one-out), in the units of ``values``."""
        err, var = self._global_loo(model) if self.global_loo else self._local(model)
        return self.values[self.targets] + err, var

    def __call__(self, model) -> CVScore:
        """Cross-validation RMSE and MSDR of kriging with ``model``."""
        if self.global_loo:
            err, var = self._global_loo(model)
        else:
            err, var = self._local(model)
        ok = np.isfinite(err)
        rmse = float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else float("inf")
        pos = ok & (var > 1e-12 * max(float(np.nanmax(var)), 1e-300))
        msdr = float(np.mean(err[pos] ** 2 / var[pos])) if pos.any() else float("nan")
        return CVScore(rmse, msdr, self.scheme, int(err.size))

    def _local(self, model) -> tuple[np.ndarray, np.ndarray]:
        nbr, pair_dist, block, tgt = self._neighbourhoods(model)
        shift = covariance_shift(model, self.corners)
        cov = shift - model.gamma(pair_dist)  # once per distinct pair (last: gamma(0) = 0)
        n, k = nbr.shape
        q = self.f.shape[1]  # drift terms (1: ordinary kriging)
        z_t, f_t = self.z[self.targets], self.f[self.targets]
        err, var = np.empty(n), np.empty(n)
        for start in range(0, n, CHUNK):
            sl = slice(start, min(n, start + CHUNK))
            m = sl.stop - sl.start
            a = np.empty((m, k + q, k + q))
            a[:, :k, :k] = cov[block[sl]]
            fn = self.f[nbr[sl]]  # (m, k, q)
            a[:, :k, k:] = fn
            a[:, k:, :k] = np.swapaxes(fn, 1, 2)
            a[:, k:, k:] = 0.0
            b = np.empty((m, k + q))
            b[:, :k] = cov[tgt[sl]]
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


def _loo_neighbours(red: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest other samples of every sample: one query of ``k + 1`` neighbours,
    each sample's own index removed (the farthest one when coincident samples hide it)."""
    n = red.shape[0]
    _, idx = cKDTree(red).query(red, k=k + 1)
    idx = np.asarray(idx).reshape(n, k + 1)
    own = idx == np.arange(n)[:, None]
    missing = ~own.any(axis=1)
    own[missing, k] = True
    return idx[~own].reshape(n, k)


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
