"""``scripts/package.py`` builds an installable zip; installed in a fresh profile it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from qgis_helpers import ENGINE_PYTHON, REPO, SAMPLE_DATA, needs_engine, read_raster


def build_zip(tmp_path: Path) -> Path:
    out = tmp_path / "gcnn_rnn.zip"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--output",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_placeholder_urls_warn_loudly_and_release_refuses(tmp_path):
    """D4: while [project.urls] holds the placeholder, every build says so on stderr and a
    release build refuses (exit 2, no zip); a real address builds quietly."""
    import shutil

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import package
    finally:
        sys.path.pop(0)
    fake = tmp_path / "repo"
    (fake / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "package.py", fake / "scripts" / "package.py")
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert package.PLACEHOLDER_PREFIX in text  # still the placeholder today
    (fake / "pyproject.toml").write_text(text, encoding="utf-8")
    assert package.placeholder_urls(fake) == ["Homepage", "Repository", "Issues"]
    cmd = [sys.executable, str(fake / "scripts" / "package.py"), "--release", "--output",
           str(tmp_path / "r.zip")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "NOT for publishing" in proc.stderr
    assert not (tmp_path / "r.zip").exists()
    (fake / "pyproject.toml").write_text(text.replace(package.PLACEHOLDER_PREFIX,
                                                      "https://example.org/real"),
                                         encoding="utf-8")
    assert package.placeholder_urls(fake) == []
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--output",
                           str(tmp_path / "t.zip")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "WARNING" in proc.stderr and "placeholder" in proc.stderr


def test_zip_has_only_the_plugin_folder(tmp_path):
    out = build_zip(tmp_path)
    assert out.stat().st_size < 25 * 1024**2
    names = zipfile.ZipFile(out).namelist()
    assert all(n.startswith("gcnn_rnn/") for n in names)
    for required in ("metadata.txt", "__init__.py", "plugin.py", "LICENSE", "pyproject.toml",
                     "processing/runner.py", "processing/algorithms/ordinary_kriging.py",
                     "ui/setup_dialog.py", "core/cli/main.py", "icons/gcnn_rnn.svg"):
        assert f"gcnn_rnn/{required}" in names, required
    for name in names:
        parts = name.split("/")
        assert parts[1] not in ("tests", "benchmarks", ".venv", ".venv-qgis", ".git", ".ci",
                                "scripts"), name
        assert "__pycache__" not in parts and not name.endswith((".pyc", ".so", ".zip")), name
        assert ".egg-info" not in name


@needs_engine("krige")
def test_zip_installed_in_a_fresh_profile_runs_ordinary_kriging(tmp_path, qgis_app):
    out = build_zip(tmp_path)
    profile = tmp_path / "config"
    plugins = profile / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(out).extractall(plugins)
    env = {k: v for k, v in os.environ.items()
           if k not in ("QGIS_PLUGINPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(profile), QT_QPA_PLATFORM="offscreen",
               GCNN_RNN_PYTHON=ENGINE_PYTHON)
    exe = "qgis_process.bin"
    enable = subprocess.run([exe, "plugins", "enable", "gcnn_rnn"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    est, var = tmp_path / "est.tif", tmp_path / "var.tif"
    proc = subprocess.run(
        [exe, "--json", "run", "gcnnrnn:ordinarykriging", "--",
         f"INPUT={SAMPLE_DATA / 'meuse.gpkg'}|layername=meuse", "FIELD=zinc", "TRANSFORM=1",
         "CELL_SIZE=200", f"ESTIMATE={est}", f"VARIANCE={var}"],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    assert results["ESTIMATE"] == str(est)
    a, gt, epsg, nodata, _ = read_raster(est)
    assert epsg == "28992" and gt[1] == 200.0 and (a != nodata).all()
    # the engine imported the zip's own code (not the checkout's): its bytecode is there
    assert list((plugins / "gcnn_rnn" / "core").glob("__pycache__/*.pyc"))


@needs_engine("run")
def test_qgis_process_runs_hybrid_interpolation(qgis_process_env, tmp_path):
    exe, env = qgis_process_env
    outs = {k: tmp_path / f"{k.lower()}.tif" for k in (
        "PREDICTION", "KRIGING_ESTIMATE", "KRIGING_VARIANCE", "PREDICTION_STD",
        "INTERVAL_LOWER", "INTERVAL_UPPER")}
    report = tmp_path / "report.html"
    proc = subprocess.run(
        [exe, "--json", "run", "gcnnrnn:hybridinterpolation", "--",
         f"INPUT={SAMPLE_DATA / 'meuse.gpkg'}|layername=meuse", "FIELD=zinc", "TRANSFORM=1",
         "CELL_SIZE=200", "ENSEMBLE=1", "EPOCHS=3", "FOLDS=3", "SEED=1", f"REPORT={report}",
         *[f"{k}={v}" for k, v in outs.items()]],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    for key, path in outs.items():
        assert results[key] == str(path) and path.is_file(), key
        assert path.with_suffix(".qml").is_file()
    assert report.is_file() and "<html" in report.read_text(errors="replace").lower()
    assert results.get("RMSE_OK", 0) > 0 and results.get("RMSE_HYBRID", 0) > 0


def test_addresses_live_in_pyproject_and_reach_the_zip(tmp_path):
    """D4: tracker, repository and homepage are set once (pyproject's [project.urls]); the
    zip's metadata.txt carries them, and the category is a documented one."""
    import configparser

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import package
    finally:
        sys.path.pop(0)
    urls = package.project_urls(REPO / "pyproject.toml")
    out = build_zip(tmp_path)
    meta = configparser.ConfigParser(interpolation=None)
    meta.read_string(zipfile.ZipFile(out).read("gcnn_rnn/metadata.txt").decode("utf-8"))
    general = meta["general"]
    assert general["homepage"] == urls["Homepage"]
    assert general["repository"] == urls["Repository"]
    assert general["tracker"] == urls["Issues"]
    assert general["category"] in ("Raster", "Vector", "Database", "Mesh", "Web")
    checkout = configparser.ConfigParser(interpolation=None)
    checkout.read(REPO / "metadata.txt", encoding="utf-8")
    for key in package.URL_KEYS:  # the development checkout agrees (Help button, tests)
        assert checkout["general"][key] == general[key], key
