"""Shared fixtures for the engine tests (no QGIS here)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def meuse_gpkg() -> Path:
    return SAMPLE / "meuse.gpkg"


@pytest.fixture(scope="session")
def meuse_csv() -> Path:
    return SAMPLE / "meuse.csv"


@pytest.fixture(scope="session")
def meuse_dist_tif() -> Path:
    return SAMPLE / "meuse_dist.tif"
