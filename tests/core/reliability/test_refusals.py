"""Inputs refused up front, before anything is written (report rows 139/140 after streaming:
``--cell-size 0.04`` on Meuse started a three-hour job; a FIFO as ``--input`` hung, deaf to
SIGTERM)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from reliability_helpers import engine, engine_popen, krige_args

from gcnn_rnn.core.cli.main import main


def test_a_huge_streamed_grid_is_refused_with_size_time_and_flag(meuse_gpkg, tmp_path, capsys):
    out = tmp_path / "o"
    t0 = time.perf_counter()
    code = main(krige_args(meuse_gpkg, out, "--cell-size", "0.04"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert time.perf_counter() - t0 < 60  # refused before any kriging (was: a 3-hour run)
    for words in ("6,783,215,625 nodes", "--cell-size 0.04", "--max-nodes", "GiB", "hour"):
        assert words in err, err
    assert not out.exists() or not any(out.iterdir())


def test_max_nodes_lets_a_grid_through_and_bounds_a_small_one(meuse_gpkg, tmp_path, capsys):
    # Meuse at 80 m: 36 x 50 = 1,800 nodes
    assert main(krige_args(meuse_gpkg, tmp_path / "a", "--cell-size", "80",
                           "--max-nodes", "1000")) == 2
    assert "1,800 nodes" in capsys.readouterr().err
    assert main(krige_args(meuse_gpkg, tmp_path / "b", "--cell-size", "80",
                           "--max-nodes", "2000")) == 0


@pytest.mark.parametrize("value", ["0", "-5", "nan", "1.5"])
def test_bad_max_nodes(meuse_gpkg, tmp_path, capsys, value):
    assert main(krige_args(meuse_gpkg, tmp_path / "o", "--cell-size", "80",
                           "--max-nodes", value)) == 2
    assert "--max-nodes" in capsys.readouterr().err


def test_a_fifo_as_input_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.gpkg"
    os.mkfifo(fifo)
    res = engine(krige_args(fifo, tmp_path / "o", "--cell-size", "80"), timeout=120)
    assert res.returncode == 2, res.stderr
    assert "named pipe (FIFO)" in res.stderr and "Traceback" not in res.stderr


def test_a_fifo_as_template_is_refused(meuse_gpkg, tmp_path):
    fifo = tmp_path / "t.tif"
    os.mkfifo(fifo)
    proc = engine_popen(krige_args(meuse_gpkg, tmp_path / "o", "--template", str(fifo)))
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, err
    assert "named pipe (FIFO)" in err


def test_a_model_dir_that_is_a_file_is_refused_before_training(meuse_gpkg, tmp_path, capsys):
    """Row 277 re-run: ``--model-dir`` naming a file failed with exit 1 after 39 s of fitting;
    it is refused at once (exit 2) and the file is left as it was."""
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    t0 = time.perf_counter()
    code = main(["train", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--model-dir", str(afile), "--ensemble", "1", "--epochs", "2"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "is a file, not a folder" in err and str(afile) in err
    assert time.perf_counter() - t0 < 20  # before the variogram and the network
    assert afile.read_text() == "keep me"
    code = main(["train", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--model-dir", str(afile / "m"), "--ensemble", "1", "--epochs", "2"])
    assert code == 2 and str(afile) in capsys.readouterr().err
