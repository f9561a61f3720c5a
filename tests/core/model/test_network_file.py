"""The weights of a format-4 bundle in ``network.npz`` (issue 14): ``predict`` loads a bundle
without Keras or TensorFlow, with the weights the member files hold; format-3 bundles still
load through Keras; a damaged or foreign weights file is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from gcnn_rnn.core.errors import BundleError
from gcnn_rnn.core.model.bundle import _weights_from_members, load_bundle
from gcnn_rnn.core.model.bundle_checks import sha256_file
from gcnn_rnn.core.model.network_file import NETWORK_FILE


def test_network_file_holds_the_member_files_weights(fitted, saved):
    est, doc = load_bundle(saved)
    assert doc["network"]["file"] == NETWORK_FILE
    files = [saved / m["file"] for m in doc["members"]]
    keras_weights, shapes = _weights_from_members(files, fitted.model_config_.members)
    assert shapes == est.input_shapes_ == fitted.input_shapes_
    assert len(keras_weights) == len(est.weights_) == len(fitted.weights_)
    for a, b, c in zip(est.weights_, keras_weights, fitted.weights_, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_predict_loads_a_bundle_without_tensorflow(saved, meuse_points, targets, tmp_path):
    xy = targets(meuse_points, 12, seed=4)
    np.save(tmp_path / "xy.npy", xy)
    code = (
        "import sys, numpy as np\n"
        "from gcnn_rnn.core.model.bundle import load_bundle\n"
        f"est, _ = load_bundle({str(saved)!r})\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, est.predict(np.load({str(tmp_path / 'xy.npy')!r})))\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
    est, _ = load_bundle(saved)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), est.predict(xy))


def test_a_format_3_bundle_loads_its_weights_through_keras(fitted, saved, tmp_path, edit_bundle,
                                                           meuse_points, targets):
    def as_format_3(bundle, doc):
        del doc["network"]
        doc["format_version"] = 3
        os.remove(bundle / NETWORK_FILE)

    old = edit_bundle(saved, tmp_path / "v3", as_format_3)
    xy = targets(meuse_points, 12, seed=2)
    loaded, _ = load_bundle(old)
    np.testing.assert_array_equal(loaded.predict(xy), fitted.predict(xy))


def test_damaged_or_foreign_weights_are_refused(fitted, saved, tmp_path, edit_bundle):
    def with_network(name: str, arrays: dict, said: int | None = None):
        """A copy whose network.npz holds ``arrays``, checksummed, ``said`` arrays listed."""
        def edit(bundle, doc):
            with open(bundle / NETWORK_FILE, "wb") as fh:
                np.savez(fh, **arrays)
            doc["network"]["sha256"] = sha256_file(bundle / NETWORK_FILE)
            doc["network"]["arrays"] = len(arrays) if said is None else said
        return edit_bundle(saved, tmp_path / name, edit)

    good = {f"w{i:03d}": w for i, w in enumerate(fitted.weights_)}
    # a checksum that does not match
    def append_a_byte(bundle, doc):
        with open(bundle / NETWORK_FILE, "ab") as fh:
            fh.write(b"x")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(edit_bundle(saved, tmp_path / "sum", append_a_byte))
    # weights of another architecture (a recurrent kernel a row short), consistently checksummed
    wrong = dict(good)
    wrong["w003"] = np.asarray(good["w003"])[:, :-1]
    with pytest.raises(BundleError, match="architecture"):
        load_bundle(with_network("a", wrong))
    # a non-finite weight
    nan = dict(good)
    nan["w000"] = np.full_like(good["w000"], np.nan)
    with pytest.raises(BundleError, match="finite"):
        load_bundle(with_network("b", nan))
    # an array missing
    short = dict(list(good.items())[:-1])
    with pytest.raises(BundleError, match="arrays"):
        load_bundle(with_network("c", short, said=len(good)))
