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

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EngineIOError, InputDataError
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
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise EngineIOError(f"cannot write variogram file {str(path)!r}: {exc}") from None
    return path


def read_variogram_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a ``V.json`` file (format and version).

    Raises
    ------
    InputDataError
        Missing file, not JSON, wrong format or a newer version.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputDataError(f"variogram file not found: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(f"cannot read variogram file {str(path)!r}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputDataError(f"{str(path)!r} is not a gcnn-rnn variogram file")
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InputDataError(
            f"variogram file {str(path)!r} has version {version!r}; this engine reads {VERSION}"
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
    path = Path(text)
    if text.lower().endswith(".json") or (path.suffix and path.is_file()):
        return VariogramModel.from_dict(read_variogram_json(path)["model"])
    return parse_model(text)
