"""Pure-Python variogram formulas for the explorer (no numpy/scipy needed; gstat conventions).

The same models and range conventions as the engine (``core/variogram/models.py``), for
drawing: ``x = h / a`` with ``a`` the range parameter.

==========  =================================================  =============================
name        unit semivariogram for h > 0                        range convention
==========  =================================================  =============================
``nug``     1                                                   no range
``sph``     1.5 x - 0.5 x³ (x < 1), else 1                      sill reached at h = a
``exp``     1 - exp(-x)                                         practical range 3 a
``gau``     1 - exp(-x²)                                        practical range √3 a
``mat``     1 - x^ν K_ν(x) / (2^(ν-1) Γ(ν))                     gstat ``Mat``, ν = kappa
``ste``     1 - exp(-x^α)                                       stable, 0 < α ≤ 2
``cub``     7x² - 8.75x³ + 3.5x⁵ - 0.75x⁷ (x < 1), else 1       sill reached at h = a
``lin``     x (x < 1), else 1                                   linear with sill
``pow``     x^α                                                 unbounded; a is a scale
``hol``     1 - sin(x) / x                                      hole effect
==========  =================================================  =============================

The dictionary form is the engine's (``model_to_dict``)::

    {"structures": [{"model": "nug", "psill": 0.05, "range": 0.0, "extra": None},
                    {"model": "sph", "psill": 0.59, "range": 897.0, "extra": None}],
     "anisotropy": None | {"azimuth": .., "ratio": .., "dip": 0, "plunge": 0,
                           "ratio_vertical": 1}}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: name -> (label, shape parameter name or None, default shape parameter)
MODELS = {
    "nug": ("Nugget", None, None),
    "sph": ("Spherical", None, None),
    "exp": ("Exponential", None, None),
    "gau": ("Gaussian", None, None),
    "mat": ("Matérn", "nu", 0.5),
    "ste": ("Stable", "alpha", 1.0),
    "cub": ("Cubic", None, None),
    "lin": ("Linear with sill", None, None),
    "pow": ("Power", "alpha", 1.0),
    "hol": ("Hole effect", None, None),
}


#: Structures without a range; ``err`` (measurement error) is kept as it is, not edited.
NUGGET_LIKE = ("nug", "err")


def bessel_k(nu: float, x: float) -> float:
    """Modified Bessel function of the second kind ``K_nu(x)`` for ``x > 0``.

    Uses ``K_nu(x) = ∫_0^∞ exp(-x cosh t) cosh(nu t) dt`` with the trapezoid rule, which
    converges very fast for this smooth, doubly-exponentially decaying integrand.
    """
    if x <= 0:
        return math.inf
    # the integrand is negligible once x cosh t exceeds x + 745
    t_max = math.acosh(1.0 + 745.0 / x) if x < 1e300 else 1.0
    n = 400
    dt = t_max / n
    total = 0.0
    for i in range(n + 1):
        t = i * dt
        w = 0.5 if i in (0, n) else 1.0
        exponent = -x * math.cosh(t) + nu * t
        total += w * 0.5 * (math.exp(exponent) + math.exp(-x * math.cosh(t) - nu * t))
    return total * dt


def unit_gamma(model: str, h: float, range_: float, extra: float | None = None) -> float:
    """Unit-sill semivariogram of ``model`` at ``h`` (0 at ``h = 0``)."""
    if h <= 0:
        return 0.0
    if model in NUGGET_LIKE:
        return 1.0
    a = range_ if range_ > 0 else 1.0
    x = h / a
    if model == "sph":
        return 1.0 if x >= 1 else x * (1.5 - 0.5 * x * x)
    if model == "exp":
        return -math.expm1(-x)
    if model == "gau":
        return -math.expm1(-x * x)
    if model == "mat":
        nu = extra if extra else 0.5
        if x > 600:
            return 1.0
        corr = x**nu * bessel_k(nu, x) / (2.0 ** (nu - 1.0) * math.gamma(nu))
        return 1.0 - min(max(corr, 0.0), 1.0)
    if model == "ste":
        return -math.expm1(-(x ** (extra if extra else 1.0)))
    if model == "cub":
        if x >= 1:
            return 1.0
        x2 = x * x
        return x2 * (7.0 + x * (-8.75 + x2 * (3.5 - 0.75 * x2)))
    if model == "lin":
        return min(x, 1.0)
    if model == "pow":
        return x ** (extra if extra else 1.0)
    if model == "hol":
        return 1.0 - math.sin(x) / x
    raise KeyError(f"unknown variogram model {model!r}")


@dataclass(frozen=True)
class Structure:
    """One nested structure kept as it is (the explorer edits only the first one).

    Parameters
    ----------
    model : str
        Model name (a key of :data:`MODELS`; unknown names are kept verbatim for saving).
    psill, range_ : float
        Partial sill and range parameter.
    extra : float or None
        Shape parameter.
    """

    model: str
    psill: float
    range_: float
    extra: float | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "psill": float(self.psill), "range": float(self.range_),
                "extra": None if self.extra is None else float(self.extra)}

    def to_text(self) -> str:
        if self.model in NUGGET_LIKE:
            return f"{fmt(self.psill)} {self.model.capitalize()}"
        args = [fmt(self.range_)]
        shape = MODELS.get(self.model, (None, None, None))[1]
        if shape is not None and self.extra is not None:
            args.append(f"{shape}={fmt(self.extra)}")
        return f"{fmt(self.psill)} {self.model.capitalize()}({', '.join(args)})"

    @classmethod
    def from_dict(cls, d: dict) -> Structure:
        extra = d.get("extra")
        return cls(str(d.get("model", "sph")).lower(), float(d.get("psill", 0.0)),
                   float(d.get("range", d.get("range_", 0.0)) or 0.0),
                   None if extra is None else float(extra))


@dataclass(frozen=True)
class SimpleModel:
    """Nugget + one edited structure (+ later structures kept as they are), with optional 2D
    geometric anisotropy: what the explorer edits.

    Parameters
    ----------
    model : str
        Structure model name (a key of :data:`MODELS`, not ``nug``).
    nugget, psill, range_ : float
        Nugget, partial sill of the structure and its (major) range parameter.
    extra : float or None
        Shape parameter (``nu`` for ``mat``, ``alpha`` for ``ste``/``pow``).
    azimuth, ratio : float
        Major axis direction (degrees clockwise from north) and minor/major range ratio;
        ``ratio = 1`` is isotropic.
    rest : tuple of Structure
        The structures after the first non-nugget one of a nested model (e.g. the second
        ``Sph`` of ``Nug + Sph + Sph``): drawn and saved unchanged, so editing the first
        structure never drops them.
    """

    model: str = "sph"
    nugget: float = 0.0
    psill: float = 1.0
    range_: float = 1.0
    extra: float | None = None
    azimuth: float = 0.0
    ratio: float = 1.0
    rest: tuple[Structure, ...] = ()

    def gamma(self, h: float, direction: float | None = None) -> float:
        """Semivariogram at lag ``h`` along ``direction`` (degrees; None = major axis)."""
        if h <= 0:
            return 0.0
        if direction is not None and self.ratio < 1.0:
            d = math.radians(direction - self.azimuth)
            h = h * math.hypot(math.cos(d), math.sin(d) / self.ratio)
        value = self.nugget + self.psill * unit_gamma(self.model, h, self.range_, self.extra)
        for s in self.rest:
            if s.model in MODELS or s.model in NUGGET_LIKE:
                value += s.psill * unit_gamma(s.model, h, s.range_, s.extra)
        return value

    def to_dict(self) -> dict:
        """The engine's dictionary form (see the module docstring)."""
        extra = None
        if MODELS[self.model][1] is not None:
            extra = float(self.extra if self.extra is not None else MODELS[self.model][2])
        structures = []
        if self.nugget > 0:
            structures.append({"model": "nug", "psill": float(self.nugget), "range": 0.0,
                               "extra": None})
        structures.append({"model": self.model, "psill": float(self.psill),
                           "range": float(self.range_), "extra": extra})
        structures += [s.to_dict() for s in self.rest]
        anis = None
        if self.ratio < 1.0:
            anis = {"azimuth": float(self.azimuth), "ratio": float(self.ratio), "dip": 0.0,
                    "plunge": 0.0, "ratio_vertical": 1.0}
        return {"structures": structures, "anisotropy": anis}

    def to_text(self) -> str:
        """gstat-like text, e.g. ``0.0507 Nug + 0.5906 Sph(897)`` (as the engine writes it)."""
        terms = []
        if self.nugget > 0:
            terms.append(f"{fmt(self.nugget)} Nug")
        args = [fmt(self.range_)]
        name = MODELS[self.model][1]
        if name is not None:
            args.append(f"{name}={fmt(self.extra if self.extra is not None else MODELS[self.model][2])}")
        if self.ratio < 1.0:
            args.append(f"anis=({fmt(self.azimuth)}, {fmt(self.ratio)})")
        terms.append(f"{fmt(self.psill)} {self.model.capitalize()}({', '.join(args)})")
        terms += [s.to_text() for s in self.rest]
        return " + ".join(terms)

    @classmethod
    def from_dict(cls, d: dict) -> SimpleModel:
        """An engine model dictionary: the nuggets summed, the first non-nugget structure as the
        edited one, every later structure kept in ``rest``."""
        structures = d.get("structures", []) if isinstance(d, dict) else []
        nugget = sum(float(s.get("psill", 0)) for s in structures if s.get("model") == "nug")
        others = [s for s in structures if s.get("model") not in NUGGET_LIKE]
        errors = [s for s in structures if s.get("model") == "err"]  # kept, never edited
        main = others[0] if others else None
        anis = d.get("anisotropy") if isinstance(d, dict) else None
        kwargs = {}
        if isinstance(anis, dict):
            kwargs = {"azimuth": float(anis.get("azimuth", 0.0)),
                      "ratio": float(anis.get("ratio", 1.0))}
        if main is None:
            return cls("sph", nugget, 0.0, 1.0, None,
                       rest=tuple(Structure.from_dict(s) for s in errors), **kwargs)
        name = str(main.get("model", "sph")).lower()
        if name not in MODELS:
            name = "sph"
        extra = main.get("extra")
        rest = tuple(Structure.from_dict(s) for s in [*errors, *others[1:]])
        return cls(name, nugget, float(main.get("psill", 0.0)),
                   float(main.get("range", main.get("range_", 1.0)) or 1.0),
                   None if extra is None else float(extra), rest=rest, **kwargs)


def fmt(x: float) -> str:
    """Short exact text of a number (``897.0`` → ``897``), as the engine's text form."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)
