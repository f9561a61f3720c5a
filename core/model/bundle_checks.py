"""Checks that keep a model bundle inside itself and its numbers sane.

A bundle is shared between people, so ``model.json`` is untrusted input:

* member files must be exactly ``member_<i>.keras``, regular files directly inside the bundle
  folder (no absolute paths, ``..``, symlinks, ``.h5`` or other loaders);
* paths stored in a bundle (covariate rasters) must be plain local files: no GDAL virtual
  file systems (``/vsicurl/``, ``/vsizip/``, ...), no URLs, no ``DRIVER:`` connection
  strings; ``predict --covariates`` replaces them;
* every number the prediction uses is finite and in range (calibration, scalers, shrinkage,
  training samples), the CRS parses, and the training metrics do not show a diverged network;
* Keras loads with ``safe_mode=True`` and must be a release without the published safe-mode
  bypasses (3.12 or later).

Unknown extra keys are accepted: later engines add keys (format version 1 rules).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BundleError, GcnnRnnError, InputDataError
from ..progress import StopFn, check_cancel

#: Oldest Keras whose ``safe_mode`` has no published bypass (CVE-2025-1550, -8747, -9905,
#: -9906, -12060 are fixed by 3.12).
MIN_KERAS = (3, 12)
#: A hybrid whose out-of-fold RMSE exceeds the kriging baseline's by this factor (or is not
#: finite) has diverged; it is refused rather than saved.
DIVERGED_FACTOR = 5.0

#: GDAL virtual file systems (``/vsi...`` prefixes), URLs, and ``DRIVER:...`` connection
#: strings (two or more characters before the colon: a Windows drive ``C:`` is fine).
_VIRTUAL = (re.compile(r"^[\\/]?vsi\w*[\\/]", re.IGNORECASE), re.compile(r"://"),
            re.compile(r"^[A-Za-z][A-Za-z0-9_+-]+:"))


class TrainingDivergedError(InputDataError):
    """Training produced a network far worse than its kriging baseline (or non-finite)."""

    kind = "diverged"


def _is_virtual(text: str) -> bool:
    return any(p.search(text) for p in _VIRTUAL)


def check_local_file(value: Any, what: str, hint: str = "") -> str:
    """``value`` if it names an existing regular local file; else :class:`BundleError`."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise BundleError(f"{what} is not a file name: {value!r}")
    if _is_virtual(value):
        raise BundleError(f"{what} {value!r} is not a local file (GDAL virtual paths, URLs and "
                          "driver prefixes are refused)")
    if not Path(value).is_file():
        raise BundleError(f"{what} {value!r} is not an existing file{hint}")
    return value


def check_self_contained(value: str, what: str, hint: str = "") -> str:
    """Refuse an XML raster description (GDAL VRT, WMS, WMTS, ...) named by a bundle: it can
    make GDAL read other files or fetch URLs, so it is not a plain local raster."""
    try:
        with open(value, "rb") as fh:
            head = fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise BundleError(f"{what} {value!r} cannot be read ({exc.strerror}){hint}") from None
    if head.startswith(b"<"):
        raise BundleError(f"{what} {value!r} is an XML raster description (a VRT or a web "
                          "service), which can read other files or URLs; a bundle may only name "
                          f"plain raster files{hint}")
    return value


def member_file(bundle: Path, index: int, entry: Any) -> Path:
    """The checked path of member ``index``: ``member_<index>.keras`` inside ``bundle``."""
    return bundle_file(bundle, f"member_{index}.keras", entry, f"member {index}")


def bundle_file(bundle: Path, expected: str, entry: Any, what: str) -> Path:
    """The checked path of the file ``expected`` that ``entry["file"]`` names: exactly that
    plain name, a regular file (no symbolic link) directly inside ``bundle``."""
    name = entry.get("file") if isinstance(entry, dict) else None
    if name != expected:
        raise BundleError(f"model bundle {str(bundle)!r} is damaged: {what} must be "
                          f"the file {expected!r} in the bundle, not {name!r}")
    file = bundle / expected
    if file.is_symlink():
        raise BundleError(f"model bundle {str(bundle)!r}: {expected} is a symbolic link; the "
                          "files of a bundle must be plain files inside it")
    if not file.is_file():
        raise BundleError(f"model bundle {str(bundle)!r} is incomplete: {expected} is missing")
    if file.resolve().parent != bundle.resolve():
        raise BundleError(f"model bundle {str(bundle)!r}: {expected} lies outside the bundle")
    return file


def verified_file(bundle: Path, expected: str, entry: Any, what: str,
                  should_stop: StopFn | None = None) -> Path:
    """:func:`bundle_file` whose SHA-256 matches ``entry["sha256"]``."""
    file = bundle_file(bundle, expected, entry, what)
    digest = entry.get("sha256")
    if not isinstance(digest, str) or sha256_file(file, should_stop) != digest:
        raise BundleError(f"model bundle {str(bundle)!r} is damaged: {file.name} does not "
                          "match its checksum in model.json")
    return file


def sha256_file(path: Path, should_stop: StopFn | None = None) -> str:
    """SHA-256 of a file, cancellable between 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for i, block in enumerate(iter(lambda: fh.read(1 << 20), b"")):
            if i % 16 == 0:
                check_cancel(should_stop)
            h.update(block)
    return h.hexdigest()


def verify_members(bundle: Path, doc: dict, should_stop: StopFn | None = None) -> list[Path]:
    """Checked member paths whose SHA-256 matches ``model.json``."""
    members = doc.get("members")
    if not isinstance(members, list) or not members:
        raise BundleError(f"model bundle {str(bundle)!r} lists no ensemble members")
    return [verified_file(bundle, f"member_{i}.keras", entry, f"member {i}", should_stop)
            for i, entry in enumerate(members)]


def require_safe_keras():
    """The ``keras`` module, if it is a release whose safe mode holds; else an error."""
    import keras

    parts = re.findall(r"\d+", str(getattr(keras, "__version__", "0")))[:2]
    version = tuple(int(p) for p in parts) + (0,) * (2 - len(parts))
    if version < MIN_KERAS:
        raise GcnnRnnError(
            f"keras {keras.__version__} can run code hidden in a model file even in safe mode; "
            f"install keras >= {'.'.join(map(str, MIN_KERAS))} before loading model bundles"
        )
    return keras


def use_covariates(bundle: Path, doc: dict, covariates: Sequence[str] | None) -> None:
    """Check the covariate paths of ``doc`` (in place), or replace them by ``covariates``."""
    stored = [_covariate_list(bundle, doc, "params"), _covariate_list(bundle, doc, "feature_config")]
    n = max(len(s) for s in stored)
    if covariates:
        if len(covariates) != n:
            raise InputDataError(
                f"--covariates gives {len(covariates)} raster(s) but the model in "
                f"{str(bundle)!r} was trained with {n}"
            )
        paths = [check_local_file(str(Path(c).resolve()) if Path(c).exists() else c,
                                  "covariate raster") for c in covariates]
        doc.setdefault("params", {})["covariates"] = list(paths)
        doc.setdefault("feature_config", {})["covariates"] = list(paths)
        return
    hint = " (give the rasters with predict --covariates, in the training order)"
    what = f"the covariate raster named in model bundle {str(bundle)!r},"
    for group in stored:
        for p in group:
            check_self_contained(check_local_file(p, what, hint), what, hint)


def _covariate_list(bundle: Path, doc: dict, key: str) -> list:
    node = doc.get(key)
    value = node.get("covariates") if isinstance(node, dict) else None
    if not isinstance(node, dict) or not isinstance(value, list | type(None)):
        raise BundleError(f"model bundle {str(bundle)!r}: {key} in model.json is damaged")
    return list(value or [])


def _finite(value: Any, where: str, low: float = -math.inf, high: float = math.inf,
            low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BundleError(f"{where} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < low or v > high or (low_open and v == low):
        raise BundleError(f"{where} is {value!r}, outside its valid range")
    return v


def _numbers(values: Any, where: str, positive: bool = False) -> list[float]:
    if not isinstance(values, list):
        raise BundleError(f"{where} must be a list of numbers")
    return [_finite(v, f"{where}[{i}]", 0.0 if positive else -math.inf, low_open=positive)
            for i, v in enumerate(values)]


def validate_model_doc(bundle: Path, doc: dict) -> None:
    """Range checks of the numbers a prediction uses; raises :class:`BundleError`."""
    where = f"model bundle {str(bundle)!r}: "
    try:
        cal = doc["calibration"]
        _finite(cal["alpha"], where + "calibration.alpha", 0.0, 1.0, low_open=True)
        # a conformal quantile of |error| / sigma: far beyond 1e6 is damage, not calibration
        _finite(cal["quantile"], where + "calibration.quantile", 0.0, 1e6)
        _finite(cal["scale"], where + "calibration.scale", 0.0, low_open=True)
        if "shrinkage" in doc:
            _finite(doc["shrinkage"], where + "shrinkage", 0.0, 10.0)
        for name, sc in doc["scalers"].items():
            if not isinstance(sc, dict):
                continue
            mean = _numbers(sc["mean"], f"{where}scalers.{name}.mean")
            scale = _numbers(sc["scale"], f"{where}scalers.{name}.scale", positive=True)
            if len(mean) != len(scale):
                raise BundleError(f"{where}scalers.{name}: mean and scale differ in length")
            if sc.get("low") is not None or sc.get("high") is not None:
                low = _numbers(sc.get("low"), f"{where}scalers.{name}.low")
                high = _numbers(sc.get("high"), f"{where}scalers.{name}.high")
                if len(low) != len(mean) or len(high) != len(mean) or any(
                        a > b for a, b in zip(low, high)):
                    raise BundleError(f"{where}scalers.{name}: low/high do not bound the range")
        td = doc["training_data"]
        if not isinstance(td, dict):
            raise BundleError(where + "training_data in model.json is damaged")
        if "file" not in td:  # format 2: the samples inline (checked when read if in a file)
            check_training_arrays({k: td[k] for k in ("coords", "values",
                                                      "values_transformed")}, where)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{where}model.json is damaged or incomplete ({exc!r} missing or of "
                          "the wrong type)") from None
    crs = doc.get("crs")
    if crs is not None:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(crs)
        except (CRSError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}the CRS in model.json cannot be understood ({exc})") from None
    check_metrics(doc.get("metrics") or {}, where)


def check_training_arrays(data: dict, where: str) -> None:
    """The training samples a prediction krige from: ``coords`` ``(n, 2|3)`` and ``values``,
    ``values_transformed`` ``(n,)``, all finite (lists from JSON or arrays from the samples
    file); raises :class:`BundleError`."""
    import numpy as np

    try:
        coords = np.asarray(data["coords"], dtype=float)
        vals = {k: np.asarray(data[k], dtype=float) for k in ("values", "values_transformed")}
    except (TypeError, ValueError):
        raise BundleError(where + "training_data holds something other than numbers") from None
    if coords.size == 0:
        raise BundleError(where + "training_data.coords is empty")
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise BundleError(where + "training_data.coords must be (x, y[, z]) pairs")
    for key, arr in (("coords", coords), *vals.items()):
        if not np.isfinite(arr).all():
            raise BundleError(f"{where}training_data.{key} holds a non-finite value, outside "
                              "its valid range")
        if key != "coords" and arr.shape != (len(coords),):
            raise BundleError(f"{where}training_data.{key} has {arr.size} values for "
                              f"{len(coords)} samples")


def check_metrics(metrics: dict, where: str = "") -> None:
    """Refuse a diverged network: a non-finite error, or one far above the kriging one, of
    the final predictor or of the network itself (before the do-no-harm gate)."""
    if not isinstance(metrics, dict):
        raise BundleError(f"{where}metrics in model.json are damaged")
    ok = metrics.get("ok_loo_rmse")
    if not isinstance(ok, int | float):
        return
    for key in ("hybrid_oof_rmse", "network_oof_rmse"):
        hy = metrics.get(key)
        if not isinstance(hy, int | float):
            continue
        if not math.isfinite(hy) or (math.isfinite(ok) and ok > 0 and hy > DIVERGED_FACTOR * ok):
            raise TrainingDivergedError(
                f"{where}the network diverged: its out-of-fold RMSE {hy:.4g} is far above "
                f"ordinary kriging's {ok:.4g} (transformed units); lower --learning-rate or "
                "train again; the model was not saved or used"
            )


def check_trained(estimator) -> None:
    """Before saving: refuse non-finite weights or a diverged network."""
    import numpy as np

    for w in getattr(estimator, "weights_", ()) or ():
        if not np.isfinite(np.asarray(w)).all():
            raise TrainingDivergedError(
                "the network diverged: its weights are not finite; lower --learning-rate or "
                "train again; no model bundle was written"
            )
    check_metrics(getattr(estimator, "training_metrics_", {}) or {})
