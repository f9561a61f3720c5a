"""Property tests: kriging is invariant to translation, rotation (isotropic) and order."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.variogram.models import Structure, VariogramModel

MODEL = VariogramModel((Structure("nug", 0.1), Structure("exp", 1.0, 40.0)))
CFG = KrigingConfig(neighbours=8)


@st.composite
def configurations(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(3, 25))
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 100, size=(n, 2))
    values = rng.normal(size=n)
    targets = rng.uniform(-20, 120, size=(5, 2))
    return coords, values, targets


def _close(a, b):
    np.testing.assert_allclose(a.estimate, b.estimate, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(a.variance, b.variance, atol=1e-8, rtol=1e-8)


@settings(max_examples=25, deadline=None)
@given(configurations(), st.floats(-1e5, 1e5), st.floats(-1e5, 1e5))
def test_translation_invariance(cfg, dx, dy):
    coords, values, targets = cfg
    shift = np.array([dx, dy])
    _close(krige(coords, values, targets, MODEL, CFG),
           krige(coords + shift, values, targets + shift, MODEL, CFG))


@settings(max_examples=25, deadline=None)
@given(configurations(), st.floats(0, 2 * math.pi))
def test_rotation_invariance_isotropic(cfg, angle):
    coords, values, targets = cfg
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    _close(krige(coords, values, targets, MODEL, CFG),
           krige(coords @ rot.T, values, targets @ rot.T, MODEL, CFG))


@settings(max_examples=25, deadline=None)
@given(configurations(), st.integers(0, 2**32 - 1))
def test_sample_order_invariance(cfg, seed):
    coords, values, targets = cfg
    perm = np.random.default_rng(seed).permutation(len(values))
    _close(krige(coords, values, targets, MODEL, CFG),
           krige(coords[perm], values[perm], targets, MODEL, CFG))


@settings(max_examples=25, deadline=None)
@given(configurations(), st.floats(-100, 100), st.floats(0.01, 100))
def test_affine_value_equivariance(cfg, a, b):
    coords, values, targets = cfg
    base = krige(coords, values, targets, MODEL, CFG)
    scaled_model = VariogramModel(tuple(
        Structure(s.model, s.psill * b * b, s.range_) for s in MODEL.structures))
    res = krige(coords, a + b * values, targets, scaled_model, CFG)
    np.testing.assert_allclose(res.estimate, a + b * base.estimate, atol=1e-7, rtol=1e-8)
    np.testing.assert_allclose(res.variance, b * b * base.variance, atol=1e-7, rtol=1e-8)
