"""``predict``'s memory guard: checked before any feature array is built, and its estimate
is within 1.5x of the measured growth of the peak (issue 11, item 4 for ``predict``)."""

from __future__ import annotations

import os
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
from reliability_helpers import AS_LIMIT_TF, limits

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.model.estimator import PREDICT_CHUNK
from gcnn_rnn.core.model.predict_memory import predict_bytes

PROBE = ("import re, sys; from gcnn_rnn.core.cli.main import main; rc = main(sys.argv[1:]);"
         "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
         "print('MAXRSS', hwm, file=sys.stderr); sys.exit(rc)")


def _targets(meuse_gpkg, path, n: int):
    g = gpd.read_file(meuse_gpkg)
    lo, hi = g.total_bounds[:2], g.total_bounds[2:]
    rng = np.random.default_rng(n)
    gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(lo[0], hi[0], n),
                                                 rng.uniform(lo[1], hi[1], n)),
                     crs=g.crs).to_file(path)
    return path


def test_predict_at_too_many_points_is_refused_before_the_features(cov_bundle, meuse_gpkg,
                                                                   tmp_path, capsys):
    pts = _targets(meuse_gpkg, tmp_path / "t.gpkg", 5000)
    out = tmp_path / "o"
    code = main(["predict", "--quiet", "--model-dir", str(cov_bundle), "--points", str(pts),
                 "--output-dir", str(out), "--max-memory-gb", "0.001"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "predicting 5,000 target(s)" in err and "--max-memory-gb" in err
    assert not out.exists() or not any(out.glob("*.gpkg"))


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_predict_at_points_checks_the_memory_flag(cov_bundle, meuse_gpkg, tmp_path, capsys,
                                                  value):
    pts = _targets(meuse_gpkg, tmp_path / "t.gpkg", 10)
    assert main(["predict", "--quiet", "--model-dir", str(cov_bundle), "--points", str(pts),
                 "--output-dir", str(tmp_path / "o"), "--max-memory-gb", value]) == 2
    assert "--max-memory-gb must be a positive number" in capsys.readouterr().err


def _peak_kib(bundle, points, out) -> int:
    args = ["predict", "--quiet", "--model-dir", str(bundle), "--points", str(points),
            "--output-dir", str(out)]
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                       preexec_fn=limits(None, AS_LIMIT_TF))
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stderr.split("MAXRSS")[-1].split()[0])


def test_guard_estimate_matches_the_measured_peak(cov_bundle, meuse_gpkg, tmp_path):
    small, big = 5_000, 150_000
    base = _peak_kib(cov_bundle, _targets(meuse_gpkg, tmp_path / "s.gpkg", small),
                     tmp_path / "os")
    peak = _peak_kib(cov_bundle, _targets(meuse_gpkg, tmp_path / "b.gpkg", big),
                     tmp_path / "ob")
    measured = (peak - base) * 1024
    # the bundle of the fixture: 8 neighbours, one member
    estimate = predict_bytes(big, 8, 1, PREDICT_CHUNK) - predict_bytes(small, 8, 1,
                                                                        PREDICT_CHUNK)
    assert estimate / 1.5 <= measured <= estimate * 1.5, (measured, estimate)
