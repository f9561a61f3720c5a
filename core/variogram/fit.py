"""Fitting variogram models to experimental variograms by weighted least squares.

The objective is ``sum_j w_j (gamma(h_j; theta) - gammahat_j)**2`` over the bins, with the
weights (:data:`WEIGHTS`):

* ``"npairs"``: ``w_j = N_j`` (gstat ``fit.method = 1``);
* ``"npairs_h2"`` (default): ``w_j = N_j / h_j**2`` (gstat ``fit.method = 7``);
* ``"cressie"``: ``w_j = N_j / gamma(h_j; theta)**2`` (gstat ``fit.method = 2``), re-weighted
  iteratively: the weights are computed from the previous solution until it settles.

It is solved with :func:`scipy.optimize.least_squares` (trust-region reflective) under bounds
that keep partial sills >= 0 and ranges > 0, from several start values derived from the data
(nugget: the first bins extrapolated to 0; sill: the mean of the last bins; ranges spread over
the cutoff); the best solution is kept. Any parameter can be held fixed (``fixed``). Several
candidate models are compared by weighted SSE or by kriging cross-validation computed by a
caller-supplied ``cv_score(model)`` (so that this module does not depend on kriging);
:func:`auto_variogram` supplies :class:`~gcnn_rnn.core.kriging.model_cv.CandidateCV` and selects
by cross-validation by default: the lowest CV RMSE, ties (within :data:`TIE_RTOL`) broken by
the mean squared deviation ratio closest to 1, then by SSE.

:func:`fit_anisotropy` fits one model to several directional variograms at once: shared
nugget, partial sills and shape, a major range, and the anisotropy azimuth and ratio (2D).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ..errors import InputDataError, UnknownModelError
from ..progress import StopFn, check_cancel
from .empirical import EmpiricalVariogram, directional_variograms, empirical_variogram
from .models import MODELS, Anisotropy, Structure, VariogramModel, model_class, parse_model

logger = logging.getLogger(__name__)

WEIGHTS = ("npairs", "npairs_h2", "cressie")
#: Selection rules: kriging cross-validation (``"loo"`` is its older name) or weighted SSE.
SELECT = ("cv", "sse", "loo")
DEFAULT_CANDIDATES = ("sph", "exp", "gau", "mat")
#: CV RMSEs within this relative distance of the lowest count as tied (then MSDR, then SSE).
TIE_RTOL = 0.005
_EXTRA_FIT_BOUNDS = {"mat": (0.05, 20.0), "ste": (0.05, 2.0), "pow": (0.01, 1.99)}
_RANGE_STARTS = (0.15, 0.35, 0.7, 1.0)  # fractions of the cutoff (practical range)


@dataclass(frozen=True)
class Candidate:
    """One model tried by :func:`fit_variogram`: weighted SSE and, when scored, its kriging
    cross-validation RMSE and mean squared deviation ratio (MSDR, ideally 1)."""

    model: VariogramModel
    sse: float
    loo_rmse: float | None = None  # the CV RMSE (kept under its first name for old callers)
    msdr: float | None = None
    cv_scheme: str | None = None
    cv_complete: bool = True  # False: dropped early by the race (a partial score; not chosen)

    @property
    def cv_rmse(self) -> float | None:
        """Cross-validation RMSE (None when not scored)."""
        return self.loo_rmse

    def to_dict(self) -> dict:
        """JSON-safe summary of one candidate."""
        cv, msdr = _finite(self.loo_rmse), _finite(self.msdr)
        return {"text": self.text, "model": self.model.structures[-1].model,
                "sse": _finite(self.sse), "cv_rmse": cv, "msdr": msdr,
                "cv_scheme": self.cv_scheme, "cv_complete": self.cv_complete, "loo_rmse": cv}

    @property
    def text(self) -> str:
        """The model's text form."""
        return self.model.to_text()


def _finite(v: float | None) -> float | None:
    """``v`` as a float, or None when missing or not finite (JSON has no NaN)."""
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass(frozen=True)
class FittedVariogram:
    """Result of a fit.

    Attributes
    ----------
    model : VariogramModel
        The selected fitted model.
    sse : float
        Its weighted sum of squared errors (gstat's ``SSErr`` for the same weights).
    method : str
        The weighting scheme (one of :data:`WEIGHTS`).
    candidates : tuple of Candidate
        Every model tried, in the order given.
    selected_by : str
        ``"sse"`` or ``"cv"``.
    """

    model: VariogramModel
    sse: float
    method: str
    candidates: tuple[Candidate, ...]
    selected_by: str = "sse"

    def to_dict(self) -> dict:
        """JSON-safe summary (the ``"fit"`` block of ``V.json``)."""
        chosen = self.selected_candidate
        return {
            "weights": self.method,
            "sse": self.sse,
            "selected_by": self.selected_by,
            "selected": None if chosen is None else chosen.text,
            "candidates": [c.to_dict() for c in self.candidates],
        }

    @property
    def selected_candidate(self) -> Candidate | None:
        """The candidate the model came from (None after a later refit, e.g. anisotropy)."""
        for c in self.candidates:
            if c.model == self.model:
                return c
        return None

    def summary(self) -> str:
        """One line per candidate (for logs and reports): SSE, CV RMSE, MSDR, the winner."""
        lines = []
        chosen = self.selected_candidate
        for c in self.candidates:
            cv = ("" if c.loo_rmse is None
                  else f", CV RMSE {c.loo_rmse:.5g} ({c.cv_scheme}), MSDR {c.msdr:.3g}")
            mark = "  <- selected" if c is chosen else ""
            lines.append(f"  {c.model.to_text(4)}: SSE {c.sse:.4g}{cv}{mark}")
        return "\n".join(lines)


def _weights(kind: str, ev_n: np.ndarray, ev_h: np.ndarray, model_g: np.ndarray | None):
    if kind == "npairs":
        return ev_n.astype(float)
    if kind == "npairs_h2":
        h = np.maximum(ev_h, 1e-12 * max(float(ev_h.max()), 1.0))
        return ev_n / (h * h)
    if kind == "cressie":
        if model_g is None:
            return ev_n.astype(float)
        g = np.maximum(model_g, 1e-12 * max(float(np.max(model_g)), 1e-300))
        return ev_n / (g * g)
    raise UnknownModelError(f"unknown fit weights {kind!r}; known: {', '.join(WEIGHTS)}")


# --- parameter vector <-> model ---------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    index: int  # structure index, -1 for anisotropy
    name: str  # psill | range | extra | azimuth | ratio
    lower: float
    upper: float


def _free_params(
    template: VariogramModel, fixed: frozenset[str], cutoff: float, fit_extra: bool
) -> list[_Param]:
    out = []
    for i, s in enumerate(template.structures):
        cls = s.model_class
        tags = {"nugget"} if cls.name == "nug" else {"psill"}
        if f"psill{i}" not in fixed and not tags & fixed:
            out.append(_Param(i, "psill", 0.0, math.inf))
        if cls.needs_range and cls.name != "pow" and not {"range", f"range{i}"} & fixed:
            out.append(_Param(i, "range", cutoff * 1e-4, cutoff * 100.0))
        if cls.extra_name and fit_extra and not {"extra", f"extra{i}"} & fixed:
            lo, hi = _EXTRA_FIT_BOUNDS.get(cls.name, cls.extra_bounds)
            out.append(_Param(i, "extra", lo, hi))
    return out


def _build(template: VariogramModel, params: list[_Param], x: np.ndarray) -> VariogramModel:
    values = {(p.index, p.name): float(v) for p, v in zip(params, x)}
    structs = []
    for i, s in enumerate(template.structures):
        structs.append(
            Structure(
                s.model,
                values.get((i, "psill"), s.psill),
                values.get((i, "range"), s.range_),
                values.get((i, "extra"), s.extra),
            )
        )
    anis = template.anisotropy
    if (-1, "azimuth") in values:
        az = values[(-1, "azimuth")] % 180.0
        anis = Anisotropy(azimuth=az, ratio=min(max(values[(-1, "ratio")], 1e-6), 1.0))
    return VariogramModel(tuple(structs), anis)


def _clip_start(x: np.ndarray, params: list[_Param]) -> np.ndarray:
    lo = np.array([p.lower for p in params])
    hi = np.array([p.upper for p in params])
    span = np.where(np.isfinite(hi), hi - lo, np.maximum(np.abs(lo), 1.0))
    return np.clip(x, lo + 1e-9 * span, np.where(np.isfinite(hi), hi - 1e-9 * span, np.inf))


# --- the least-squares core -------------------------------------------------------------------


def _solve(
    template: VariogramModel,
    params: list[_Param],
    x0: np.ndarray,
    gamma_fn: Callable[[VariogramModel], np.ndarray],
    gamma_hat: np.ndarray,
    npairs: np.ndarray,
    lags: np.ndarray,
    weights: str,
) -> tuple[VariogramModel, float]:
    """Minimise the weighted SSE from ``x0``; return the model and its weighted SSE."""
    scale = max(float(np.max(np.abs(gamma_hat))), 1e-300)
    w = _weights(weights, npairs, lags, None)
    n_rounds = 12 if weights == "cressie" else 1
    x = _clip_start(np.asarray(x0, dtype=float), params)
    model = _build(template, params, x)
    for _ in range(n_rounds):
        sw = np.sqrt(w / w.mean())

        def resid(xv: np.ndarray, sw=sw) -> np.ndarray:
            return sw * (gamma_fn(_build(template, params, xv)) - gamma_hat) / scale

        if params:
            sol = least_squares(
                resid,
                x,
                bounds=([p.lower for p in params], [p.upper for p in params]),
                x_scale="jac",
                method="trf",
                max_nfev=400 * (len(params) + 1),
            )
            x_new = sol.x
        else:
            x_new = x
        model = _build(template, params, x_new)
        converged = np.allclose(x_new, x, rtol=1e-7, atol=0.0)
        x = x_new
        if weights != "cressie":
            break
        w = _weights(weights, npairs, lags, gamma_fn(model))
        if converged:
            break
    final_w = _weights(weights, npairs, lags, gamma_fn(model))
    sse = float(np.sum(final_w * (gamma_fn(model) - gamma_hat) ** 2))
    return model, sse


def _practical_factor(s: Structure) -> float:
    """``range_ / practical range`` of a unit structure (for start values)."""
    return {"exp": 1 / 3, "gau": 1 / math.sqrt(3), "mat": 1 / 4, "hol": 1 / 4}.get(s.model, 1.0)


def _starts(template: VariogramModel, params: list[_Param], ev: EmpiricalVariogram) -> list:
    """Start vectors: data-derived sills, ranges spread over the cutoff; plus the template."""
    g, h = ev.gamma, ev.lags
    if len(g) >= 2 and h[1] > h[0]:
        nug0 = g[0] - (g[1] - g[0]) * h[0] / (h[1] - h[0])
    else:
        nug0 = 0.5 * g[0]
    nug0 = float(np.clip(nug0, 0.0, g[0]))
    sill0 = float(np.mean(g[-3:]))
    structs = template.structures
    n_struct = max(1, sum(1 for s in structs if s.model != "nug"))
    part = max(sill0 - (nug0 if any(s.model == "nug" for s in structs) else 0.0), 1e-3 * sill0)
    starts = []
    for frac in _RANGE_STARTS:
        x = []
        for p in params:
            s = structs[p.index]
            k = sum(1 for t in structs[: p.index] if t.model != "nug")  # rank among structures
            if p.name == "psill":
                if s.model == "nug":
                    x.append(nug0)
                elif s.model == "pow":
                    alpha = s.extra or 1.0
                    x.append(part / max(h[-1], 1e-12) ** alpha)
                else:
                    x.append(part / n_struct)
            elif p.name == "range":
                spread = frac * (k + 1) / n_struct
                x.append(spread * ev.cutoff * _practical_factor(s))
            elif p.name == "extra":
                x.append(s.extra)
        starts.append(np.array(x, dtype=float))
    starts.append(np.array([_template_value(template, p) for p in params], dtype=float))
    return starts


def _template_value(template: VariogramModel, p: _Param) -> float:
    s = template.structures[p.index]
    return {"psill": s.psill, "range": s.range_, "extra": s.extra}[p.name]


# --- public API -------------------------------------------------------------------------------


def make_template(model: str | VariogramModel, nugget: bool, ev: EmpiricalVariogram):
    """A start model: a name gives ``Nug + Name`` with placeholder values; text is parsed."""
    if isinstance(model, VariogramModel):
        return model
    text = str(model).strip()
    if any(ch in text for ch in "(+ ") or text[:1].isdigit():
        return parse_model(text)
    cls = model_class(text)
    if cls.name == "err":
        raise InputDataError(
            "a measurement error (Err) cannot be fitted to a variogram: it looks exactly like "
            "the nugget; fit a model, then split its nugget by what you know of the "
            "measurement error, e.g. '0.02 Err + 0.03 Nug + 0.59 Sph(897)'"
        )
    structs = [Structure("nug", 0.0)] if nugget and cls.name != "nug" else []
    structs.append(Structure(cls.name, 1.0, 1.0 if cls.name == "pow" else ev.cutoff / 3.0))
    return VariogramModel(tuple(structs))


def fit_model(
    ev: EmpiricalVariogram,
    model: str | VariogramModel = "sph",
    *,
    nugget: bool = True,
    weights: str = "npairs_h2",
    fixed: Iterable[str] = (),
    fit_extra: bool = True,
) -> Candidate:
    """Fit one model (see :func:`fit_variogram`) and return it with its weighted SSE."""
    if weights not in WEIGHTS:
        raise UnknownModelError(f"unknown fit weights {weights!r}; known: {', '.join(WEIGHTS)}")
    if ev.n_bins == 0:
        raise InputDataError("the experimental variogram has no pairs: nothing to fit")
    if not np.any(ev.gamma > 0):
        raise InputDataError("the experimental variogram is 0 everywhere (constant values)")
    fixed_set = frozenset(str(f).strip().lower() for f in fixed)
    template = make_template(model, nugget, ev)
    params = _free_params(template, fixed_set, ev.cutoff, fit_extra)
    best: tuple[VariogramModel, float] | None = None
    for x0 in _starts(template, params, ev):
        try:
            fitted, sse = _solve(
                template,
                params,
                x0,
                lambda m: m.gamma(ev.lags),
                ev.gamma,
                ev.npairs,
                ev.lags,
                weights,
            )
        except (InputDataError, ValueError, FloatingPointError) as exc:  # pragma: no cover
            logger.debug("fit start %r failed: %s", x0, exc)
            continue
        if best is None or sse < best[1]:
            best = (fitted, sse)
    if best is None:  # pragma: no cover - every start failed
        raise InputDataError(f"could not fit the variogram model {template.to_text()!r}")
    for p in params:
        value = _template_value(best[0], p)
        if p.name == "range" and value >= 0.99 * p.upper:
            logger.warning("fitted range %r of %r is at its bound", value, best[0].to_text())
    return Candidate(best[0], best[1])


def fit_variogram(
    ev: EmpiricalVariogram,
    models: str | VariogramModel | Sequence[str | VariogramModel] = DEFAULT_CANDIDATES,
    *,
    nugget: bool = True,
    weights: str = "npairs_h2",
    fixed: Iterable[str] = (),
    fit_extra: bool = True,
    select: str = "sse",
    loo_rmse: Callable[[VariogramModel], float] | None = None,
    cv_score: Callable[[VariogramModel], object] | None = None,
) -> FittedVariogram:
    """Fit one or several candidate models and keep the best.

    Parameters
    ----------
    ev : EmpiricalVariogram
        The experimental variogram.
    models : str, VariogramModel or sequence of them
        Candidates: a registry name (``"sph"`` -> nugget + spherical), a text form whose
        values are used as one more start (``"0.05 Nug + 0.6 Sph(900) + 0.2 Exp(100)"`` for a
        nested model) or a :class:`VariogramModel`.
    nugget : bool
        Add a nugget to models given by name (default True).
    weights : {"npairs", "npairs_h2", "cressie"}
        Weighting scheme (default ``npairs_h2``, gstat's default).
    fixed : iterable of str
        Parameters held at the template's values: ``"nugget"``, ``"psill"``, ``"range"``,
        ``"extra"`` (all structures) or indexed by structure, e.g. ``"range1"``.
    fit_extra : bool
        Also fit the shape parameters (``nu``, ``alpha``); default True.
    select : {"sse", "cv", "loo"}
        Choose by weighted SSE, or by cross-validation (``"loo"`` is the same): the lowest
        CV RMSE, then MSDR closest to 1, then SSE (``cv_score`` or ``loo_rmse`` required).
    loo_rmse : callable, optional
        Cross-validation RMSE of a model, supplied by the caller (e.g. the kriging module).
    cv_score : callable, optional
        ``cv_score(model)`` returning an object with ``rmse``, ``msdr`` and ``scheme`` (a
        :class:`~gcnn_rnn.core.kriging.model_cv.CVScore`); preferred over ``loo_rmse``.

    Returns
    -------
    FittedVariogram

    Raises
    ------
    InputDataError
        Empty variogram, ``select="loo"`` without ``loo_rmse``, bad settings.
    UnknownModelError
        Unknown model name, weights or selection rule.
    """
    if select not in SELECT:
        raise UnknownModelError(f"unknown selection rule {select!r}; known: {', '.join(SELECT)}")
    if select == "loo":
        select = "cv"
    if select == "cv" and loo_rmse is None and cv_score is None:
        raise InputDataError("select='cv' needs a cv_score(model) callable")
    if isinstance(models, str | VariogramModel):
        models = [models]
    if not models:
        raise InputDataError("no candidate variogram models given")
    candidates = []
    for m in models:
        cand = fit_model(ev, m, nugget=nugget, weights=weights, fixed=fixed, fit_extra=fit_extra)
        logger.debug("fitted %s (sse %.6g)", cand.text, cand.sse)
        candidates.append(cand)
    if select == "cv":
        candidates = score_all(candidates, cv_score, loo_rmse)
    best = choose(candidates, select)
    return FittedVariogram(best.model, best.sse, weights, tuple(candidates), select)


def scored(cand: Candidate, cv_score=None, loo_rmse=None) -> Candidate:
    """``cand`` with its cross-validation RMSE and MSDR."""
    if cv_score is not None:
        return _with_score(cand, cv_score(cand.model))
    return Candidate(cand.model, cand.sse, float(loo_rmse(cand.model)), math.nan, "loo")


def _with_score(cand: Candidate, s) -> Candidate:
    return Candidate(cand.model, cand.sse, float(s.rmse), float(s.msdr), str(s.scheme),
                     bool(getattr(s, "complete", True)))


def score_all(candidates: Sequence[Candidate], cv_score=None, loo_rmse=None) -> list[Candidate]:
    """Every candidate with its cross-validation score. A scorer with a ``race`` method
    (:meth:`~gcnn_rnn.core.kriging.model_cv.CandidateCV.race`) scores them together and may
    drop the clearly worse ones early; a Gaussian-like model without nugget, which
    :func:`choose` passes over, never serves as the yardstick for dropping the others."""
    race = getattr(cv_score, "race", None)
    if race is None or len(candidates) < 2:
        return [scored(c, cv_score, loo_rmse) for c in candidates]
    scores = race([c.model for c in candidates],
                  eligible=[not smooth_without_nugget(c.model) for c in candidates])
    return [_with_score(c, s) for c, s in zip(candidates, scores, strict=True)]


def _cv_key(c: Candidate) -> float:
    return c.loo_rmse if c.loo_rmse is not None and math.isfinite(c.loo_rmse) else math.inf


def choose(candidates: Sequence[Candidate], select: str) -> Candidate:
    """The selected candidate: lowest SSE, or lowest CV RMSE with ties (within
    :data:`TIE_RTOL`) broken by the MSDR closest to 1, then by SSE. A Gaussian-like model
    without nugget (:func:`smooth_without_nugget`) is passed over when another exists."""
    if select == "sse":
        pick = lambda pool: min(pool, key=lambda c: c.sse)  # noqa: E731
    else:
        # a candidate dropped early by the race holds a partial score: never the choice
        candidates = [c for c in candidates if c.cv_complete] or list(candidates)
        def pick(pool):
            low = min(_cv_key(c) for c in pool)
            tied = [c for c in pool if _cv_key(c) <= low * (1.0 + TIE_RTOL)] or list(pool)

            def msdr_gap(c: Candidate) -> float:
                return abs(math.log(c.msdr)) if c.msdr and math.isfinite(c.msdr) and c.msdr > 0 \
                    else math.inf
            return min(tied, key=lambda c: (msdr_gap(c), c.sse))
    best = pick(candidates)
    stable = [c for c in candidates if not smooth_without_nugget(c.model)]
    if smooth_without_nugget(best.model):
        if stable:
            alt = pick(stable)
            logger.warning(
                "variogram: the best-fitting candidate %s is a very smooth model (Gaussian-like) "
                "with a nugget under %g %% of the sill, which makes kriging numerically unstable "
                "(weights far outside [0, 1], wild estimates); using the next best, %s",
                best.model.to_text(4), 100 * MIN_SMOOTH_NUGGET, alt.model.to_text(4))
            best = alt
        else:
            logger.warning(
                "variogram: %s is a very smooth model (Gaussian-like) with a nugget under %g %% "
                "of the sill; kriging with it is numerically unstable (wild estimates). Add a "
                "nugget or use another model.", best.model.to_text(4), 100 * MIN_SMOOTH_NUGGET)
    return best


#: Nugget share of the sill below which a Gaussian-like model is refused by the selection.
MIN_SMOOTH_NUGGET = 0.01


def smooth_without_nugget(model: VariogramModel) -> bool:
    """A Gaussian-like (infinitely or very smooth) model with a nugget under
    :data:`MIN_SMOOTH_NUGGET` of the sill.

    Kriging with such a model solves nearly singular systems: the weights oscillate far
    outside [0, 1] and the estimates explode away from the samples (well known for the Gaussian
    model; also the stable model with alpha near 2 and the Matérn with large nu). The
    candidate selection of :func:`fit_variogram` skips them when another candidate exists.
    """
    if not model.bounded or model.sill <= 0:
        return False
    smooth = any(
        s.model == "gau"
        or (s.model == "ste" and s.extra is not None and s.extra >= 1.9)
        or (s.model == "mat" and s.extra is not None and s.extra >= 5.0)
        for s in model.structures
    )
    return smooth and model.nugget < MIN_SMOOTH_NUGGET * model.sill


def fit_anisotropy(
    directional: Sequence[EmpiricalVariogram],
    model: str | VariogramModel = "sph",
    *,
    nugget: bool = True,
    weights: str = "npairs_h2",
    fit_extra: bool = False,
) -> FittedVariogram:
    """Fit a 2D geometric anisotropy to directional variograms with shared sills.

    For a bin at lag ``h`` of the variogram in direction ``phi`` the model value is the
    isotropic model at the reduced distance
    ``h * sqrt(cos(phi - theta)**2 + sin(phi - theta)**2 / r**2)``, where ``theta`` (azimuth
    of the major axis) and ``r`` (minor/major ratio) are fitted with the nugget, partial sills
    and major range. Starts from every given direction as the major axis; keeps the best.

    Raises
    ------
    InputDataError
        Fewer than two directional variograms, or an omnidirectional one among them.
    """
    dirs = [ev for ev in directional if ev.n_bins > 0]
    if len(dirs) < 2 or any(ev.direction is None for ev in dirs):
        raise InputDataError("anisotropy needs at least two directional variograms with pairs")
    iso = fit_model(dirs[0], model, nugget=nugget, weights=weights, fit_extra=fit_extra)
    template = iso.model
    fixed = frozenset() if fit_extra else frozenset({"extra"})
    cutoff = max(ev.cutoff for ev in dirs)
    base = _free_params(template, fixed, cutoff, fit_extra)
    lags = np.concatenate([ev.lags for ev in dirs])
    gamma_hat = np.concatenate([ev.gamma for ev in dirs])
    npairs = np.concatenate([ev.npairs for ev in dirs])
    phis = np.radians(np.concatenate([np.full(ev.n_bins, float(ev.direction)) for ev in dirs]))

    def gamma_fn(m: VariogramModel) -> np.ndarray:
        a = m.anisotropy
        t = np.radians(a.azimuth)
        stretch = np.sqrt(np.cos(phis - t) ** 2 + (np.sin(phis - t) / a.ratio) ** 2)
        return m.replace(anisotropy=None).gamma(lags * stretch)

    best: tuple[VariogramModel, float] | None = None
    for ev in dirs:
        theta0 = float(ev.direction)
        params = [
            *base,
            _Param(-1, "azimuth", theta0 - 90.0, theta0 + 90.0),
            _Param(-1, "ratio", 0.02, 1.0),
        ]
        tmpl = template.replace(anisotropy=Anisotropy(theta0 % 180.0, 0.5))
        x_iso = [_template_value(template, p) for p in base]
        for ratio0 in (0.4, 0.8):
            x0 = np.array([*x_iso, theta0, ratio0])
            fitted, sse = _solve(tmpl, params, x0, gamma_fn, gamma_hat, npairs, lags, weights)
            if best is None or sse < best[1]:
                best = (fitted, sse)
    cand = Candidate(best[0], best[1])
    return FittedVariogram(best[0], best[1], weights, (cand,), "sse")


def auto_variogram(
    coords: np.ndarray,
    values: np.ndarray,
    models: Sequence[str | VariogramModel] = DEFAULT_CANDIDATES,
    *,
    nugget: bool = True,
    weights: str = "npairs_h2",
    select: str = "cv",
    neighbours: int = 32,
    should_stop: StopFn | None = None,
    **empirical: object,
) -> FittedVariogram:
    """The ``"auto"`` variogram: gstat-default experimental variogram, every candidate fitted
    by :func:`fit_variogram`, the one with the lowest kriging cross-validation RMSE kept.

    ``select="cv"`` (default) scores each fitted candidate by ordinary kriging
    cross-validation of ``values`` with ``neighbours`` (0 = global), leave-one-out up to a
    few thousand samples and K-fold above (:class:`~gcnn_rnn.core.kriging.model_cv.
    CandidateCV`, which shares the neighbour search among the candidates); ``"sse"`` keeps
    the lowest weighted SSE. Everything uses ``coords``/``values`` only: inside a CV fold the
    caller passes the training part, and the selection sees nothing else.

    3D data (and no ``empirical`` settings) get a horizontal model with a fitted vertical
    range ratio instead (:func:`fit_vertical_anisotropy`) when there are enough horizontal and
    vertical pairs.

    ``empirical`` goes to :func:`.empirical.empirical_variogram` (``cutoff``, ``width``,
    ``estimator``, ...). ``should_stop`` is polled during the pair pass and before each
    candidate's cross-validation (:class:`~gcnn_rnn.core.errors.Cancelled`).
    """
    coords = np.asarray(coords, dtype=float)
    check_cancel(should_stop)
    cv_score = _cv_scorer(coords, values, neighbours) if select in ("cv", "loo") else None
    if cv_score is not None and should_stop is not None:
        scorer = cv_score

        def cv_score(model):
            check_cancel(should_stop)
            return scorer(model)
    if coords.ndim == 2 and coords.shape[1] == 3 and not empirical:
        fitted = fit_vertical_anisotropy(coords, values, models, nugget=nugget, weights=weights,
                                         cv_score=cv_score)
        if fitted is not None:
            return fitted
    ev = empirical_variogram(coords, values, should_stop=should_stop, **empirical)
    fitted = fit_variogram(ev, models, nugget=nugget, weights=weights, select=select,
                           cv_score=cv_score)
    if len(fitted.candidates) > 1:
        logger.info("variogram candidates (selected by %s):\n%s", fitted.selected_by,
                    fitted.summary())
    return fitted


def _cv_scorer(coords: np.ndarray, values: np.ndarray, neighbours: int):
    from ..kriging.model_cv import CandidateCV  # kriging depends on variogram, not back

    return CandidateCV(coords, values, neighbours)


#: Azimuths (degrees) of the horizontal cones pooled into the horizontal 3D variogram.
_HORIZONTAL_AZIMUTHS = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)
#: Angular tolerance (degrees) of the horizontal and vertical 3D cones.
_CONE_TOLERANCE = 22.5
#: Fewest bins, each with this many pairs, that a 3D direction needs to be fitted.
_MIN_BINS, _MIN_PAIRS = 3, 10


def _pool(evs: Sequence[EmpiricalVariogram]) -> EmpiricalVariogram:
    """Pool directional variograms that share cutoff and width (pair-weighted per bin)."""
    first = evs[0]
    n_bins = max(1, int(round(first.cutoff / first.width)))
    sd, sg, sn = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for ev in evs:
        # bins are (lo, hi]: a bin whose pairs all lie on its upper edge has lag == hi
        b = np.clip(np.ceil(ev.lags / ev.width).astype(np.int64) - 1, 0, n_bins - 1)
        np.add.at(sd, b, ev.lags * ev.npairs)
        np.add.at(sg, b, ev.gamma * ev.npairs)
        np.add.at(sn, b, ev.npairs)
    keep = sn > 0
    return EmpiricalVariogram(sd[keep] / sn[keep], sg[keep] / sn[keep],
                              sn[keep].astype(np.int64), None, first.tolerance, first.estimator,
                              first.cutoff, first.width, None, None)


def _enough(ev: EmpiricalVariogram) -> bool:
    return int((ev.npairs >= _MIN_PAIRS).sum()) >= _MIN_BINS


def fit_vertical_anisotropy(
    coords: np.ndarray,
    values: np.ndarray,
    models: Sequence[str | VariogramModel] = DEFAULT_CANDIDATES,
    *,
    nugget: bool = True,
    weights: str = "npairs_h2",
    cv_score: Callable[[VariogramModel], object] | None = None,
) -> FittedVariogram | None:
    """3D ``auto``: a horizontal model with a fitted vertical range ratio.

    Drill holes and layered deposits are sampled densely down the hole and sparsely across,
    and their vertical continuity is usually much shorter than the horizontal one. An
    omnidirectional 3D variogram mixes the two: its short lags are down-hole pairs, so it
    rises at once and the fit degenerates (a pure nugget on layered data, i.e. a flat map).
    Here the candidates are fitted to the *horizontal* variogram (pairs within 22.5° of the
    horizontal, pooled over six azimuths), then the vertical/horizontal range ratio
    (``Anisotropy.ratio_vertical``) is fitted to the *vertical* variogram (pairs within 22.5°
    of the vertical, cutoff half the vertical extent) with the same weights, holding the
    horizontal model. Horizontal anisotropy is not fitted (use directional variograms).

    With ``cv_score`` every candidate gets its own vertical ratio and the 3D models are
    compared by cross-validation (:func:`choose`); without it the lowest horizontal SSE wins.

    Returns
    -------
    FittedVariogram or None
        None when either direction has fewer than 3 bins of 10 pairs (the caller falls back
        to the omnidirectional fit). A fitted ratio above 0.95 gives the isotropic model.
    """
    c = np.asarray(coords, dtype=float)
    v = np.asarray(values, dtype=float)
    z_extent = float(np.ptp(c[:, 2]))
    if z_extent <= 0:
        return None
    # the six horizontal cones from one pass over the pairs (the vertical one has its own
    # cutoff: a second pass)
    horizontal = _pool(directional_variograms(c, v, _HORIZONTAL_AZIMUTHS, dip=0.0,
                                              tolerance=_CONE_TOLERANCE))
    vertical = empirical_variogram(c, v, direction=0.0, dip=90.0, tolerance=_CONE_TOLERANCE,
                                   cutoff=z_extent / 2.0)
    if not (_enough(horizontal) and _enough(vertical)):
        logger.info("3D variogram: too few horizontal or vertical pairs for a vertical "
                    "anisotropy; fitting the omnidirectional variogram")
        return None
    fitted = fit_variogram(horizontal, models, nugget=nugget, weights=weights)
    if cv_score is None:
        model, sse_v = _with_vertical_ratio(fitted.model, vertical, weights)
        return FittedVariogram(model, fitted.sse + sse_v, fitted.method, fitted.candidates,
                               fitted.selected_by)
    cands = []
    for cand in fitted.candidates:
        model, sse_v = _with_vertical_ratio(cand.model, vertical, weights)
        cands.append(Candidate(model, cand.sse + sse_v))
    cands = score_all(cands, cv_score)
    best = choose(cands, "cv")
    fv = FittedVariogram(best.model, best.sse, fitted.method, tuple(cands), "cv")
    logger.info("3D variogram candidates (selected by cv):\n%s", fv.summary())
    return fv


def _with_vertical_ratio(base: VariogramModel, vertical: EmpiricalVariogram,
                         weights: str) -> tuple[VariogramModel, float]:
    """``base`` with the vertical range ratio that best fits ``vertical``; its weighted SSE."""
    from scipy.optimize import minimize_scalar

    def sse(log_ratio: float) -> float:
        g = base.gamma(vertical.lags / math.exp(log_ratio))
        w = _weights(weights, vertical.npairs, vertical.lags, g)
        return float((w * (g - vertical.gamma) ** 2).sum())

    grid = np.linspace(math.log(1e-3), 0.0, 61)
    start = int(np.argmin([sse(x) for x in grid]))
    lo, hi = grid[max(start - 1, 0)], grid[min(start + 1, len(grid) - 1)]
    best = minimize_scalar(sse, bounds=(lo, hi), method="bounded") if hi > lo else None
    log_r = float(best.x) if best is not None and best.fun <= sse(grid[start]) else grid[start]
    ratio = min(math.exp(log_r), 1.0)
    model = base if ratio > 0.95 else base.replace(
        anisotropy=Anisotropy(azimuth=0.0, ratio=1.0, dip=0.0, plunge=0.0,
                              ratio_vertical=ratio))
    logger.info("3D variogram: horizontal %s, vertical range ratio %.4g (%d vertical bins)",
                base.to_text(4), ratio, vertical.n_bins)
    return model, sse(log_r)


def known_models() -> list[str]:
    """Names usable as candidates (all of :data:`MODELS` but the pure nugget)."""
    return [name for name in MODELS if name != "nug"]
