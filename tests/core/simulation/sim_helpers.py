"""Helpers of the simulation tests: a Gaussian field's samples, normal scores of the
realisations, the histogram checks, the Meuse grid and an in-process ``simulate``."""

from __future__ import annotations

import io
from contextlib import redirect_stderr

import numpy as np
import pytest

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.variogram.models import parse_model

MODEL = parse_model("0.05 Nug + 0.95 Sph(12)")
RANGE = 12.0
#: The normal-score variogram of the Meuse ``simulate`` runs.
VG = "0.1 Nug + 0.9 Sph(900)"
GIB = 1024**3


def field_samples(n: int, side: float, seed: int, model=MODEL) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of one Gaussian field with the model's covariance (exact, by Cholesky)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, side, size=(n, 2))
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    cov = model.sill - model.gamma(d)
    z = np.linalg.cholesky(cov + 1e-10 * np.eye(n)) @ rng.standard_normal(n)
    return xy, z


def scores(res) -> np.ndarray:
    """The realisations in normal scores."""
    return res.transform.forward(res.realisations.astype(float))


def check_normal_scores(res, y: np.ndarray, free: np.ndarray) -> None:
    """The recorded score moments are those of the simulated (``free``) nodes, and the
    scores ``y`` look standard normal: mean, variance, 2.5 % and 97.5 % quantiles."""
    np.testing.assert_allclose(res.score_mean, y[:, free].mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(res.score_var, y[:, free].var(axis=1), rtol=1e-4)
    assert abs(float(y.mean())) < 0.15
    assert float(y.var()) == pytest.approx(1.0, abs=0.15)
    lo, hi = np.quantile(y, [0.025, 0.975])
    assert lo == pytest.approx(-1.96, abs=0.3) and hi == pytest.approx(1.96, abs=0.3)


def meuse_grid(meuse_gpkg, cell: float) -> tuple[Grid, int]:
    """The grid of the Meuse samples' extent at ``cell`` and the number of samples."""
    pts = read_points(meuse_gpkg, "zinc", layer="meuse")
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    return Grid.from_extent((lo[0], lo[1], hi[0], hi[1]), cell), pts.n


def simulate_meuse(meuse_gpkg, out, *flags) -> tuple[int, str]:
    """``simulate`` of Meuse zinc with :data:`VG` (seed 3, one thread) in process: exit code
    and what it wrote to stderr."""
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["simulate", "--quiet", "--input", str(meuse_gpkg), "--layer", "meuse",
                     "--field", "zinc", "--variogram", VG, "--seed", "3", "--threads", "1",
                     *map(str, flags), "--output-dir", str(out)])
    return code, err.getvalue()
