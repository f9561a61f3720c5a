"""R's gstat as a test oracle: run an R script on data written to a temporary folder.

The tests of this folder compare the engine with gstat (the project's geostatistical
reference) on identical data, models and neighbourhoods. Each test module builds one R script
(gstat is slow to start, about a second), runs it once with :func:`run_r` and compares the
tables it wrote.

R, gstat and sp are required, not optional: ``make test`` installs them (``r-base-core
r-cran-gstat r-cran-sp``), so when they are missing :func:`require_gstat` fails the tests with
a message saying how to install them instead of skipping.

Numbers cross the language boundary as CSV text written with 17 significant digits, so they
round-trip exactly (to within R's decimal conversion, well below the tolerances used).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gcnn_rnn.core.variogram.models import VariogramModel

INSTALL_HINT = (
    "R's gstat is the reference oracle of tests/core/oracle and is required: install it with "
    "`apt-get install r-base-core r-cran-gstat r-cran-sp` (`make system` does it)"
)

#: Our model names -> gstat's ``vgm()`` names (``ste`` is gstat's ``Exc``). gstat has no
#: cubic model, so ``cub`` cannot be checked against it.
GSTAT_NAMES = {
    "nug": "Nug",
    "sph": "Sph",
    "exp": "Exp",
    "gau": "Gau",
    "mat": "Mat",
    "ste": "Exc",
    "lin": "Lin",
    "hol": "Hol",
    "pow": "Pow",
}

_PRELUDE = r"""
suppressPackageStartupMessages({library(sp); library(gstat)})
.dir <- commandArgs(trailingOnly = TRUE)[1]
IN <- function(name) read.csv(file.path(.dir, "in", paste0(name, ".csv")))
OUT <- function(df, name) {
  df <- as.data.frame(df)
  for (col in names(df)) if (is.numeric(df[[col]])) df[[col]] <- sprintf("%.17g", df[[col]])
  write.csv(df, file.path(.dir, "out", paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
}
"""


@functools.cache
def _check_gstat() -> str | None:
    """None when ``Rscript`` loads gstat and sp, else the reason it cannot."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not on PATH"
    try:
        proc = subprocess.run(
            [rscript, "-e", "suppressPackageStartupMessages({library(sp); library(gstat)})"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Rscript failed to run: {exc}"
    if proc.returncode != 0:
        return f"R cannot load gstat/sp: {proc.stderr.strip()[-500:]}"
    return None


def require_gstat() -> str:
    """Path of ``Rscript``; fails the calling test (never skips) if R or gstat is missing."""
    reason = _check_gstat()
    if reason is not None:
        pytest.fail(f"{reason}. {INSTALL_HINT}", pytrace=False)
    return str(shutil.which("Rscript"))


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, float_format="%.17g")


def run_r(
    script: str,
    inputs: Mapping[str, pd.DataFrame | Mapping[str, np.ndarray]],
    timeout: float = 300.0,
) -> dict[str, pd.DataFrame]:
    """Run an R script with gstat loaded and return the tables it wrote.

    Parameters
    ----------
    script : str
        R code. It reads an input table with ``IN("name")`` (a data.frame) and writes a
        result with ``OUT(df, "name")`` (numbers written with 17 significant digits).
    inputs : mapping of str to DataFrame or dict of arrays
        Tables written as ``in/<name>.csv`` before the script runs.
    timeout : float
        Seconds allowed to R.

    Returns
    -------
    dict of str to DataFrame
        Every table the script wrote, by name.
    """
    rscript = require_gstat()
    with tempfile.TemporaryDirectory(prefix="gstat_oracle_") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "out").mkdir()
        for name, table in inputs.items():
            _write_csv(pd.DataFrame(table), root / "in" / f"{name}.csv")
        (root / "script.R").write_text(_PRELUDE + script, encoding="utf-8")
        env = dict(os.environ, LC_ALL="C", OMP_NUM_THREADS="1")
        proc = subprocess.run(
            [rscript, "--vanilla", str(root / "script.R"), str(root)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"the gstat oracle script failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return {p.stem: pd.read_csv(p) for p in sorted((root / "out").glob("*.csv"))}


def _num(x: float) -> str:
    return repr(float(x))


def r_vgm(model: VariogramModel) -> str:
    """The R expression building the same model with gstat's ``vgm()``.

    Each structure becomes one ``vgm(..., add.to = ...)`` term; the shared anisotropy is given
    to every structure as ``anis = c(azimuth, ratio)`` in 2D or ``c(azimuth, dip, plunge,
    ratio, ratio_vertical)`` in 3D (gstat's and our conventions are both GSLIB's), angles
    taken modulo 360 as gstat requires (a dip of -35 is given as 325). Our power
    model ``psill * (h / a)**alpha`` is gstat's ``Pow`` with partial sill ``psill / a**alpha``
    and "range" ``alpha``.
    """
    anis = ""
    a = model.anisotropy
    if a is not None:
        # gstat wants every angle in [0, 360)
        ang = [v % 360.0 for v in (a.azimuth, a.dip, a.plunge)]
        vals = (*ang, a.ratio, a.ratio_vertical) if a.is_3d else (ang[0], a.ratio)
        anis = ", anis = c(" + ", ".join(_num(v) for v in vals) + ")"
    expr = None
    for s in model.structures:
        if s.model not in GSTAT_NAMES:
            raise ValueError(f"gstat has no equivalent of the {s.model!r} model")
        name = GSTAT_NAMES[s.model]
        if s.model == "nug":
            term = f'vgm({_num(s.psill)}, "Nug", 0'
        elif s.model == "pow":
            term = f'vgm({_num(s.psill / s.range_**s.extra)}, "Pow", {_num(s.extra)}'
        else:
            term = f'vgm({_num(s.psill)}, "{name}", {_num(s.range_)}'
            if s.model in ("mat", "ste"):
                term += f", kappa = {_num(s.extra)}"
        if s.model != "nug":
            term += anis
        term += ")" if expr is None else f", add.to = {expr})"
        expr = term
    return str(expr)


def untied(coords: np.ndarray, targets: np.ndarray, model: VariogramModel, neighbours: int,
           max_distance: float | None = None) -> np.ndarray:
    """Mask of the targets whose ``neighbours`` nearest samples are unambiguous: no tie at the
    k-th place (or at ``max_distance``), where either sample is a correct choice and gstat and
    the engine may break the tie differently. All true for a global neighbourhood (0)."""
    if not neighbours:
        return np.ones(len(targets), dtype=bool)
    red_c, red_t = model.reduce(coords), model.reduce(targets)
    d = np.sqrt(((red_t[:, None, :] - red_c[None, :, :]) ** 2).sum(-1))
    d.sort(axis=1)
    k = neighbours
    tied = np.isclose(d[:, k - 1], d[:, k], rtol=1e-12, atol=0.0)
    if max_distance is not None:
        tied |= np.isclose(d[:, k - 1], max_distance, rtol=1e-12, atol=0.0)
    return ~tied
