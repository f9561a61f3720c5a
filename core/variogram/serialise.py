"""Text and dictionary forms of :class:`~.models.VariogramModel`.

Text form (gstat-like, round-trips exactly because numbers are written with ``repr``)::

    0.0507 Nug + 0.5906 Sph(897)
    0.05 Nug + 0.59 Sph(897, anis=(45, 0.5))           # 2D: anis=(azimuth, ratio)
    1 Sph(300, anis=(30, -10, 0, 0.5, 0.2))             # 3D: anis=(ang1, ang2, ang3, r1, r2)
    1 Mat(300, nu=1.5)                                  # Matérn smoothness (``kappa=`` also read)
    0.8 Ste(200, alpha=1.2) + 0.1 Pow(1, alpha=1.5)     # stable / power shape parameter

* A term is ``[psill [*]] Name[(range[, extra][, key=value ...])]``; a missing psill means 1.
  Names are case-insensitive and long names / gstat ``Exc`` are accepted.
* ``Nug`` and ``Err`` (measurement error, e.g. ``0.02 Err + 0.03 Nug + 0.59 Sph(897)``)
  take no range (``Nug(0)`` is accepted).
* The anisotropy is shared by the whole model; it is written once, on the first non-nugget
  term, and may be repeated on other terms only with identical values. Angles are degrees,
  azimuth clockwise from north (see :class:`~.models.Anisotropy`).

Dictionary form (:func:`model_to_dict`, used inside ``V.json``)::

    {"structures": [{"model": "nug", "psill": 0.0507, "range": 0.0, "extra": null},
                    {"model": "sph", "psill": 0.5906, "range": 897.0, "extra": null}],
     "anisotropy": null | {"azimuth": .., "ratio": .., "dip": .., "plunge": ..,
                           "ratio_vertical": ..}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InputDataError
from .models import Anisotropy, Structure, VariogramModel, model_class

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(
    rf"^\s*(?:(?P<psill>{_NUM})\s*\*?\s*)?(?P<name>[A-Za-z_\u00e9]+)\s*(?:\((?P<args>.*)\))?\s*$",
    re.DOTALL,
)
_EXTRA_KEYS = {"nu": "nu", "kappa": "nu", "alpha": "alpha"}
_ANIS_FIELDS = ("azimuth", "ratio", "dip", "plunge", "ratio_vertical")


def format_number(x: float, digits: int | None = None) -> str:
    """Shortest exact text of a float (``897.0`` -> ``"897"``, ``0.0507`` -> ``"0.0507"``).

    With ``digits``, round to that many significant digits instead (for display only).
    """
    x = float(x)
    if digits is not None:
        return f"{x:.{int(digits)}g}"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _display_name(name: str) -> str:
    return name[:1].upper() + name[1:]


def _anis_text(a: Anisotropy, digits: int | None = None) -> str:
    if a.is_3d:
        vals = (a.azimuth, a.dip, a.plunge, a.ratio, a.ratio_vertical)
    else:
        vals = (a.azimuth, a.ratio)
    return "anis=(" + ", ".join(format_number(v, digits) for v in vals) + ")"


def model_to_text(model: VariogramModel, digits: int | None = None) -> str:
    """gstat-like text of a model (see the module docstring); inverse of :func:`parse_model`.

    ``digits`` rounds the numbers to that many significant digits (display only: the result
    no longer round-trips exactly).
    """
    terms = []
    anis_done = model.anisotropy is None
    for s in model.structures:
        cls = s.model_class
        head = f"{format_number(s.psill, digits)} {_display_name(cls.name)}"
        if not cls.needs_range:
            terms.append(head)
            continue
        args = [format_number(s.range_, digits)]
        if cls.extra_name is not None:
            args.append(f"{cls.extra_name}={format_number(s.extra, digits)}")
        if not anis_done:
            args.append(_anis_text(model.anisotropy, digits))
            anis_done = True
        terms.append(f"{head}({', '.join(args)})")
    return " + ".join(terms)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses (and, for '+', not inside an exponent)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InputDataError(f"unbalanced parentheses in variogram {text!r}")
        elif ch == sep and depth == 0:
            if (
                sep == "+"
                and i >= 2
                and text[i - 1] in "eE"
                and (text[i - 2].isdigit() or text[i - 2] == ".")
            ):
                continue
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise InputDataError(f"unbalanced parentheses in variogram {text!r}")
    parts.append(text[start:])
    return parts


def _number(token: str, text: str) -> float:
    token = token.strip()
    if not re.fullmatch(_NUM, token):
        raise InputDataError(f"not a number: {token!r} in variogram {text!r}")
    return float(token)


def _parse_anis(value: str, text: str) -> Anisotropy:
    value = value.strip()
    if not (value.startswith("(") and value.endswith(")")):
        raise InputDataError(f"anis must be written anis=(...), got {value!r} in {text!r}")
    nums = [_number(v, text) for v in value[1:-1].split(",") if v.strip()]
    if len(nums) == 2:
        return Anisotropy(azimuth=nums[0], ratio=nums[1])
    if len(nums) == 5:
        return Anisotropy(nums[0], nums[3], nums[1], nums[2], nums[4])
    raise InputDataError(
        f"anis needs 2 values (azimuth, ratio) or 5 (ang1, ang2, ang3, ratio1, ratio2), "
        f"got {value!r} in {text!r}"
    )


def _parse_term(term: str, text: str) -> tuple[Structure, Anisotropy | None]:
    m = _TERM.match(term)
    if m is None or not term.strip():
        raise InputDataError(f"cannot read variogram term {term.strip()!r} in {text!r}")
    cls = model_class(m.group("name"))
    psill = 1.0 if m.group("psill") is None else float(m.group("psill"))
    positional: list[float] = []
    range_: float | None = None
    extra: float | None = None
    anis: Anisotropy | None = None
    args = m.group("args")
    for arg in _split_top(args, ",") if args is not None and args.strip() else []:
        if "=" in arg:
            key, _, value = arg.partition("=")
            key = key.strip().lower()
            if key == "anis":
                anis = _parse_anis(value, text)
            elif key == "range":
                range_ = _number(value, text)
            elif key in _EXTRA_KEYS and _EXTRA_KEYS[key] == cls.extra_name:
                extra = _number(value, text)
            else:
                name = _display_name(cls.name)
                raise InputDataError(f"{name} has no parameter {key!r}: {text!r}")
        else:
            if range_ is not None or extra is not None or anis is not None:
                raise InputDataError(f"positional value after keywords in {term.strip()!r}")
            positional.append(_number(arg, text))
    limit = 2 if cls.extra_name is not None else 1
    if len(positional) > limit:
        raise InputDataError(f"too many values in variogram term {term.strip()!r}")
    if positional:
        range_ = positional[0]
    if len(positional) == 2:
        extra = positional[1]
    if not cls.needs_range:
        if range_ not in (None, 0.0):
            raise InputDataError(f"a nugget has no range: {term.strip()!r}")
        return Structure(cls.name, psill), anis
    if range_ is None:
        if cls.name != "pow":
            raise InputDataError(f"{_display_name(cls.name)} needs a range: {term.strip()!r}")
        range_ = 1.0
    return Structure(cls.name, psill, range_, extra), anis


def parse_model(text: str) -> VariogramModel:
    """Read the text form, e.g. ``"0.0507 Nug + 0.5906 Sph(897)"``.

    Raises
    ------
    InputDataError
        On a syntax error or invalid parameters.
    UnknownModelError
        On an unknown model name (the message lists the known ones).
    """
    if not isinstance(text, str) or not text.strip():
        raise InputDataError(f"empty variogram text {text!r}")
    structures = []
    anis: Anisotropy | None = None
    for term in _split_top(text, "+"):
        s, a = _parse_term(term, text)
        structures.append(s)
        if a is not None:
            if anis is not None and a != anis:
                raise InputDataError(f"conflicting anisotropies in variogram {text!r}")
            anis = a
    return VariogramModel(tuple(structures), anis)


def model_to_dict(model: VariogramModel) -> dict[str, Any]:
    """JSON-safe dictionary of a model (see the module docstring)."""
    a = model.anisotropy
    return {
        "structures": [
            {"model": s.model, "psill": s.psill, "range": s.range_, "extra": s.extra}
            for s in model.structures
        ],
        "anisotropy": None if a is None else {f: getattr(a, f) for f in _ANIS_FIELDS},
    }


def model_from_dict(d: Mapping[str, Any]) -> VariogramModel:
    """Inverse of :func:`model_to_dict` (``range_`` is accepted for ``range``)."""
    if not isinstance(d, Mapping) or not isinstance(d.get("structures"), list | tuple):
        raise InputDataError(f"not a variogram model dictionary: {d!r}")
    structures = []
    for item in d["structures"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("model"), str) \
                or "psill" not in item:
            raise InputDataError(f"bad variogram structure {item!r}")
        rng = item.get("range", item.get("range_", 0.0))
        structures.append(Structure(item["model"], item["psill"], rng, item.get("extra")))
    a = d.get("anisotropy")
    anis = None
    if a is not None:
        if not isinstance(a, Mapping):
            raise InputDataError(f"bad anisotropy {a!r}")
        unknown = set(a) - set(_ANIS_FIELDS)
        if unknown:
            raise InputDataError(f"unknown anisotropy keys {sorted(unknown)!r}")
        anis = Anisotropy(**{k: v for k, v in a.items()})  # validated (finite numbers) there
    return VariogramModel(tuple(structures), anis)


def json_number(x: float) -> float | str:
    """A float for JSON, with non-finite values as strings (``"inf"``)."""
    return x if math.isfinite(x) else str(x)
