"""Fixtures of the reliability tests (issue 11); helpers live in ``reliability_helpers.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the tests import the helper module beside this file
    sys.path.insert(0, str(HERE))

from reliability_helpers import TINY, V  # noqa: E402

from gcnn_rnn.core.cli.main import main  # noqa: E402


@pytest.fixture(scope="session")
def cov_bundle(tmp_path_factory, meuse_gpkg, meuse_dist_tif):
    """A tiny trained bundle with one covariate raster (the distance to the river)."""
    path = tmp_path_factory.mktemp("bundle") / "model"
    code = main(["train", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--transform", "log", "--variogram", V, "--covariates", str(meuse_dist_tif),
                 *TINY, "--model-dir", str(path)])
    assert code == 0
    return path
