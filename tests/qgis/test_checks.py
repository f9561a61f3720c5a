"""Early refusals in checkParameterValues and the engine probe behind canExecute."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis_helpers import ENGINE_PYTHON, MEUSE, SAMPLE_DATA, needs_engine

DIST = str(SAMPLE_DATA / "meuse_dist.tif")
ALG_IDS = ("fitvariogram", "ordinarykriging", "krigingexternaldrift", "crossvalidate",
           "trainhybrid", "predicthybrid", "hybridinterpolation", "gaussiansimulation")


@pytest.fixture(autouse=True)
def _provider(provider):
    return provider


def check(alg_id: str, params: dict) -> tuple[bool, str]:
    alg = QgsApplication.processingRegistry().createAlgorithmById(f"gcnnrnn:{alg_id}")
    return alg.checkParameterValues(params, QgsProcessingContext())


def krige_params(tmp_path, **extra) -> dict:
    return {"INPUT": MEUSE, "FIELD": "zinc", "ESTIMATE": str(tmp_path / "e.tif"),
            "VARIANCE": str(tmp_path / "v.tif"), **extra}


def hybrid_params(tmp_path, **extra) -> dict:
    outs = ("PREDICTION", "KRIGING_ESTIMATE", "KRIGING_VARIANCE", "PREDICTION_STD",
            "INTERVAL_LOWER", "INTERVAL_UPPER")
    return {"INPUT": MEUSE, "FIELD": "zinc", "REPORT": str(tmp_path / "r.html"),
            **{k: "TEMPORARY_OUTPUT" for k in outs}, **extra}


@pytest.fixture(scope="module")
def template_4326(tmp_path_factory) -> str:
    from osgeo import gdal

    out = str(tmp_path_factory.mktemp("tpl") / "dist_4326.tif")
    ds = gdal.Warp(out, DIST, dstSRS="EPSG:4326")
    assert ds is not None
    ds = None
    return out


# ---------------------------------------------------------------------- template CRS
def test_template_in_another_crs_is_refused_early(tmp_path, template_4326):
    ok, message = check("ordinarykriging", krige_params(tmp_path, TEMPLATE=template_4326))
    assert not ok
    assert "CRS" in message and "EPSG:4326" in message and "EPSG:28992" in message
    assert "reproject" in message
    ok, message = check("hybridinterpolation", hybrid_params(tmp_path, TEMPLATE=template_4326))
    assert not ok and "CRS" in message
    # the same raster in the points' CRS passes
    ok, message = check("ordinarykriging", krige_params(tmp_path, TEMPLATE=DIST))
    assert ok, message


@needs_engine("krige")
def test_engine_refusing_the_template_crs_is_a_clean_processing_error(tmp_path, template_4326,
                                                                     monkeypatch):
    """Past the plugin's own check (switched off here), the engine's refusal surfaces cleanly."""
    import processing
    from gcnn_rnn.processing.algorithms import base

    monkeypatch.setattr(base, "check_template_crs", lambda template, crs: None)
    assert check("ordinarykriging", krige_params(tmp_path, TEMPLATE=template_4326))[0]
    with pytest.raises(QgsProcessingException, match="CRS") as info:
        processing.run("gcnnrnn:ordinarykriging",
                       krige_params(tmp_path, TEMPLATE=template_4326,
                                    VARIOGRAM=None), feedback=QgsProcessingFeedback())
    assert "Traceback" not in str(info.value)
    assert not (tmp_path / "e.tif").exists() and not (tmp_path / "v.tif").exists()


# ---------------------------------------------------------------------- fields, Z levels, grid
def test_fid_is_not_a_value_field(tmp_path):
    ok, message = check("fitvariogram", {"INPUT": MEUSE, "FIELD": "fid",
                                         "VARIOGRAM": str(tmp_path / "v.json")})
    assert not ok and "feature id" in message and "'fid'" in message
    ok, message = check("fitvariogram", {"INPUT": MEUSE, "FIELD": "landuse",
                                         "VARIOGRAM": str(tmp_path / "v.json")})
    assert not ok and "numeric fields: " in message
    offered = message.split("numeric fields: ")[1].split(", ")
    assert "zinc" in offered and "fid" not in offered
    ok, message = check("fitvariogram", {"INPUT": MEUSE, "FIELD": "zinc", "Z_FIELD": "fid",
                                         "VARIOGRAM": str(tmp_path / "v.json")})
    assert not ok and "feature id" in message


def test_z_levels_need_3d_samples(tmp_path):
    ok, message = check("ordinarykriging", krige_params(tmp_path, CELL_SIZE=100,
                                                        Z_LEVELS="0:10:5"))
    assert not ok and "2D" in message and "Z levels" in message
    ok, message = check("ordinarykriging", krige_params(tmp_path, CELL_SIZE=100,
                                                        Z_LEVELS="0:10:5", Z_FIELD="elev"))
    assert ok, message
    ok, message = check("hybridinterpolation", hybrid_params(tmp_path, CELL_SIZE=100,
                                                             Z_LEVELS="0:10:5"))
    assert not ok and "2D" in message


def test_a_streamed_grid_is_refused_only_when_too_wide_or_for_disk(tmp_path):
    # Meuse's box is 2785 m x 3897 m. At 0.5 m that is 43 M nodes: 2.6 GiB if held whole (64
    # B/node), but kriging streams its 2 rasters: 5,571 columns x 2 stripes x 256 rows x 5 B
    # each, 28 MiB held at once, and 0.32 GiB of float32 on disk. Accepted.
    ok, message = check("ordinarykriging", krige_params(tmp_path, CELL_SIZE=0.5))
    assert ok, message
    # A grid 1e7 columns wide: its stripes alone need 2 x 2 x 256 x 1e7 x 5 B = 48 GiB.
    ok, message = check("ordinarykriging", krige_params(
        tmp_path, CELL_SIZE=1, EXTENT="0,10000000,0,100 [EPSG:28992]"))
    assert not ok and "10,000,000 columns wide" in message and "47.7 GiB" in message
    # the columns scale as 1 / cell size: 48 GiB -> 2 GiB at about 24 m
    suggested = float(message.split("cell size of at least ")[1].split()[0])
    assert 23.8 < suggested < 24.2, message
    # Narrow (10,000 columns: 98 MiB of stripes) but 1e9 rows: 1e13 nodes, refused for disk
    # only, with the size its 2 float32 rasters need (8e13 B = 72.8 TiB).
    ok, message = check("ordinarykriging", krige_params(
        tmp_path, CELL_SIZE=0.1, EXTENT="0,1000,0,100000000 [EPSG:28992]"))
    assert not ok and "need up to 72.8 TiB of disk" in message, message
    assert "cell size of at least" in message
    assert "GiB, over the limit" not in message
    # The plugin's own MASK step reads whole rasters (8 B/node): 0.2 m is 271 M nodes, 2.0 GiB.
    mask = QgsVectorLayer("Polygon?crs=EPSG:28992", "mask", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(178500, 329500, 180000, 334000)))
    mask.dataProvider().addFeatures([f])
    ok, message = check("ordinarykriging", krige_params(tmp_path, CELL_SIZE=0.2, MASK=mask))
    assert not ok and "MASK" in message and "cell size of at least" in message, message
    ok, message = check("ordinarykriging", krige_params(tmp_path, CELL_SIZE=0.2))
    assert ok, message


def test_a_whole_grid_uses_the_engines_64_bytes_per_node(tmp_path):
    # The hybrid interpolation's report holds the whole grid: 0.5 m on Meuse is 43 M nodes,
    # 2.6 GiB at 64 B/node (the measured peak of kriging a whole grid); 0.6 m is 30 M nodes,
    # 1.8 GiB.
    params = hybrid_params(tmp_path)
    ok, message = check("hybridinterpolation", {**params, "CELL_SIZE": 0.5})
    assert not ok and "cell size of at least" in message, message
    suggested = float(message.split("cell size of at least ")[1].split()[0])
    assert 0.57 < suggested < 0.58
    ok, message = check("hybridinterpolation", {**params, "CELL_SIZE": 0.6})
    assert ok, message


def test_a_simulation_grid_is_refused_only_when_too_wide_or_for_disk(tmp_path):
    # The engine simulates a grid that does not fit memory slab by slab (simulate --path
    # auto): 0.5 m on Meuse (43 M nodes, refused before as a whole grid) is accepted
    from gcnn_rnn.processing.constants import SIMULATION_RASTERS

    simulation = {"INPUT": MEUSE, "FIELD": "zinc", "REALISATIONS": 2,
                  **{k: str(tmp_path / v[0]) for k, v in SIMULATION_RASTERS.items()
                     if k != "EXCEEDANCE"}}
    ok, message = check("gaussiansimulation", {**simulation, "CELL_SIZE": 0.5})
    assert ok, message
    # 1e13 nodes: refused for the disk of its 2 realisations and 2 summaries (16e13 B)
    ok, message = check("gaussiansimulation", {
        **simulation, "CELL_SIZE": 0.1, "EXTENT": "0,1000,0,100000000 [EPSG:28992]"})
    assert not ok and "need up to 146 TiB of disk" in message, message
    assert "its 4 rasters" in message


def test_every_help_says_which_numeric_outputs_it_returns():
    for alg_id in ALG_IDS:
        alg = QgsApplication.processingRegistry().createAlgorithmById(f"gcnnrnn:{alg_id}")
        text = alg.shortHelpString()
        assert "<h3>Numeric outputs</h3>" in text, alg_id
        numbers = [o.name() for o in alg.outputDefinitions() if o.type() == "outputNumber"]
        for name in numbers:
            assert f"<code>{name}</code>" in text.split("Numeric outputs")[1], (alg_id, name)
        if not numbers:
            assert "None: this algorithm returns only" in text, alg_id
    ok_help = QgsApplication.processingRegistry().createAlgorithmById(
        "gcnnrnn:ordinarykriging").shortHelpString()
    assert "RMSE_OK" in ok_help and "Cross-validate" in ok_help


# ---------------------------------------------------------------------- engine probe
def test_qgis_python_with_numpy_1_is_refused(monkeypatch):
    """QGIS's own Python (numpy 1.24, no geopandas/rasterio) cannot run the engine."""
    from gcnn_rnn.processing import engine

    monkeypatch.setenv("GCNN_RNN_PYTHON", "/usr/bin/python3")
    assert Path("/usr/bin/python3").exists(), "QGIS's Python /usr/bin/python3 is missing"
    import numpy

    # Debian 12's QGIS Python has numpy 1.24; this test is about exactly that situation
    assert int(numpy.__version__.split(".")[0]) < 2, f"QGIS's numpy is {numpy.__version__}"
    alg = QgsApplication.processingRegistry().createAlgorithmById("gcnnrnn:ordinarykriging")
    ok, message = alg.canExecute()
    assert not ok
    assert f"numpy {numpy.__version__} is too old" in message and "numpy >= 2" in message
    assert "Set up engine" in message
    # failures are never cached (other tests may have cached the working engine)
    assert not [key for key in engine._PROBES if key and key[0] == "/usr/bin/python3"]


def _bare_venv(path: Path) -> Path:
    proc = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"cannot create a venv: {proc.stderr[-300:]}"
    return path / "bin" / "python"


def test_bare_python_is_refused_until_the_packages_arrive(monkeypatch, tmp_path):
    """A venv without numpy: refused naming what is missing; fixed: accepted at once (the
    failure was not cached); broken again: refused (the success is keyed by site-packages)."""
    from gcnn_rnn.processing import engine

    python = _bare_venv(tmp_path / "bare")
    monkeypatch.setenv("GCNN_RNN_PYTHON", str(python))
    engine.clear_probe_cache()
    ok, message = engine.check_engine()
    assert not ok
    assert "missing Python package(s) numpy" in message and "rasterio" in message
    assert "Set up engine" in message and str(python) in message

    # "pip install": make the engine venv's packages visible through a .pth file
    assert ENGINE_PYTHON, "set GCNN_RNN_PYTHON to the engine's python (make test-qgis does)"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    engine_sites = sorted(Path(ENGINE_PYTHON).parent.parent.glob(f"lib/{version}/site-packages"))
    assert engine_sites, f"the engine is not a {version} venv"
    site = python.parent.parent / "lib" / version / "site-packages"
    pth = site / "engine.pth"
    pth.write_text(str(engine_sites[0]) + "\n")
    ok, message = engine.check_engine()
    assert ok, message
    assert len(engine._PROBES) == 1
    assert engine.probe(python)[0]  # cached now

    pth.unlink()  # "pip uninstall": site-packages changed, the cached success no longer holds
    ok, message = engine.check_engine()
    assert not ok and "numpy" in message
    shutil.rmtree(tmp_path / "bare")


def test_bundle_samples_read_both_bundle_formats():
    """Format 3 keeps the samples in a binary file and their extent in model.json; format 2
    lists them; both give the extent and count the default cell size needs."""
    from gcnn_rnn.processing.algorithms.predict_hybrid import bundle_samples

    v2 = {"training_data": {"coords": [[0.0, 5.0], [10.0, 1.0], [4.0, 9.0]]}}
    v3 = {"training_data": {"file": "training_data.npz", "n": 3,
                            "extent": [0.0, 1.0, 10.0, 9.0]}}
    for info in (v2, v3):
        box, n = bundle_samples(info)
        assert n == 3
        assert (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()) == (
            0.0, 1.0, 10.0, 9.0)
    assert bundle_samples({"training_data": {"file": "training_data.npz", "n": 3,
                                             "extent": "damaged"}}) == (None, 0)
