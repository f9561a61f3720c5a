"""Saving and loading a trained hybrid model as a directory ("bundle").

Layout::

    M/model.json        format and package versions, CRS, variogram, transform, feature,
                        model and training configurations, scalers, co-field encoding and
                        models, calibration, metrics, training history, checksums of the
                        other files
    M/training_data.npz the training samples as binary columns (coordinates, values,
                        transformed values, covariate and co-field values): prediction-time
                        features krige from them. Binary, so the bundle grows as the data
                        (about 40 bytes a 2D sample), not as their decimal text in JSON
    M/network.npz       the ensemble's weights, what ``predict`` reads (:mod:`.network_file`:
                        no Keras, no TensorFlow)
    M/member_0.keras    one Keras file per ensemble member (the batched model cut apart), for
    M/member_1.keras    ... users who load a member in Keras; format 2 and 3 bundles load
                        their weights from these

The directory is written under a temporary name next to ``M`` and renamed when complete, so
a failure never leaves a half-written bundle. Loading checks the format, its version and the
members' SHA-256 sums, and reports any problem as :class:`~gcnn_rnn.core.errors.BundleError`.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import BundleError, EngineIOError, InputDataError
from ..output_set import final_paths
from ..progress import StopFn
from ..safe_json import loads_checked
from .bundle_checks import (
    check_trained,
    check_training_arrays,
    member_file,
    require_safe_keras,
    sha256_file,
    use_covariates,
    validate_model_doc,
    verified_file,
    verify_members,
)
from .network_file import NETWORK_FILE, check_member_file, read_network, write_network

logger = logging.getLogger(__name__)

FORMAT = "gcnn-rnn-model"
#: 2: covariate channels in the neighbour sequence, multi-scale statics, and the covariate
#: values at the training samples (``training_data.extra``). Version-1 bundles are refused.
#: 3: the training samples in :data:`SAMPLES_FILE` instead of JSON lists (version 2 still
#: loads).
#: 4: the weights also in :data:`~.network_file.NETWORK_FILE`, which ``predict`` reads
#: without Keras (versions 2 and 3 still load, from the member files through Keras).
FORMAT_VERSION = 4
#: The oldest format this engine reads.
OLDEST_READABLE = 2
MODEL_JSON = "model.json"
#: The training samples of a version-3 bundle (numpy ``.npz``, read without pickles).
SAMPLES_FILE = "training_data.npz"
#: Its arrays: ``(n, d)`` coordinates, ``(n,)`` values, then ``(n, e)`` columns.
SAMPLE_ARRAYS = ("coords", "values", "values_transformed", "extra", "co_values")


def package_versions() -> dict[str, str | None]:
    """Versions of the packages a bundle depends on (those already imported or importable)."""
    import importlib

    out: dict[str, str | None] = {"gcnn_rnn": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "sklearn", "tensorflow", "keras"):
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except Exception:  # pragma: no cover - optional package
            out[name] = None
    return out


def _member_model(weights: list[np.ndarray], mcfg, shapes: tuple[int, int, int], member: int):
    """A one-member Keras model holding member ``member`` of the batched ``weights``."""
    from dataclasses import replace

    from .build import build_model

    single = build_model(replace(mcfg, members=1), *shapes)
    m = int(mcfg.members)
    for value, dst in zip(weights, single.weights, strict=True):
        if value.shape and value.shape[0] == m and tuple(dst.shape) == (1, *value.shape[1:]):
            value = value[member : member + 1]
        dst.assign(value)
    return single


def _join_members(singles: list, members: int) -> list[np.ndarray]:
    """The batched model's weights whose member ``i`` comes from ``singles[i]``."""
    out = []
    for j in range(len(singles[0].weights)):
        parts = [np.asarray(s.weights[j].numpy()) for s in singles]
        if parts[0].shape and parts[0].shape[0] == 1 and members == len(singles):
            out.append(np.concatenate(parts, axis=0))
        else:
            out.append(parts[0])
    return out


def save_bundle(estimator, directory: str | os.PathLike, *, crs: str | None = None,
                field: str | None = None, source: str | None = None,
                extra: dict | None = None) -> Path:
    """Write a fitted :class:`~.estimator.HybridRegressor` to ``directory`` atomically.

    Parameters
    ----------
    estimator : HybridRegressor
        Fitted.
    directory : path
        The bundle directory (replaced if it exists).
    crs, field, source : str, optional
        Recorded for the user and for prediction (CRS of outputs, covariate checks).
    extra : dict, optional
        More JSON-safe information (e.g. cross-validation summary).

    Returns
    -------
    Path
    """
    from ..variogram.serialise import model_to_dict

    estimator._check_fitted()
    check_trained(estimator)  # a diverged network is refused, not saved
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        mcfg = estimator.model_config_
        members = []
        for i in range(int(mcfg.members)):
            name = f"member_{i}.keras"
            _member_model(estimator.weights_, mcfg, estimator.input_shapes_, i).save(tmp / name)
            members.append({"file": name, "sha256": sha256_file(tmp / name)})
        network = write_network(estimator.weights_, estimator.input_shapes_,
                                tmp / NETWORK_FILE)
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": package_versions(),
            "crs": crs if crs is not None else estimator.crs,
            "field": field,
            "source": source,
            "params": _jsonable_params(estimator.get_params()),
            "transform": estimator.transform_.to_dict(),
            "variogram": {"model": model_to_dict(estimator.variogram_),
                          "text": estimator.variogram_.to_text(),
                          "fit": getattr(estimator, "variogram_fit_", None)},
            "feature_config": estimator.feature_config_.to_dict(),
            "model_config": mcfg.to_dict(),
            "train_config": estimator.train_config_.to_dict(),
            "feature_names": estimator.feature_names_,
            "scalers": {
                "sequence": estimator.sequence_scaler_.to_dict(),
                "static": estimator.static_scaler_.to_dict(),
                "target": estimator.target_scaler_.to_dict(),
            },
            "training_data": _write_samples(estimator, tmp / SAMPLES_FILE),
            "co_fields": {
                "encoding": estimator.co_encoding_.to_dict(),
                "models": [model_to_dict(m) for m in estimator.co_models_],
            },
            "calibration": estimator.calibration_.to_dict(),
            "shrinkage": float(getattr(estimator, "shrinkage_", 1.0)),
            "gate": getattr(estimator, "gate_", None),
            "base": estimator._base().to_dict(),
            "metrics": estimator.training_metrics_,
            "training": estimator.train_result_.to_dict(),
            "members": members,
            "network": network,
            "extra": extra or {},
        }
        text = json.dumps(doc, indent=1, allow_nan=False, default=_json_default)
        (tmp / MODEL_JSON).write_text(text, encoding="utf-8")
        _replace_dir(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise EngineIOError(f"cannot write the model bundle {str(target)!r}: {exc}") from None
        raise
    logger.info("model bundle written to %s", final_paths(str(target)))
    return target


def _write_samples(estimator, path: Path) -> dict:
    """Write the training samples to ``path`` (uncompressed ``.npz``: coordinates rarely
    compress) and return their ``model.json`` entry (file name, checksum, counts)."""
    arrays = {
        "coords": estimator.coords_, "values": estimator.values_,
        "values_transformed": estimator.values_t_, "extra": estimator.sample_extra_,
        "co_values": estimator.co_values_,
    }
    with open(path, "wb") as fh:
        np.savez(fh, **{k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()})
    xy = np.asarray(estimator.coords_, dtype=float)[:, :2]
    return {"file": path.name, "sha256": sha256_file(path), "format": "npz",
            "n": int(len(estimator.coords_)), "dims": int(estimator.coords_.shape[1]),
            # for readers without numpy (QGIS: the default cell size of a prediction)
            "extent": [float(v) for v in (*xy.min(axis=0), *xy.max(axis=0))]}


def _read_samples(path: Path, doc: dict, should_stop: StopFn | None = None) -> dict:
    """The training samples of a bundle: from its checked samples file (format 3) or the
    JSON lists (format 2), as float arrays with checked shapes and finite values."""
    td = doc["training_data"]
    where = f"model bundle {str(path)!r}: "
    if "file" not in td:  # format 2
        return {"coords": td["coords"], "values": td["values"],
                "values_transformed": td["values_transformed"], "extra": td["extra"],
                "co_values": doc["co_fields"]["values"]}
    file = verified_file(path, SAMPLES_FILE, td, "the training samples", should_stop)
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [k for k in SAMPLE_ARRAYS if k not in npz.files]
            if missing:
                raise BundleError(f"{where}{SAMPLES_FILE} lacks {', '.join(missing)}")
            data = {k: np.asarray(npz[k]) for k in SAMPLE_ARRAYS}
    except BundleError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise BundleError(f"{where}{SAMPLES_FILE} is damaged ({exc})") from None
    for key, arr in data.items():
        if arr.dtype.kind not in "fiu":
            raise BundleError(f"{where}{SAMPLES_FILE}: {key} is not numeric ({arr.dtype})")
    check_training_arrays(data, where)
    n = len(data["coords"])
    if td.get("n") != n:
        raise BundleError(f"{where}{SAMPLES_FILE} holds {n} samples, model.json says "
                          f"{td.get('n')!r}")
    for key in ("extra", "co_values"):
        if data[key].ndim != 2 or data[key].shape[0] != n:
            raise BundleError(f"{where}{SAMPLES_FILE}: {key} has shape {data[key].shape} for "
                              f"{n} samples")
    return data


def check_bundle_target(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a bundle folder that cannot be written: an existing file, or a
    parent that is a file (reliability report, row 277: found only after training)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputDataError(f"--model-dir {str(target)!r} is a file, not a folder: give a new "
                             "folder (or an existing bundle to replace) for the model bundle")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputDataError(f"--model-dir {str(target)!r}: {str(parent)!r} is a file, "
                                     "not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputDataError(f"--model-dir {str(target)!r}: cannot write in "
                                     f"{str(parent)!r} (permission denied)")
            break
    return target


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        if not target.is_dir():
            raise EngineIOError(f"{str(target)!r} exists and is not a directory")
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _jsonable_params(params: dict) -> dict:
    out = {}
    for key, value in params.items():
        if hasattr(value, "to_text"):
            value = value.to_text()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def read_model_json(directory: str | os.PathLike) -> dict:
    """The parsed ``model.json`` of a bundle, after the format checks.

    Raises
    ------
    BundleError
        Missing directory or file, invalid JSON, another format or a newer version.
    """
    path = Path(directory)
    if not path.is_dir():
        raise BundleError(f"model bundle {str(path)!r} not found (no such directory)")
    meta = path / MODEL_JSON
    if not meta.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {MODEL_JSON} is missing")
    try:
        raw = meta.read_bytes()
    except OSError as exc:
        raise BundleError(f"{str(meta)!r} is damaged: {exc}") from None
    doc = loads_checked(raw, f"{str(meta)!r} (damaged)", BundleError)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"{str(meta)!r} is not a GCNN-RNN model (format "
                          f"{doc.get('format') if isinstance(doc, dict) else None!r})")
    version = doc.get("format_version")
    if isinstance(version, int) and 1 <= version < OLDEST_READABLE:
        raise BundleError(
            f"model bundle {str(path)!r} was written by an older engine (format version "
            f"{version!r}, this engine reads versions {OLDEST_READABLE} to {FORMAT_VERSION}: "
            "the features changed); "
            "retrain the model"
        )
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        kind = "" if isinstance(version, int) else f" (a {type(version).__name__}, not a number)"
        raise BundleError(
            f"model bundle {str(path)!r} has format version {version!r}{kind}; this engine "
            f"reads version {FORMAT_VERSION} (retrain the model or update the plugin)"
        )
    return doc


def load_bundle(directory: str | os.PathLike, covariates: Sequence[str] | None = None,
                should_stop: StopFn | None = None):
    """Load a bundle written by :func:`save_bundle`.

    ``covariates`` replace the covariate raster paths stored in the bundle (same order and
    number); ``should_stop`` makes the member checksums cancellable. Member files must lie
    inside the bundle, stored paths must be local files and every number must be in range
    (:mod:`.bundle_checks`).

    Returns
    -------
    (HybridRegressor, dict)
        The fitted estimator and the parsed ``model.json``.

    Raises
    ------
    BundleError
        For a missing, damaged or incompatible bundle.
    """
    path = Path(directory)
    doc = read_model_json(path)
    validate_model_doc(path, doc)
    use_covariates(path, doc, covariates)
    verify_members(path, doc, should_stop)
    try:
        samples = _read_samples(path, doc, should_stop)
        return _restore(path, doc, samples), doc
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BundleError(
            f"model bundle {str(path)!r} is damaged or incomplete: {type(exc).__name__}: {exc}"
        ) from None


def _restore(path: Path, doc: dict, samples: dict):
    from ..features import CoFieldEncoding, FeatureConfig, Scaler
    from ..transforms import FittedTransform
    from ..variogram.serialise import model_from_dict
    from .base import Base
    from .config import ModelConfig, TrainConfig
    from .conformal import Calibration
    from .estimator import HybridRegressor
    from .train import TrainResult

    files = [member_file(path, i, entry)  # checked (and checksummed) by load_bundle
             for i, entry in enumerate(doc["members"])]
    if not files:
        raise BundleError(f"model bundle {str(path)!r} lists no ensemble members")
    if "network" in doc:  # format 4: the weights without Keras
        for file in files:
            check_member_file(file)
        weights, shapes = read_network(path, doc["network"])
    else:
        weights, shapes = _weights_from_members(files, int(doc["model_config"]["members"]))

    params = dict(doc["params"])
    for key in ("covariates", "co_fields"):
        params[key] = tuple(params.get(key) or ())
    est = HybridRegressor(**params)
    est.transform_ = FittedTransform.from_dict(doc["transform"])
    est.variogram_ = model_from_dict(doc["variogram"]["model"])
    est.feature_config_ = FeatureConfig.from_dict(doc["feature_config"])
    est.model_config_ = ModelConfig.from_dict(doc["model_config"])
    est.train_config_ = TrainConfig.from_dict(doc["train_config"])
    if len(files) != est.model_config_.members:
        raise BundleError(
            f"model bundle {str(path)!r} has {len(files)} member file(s) for an ensemble of "
            f"{est.model_config_.members}"
        )
    est.feature_names_ = doc["feature_names"]
    sc = doc["scalers"]
    est.sequence_scaler_ = Scaler.from_dict(sc["sequence"])
    est.static_scaler_ = Scaler.from_dict(sc["static"])
    est.target_scaler_ = Scaler.from_dict(sc["target"])
    est.coords_ = np.ascontiguousarray(samples["coords"], dtype=float)
    est.values_ = np.asarray(samples["values"], dtype=float)
    est.values_t_ = np.asarray(samples["values_transformed"], dtype=float)
    est.sample_extra_ = np.asarray(samples["extra"], dtype=float).reshape(len(est.coords_), -1)
    co = doc["co_fields"]
    est.co_encoding_ = CoFieldEncoding.from_dict(co["encoding"])
    est.co_values_ = np.asarray(samples["co_values"], dtype=float).reshape(len(est.coords_), -1)
    est.co_models_ = tuple(model_from_dict(m) for m in co["models"])
    est.calibration_ = Calibration.from_dict(doc["calibration"])
    est.shrinkage_ = float(doc.get("shrinkage", 1.0))
    est.gate_ = doc.get("gate")  # None in bundles written before the gate
    est.base_ = Base.from_dict(doc.get("base"))  # OK in bundles written before bases
    est.variogram_fit_ = doc["variogram"].get("fit")
    est.training_metrics_ = doc.get("metrics", {})
    tr = doc.get("training", {})
    est.train_result_ = TrainResult(
        history=tr.get("history", {}), best_epochs=tuple(tr.get("best_epochs", ())),
        best_val_losses=tuple(tr.get("best_val_losses", ())), epochs=int(tr.get("epochs", 0)),
        validation_member=np.zeros(0, dtype=np.int64), seconds=float(tr.get("seconds", 0.0)),
    )
    est.input_shapes_ = shapes
    est.weights_ = weights
    try:
        est._forward()  # the weights must fit the architecture model.json describes
    except ValueError as exc:
        raise BundleError(f"model bundle {str(path)!r}: {exc}") from None
    return est


def _weights_from_members(files: list[Path], members: int):
    """Weights and input shapes of a format 2 or 3 bundle, from its member files (Keras in
    safe mode)."""
    from .layers import CUSTOM_OBJECTS

    keras = require_safe_keras()
    singles = []
    for file in files:
        try:
            singles.append(keras.saving.load_model(file, custom_objects=CUSTOM_OBJECTS,
                                                   compile=False, safe_mode=True))
        except Exception as exc:
            raise BundleError(f"cannot load {str(file)!r}: it is damaged, not a Keras model "
                              f"file, or holds code safe mode refuses ({type(exc).__name__}: "
                              f"{exc})") from None
    seq_shape, static_shape = singles[0].input["sequence"].shape, singles[0].input["static"].shape
    shapes = (int(seq_shape[1]), int(seq_shape[2]), int(static_shape[1]))
    return _join_members(singles, members), shapes
