"""Variogram models, nested sums of them and geometric anisotropy.

Every elementary model is one small class registered in :data:`MODELS` under a short,
gstat-like name. A class gives the *unit-sill* semivariogram ``gamma_unit(h, range_, extra)``
for ``h > 0``; :class:`VariogramModel` sums ``psill * gamma_unit`` over its structures and
sets ``gamma(0) = 0`` exactly (gstat semantics: the nugget jumps in for any ``h > 0``).

Range conventions follow gstat's ``vgm()`` (``a`` is ``range_``, ``x = h / a``):

========  ===========================================  ========================================
name      unit semivariogram for ``h > 0``              notes
========  ===========================================  ========================================
``nug``   ``1``                                          no range
``sph``   ``1.5 x - 0.5 x**3`` (``x < 1``), else ``1``   sill reached at ``h = a``
``exp``   ``1 - exp(-x)``                                practical range ``3 a``
``gau``   ``1 - exp(-x**2)``                             practical range ``sqrt(3) a``
``mat``   ``1 - x**nu K_nu(x) / (2**(nu-1) Gamma(nu))``  gstat ``Mat``, extra = ``nu`` (kappa)
``ste``   ``1 - exp(-x**alpha)``                         stable (gstat ``Exc``), extra = alpha
``cub``   ``7x²-8.75x³+3.5x⁵-0.75x⁷`` (``x<1``), else 1  GSLIB/Chilès–Delfiner cubic (not in gstat)
``lin``   ``x`` (``x < 1``), else ``1``                  linear with sill (gstat ``Lin(a>0)``)
``pow``   ``x**alpha``                                   unbounded; ``a`` is a scale (default 1)
``hol``   ``1 - sin(x) / x``                             hole effect (gstat ``Hol``)
========  ===========================================  ========================================

Note that ``ste`` is the *stable* model here (gstat calls it ``Exc``; gstat's own ``Ste`` is
Stein's Matérn, not provided). ``Exc`` is accepted as an alias when parsing.

Geometric anisotropy (:class:`~.anisotropy.Anisotropy`, re-exported here) is shared by all
structures of a model. It maps an offset (or, being linear, a coordinate) to a reduced space
where the Euclidean norm is the isotropic-equivalent distance measured in units of the *major*
range, so ``range_`` is always the major range.

The text form and dictionaries are handled in :mod:`.serialise`; :meth:`VariogramModel.to_text`
and :func:`parse_model` are re-exported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.special import gammaln, kve

from ..errors import InputDataError, UnknownModelError
from .anisotropy import Anisotropy, finite_number

logger = logging.getLogger(__name__)

MODELS: dict[str, type[BaseModel]] = {}
"""Registry of elementary models by short name (``"sph"``, ``"exp"``, ...)."""

ALIASES: dict[str, str] = {}
"""Other accepted spellings (long names, gstat ``exc``) mapped to the short name."""


def register(cls: type[BaseModel]) -> type[BaseModel]:
    """Class decorator adding a model to :data:`MODELS` (and its long name to the aliases)."""
    if cls.name in MODELS or any(m.code == cls.code for m in MODELS.values()):
        raise ValueError(f"duplicate variogram model {cls.name!r} / code {cls.code}")
    MODELS[cls.name] = cls
    ALIASES[cls.long_name.lower()] = cls.name
    return cls


def model_class(name: str) -> type[BaseModel]:
    """Return the model class registered under ``name`` (case-insensitive, aliases allowed).

    Raises
    ------
    UnknownModelError
        If the name is not known; the message lists :data:`MODELS`.
    """
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in MODELS:
        raise UnknownModelError(
            f"unknown variogram model {name!r}; known models: {', '.join(MODELS)}"
        )
    return MODELS[key]


class BaseModel:
    """Base of the elementary models: class attributes plus ``gamma_unit``.

    Attributes
    ----------
    name : str
        Short registry name (lower case).
    long_name : str
        Human-readable name.
    code : int
        Integer id used by the numba kernels (:mod:`.kernels`).
    bounded : bool
        True when the model has a finite sill.
    monotone : bool
        True when ``gamma_unit`` never decreases.
    extra_name : str or None
        Name of the shape parameter (``"nu"``, ``"alpha"``) or None.
    default_extra : float or None
        Default shape parameter.
    extra_bounds : tuple of float
        Admissible open/closed interval of the shape parameter (for validation and fitting).
    max_dim : int
        Highest dimension in which the model is a valid (conditionally) negative definite
        function of Euclidean distance.
    """

    name: ClassVar[str] = ""
    long_name: ClassVar[str] = ""
    code: ClassVar[int] = -1
    bounded: ClassVar[bool] = True
    monotone: ClassVar[bool] = True
    extra_name: ClassVar[str | None] = None
    default_extra: ClassVar[float | None] = None
    extra_bounds: ClassVar[tuple[float, float]] = (0.0, 0.0)
    needs_range: ClassVar[bool] = True
    max_dim: ClassVar[int] = 3

    @staticmethod
    def gamma_unit(h: np.ndarray, range_: float, extra: float | None) -> np.ndarray:
        """Unit-sill semivariogram at distances ``h > 0`` (arrays of any shape)."""
        raise NotImplementedError

    @classmethod
    def bounds(cls) -> dict[str, tuple[float, float]]:
        """Admissible ``(low, high)`` of each parameter (``extra`` only for shaped models)."""
        out = {"psill": (0.0, math.inf)}
        if cls.needs_range:
            out["range"] = (0.0, math.inf)
        if cls.extra_name is not None:
            out["extra"] = cls.extra_bounds
        return out

    @classmethod
    def check_extra(cls, extra: float) -> None:
        """Raise :class:`InputDataError` if the shape parameter is not admissible."""
        lo, hi = cls.extra_bounds
        if not (math.isfinite(extra) and lo < extra <= hi):
            raise InputDataError(
                f"{cls.name}: {cls.extra_name} must be in ({lo}, {hi}], got {extra!r}"
            )


@register
class Nugget(BaseModel):
    """Pure nugget: ``gamma = 1`` for ``h > 0``, ``0`` at ``h = 0``; no range."""

    name, long_name, code, needs_range = "nug", "nugget", 0, False

    @staticmethod
    def gamma_unit(h, range_, extra):
        return np.ones_like(h, dtype=float)


@register
class Spherical(BaseModel):
    """Spherical: ``1.5 h/a - 0.5 (h/a)**3`` for ``h < a``, ``1`` beyond (sill at ``h = a``)."""

    name, long_name, code = "sph", "spherical", 1

    @staticmethod
    def gamma_unit(h, range_, extra):
        x = np.minimum(h / range_, 1.0)
        return x * (1.5 - 0.5 * x * x)


@register
class Exponential(BaseModel):
    """Exponential: ``1 - exp(-h/a)``; practical range (95 % of the sill) ``3 a``."""

    name, long_name, code = "exp", "exponential", 2

    @staticmethod
    def gamma_unit(h, range_, extra):
        return -np.expm1(-h / range_)


@register
class Gaussian(BaseModel):
    """Gaussian: ``1 - exp(-(h/a)**2)``; practical range ``sqrt(3) a``."""

    name, long_name, code = "gau", "gaussian", 3

    @staticmethod
    def gamma_unit(h, range_, extra):
        x = h / range_
        return -np.expm1(-x * x)


@register
class Matern(BaseModel):
    """Matérn (gstat ``Mat``): ``1 - x**nu K_nu(x) / (2**(nu-1) Gamma(nu))``, ``x = h/a``.

    ``nu`` (gstat's kappa) is the smoothness: 0.5 gives the exponential model with range ``a``;
    large ``nu`` approaches a Gaussian shape. ``K_nu`` is the modified Bessel function of the
    second kind.
    """

    name, long_name, code = "mat", "matern", 4
    extra_name, default_extra, extra_bounds = "nu", 0.5, (0.0, 100.0)

    @staticmethod
    def gamma_unit(h, range_, extra):
        nu = float(extra)
        x = np.asarray(h / range_, dtype=float)
        with np.errstate(all="ignore"):
            log_c = (1.0 - nu) * math.log(2.0) - gammaln(nu)
            corr = np.exp(log_c + nu * np.log(x) + np.log(kve(nu, x)) - x)
        # K_nu overflows only as x -> 0, where the correlation tends to 1; for a large nu
        # that happens while 1 - corr is still ~x**2 / (4 (nu - 1)) (1e-6 at nu = 100):
        # those points go to the compiled Bessel function, which rescales its recurrence
        over = ~np.isfinite(corr) & (x > 0.0) & (x <= 600.0)
        corr = np.where(np.isfinite(corr), np.clip(corr, 0.0, 1.0), 1.0)
        out = np.where(x > 600.0, 1.0, 1.0 - corr)
        if over.any():
            from .kernels import matern_unit_array_nb

            out[over] = matern_unit_array_nb(np.ascontiguousarray(x[over]), nu)
        return out


@register
class Stable(BaseModel):
    """Stable / powered exponential (gstat ``Exc``): ``1 - exp(-(h/a)**alpha)``, 0 < alpha <= 2."""

    name, long_name, code = "ste", "stable", 5
    extra_name, default_extra, extra_bounds = "alpha", 1.0, (0.0, 2.0)

    @staticmethod
    def gamma_unit(h, range_, extra):
        return -np.expm1(-np.power(h / range_, float(extra)))


@register
class Cubic(BaseModel):
    """Cubic (Chilès & Delfiner; GSTools `Cubic`; gstat has no cubic model): ``7x² - 8.75x³ + 3.5x⁵ - 0.75x⁷`` for ``x = h/a < 1``, else ``1``."""

    name, long_name, code = "cub", "cubic", 6

    @staticmethod
    def gamma_unit(h, range_, extra):
        x = np.minimum(h / range_, 1.0)
        x2 = x * x
        return x2 * (7.0 + x * (-8.75 + x2 * (3.5 - 0.75 * x2)))


@register
class Linear(BaseModel):
    """Linear with sill (gstat ``Lin`` with a range > 0): ``h/a`` for ``h < a``, ``1`` beyond.

    The unbounded linear model is ``pow`` with ``alpha = 1``. Like gstat's, this "tent" model
    is only guaranteed valid in 1D; in 2D/3D its kriging systems may be indefinite (prefer
    ``sph``).
    """

    name, long_name, code = "lin", "linear", 7
    max_dim = 1

    @staticmethod
    def gamma_unit(h, range_, extra):
        return np.minimum(h / range_, 1.0)


@register
class Power(BaseModel):
    """Power (unbounded): ``(h/a)**alpha`` with ``0 < alpha < 2``; ``a`` is a scale (default 1).

    gstat's ``Pow(alpha)`` is ``psill * h**alpha``, i.e. ``a = 1`` here. The fit keeps ``a``
    fixed because it is redundant with the partial sill.
    """

    name, long_name, code = "pow", "power", 8
    bounded = False
    extra_name, default_extra, extra_bounds = "alpha", 1.0, (0.0, 2.0)

    @classmethod
    def check_extra(cls, extra: float) -> None:
        if not (math.isfinite(extra) and 0.0 < extra < 2.0):
            raise InputDataError(f"pow: alpha must be in (0, 2), got {extra!r}")

    @staticmethod
    def gamma_unit(h, range_, extra):
        return np.power(h / range_, float(extra))


@register
class HoleEffect(BaseModel):
    """Hole effect (gstat ``Hol``): ``1 - sin(h/a) / (h/a)``; not monotone, sill 1."""

    name, long_name, code = "hol", "hole", 9
    monotone = False

    @staticmethod
    def gamma_unit(h, range_, extra):
        x = h / range_
        return 1.0 - np.sinc(x / np.pi)


@register
class MeasurementError(BaseModel):
    """Measurement error (gstat ``Err``): in the variogram a nugget (``1`` for ``h > 0``).

    Unlike ``nug`` (micro-scale variation, part of the field), it is noise of each datum only:
    kriging puts it on the diagonal of the data covariances but not in the covariance between a
    datum and a target at the same location, so the estimate smooths the data there instead of
    honouring them, and estimates the noise-free field (PyKrige ``exact_values=False``,
    GSTools ``cond_err``). See :mod:`gcnn_rnn.core.kriging.drift`.
    """

    name, long_name, code, needs_range = "err", "measurement error", 10, False

    @staticmethod
    def gamma_unit(h, range_, extra):
        return np.ones_like(h, dtype=float)


#: Models without a range (a jump at the origin only).
NUGGET_LIKE = ("nug", "err")

ALIASES.update({"exc": "ste", "lin_sill": "lin", "hole_effect": "hol", "matérn": "mat"})


@dataclass(frozen=True)
class Structure:
    """One elementary structure ``psill * gamma_unit(h; range_, extra)``.

    Parameters
    ----------
    model : str
        Registry name (case-insensitive, aliases allowed); stored as the short name.
    psill : float
        Partial sill (>= 0).
    range_ : float
        Range parameter (> 0; ignored and stored as 0 for ``nug``; ``pow`` with 0 means 1).
    extra : float or None
        Shape parameter (``nu`` for ``mat``, ``alpha`` for ``ste``/``pow``); None takes the
        model's default and is stored resolved, so equal models compare equal.
    """

    model: str
    psill: float
    range_: float = 0.0
    extra: float | None = None

    def __post_init__(self) -> None:
        cls = model_class(self.model)
        psill = finite_number(self.psill, f"{cls.name}: psill")
        if psill < 0:
            raise InputDataError(f"{cls.name}: psill must be >= 0, got {self.psill!r}")
        range_ = finite_number(self.range_, f"{cls.name}: range")
        if not cls.needs_range:
            range_ = 0.0
        elif cls.name == "pow" and range_ == 0.0:
            range_ = 1.0
        elif range_ <= 0:
            raise InputDataError(f"{cls.name}: range must be > 0, got {self.range_!r}")
        extra = self.extra
        if cls.extra_name is None:
            if extra is not None:
                raise InputDataError(f"{cls.name} takes no shape parameter, got {extra!r}")
        else:
            extra = cls.default_extra if extra is None else finite_number(extra, cls.extra_name)
            cls.check_extra(extra)
        object.__setattr__(self, "model", cls.name)
        object.__setattr__(self, "psill", psill)
        object.__setattr__(self, "range_", range_)
        object.__setattr__(self, "extra", extra)

    @property
    def model_class(self) -> type[BaseModel]:
        """The registered model class."""
        return MODELS[self.model]

    def gamma(self, h: np.ndarray) -> np.ndarray:
        """``psill * gamma_unit(h)`` for ``h > 0`` and exactly 0 at ``h == 0``."""
        h = np.asarray(h, dtype=float)
        with np.errstate(all="ignore"):
            g = self.model_class.gamma_unit(h, self.range_, self.extra)
        return np.where(h > 0, self.psill * g, 0.0)


@dataclass(frozen=True)
class VariogramModel:
    """A nested variogram: the sum of its structures, with optional geometric anisotropy.

    Parameters
    ----------
    structures : tuple of Structure
        At least one structure (lists are converted to tuples).
    anisotropy : Anisotropy or None
        Shared geometric anisotropy; dropped (None) when every structure is a nugget.
    """

    structures: tuple[Structure, ...]
    anisotropy: Anisotropy | None = field(default=None)

    def __post_init__(self) -> None:
        structs = tuple(self.structures)
        if not structs:
            raise InputDataError("a variogram model needs at least one structure")
        for s in structs:
            if not isinstance(s, Structure):
                raise InputDataError(f"not a variogram Structure: {s!r}")
        object.__setattr__(self, "structures", structs)
        if self.anisotropy is not None:
            if not isinstance(self.anisotropy, Anisotropy):
                raise InputDataError(f"not an Anisotropy: {self.anisotropy!r}")
            if all(s.model in NUGGET_LIKE for s in structs):
                object.__setattr__(self, "anisotropy", None)

    @property
    def nugget(self) -> float:
        """Sum of the nugget structures' partial sills (``nug`` and ``err``: the jump of the
        variogram at the origin)."""
        return float(sum(s.psill for s in self.structures if s.model in NUGGET_LIKE))

    @property
    def measurement_error(self) -> float:
        """Partial sill of the measurement-error (``err``) structures."""
        return float(sum(s.psill for s in self.structures if s.model == "err"))

    @property
    def bounded(self) -> bool:
        """True when every structure has a finite sill."""
        return all(s.model_class.bounded for s in self.structures)

    @property
    def sill(self) -> float:
        """Total sill (nugget included); ``inf`` for unbounded models."""
        if not self.bounded:
            return math.inf
        return float(sum(s.psill for s in self.structures))

    @property
    def max_range(self) -> float:
        """Largest range parameter among the structures (0 for a pure nugget)."""
        return float(max(s.range_ for s in self.structures))

    def gamma(self, h: np.ndarray | float) -> np.ndarray:
        """Semivariogram at isotropic-equivalent distances ``h`` (any shape).

        ``gamma(0) = 0`` exactly; for ``h > 0`` the nugget is included.
        """
        h = np.asarray(h, dtype=float)
        out = np.zeros(h.shape, dtype=float)
        for s in self.structures:
            out = out + s.gamma(h)
        return out

    def covariance(self, h: np.ndarray | float, shift: float | None = None) -> np.ndarray:
        """Covariance ``C(h) = sill - gamma(h)`` (so ``C(0) = sill``).

        Parameters
        ----------
        h : array_like
            Isotropic-equivalent distances.
        shift : float, optional
            Constant replacing the sill; required for unbounded models (a pseudo-covariance
            for ordinary kriging, which is invariant to it).

        Raises
        ------
        InputDataError
            For an unbounded model without ``shift``.
        """
        if shift is None:
            if not self.bounded:
                raise InputDataError(
                    f"the unbounded model {self.to_text()!r} has no covariance; give a shift"
                )
            shift = self.sill
        return float(shift) - self.gamma(h)

    def reduce(self, coords: np.ndarray) -> np.ndarray:
        """Anisotropy-reduced copy of coordinates or offsets ``(n, d)`` (identity if none)."""
        arr = np.array(coords, dtype=float, copy=True)
        if self.anisotropy is None:
            return arr
        return self.anisotropy.transform(arr)

    def kernel_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Arrays for :mod:`.kernels`: ``codes`` int64 ``(m,)`` and ``params`` ``(m, 3 + T)``.

        ``params[i, :3] = [psill, range_, extra]`` (``extra`` 0 when the model has none);
        a Matérn row carries its interpolation table (:func:`.matern_table.matern_table`) in
        columns ``3..``, zero-padded to the longest (``T = 0`` without a Matérn structure).
        """
        from .matern_table import matern_table

        # ``err`` has the variogram of a nugget; the compiled kernels see it as one (the
        # kriging routines that use them refuse models with measurement error)
        codes = np.array([0 if s.model == "err" else s.model_class.code
                          for s in self.structures], dtype=np.int64)
        tables = [matern_table(s.extra) if s.model == "mat" else np.zeros(0)
                  for s in self.structures]
        width = max((t.size for t in tables), default=0)
        params = np.zeros((len(self.structures), 3 + width), dtype=np.float64)
        for i, (s, t) in enumerate(zip(self.structures, tables)):
            params[i, :3] = [s.psill, s.range_, 0.0 if s.extra is None else s.extra]
            params[i, 3:3 + t.size] = t
        return codes, params

    def replace(self, **changes: Any) -> VariogramModel:
        """Copy with fields replaced (``structures=...``, ``anisotropy=...``)."""
        kwargs = {"structures": self.structures, "anisotropy": self.anisotropy}
        kwargs.update(changes)
        return VariogramModel(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (see :func:`.serialise.model_to_dict`)."""
        from .serialise import model_to_dict

        return model_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VariogramModel:
        """Inverse of :meth:`to_dict`."""
        from .serialise import model_from_dict

        return model_from_dict(d)

    def to_text(self, digits: int | None = None) -> str:
        """gstat-like text, e.g. ``"0.0507 Nug + 0.5906 Sph(897)"`` (round-trips exactly).

        ``digits`` rounds to that many significant digits, for display.
        """
        from .serialise import model_to_text

        return model_to_text(self, digits)

    def __str__(self) -> str:
        return self.to_text()


def parse_model(text: str) -> VariogramModel:
    """Parse the text form (see :func:`.serialise.parse_model`)."""
    from .serialise import parse_model as _parse

    return _parse(text)
