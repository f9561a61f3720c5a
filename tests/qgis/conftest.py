"""Fixtures for the tests in real QGIS (pytest-qgis, headless).

The repository root is the plugin folder but is not named ``gcnn_rnn``, and its ``processing/``
would shadow QGIS's own ``processing`` package if the root were on ``sys.path``. So the root is
taken off ``sys.path`` and a temporary plugins folder with a ``gcnn_rnn`` symlink to it is put
on instead (the same folder serves as ``QGIS_PLUGINPATH`` for ``qgis_process.bin``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qgis_helpers import _PROVIDERS, PLUGINS_DIR, SAMPLE_DATA, ensure_provider  # noqa: E402


@pytest.fixture(scope="session")
def plugins_dir() -> Path:
    return PLUGINS_DIR


@pytest.fixture()
def provider(qgis_processing):
    """The gcnnrnn provider (registered if another test removed it)."""
    return ensure_provider()


@pytest.fixture()
def no_provider(qgis_processing):
    """No gcnnrnn provider registered (for tests of the plugin's own registration)."""
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("gcnnrnn")
    if existing is not None:
        registry.removeProvider(existing)  # the registry deletes it
        _PROVIDERS.clear()  # its Python wrapper is dead now
    yield


@pytest.fixture()
def meuse_layer():
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(f"{SAMPLE_DATA / 'meuse.gpkg'}|layername=meuse", "meuse", "ogr")
    assert layer.isValid()
    return layer


@pytest.fixture(scope="session")
def meuse_gpkg() -> str:
    return str(SAMPLE_DATA / "meuse.gpkg")


@pytest.fixture()
def fake_engine() -> Path:
    return Path(__file__).with_name("fake_engine.py")


@pytest.fixture()
def qgis_process_env(tmp_path):
    """Environment for ``qgis_process.bin`` with a fresh profile that has the plugin enabled."""
    exe = shutil.which("qgis_process.bin")
    if exe is None:
        pytest.fail("qgis_process.bin is not installed (make test installs QGIS)")
    env = dict(os.environ)
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"),
               QGIS_PLUGINPATH=str(PLUGINS_DIR), QT_QPA_PLATFORM="offscreen")
    (tmp_path / "profile").mkdir()
    proc = subprocess.run([exe, "plugins", "enable", "gcnn_rnn"], env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return exe, env


def copy_sample(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copyfile(SAMPLE_DATA / name, dest)
    return dest
