"""Fixtures of the gstat oracle tests: the Meuse data, and R/gstat required (never skipped)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[2] / "sample_data"
if str(HERE) not in sys.path:  # the tests import the helper module beside this file
    sys.path.insert(0, str(HERE))

from gstat_oracle import require_gstat  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def gstat_required() -> None:
    """Every oracle test needs R: fail (with the install hint) rather than skip without it."""
    require_gstat()


@pytest.fixture(scope="session")
def meuse() -> pd.DataFrame:
    """The 155 Meuse samples (EPSG:28992) with ``logzinc = log(zinc)``."""
    df = pd.read_csv(SAMPLE / "meuse.csv")[["x", "y", "zinc", "dist", "elev"]].copy()
    df["logzinc"] = np.log(df["zinc"].to_numpy(dtype=float))
    return df


@pytest.fixture(scope="session")
def meuse_grid() -> pd.DataFrame:
    """The 3103 nodes of the Meuse 40 m grid (x, y)."""
    return pd.read_csv(SAMPLE / "meuse_grid.csv")[["x", "y"]].astype(float)
