"""D5, D3: cancel works in every long phase; the memory guard cannot be bypassed (report
cases ``sig_krige_global_singular_term``, ``sig_variogram_100k_term``,
``sig_predict_sparse_member``, ``grid_zlevels_huge``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from reliability_helpers import engine, engine_popen, krige_args

from gcnn_rnn.core.cli.session import CANCEL_GRACE_S, Session
from gcnn_rnn.core.errors import Cancelled


def test_work_that_never_polls_is_interrupted_after_the_grace():
    """The watchdog: a phase without cancellation points still stops soon after SIGTERM."""
    session = Session(quiet=True)
    session.install_signal_handlers()
    try:
        t0 = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            while time.perf_counter() - t0 < 20:  # busy Python work, never checks the flag
                sum(range(1000))
        waited = time.perf_counter() - t0
        assert session.should_stop()
        assert CANCEL_GRACE_S * 0.9 <= waited < CANCEL_GRACE_S + 2.0
    finally:
        session.close()


def test_member_checksums_are_cancellable(tmp_path):
    from gcnn_rnn.core.model.bundle_checks import sha256_file

    big = tmp_path / "member_0.keras"
    with open(big, "wb") as fh:
        fh.truncate(64 * 1024**2)  # sparse: costs no disk
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        sha256_file(big, stop)
    assert len(calls) == 2  # stopped at the second check, long before the end


def _term_after_progress(args, text: str, settle: float = 1.0):
    """Start the engine, wait for a progress line containing ``text``, SIGTERM it; returns
    (exit code, seconds from the signal to the exit)."""
    p = engine_popen(args)
    try:
        for line in p.stdout:  # the subprocess's own timeout bounds this (RLIMIT, kill below)
            if text in line and '"progress"' in line:
                break
        time.sleep(settle)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
        return p.returncode, time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_global_kriging_with_a_singular_system_is_cancellable(meuse_gpkg, tmp_path):
    # before: SIGTERM ignored for 120 s (per-target fallback loop without a check)
    out = tmp_path / "o"
    rc, seconds = _term_after_progress(
        krige_args(meuse_gpkg, out, "--neighbours", "0", "--cell-size", "40", "--json-progress",
                   variogram="0.6 Gau(2000)"), "variogram", settle=4.0)
    assert rc == 130
    assert seconds < 3.0  # within the QGIS runner's grace (2 s goal; 0.3-0.6 s at load 8)
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []


def test_variogram_fit_on_many_points_is_cancellable(tmp_path):
    import geopandas as gpd
    import numpy as np

    rng = np.random.default_rng(0)
    n = 60_000
    gpd.GeoDataFrame({"v": rng.normal(size=n)},
                     geometry=gpd.points_from_xy(rng.uniform(0, 1e4, n), rng.uniform(0, 1e4, n)),
                     crs="EPSG:28992").to_file(tmp_path / "big.gpkg")
    out = tmp_path / "o"
    rc, seconds = _term_after_progress(
        ["krige", "--input", str(tmp_path / "big.gpkg"), "--field", "v", "--cell-size", "50",
         "--output-dir", str(out), "--json-progress"], "variogram", settle=0.5)
    assert rc == 130 and seconds < 3.0  # the QGIS runner's grace; before: 45.7 s, then 2-10 s


def test_z_levels_cannot_bypass_the_memory_guard(meuse_gpkg, tmp_path):
    """Before: the level tuple was built first and grew to 24 GB (global OOM kill)."""
    t0 = time.perf_counter()
    r = engine(krige_args(meuse_gpkg, tmp_path / "o", "--cell-size", "40", "--z-levels",
                          "0:1e12:1", "--json-progress"), timeout=60,
               address_space=2 * 1024**3)
    assert r.returncode == 2
    msg = json.loads(r.stdout.splitlines()[-1])
    assert msg["kind"] == "grid_too_large" and "levels" in msg["message"]
    assert time.perf_counter() - t0 < 30


def test_cancel_leaves_no_temporary_files(meuse_gpkg, tmp_path):
    out = tmp_path / "o"
    p = engine_popen(krige_args(meuse_gpkg, out, "--cell-size", "2", "--json-progress"))
    try:
        for line in p.stdout:
            if '"kriging"' in line:
                break
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    assert p.returncode in (0, 130)
    names = sorted(x.name for x in out.iterdir()) if out.exists() else []
    assert not [n for n in names if n.startswith(".")], names


def test_a_signal_received_while_starting_cancels_the_run(meuse_gpkg, tmp_path, capsys):
    """``python -m gcnn_rnn.core`` records SIGINT/SIGTERM while it imports; main() then ends
    the run as cancelled (exit 130) before writing anything."""
    import signal

    from gcnn_rnn.core.cli.main import main

    out = tmp_path / "o"
    code = main(["krige", "--input", str(meuse_gpkg), "--field", "zinc", "--cell-size", "80",
                 "--output-dir", str(out)], early_signals=[signal.SIGTERM])
    assert code == 130 and "cancelled" in capsys.readouterr().err
    assert not out.exists()


def test_a_streamed_range_checks_cancel_inside_itself(meuse_gpkg):
    """Rows 235/283: a range of the streamed grid ran its per-target fallback solves and its
    stability re-solves without a cancellation point, so SIGTERM waited for the watchdog (and
    the exit took 1.9-2.2 s, beyond the QGIS runner's old 1.5 s grace)."""
    import pickle

    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.io import read_points
    from gcnn_rnn.core.kriging import KrigingConfig
    from gcnn_rnn.core.kriging.tiled import GridKrigingJob
    from gcnn_rnn.core.variogram.models import parse_model

    pts = read_points(meuse_gpkg, "zinc")
    lo, hi = pts.coords.min(axis=0), pts.coords.max(axis=0)
    grid = Grid.from_extent((lo[0], lo[1], hi[0], hi[1]), 200.0)
    job = GridKrigingJob(pts.coords, np.log(pts.values), parse_model("0.6 Gau(2000)"),
                         KrigingConfig(neighbours=0), grid)
    calls = []

    def stop():
        calls.append(1)
        return True

    job.should_stop = stop
    with pytest.raises(Cancelled):
        job(0, grid.n_nodes)
    assert calls
    assert pickle.loads(pickle.dumps(job)).should_stop is None  # not sent to a cluster
