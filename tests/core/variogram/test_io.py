"""V.json: document shape, write/read, load_variogram from a file or text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcnn_rnn.core.errors import InputDataError, UnknownModelError
from gcnn_rnn.core.variogram.empirical import directional_variograms
from gcnn_rnn.core.variogram.fit import fit_variogram
from gcnn_rnn.core.variogram.io import (
    load_variogram,
    read_variogram_json,
    variogram_document,
    write_variogram_json,
)
from gcnn_rnn.core.variogram.models import parse_model


def _doc():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (80, 2))
    z = np.sin(xy[:, 0] / 20) + rng.normal(scale=0.1, size=80)
    omni, d0, d90 = directional_variograms(xy, z, [None, 0.0, 90.0])
    fit = fit_variogram(omni, ["sph", "exp"])
    doc = variogram_document(
        fit.model,
        omni=omni,
        directions={0.0: d0, 90.0: d90},
        fit=fit,
        field="z",
        transform="none",
        crs="EPSG:32632",
        dims=2,
        n=80,
    )
    return fit, omni, doc


def test_document_write_read_load(tmp_path):
    fit, omni, doc = _doc()
    path = write_variogram_json(tmp_path / "sub" / "v.json", doc)
    back = read_variogram_json(path)
    assert back == json.loads(json.dumps(doc))
    assert back["format"] == "gcnn-rnn-variogram" and back["version"] == 1
    assert back["text"] == fit.model.to_text()
    assert back["experimental"]["omni"]["npairs"] == omni.npairs.tolist()
    assert set(back["experimental"]["directions"]) == {"0", "90"}
    assert back["fit"]["candidates"][0]["sse"] == fit.candidates[0].sse
    assert load_variogram(str(path)) == fit.model
    assert load_variogram(path) == fit.model
    assert not list((tmp_path / "sub").glob(".*tmp"))


def test_unbounded_model_is_valid_json(tmp_path):
    m = parse_model("0.1 Nug + 0.01 Pow(1, alpha=1.5)")
    path = write_variogram_json(tmp_path / "p.json", variogram_document(m))
    doc = json.loads(path.read_text())  # strict JSON: no Infinity token
    assert doc["sill"] == "inf" and doc["experimental"] is None
    assert load_variogram(path) == m


def test_load_from_text():
    assert load_variogram("0.0507 Nug + 0.5906 Sph(897)").sill == pytest.approx(0.6413)
    with pytest.raises(InputDataError, match="auto"):
        load_variogram("auto")
    with pytest.raises(UnknownModelError):
        load_variogram("1 Xyz(3)")


def test_bad_files(tmp_path):
    with pytest.raises(InputDataError, match="not found"):
        load_variogram(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputDataError, match="cannot read"):
        load_variogram(str(bad))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something", "model": {}}))
    with pytest.raises(InputDataError, match="not a gcnn-rnn variogram"):
        load_variogram(str(other))
    newer = tmp_path / "newer.json"
    _, _, doc = _doc()
    newer.write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(InputDataError, match="version 99"):
        load_variogram(str(newer))
