"""The variogram file ``V.json`` and :func:`load_variogram`.

``gcnn-rnn variogram`` writes, and ``krige --variogram V.json`` and the QGIS variogram explorer
read, one JSON object (format version 1; keys may be added, never renamed)::

    {
      "format": "gcnn-rnn-variogram",
      "version": 1,
      "model": {"structures": [{"model": "nug", "psill": .., "range": 0.0, "extra": null},
                               {"model": "sph", "psill": .., "range": .., "extra": null}],
                "anisotropy": null | {"azimuth": .., "ratio": .., "dip": .., "plunge": ..,
                                      "ratio_vertical": ..}},
      "text": "0.0507 Nug + 0.5906 Sph(897)",      # the same model as text
      "nugget": .., "sill": .. | "inf",            # convenience copies
      "field": "zinc", "transform": "log",          # what was modelled
      "transform_params": {...} | null,             # FittedTransform.to_dict() when available
      "crs": "<WKT>", "dims": 2, "n": 155,
      "experimental": {
        "omni": {"lag": [..], "gamma": [..], "npairs": [..], ...},
        "directions": {"0": {...}, "45": {...}},    # azimuth (degrees) -> same shape as omni
        "cutoff": .., "width": .., "estimator": "matheron", "tolerance": 22.5,
        "bandwidth": null,
        "n_points": 155, "n_used": 155,              # points given / whose pairs were used
        "subsample_seed": null                        # seed of the random subsample, if any
      },
      "fit": {"weights": "npairs_h2", "sse": .., "selected_by": "sse",
              "candidates": [{"text": .., "sse": .., "loo_rmse": null}, ..]}
    }

``model`` is :meth:`VariogramModel.to_dict` (see :mod:`.serialise`); ``text`` is the gstat-like
text form. Lists under ``experimental`` hold only non-empty bins.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EngineIOError, InputDataError
from ..safe_json import loads_checked
from .models import VariogramModel
from .serialise import json_number, parse_model

if TYPE_CHECKING:  # annotations only: reading a model must not import scipy.optimize
    from .empirical import EmpiricalVariogram
    from .fit import FittedVariogram

logger = logging.getLogger(__name__)

FORMAT = "gcnn-rnn-variogram"
VERSION = 1


def _direction_key(direction: float) -> str:
    d = float(direction)
    return str(int(d)) if d.is_integer() else repr(d)


def variogram_document(
    model: VariogramModel,
    *,
    omni: EmpiricalVariogram | None = None,
    directions: Mapping[float, EmpiricalVariogram] | None = None,
    fit: FittedVariogram | None = None,
    field: str | None = None,
    transform: str = "none",
    transform_params: Mapping[str, Any] | None = None,
    crs: str | None = None,
    dims: int | None = None,
    n: int | None = None,
) -> dict[str, Any]:
    """The ``V.json`` object for a model and, optionally, its experimental variograms and fit."""
    experimental: dict[str, Any] | None = None
    ref = omni or next(iter((directions or {}).values()), None)
    if ref is not None:
        experimental = {
            "omni": omni.to_dict() if omni is not None else None,
            "directions": {_direction_key(k): v.to_dict() for k, v in (directions or {}).items()},
            "cutoff": ref.cutoff,
            "width": ref.width,
            "estimator": ref.estimator,
            "tolerance": ref.tolerance,
            "bandwidth": ref.bandwidth,
            "n_points": ref.n_points,
            "n_used": ref.n_used,
            "subsample_seed": ref.subsample_seed,
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": model.to_dict(),
        "text": model.to_text(),
        "nugget": model.nugget,
        "sill": json_number(model.sill),
        "field": field,
        "transform": transform,
        "transform_params": dict(transform_params) if transform_params is not None else None,
        "crs": crs,
        "dims": dims,
        "n": n,
        "experimental": experimental,
        "fit": fit.to_dict() if fit is not None else None,
    }


def write_variogram_json(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """Write ``document`` to ``path`` (temporary name, then rename)."""
    from ..safe_write import write_json_verified

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineIOError(f"cannot write variogram file {str(path)!r}: {exc}") from None
    # A unique temporary name per writer: concurrent runs into one folder must not collide.
    return write_json_verified(path, document, what="variogram file", indent=1,
                               allow_nan=False)


def read_variogram_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a ``V.json`` file (format and version).

    Raises
    ------
    InputDataError
        Missing file, not JSON, wrong format or a newer version.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputDataError(f"variogram file not found: {str(path)!r}") from None
    except OSError as exc:
        raise InputDataError(f"cannot read variogram file {str(path)!r}: {exc}") from None
    # Bounded nesting, NaN tokens refused, a UTF-8 BOM (Windows editors) accepted.
    doc = loads_checked(raw, f"variogram file {str(path)!r}")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputDataError(f"{str(path)!r} is not a gcnn-rnn variogram file")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > VERSION:
        kind = "" if isinstance(version, int) else f" (a {type(version).__name__}, not a number)"
        raise InputDataError(
            f"variogram file {str(path)!r} has version {version!r}{kind}; this engine reads "
            f"{VERSION}"
        )
    if "model" not in doc:
        raise InputDataError(f"variogram file {str(path)!r} has no model")
    return doc


def load_variogram(spec: str | os.PathLike) -> VariogramModel:
    """A model from a ``V.json`` path or from the text form.

    ``"auto"`` is not handled here: callers fit a model themselves in that case.

    Raises
    ------
    InputDataError
        Unreadable file, bad text, or ``"auto"``.
    """
    text = os.fspath(spec).strip()
    if text.lower() == "auto":
        raise InputDataError("variogram 'auto' must be fitted by the caller, not loaded")
    if text.lower().endswith(".json") or _is_file(text):
        return VariogramModel.from_dict(read_variogram_json(Path(text))["model"])
    return parse_model(text)


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file; a long model text is not a file name (the OS
    refuses over-long names with an error, which must not end the run)."""
    if not Path(text).suffix or "(" in text or "+" in text:
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False
