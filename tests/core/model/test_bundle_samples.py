"""The training samples of a bundle in a binary columnar file (issue 14): exact round trip,
size proportional to the samples, containment and checksum, and format-2 bundles (samples as
JSON lists) still load."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gcnn_rnn.core.errors import BundleError
from gcnn_rnn.core.model.bundle import SAMPLES_FILE, load_bundle


def test_samples_file_holds_the_exact_samples_and_grows_as_the_data(fitted, saved):
    doc = json.loads((saved / "model.json").read_text())
    entry = doc["training_data"]
    assert entry["file"] == SAMPLES_FILE and entry["n"] == 155 and entry["dims"] == 2
    assert "coords" not in entry and "values" not in doc["co_fields"]  # nothing inline
    with np.load(saved / SAMPLES_FILE, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["coords"], fitted.coords_)
        np.testing.assert_array_equal(npz["values_transformed"], fitted.values_t_)
    # 8 bytes a number (x, y, value, transformed value) plus a fixed header per array: the
    # file grows as the binary data, not as their decimal text
    numbers = 155 * 4
    size = (saved / SAMPLES_FILE).stat().st_size
    assert numbers * 8 <= size <= numbers * 8 + 5 * 400


def test_a_format_2_bundle_with_inline_samples_still_loads(fitted, saved, tmp_path, edit_bundle,
                                                           meuse_points, targets):
    def inline_samples(bundle, doc):  # as format 2 wrote them
        with np.load(bundle / SAMPLES_FILE) as npz:
            doc["training_data"] = {k: npz[k].tolist() for k in
                                    ("coords", "values", "values_transformed", "extra")}
            doc["co_fields"]["values"] = npz["co_values"].tolist()
        doc["format_version"] = 2
        os.remove(bundle / SAMPLES_FILE)

    old = edit_bundle(saved, tmp_path / "v2", inline_samples)
    xy = targets(meuse_points, 12, seed=2)
    loaded, _ = load_bundle(old)
    np.testing.assert_array_equal(loaded.predict(xy), fitted.predict(xy))


def test_a_samples_file_outside_or_linked_or_missing_is_refused(saved, tmp_path, edit_bundle):
    for name, edit, words in (
        ("outside", lambda b, d: d["training_data"].update(file="/tmp/x.npz"), "must be the file"),
        ("missing", lambda b, d: os.remove(b / SAMPLES_FILE), "incomplete"),
        ("linked", lambda b, d: (os.replace(b / SAMPLES_FILE, tmp_path / "real.npz"),
                                 os.symlink(tmp_path / "real.npz", b / SAMPLES_FILE)),
         "symbolic link"),
        ("count", lambda b, d: d["training_data"].update(n=154), "says 154"),
    ):
        with pytest.raises(BundleError, match=words):
            load_bundle(edit_bundle(saved, tmp_path / name, edit))
