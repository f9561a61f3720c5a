"""Paths and helpers shared by the QGIS tests (imported by conftest.py and the tests).

Importing this module fixes ``sys.path``: the repository root (the plugin folder, not named
``gcnn_rnn``) is removed, because its ``processing/`` would shadow QGIS's own ``processing``
package, and a temporary plugins folder with a ``gcnn_rnn`` symlink to the root is put first
(the same folder serves as ``QGIS_PLUGINPATH`` for ``qgis_process.bin``).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO / "sample_data"
#: The bundled Meuse samples as a QGIS layer source.
MEUSE = f"{SAMPLE_DATA / 'meuse.gpkg'}|layername=meuse"
ARTIFACTS = REPO / "tests" / "artifacts"

sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != REPO]
PLUGINS_DIR = Path(tempfile.mkdtemp(prefix="gcnn_rnn_plugins_"))
(PLUGINS_DIR / "gcnn_rnn").symlink_to(REPO, target_is_directory=True)
sys.path.insert(0, str(PLUGINS_DIR))

if not os.environ.get("GCNN_RNN_PYTHON") and (REPO / ".venv" / "bin" / "python").exists():
    os.environ["GCNN_RNN_PYTHON"] = str(REPO / ".venv" / "bin" / "python")
ENGINE_PYTHON = os.environ.get("GCNN_RNN_PYTHON", "")


def engine_has(command: str) -> bool:
    """Whether the engine in ``GCNN_RNN_PYTHON`` has the CLI subcommand ``command``."""
    if not ENGINE_PYTHON:
        return False
    return (REPO / "core" / "cli" / f"{command}_cmd.py").exists()


def needs_engine(*commands: str):
    """Marks tests that run engine ``commands``: a missing engine or command FAILS them (make
    test always provides the engine; a silent skip would hide a broken set-up)."""

    def mark(test):
        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            missing = [c for c in commands if not engine_has(c)]
            if missing:
                pytest.fail(f"engine command(s) {missing} unavailable: set GCNN_RNN_PYTHON "
                            "to the engine's python (make test-qgis does)")
            return test(*args, **kwargs)

        return wrapper

    return mark


def engine_cli(command: str, args: list[str], timeout: float = 600) -> dict:
    """Run ``gcnn-rnn <command> <args> --json-progress`` directly; the ``result`` outputs."""
    import json
    import subprocess

    from gcnn_rnn.processing.engine import engine_command, engine_environment

    proc = subprocess.run(engine_command(ENGINE_PYTHON, command, [str(a) for a in args]),
                          capture_output=True, text=True, timeout=timeout,
                          env=engine_environment())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for line in proc.stdout.splitlines():
        if line.startswith("{") and json.loads(line).get("type") == "result":
            return json.loads(line)["outputs"]
    return {}


def read_raster(path):
    """``(array of band 1, geotransform, EPSG code or WKT, nodata, band count)`` via GDAL."""
    from osgeo import gdal, osr

    ds = gdal.Open(str(path))
    assert ds is not None, path
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    band = ds.GetRasterBand(1)
    return (band.ReadAsArray(), ds.GetGeoTransform(), srs.GetAuthorityCode(None),
            band.GetNoDataValue(), ds.RasterCount)


def fake_engine_python(tmp_path, mode: str):
    """An executable standing in for the engine's Python, running fake_engine.py in ``mode``."""
    script = Path(__file__).with_name("fake_engine.py")
    exe = tmp_path / "fake-python"
    exe.write_text(f"#!/bin/sh\nFAKE_ENGINE_MODE={mode} exec {sys.executable} {script} \"$@\"\n")
    exe.chmod(0o755)
    return exe


_PROVIDERS: list = []  # keeps the Python wrappers of the providers registered here alive


def ensure_provider():
    """The registered gcnnrnn provider, registering one when missing (needs Processing)."""
    from qgis.core import QgsApplication

    from gcnn_rnn.processing.provider import GcnnRnnProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("gcnnrnn")
    if existing is not None:
        return existing
    prov = GcnnRnnProvider()
    assert registry.addProvider(prov)
    _PROVIDERS.append(prov)
    return prov
