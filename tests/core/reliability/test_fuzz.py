"""Property tests: the variogram text parser and the V.json and model.json readers give a
result or a clean ``InputDataError`` for any input, never another exception."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.model.bundle import read_model_json
from gcnn_rnn.core.model.bundle_checks import use_covariates, validate_model_doc
from gcnn_rnn.core.variogram.io import load_variogram, read_variogram_json
from gcnn_rnn.core.variogram.models import VariogramModel
from gcnn_rnn.core.variogram.serialise import parse_model

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

#: Pieces of the text grammar, so that most examples get deep into the parser.
TOKENS = st.sampled_from(["0.5", "1e300", "-1", "nan", "inf", "0", "Nug", "Sph", "Exp", "Gau",
                          "Mat", "Pow", "Ste", "Hol", "Lin", "Cub", "Foo", "(", ")", ",", "+",
                          "*", "=", "anis", "nu", "alpha", "kappa", "range", " ", "900", "1e-300",
                          "(45, 0.5)", "(0, 0, 0, 0.5, 0.2)", "1e999", "\u00e9", "\x00"])
TEXTS = st.one_of(st.text(max_size=200), st.lists(TOKENS, max_size=30).map("".join))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(TEXTS)
def test_variogram_text(text):
    try:
        model = parse_model(text)
    except InputDataError:
        return
    assert isinstance(model, VariogramModel)
    assert parse_model(model.to_text()) == model  # whatever is accepted round-trips


def _structure():
    return st.fixed_dictionaries({
        "model": st.sampled_from(["nug", "sph", "exp", "gau", "mat", "pow", "ste", "x"]) | JSON,
        "psill": st.floats() | JSON, "range": st.floats() | JSON, "extra": st.none() | JSON})


VJSON = st.one_of(
    JSON,
    st.fixed_dictionaries({
        "format": st.just("gcnn-rnn-variogram") | JSON,
        "version": st.just(1) | JSON,
        "model": st.fixed_dictionaries({
            "structures": st.lists(_structure(), max_size=4) | JSON,
            "anisotropy": st.none() | st.dictionaries(
                st.sampled_from(["azimuth", "ratio", "dip", "plunge", "ratio_vertical", "x"]),
                st.floats() | JSON, max_size=5) | JSON}) | JSON,
    }),
)


@FUZZ
@given(VJSON)
def test_variogram_file(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "V.json"
        path.write_text(json.dumps(doc, allow_nan=True))
        try:
            model = load_variogram(str(path))
        except InputDataError:
            return
        assert isinstance(model, VariogramModel)
        assert read_variogram_json(path)["format"] == "gcnn-rnn-variogram"


@FUZZ
@given(st.binary(max_size=300))
def test_variogram_file_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "V.json"
        path.write_bytes(raw)
        try:
            load_variogram(str(path))
        except InputDataError:
            pass


@pytest.fixture(scope="module")
def model_doc(cov_bundle):
    return json.loads((cov_bundle / "model.json").read_text())


def _paths(doc, prefix=()):
    """Every (path to a leaf or container) of a JSON document, shallow first."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, prefix + (i,))
    return out


@FUZZ
@given(data=st.data())
def test_model_json(model_doc, tmp_path_factory, data):
    """One to three values anywhere in a real model.json replaced by arbitrary JSON."""
    doc = copy.deepcopy(model_doc)
    paths = [p for p in _paths(doc) if p and p[0] != "training"]
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths))
        node = doc
        try:
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = data.draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "model.json").write_text(json.dumps(doc, allow_nan=True))
    try:
        parsed = read_model_json(folder)
        validate_model_doc(folder, parsed)
        use_covariates(folder, parsed, None)
    except InputDataError:
        return
    # accepted: then every number the prediction uses is finite
    assert math.isfinite(parsed["calibration"]["quantile"]) and parsed["calibration"]["quantile"] >= 0
    # (format 3 keeps the samples in a checksummed file, checked when it is read)
    if "values" in parsed["training_data"]:
        assert all(math.isfinite(v) for v in parsed["training_data"]["values"])
