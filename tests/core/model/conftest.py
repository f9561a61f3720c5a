"""Shared fixtures of the hybrid-model tests: a tiny, fast configuration and a fitted model."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: A deliberately tiny network and schedule: the tests check behaviour, not accuracy.
TINY = {
    "ensemble": 2,
    "epochs": 4,
    "patience": 3,
    "neighbours": 8,
    "kriging_neighbours": 16,
    "batch_size": 64,
    "model_options": {"conv_filters": (8,), "lstm_units": 6, "static_units": 8,
                      "head_units": (8,)},
}
VG = "0.0507 Nug + 0.5906 Sph(897)"


@pytest.fixture(scope="session")
def meuse_points(meuse_gpkg):
    from gcnn_rnn.core.io import read_points

    return read_points(meuse_gpkg, "zinc", layer="meuse", extra_fields=("soil", "elev"))


@pytest.fixture(scope="session")
def tiny():
    """Keyword arguments of a tiny :class:`HybridRegressor`."""
    return dict(TINY)


@pytest.fixture(scope="session")
def vg():
    return VG


@pytest.fixture(scope="session")
def targets():
    return grid_targets


@pytest.fixture(scope="session")
def fitted(meuse_points):
    """A tiny hybrid model fitted on log zinc (session-wide: training costs seconds)."""
    from gcnn_rnn.core.model.estimator import HybridRegressor

    est = HybridRegressor(transform="log", variogram=VG, seed=3, **TINY)
    return est.fit(meuse_points.coords, meuse_points.values)


def grid_targets(points, n: int = 40, seed: int = 0) -> np.ndarray:
    """Random targets inside the samples' bounding box (never on a sample)."""
    rng = np.random.default_rng(seed)
    lo, hi = points.coords.min(axis=0), points.coords.max(axis=0)
    return lo + rng.random((n, 2)) * (hi - lo) + 0.5


@pytest.fixture(scope="session")
def saved(fitted, tmp_path_factory):
    """``fitted`` saved as a bundle (tests change copies of it: :func:`edited_bundle`)."""
    from gcnn_rnn.core.model.bundle import save_bundle

    return save_bundle(fitted, tmp_path_factory.mktemp("bundle") / "m")


@pytest.fixture(scope="session")
def edit_bundle():
    return edited_bundle


def edited_bundle(bundle: Path, copy: Path, edit: Callable[[Path, dict], object]) -> Path:
    """A copy of ``bundle`` at ``copy`` after ``edit(copy, doc)`` changed its files and its
    parsed ``model.json`` (written back)."""
    shutil.copytree(bundle, copy)
    doc = json.loads((copy / "model.json").read_text())
    edit(copy, doc)
    (copy / "model.json").write_text(json.dumps(doc))
    return copy
