"""D2: a failed write is a failure; the previous good outputs stay (report cases
``out_ulimit_f_*``, ``enospc_tmpfs_40k``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from reliability_helpers import AS_LIMIT_TF, digests, engine, krige_args

from gcnn_rnn.core.errors import EngineIOError
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.raster import write_raster
from gcnn_rnn.core.safe_write import verify_raster, write_json_verified


@pytest.fixture(scope="module")
def good_krige(tmp_path_factory, meuse_gpkg):
    out = tmp_path_factory.mktemp("good") / "out"
    r = engine(krige_args(meuse_gpkg, out, "--cell-size", "40"))
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("fsize", [5000, 14336, 23600])
def test_krige_over_a_file_size_limit_fails_and_keeps_the_old_set(good_krige, meuse_gpkg,
                                                                  tmp_path, fsize):
    out = tmp_path / "out"
    shutil.copytree(good_krige, out)
    before = digests(out)
    r = engine(krige_args(meuse_gpkg, out, "--cell-size", "40", "--json-progress",
                          variogram="0.1 Nug + 0.5 Exp(500)"), fsize=fsize)
    assert r.returncode == 1, r.stdout[-2000:]
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert not [m for m in lines if m["type"] == "result"]
    error = [m for m in lines if m["type"] == "error"][-1]
    assert error["kind"] == "io"
    assert ("file-size limit" in error["message"] or "File too large" in error["message"]
            or "damaged" in error["message"])
    # every old file is still there, byte for byte, and nothing else (no temporary files)
    assert digests(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_a_truncated_geotiff_is_detected(tmp_path):
    g = Grid(0.0, 600.0, 1.0, 500, 600)
    data = np.random.default_rng(0).normal(size=g.shape)
    path = write_raster(tmp_path / "a.tif", data, g, "x", qml=False)
    expected = np.asarray(data, dtype=np.float32)[None]
    verify_raster(path, expected)  # the good file passes
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(EngineIOError, match="file-size limit"):
        verify_raster(path, expected)


def test_non_finite_and_float32_overflow_become_nodata(tmp_path):
    import rasterio

    g = Grid(0.0, 2.0, 1.0, 2, 2)
    data = np.array([[np.inf, -np.inf], [1e300, 5.0]])
    path = write_raster(tmp_path / "b.tif", data, g, "x", qml=False)
    with rasterio.open(path) as ds:
        arr = ds.read(1)
    assert np.isfinite(arr).all()
    assert (arr == -9999.0).sum() == 3 and arr[1, 1] == 5.0


def test_json_written_under_unique_names(tmp_path):
    """Concurrent writers of one V.json never share a temporary name (report: W3)."""
    from gcnn_rnn.core.safe_write import temp_path_for

    names = {temp_path_for(tmp_path / "V.json").name for _ in range(200)}
    assert len(names) == 200
    path = write_json_verified(tmp_path / "x.json", {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_predict_over_a_file_size_limit_keeps_the_old_set(cov_bundle, meuse_dist_tif,
                                                          tmp_path):
    from gcnn_rnn.core.cli.main import main

    out = tmp_path / "pred"
    assert main(["predict", "--quiet", "--model-dir", str(cov_bundle), "--template",
                 str(meuse_dist_tif), "--threshold", "500", "--output-dir", str(out)]) == 0
    before = digests(out)
    assert len(before) == 14  # 7 rasters with their styles
    # report cases out_ulimit_f_predict (13500) and out_predict_fail_midset (2070)
    for fsize in (2070, 13500):
        r = engine(["predict", "--quiet", "--model-dir", str(cov_bundle), "--template",
                    str(meuse_dist_tif), "--threshold", "500", "--output-dir", str(out)],
                   fsize=fsize, address_space=AS_LIMIT_TF, timeout=400)
        assert r.returncode == 1, r.stderr[-2000:]
        assert digests(out) == before
        assert sorted(p.name for p in out.iterdir()) == sorted(before)
