"""D2: every QGIS example of the README runs verbatim (extracted from README.md, not copied).

The PyQGIS console example runs inside this QGIS; the standalone PyQGIS script runs in a fresh
QGIS Python process whose profile has the plugin installed; the ``qgis_process`` block runs in
bash from a folder laid out like the plugin folder (``sample_data/``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from qgis_helpers import PLUGINS_DIR, REPO, needs_engine, read_raster

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks(language: str, must_contain: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text)
            if lang == language and must_contain in body]


@pytest.fixture()
def plugin_profile(tmp_path):
    """A QGIS profile folder whose ``python/plugins`` holds the plugin (as QGIS installs it)."""
    config = tmp_path / "config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "gcnn_rnn").symlink_to(REPO, target_is_directory=True)
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(config), QGIS_PLUGINPATH=str(PLUGINS_DIR))
    env.pop("QT_QPA_PLATFORM", None)  # the README must say when it is needed
    return env


def test_readme_has_the_examples():
    assert len(readme_blocks("python", "processing.run(")) == 2
    assert len(readme_blocks("bash", "qgis_process.bin run")) == 1
    assert "QT_QPA_PLATFORM=offscreen" in (REPO / "README.md").read_text()


@needs_engine("krige")
def test_readme_pyqgis_console_example(provider, capsys):
    block = readme_blocks("python", "processing.run(")[0]
    assert "initQgis" not in block  # the console one
    namespace: dict = {}
    exec(compile(block, "README.md (PyQGIS console)", "exec"), namespace)
    res = namespace["res"]
    for key in ("ESTIMATE", "VARIANCE"):
        _, gt, epsg, nodata, _ = read_raster(res[key])
        assert gt[1] == 40.0 and epsg == "28992" and nodata == -9999
    assert res["ESTIMATE"] in capsys.readouterr().out


@needs_engine("variogram")
def test_readme_standalone_pyqgis_script(plugin_profile, tmp_path):
    block = readme_blocks("python", "initQgis")[0]
    script = tmp_path / "script.py"
    script.write_text(block, encoding="utf-8")
    env = dict(plugin_profile, QT_QPA_PLATFORM="offscreen")  # no display on CI
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert re.search(r"Nug \+ [0-9.]+ \w{3}\(", proc.stdout), proc.stdout


@needs_engine("run")
def test_readme_qgis_process_example(plugin_profile, tmp_path):
    block = readme_blocks("bash", "qgis_process.bin run")[0]
    work = tmp_path / "plugin_folder"
    work.mkdir()
    (work / "sample_data").symlink_to(REPO / "sample_data", target_is_directory=True)
    proc = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=plugin_profile,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("prediction.tif", "prediction_std.tif"):
        _, gt, epsg, nodata, _ = read_raster(work / name)
        assert epsg == "28992" and nodata == -9999
    assert (work / "report.html").stat().st_size > 10_000
    p, *_ = read_raster(work / "p500.tif")
    assert ((p[p != -9999] >= 0) & (p[p != -9999] <= 1)).all()
    report = (work / "report.html").read_text(encoding="utf-8")
    assert str(work / "prediction.tif") in report and "gcnn_rnn_" not in report  # D5
