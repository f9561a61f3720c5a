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


@pytest.fixture(autouse=True)
def _main_leaves_no_global_state():
    """In-process ``main()`` calls must undo what a CLI session changes (package logger,
    warnings capture, signal handlers, stdout): checked after every test."""
    import logging
    import signal
    import sys

    log = logging.getLogger("gcnn_rnn")
    before = (log.handlers[:], log.level, log.propagate,
              {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}, sys.stdout)
    yield
    after = (log.handlers[:], log.level, log.propagate,
             {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}, sys.stdout)
    assert after == before, "a CLI session left global state behind"
