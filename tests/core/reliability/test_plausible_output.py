"""Estimates far outside the data's range never reach a raster or a GeoPackage as valid data
(report rows 67, 75, 77, 78-82, 337-339: ``Pow(1, alpha=1.99)`` with a log transform wrote
3e38 as zinc; Gaussian models without nugget and near-duplicate samples wrote negative zinc
and 5x the data maximum).

The band is checked in output units, after any back-transform: an estimate more than
``OUTPUT_RANGE_FACTOR`` data ranges outside the data's range, or of the wrong sign for
single-signed data, is written as nodata and counted (``n_implausible`` in ``kriging.json``,
one warning).
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from reliability_helpers import krige_args

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging.checks import (
    LOG_STD_FACTOR,
    OUTPUT_RANGE_FACTOR,
    SIGN_TOLERANCE,
    narrowed_by_log_band,
    plausible_band,
)


def _written(path):
    with rasterio.open(path) as ds:
        return ds.read(1, masked=True)


def _assert_in_band(valid: np.ndarray, data: np.ndarray) -> None:
    lo, hi = float(data.min()), float(data.max())
    span = hi - lo
    assert valid.size
    assert valid.max() <= hi + OUTPUT_RANGE_FACTOR * span
    assert valid.min() >= max(lo - OUTPUT_RANGE_FACTOR * span, 0.0)  # zinc: never negative


def test_band_by_hand():
    lo, hi, _ = plausible_band(np.array([113.0, 1839.0]))  # strictly positive: no negatives
    assert (lo, hi) == (0.0, 1839.0 + OUTPUT_RANGE_FACTOR * 1726.0)
    lo, hi, _ = plausible_band(np.array([0.0, 50.0]))  # zeros (rain): a small dip is kept
    assert lo == -SIGN_TOLERANCE * 50.0
    lo, hi, _ = plausible_band(np.array([-5.0, 5.0]))  # two signs: no sign rule
    assert (lo, hi) == (-5.0 - OUTPUT_RANGE_FACTOR * 10, 5.0 + OUTPUT_RANGE_FACTOR * 10)
    lo, hi, _ = plausible_band(np.array([-3.0, -1.0]))
    assert hi == 0.0


def test_log_band_by_hand():
    # log(113) = 4.727, log(1839) = 7.517: a log range of 2.790 below and above
    zinc = np.array([113.0, 1839.0])
    lo, hi, max_var = narrowed_by_log_band(plausible_band(zinc), np.log(zinc))
    assert lo == pytest.approx(np.exp(np.log(113.0) - 2.7896), rel=1e-3)  # 6.94 ppm
    assert hi == 1839.0 + OUTPUT_RANGE_FACTOR * 1726.0  # the data-unit bound is tighter
    assert max_var == pytest.approx((LOG_STD_FACTOR * (hi - lo)) ** 2)


def test_pow_near_two_with_log_writes_no_zero_zinc(meuse_gpkg, tmp_path, capsys):
    """Row 75 re-run: log estimates that underflow exp() were written as 0 ppm, valid data,
    in 965 cells (data 113..1839): the back-transformed log band refuses them."""
    out = tmp_path / "o"
    assert main(krige_args(meuse_gpkg, out, "--cell-size", "80",
                           variogram="1 Pow(1, alpha=1.99)")) == 0
    capsys.readouterr()
    zinc = read_points(meuse_gpkg, "zinc").values
    valid = _written(out / "kriging_estimate.tif").compressed()
    assert valid.size and valid.min() >= zinc.min() * np.exp(-np.ptp(np.log(zinc))) * 0.999
    var = _written(out / "kriging_variance.tif").compressed()
    assert var.max() < 1e20  # the huge log-variances went with their estimates


def test_pow_near_two_with_log_writes_no_huge_zinc(meuse_gpkg, tmp_path, capsys):
    """Row 75: the log-kriged variances of Pow(1, 1.99) are huge, so the back-transform gave
    up to 3.4e38 zinc, written as valid (and the non-finite warning undercounted)."""
    out = tmp_path / "o"
    code = main(krige_args(meuse_gpkg, out, "--cell-size", "80",
                           variogram="1 Pow(1, alpha=1.99)"))
    err = capsys.readouterr().err
    assert code == 0, err
    zinc = read_points(meuse_gpkg, "zinc").values
    est = _written(out / "kriging_estimate.tif")
    _assert_in_band(est.compressed(), zinc)
    summary = json.loads((out / "kriging.json").read_text())
    assert summary["n_implausible"] > 0
    assert f"{summary['n_implausible']} of {est.size} estimate(s)" in err
    # every nodata cell is accounted for by one of the counts
    assert int(est.mask.sum()) == summary["n_nonfinite_estimate"] == (
        summary["n_missing"] + summary["n_unresolved"] + summary["n_implausible"])
    assert summary["estimate_range"][1] <= zinc.max() + OUTPUT_RANGE_FACTOR * np.ptp(zinc)
    # one warning per condition, with the total
    for text in ("a singular or unstable", "an unstable kriging system", "implausible"):
        assert err.count(text) <= 1, err


@pytest.mark.parametrize("variogram", ["200000 Gau(1000)", "2000 Nug + 200000 Gau(1000)"])
def test_gaussian_without_nugget_writes_no_negative_zinc(meuse_gpkg, tmp_path, capsys,
                                                         variogram):
    """Rows 78-82: re-solved cells wrote -1309..3992 zinc (data 113..1839)."""
    out = tmp_path / "o"
    code = main(["krige", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--variogram", variogram, "--cell-size", "80", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    zinc = read_points(meuse_gpkg, "zinc").values
    est = _written(out / "kriging_estimate.tif")
    _assert_in_band(est.compressed(), zinc)
    assert err.count("singular or unstable") <= 1, err
    assert err.count("an unstable kriging system") == 1, err


def test_near_duplicates_at_points(meuse_gpkg, tmp_path, capsys):
    """Row 339 through the points branch: every sample doubled 1e-7 m away with 1.5x its value,
    no nugget (before: -108728..1.6e6 zinc, no warning)."""
    g = gpd.read_file(meuse_gpkg)
    dup = g.copy()
    dup["geometry"] = gpd.points_from_xy(g.geometry.x + 1e-7, g.geometry.y, crs=g.crs)
    dup["zinc"] = 1.5 * g["zinc"]
    both = gpd.GeoDataFrame(pd_concat(g, dup), crs=g.crs)
    src = tmp_path / "neardup.gpkg"
    both.to_file(src, layer="neardup")
    lo, hi = g.total_bounds[:2], g.total_bounds[2:]
    rng = np.random.default_rng(0)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(lo[0], hi[0], 300),
                                                       rng.uniform(lo[1], hi[1], 300)),
                           crs=g.crs)
    targets = tmp_path / "targets.gpkg"
    pts.to_file(targets)
    out = tmp_path / "o"
    code = main(["krige", "--quiet", "--input", str(src), "--field", "zinc", "--variogram",
                 "150000 Sph(897)", "--points", str(targets), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    est = gpd.read_file(out / "kriging_points.gpkg")["kriging_estimate"].to_numpy(float)
    _assert_in_band(est[np.isfinite(est)], both["zinc"].to_numpy(float))
    assert "310 samples lie within a millionth of the variogram's range" in err, err


def pd_concat(a, b):
    import pandas as pd

    return pd.concat([a, b], ignore_index=True)
