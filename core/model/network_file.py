"""The ensemble's weights as one binary file of a bundle (``network.npz``, format 4).

Prediction runs the network in NumPy (:mod:`.forward`), so it needs the weights, not Keras:
reading them from this file keeps TensorFlow out of ``predict`` (importing it took longer than
predicting 100,000 cells, and about 0.5 GB in every process and cluster worker). The member
``.keras`` files stay in the bundle for users who load a member in Keras, and are checked
(checksum, and that they hold only this engine's layers) but not deserialised.

Arrays ``w000``, ``w001``, ... are the batched model's weights in ``keras.Model.weights``
order (:attr:`HybridRegressor.weights_`), float32, read without pickles.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import BundleError
from ..progress import StopFn
from .bundle_checks import sha256_file, verified_file

NETWORK_FILE = "network.npz"
#: The Keras classes a member file of this engine is made of (its ``config.json``).
MEMBER_LAYERS = frozenset({
    "Functional", "InputLayer", "MemberTile", "GroupedConv1D", "GroupedBiLSTM", "GroupedDense",
    "GroupedConcatenate", "GroupedDropout", "Add",
})
_LAYER_MODULES = ("keras.layers", "gcnn_rnn.core.model.layers")
_OWN_MODULES = ("keras", "gcnn_rnn.core.model.layers")


def write_network(weights: list[np.ndarray], input_shapes: tuple[int, int, int],
                  path: Path) -> dict:
    """Write ``weights`` to ``path``; returns the ``model.json`` entry."""
    with open(path, "wb") as fh:
        np.savez(fh, **{f"w{i:03d}": np.ascontiguousarray(w, dtype=np.float32)
                        for i, w in enumerate(weights)})
    return {"file": path.name, "sha256": sha256_file(path), "arrays": len(weights),
            "input_shapes": [int(v) for v in input_shapes]}


def read_network(bundle: Path, entry: dict, should_stop: StopFn | None = None
                 ) -> tuple[list[np.ndarray], tuple[int, int, int]]:
    """The weights and input shapes of a format-4 bundle, checked: the file's checksum,
    every array present, float and finite."""
    where = f"model bundle {str(bundle)!r}: {NETWORK_FILE}"
    file = verified_file(bundle, NETWORK_FILE, entry, "the network weights", should_stop)
    count, shapes = entry.get("arrays"), entry.get("input_shapes")
    if not (isinstance(count, int) and 0 < count < 1000 and isinstance(shapes, list)
            and len(shapes) == 3 and all(isinstance(v, int) and 0 < v < 1_000_000
                                         for v in shapes)):
        raise BundleError(f"{where}: model.json describes it wrongly ({entry!r})")
    try:
        with np.load(file, allow_pickle=False) as npz:
            names = [f"w{i:03d}" for i in range(count)]
            if sorted(npz.files) != names:
                raise BundleError(f"{where} holds {len(npz.files)} arrays, model.json says "
                                  f"{count}")
            weights = [np.asarray(npz[n]) for n in names]
    except BundleError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise BundleError(f"{where} is damaged ({exc})") from None
    for i, w in enumerate(weights):
        if w.dtype != np.float32 or not np.isfinite(w).all():
            raise BundleError(f"{where}: array {i} is not finite float32")
    return weights, (shapes[0], shapes[1], shapes[2])


def check_member_file(file: Path) -> None:
    """Refuse a member file that is not a Keras archive of this engine's layers (a file
    crafted to hold code, e.g. a ``Lambda`` layer): its ``config.json`` is read as JSON, never
    deserialised."""
    try:
        with zipfile.ZipFile(file) as zf:
            config = json.loads(zf.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"cannot load {str(file)!r}: it is damaged or not a Keras model "
                          f"file ({type(exc).__name__}: {exc})") from None
    for node in _dicts(config):
        cls, module = node.get("class_name"), node.get("module")
        foreign = isinstance(module, str) and not module.startswith(_OWN_MODULES)
        layer = module in _LAYER_MODULES
        if foreign or cls == "__lambda__" or (layer and cls not in MEMBER_LAYERS):
            raise BundleError(f"cannot load {str(file)!r}: it holds a {cls!r} from "
                              f"{module!r}, which no member of this engine has (a model file "
                              "that may hold code is refused)")


def _dicts(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _dicts(v)
