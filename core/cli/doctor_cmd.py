"""``gcnn-rnn doctor``: versions of everything the engine uses, and whether a GPU is seen."""

from __future__ import annotations

import argparse
import importlib
import platform
import sys

from .. import __version__
from .session import Session

NAME = "doctor"
HELP = "print versions of the engine's libraries and whether TensorFlow and a GPU are available"

PACKAGES = (
    "numpy", "scipy", "pandas", "geopandas", "shapely", "pyproj", "rasterio", "matplotlib",
    "tqdm", "sklearn", "numba",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-tensorflow", action="store_true",
                        help="skip importing TensorFlow (slow to import)")
    parser.add_argument("--warmup", action="store_true",
                        help="also compile the kernels ahead of time (as `gcnn-rnn warmup`; "
                        "the set-up dialog does it after installing the engine)")


def _version(name: str) -> str | None:
    try:
        module = importlib.import_module(name)
    except Exception:
        return None
    return str(getattr(module, "__version__", "unknown"))


def tensorflow_status() -> dict:
    """Whether TensorFlow imports, its version and the GPUs it sees."""
    try:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
    except Exception as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}", "gpus": []}
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    import keras

    return {"available": True, "version": tf.__version__, "keras": keras.__version__, "gpus": gpus}


def run(args: argparse.Namespace, session: Session) -> dict:
    versions = {"gcnn_rnn": __version__, "python": platform.python_version()}
    missing = []
    for name in PACKAGES:
        v = _version(name)
        versions[name] = v
        if v is None:
            missing.append(name)
    try:
        import rasterio

        versions["gdal"] = rasterio.__gdal_version__
    except Exception:
        versions["gdal"] = None
    tf = {"available": None} if args.no_tensorflow else tensorflow_status()
    ok = not missing
    warmup = None
    if args.warmup and ok:
        from ..warmup import warm_up

        warmup = warm_up(session.progress)
        session.info(f"kernels compiled or loaded from the cache in {warmup['seconds']:.1f} s")
    if missing:
        session.log("warning", f"missing engine packages: {', '.join(missing)}")
    if tf.get("available") is False:
        session.log("warning", "TensorFlow is not available: the hybrid model cannot run "
                    f"({tf.get('error')}); install the engine's 'dl' extra")
    return {
        "ok": ok,
        "executable": sys.executable,
        "platform": platform.platform(),
        "versions": versions,
        "tensorflow": tf,
        "gpu": bool(tf.get("gpus")),
        "warmup": warmup,
    }
