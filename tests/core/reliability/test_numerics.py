"""D1, D6: ill-conditioned systems never give silent garbage; extreme sills work (report cases
``num_gau_nonug*``, ``num_huge_sill*``, ``num_pow_unbounded``, ``neardup_*``,
``vj_psill_1e308``, ``json_protocol_nan``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reliability_helpers import krige_args

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.grid import Grid
from gcnn_rnn.core.io import read_points
from gcnn_rnn.core.kriging import KrigingConfig, krige, krige_grid
from gcnn_rnn.core.variogram.models import parse_model


@pytest.fixture(scope="module")
def meuse(meuse_gpkg):
    return read_points(meuse_gpkg, "zinc")


@pytest.fixture(scope="module")
def grid(meuse):
    lo, hi = meuse.coords.min(axis=0), meuse.coords.max(axis=0)
    return Grid.from_extent((lo[0], lo[1], hi[0], hi[1]), 80.0)


def _sane(est, values):
    lo, hi = values.min(), values.max()
    span = hi - lo
    finite = est[np.isfinite(est)]
    return finite.size and finite.min() >= lo - 0.5 * span and finite.max() <= hi + 0.5 * span


@pytest.mark.parametrize("text", ["200000 Gau(1000)", "0 Nug + 200000 Gau(1000)",
                                  "1 Pow(1, alpha=1.99)"])
def test_ill_conditioned_models_are_detected_and_repaired(meuse, grid, text, caplog):
    model = parse_model(text)
    res = krige_grid(meuse.coords, meuse.values, grid, model, KrigingConfig())
    est = res.estimate
    # before: estimates -4.8e7..1.4e8 (Gau) or up to 1.8e308 / +inf (Pow), and no warning
    assert _sane(est, meuse.values)
    assert res.n_unstable > 0 and "unstable kriging system" in caplog.text
    assert np.isnan(est).sum() == res.n_unresolved + res.n_missing
    assert (res.variance[np.isfinite(res.variance)] >= 0).all()


def test_near_duplicate_samples(meuse, grid, caplog):
    """Every sample doubled 1e-7 m away with 1.5x its value, no nugget (report neardup_*)."""
    coords = np.vstack([meuse.coords, meuse.coords + [1e-7, 0.0]])
    values = np.concatenate([meuse.values, 1.5 * meuse.values])
    res = krige_grid(coords, np.log(values), grid, parse_model("0.5906 Sph(897)"),
                     KrigingConfig())
    assert _sane(res.estimate, np.log(values))  # before: log estimates up to 6.5e90
    assert res.n_unstable > 0


def test_well_conditioned_results_are_untouched(meuse, grid):
    """The checks never change a stable result (the gstat agreement stands)."""
    model = parse_model("0.0507 Nug + 0.5906 Sph(897)")
    y = np.log(meuse.values)
    res = krige_grid(meuse.coords, y, grid, model, KrigingConfig())
    raw = krige_grid.__wrapped_unchecked__(meuse.coords, y, grid, model, KrigingConfig())
    np.testing.assert_array_equal(res.estimate, raw.estimate)
    np.testing.assert_array_equal(res.variance, raw.variance)
    assert res.n_unstable == 0


@pytest.mark.parametrize("sill", [1e300, 1e308, 1e-300])
def test_extreme_sills_are_scale_free(meuse, sill):
    """Kriging weights do not depend on the sill: estimates equal those of the unit model,
    variances scale with it (before: all nodata for 1e300, a numba crash for 1e308)."""
    targets = np.array([[179500.0, 330500.0], [180500.0, 332500.0], [181000.0, 333000.0]])
    unit = krige(meuse.coords, meuse.values, targets, parse_model("1 Sph(900)"))
    big = krige(meuse.coords, meuse.values, targets, parse_model(f"{sill!r} Sph(900)"))
    np.testing.assert_allclose(big.estimate, unit.estimate, rtol=1e-12)
    np.testing.assert_allclose(big.variance, unit.variance * sill, rtol=1e-12)


def test_krige_refuses_a_map_without_a_finite_estimate(meuse_gpkg, tmp_path, capfd):
    # log-zinc with a sill of 1e300: every back-transformed estimate overflows
    code = main(krige_args(meuse_gpkg, tmp_path / "o", "--cell-size", "80", "--json-progress",
                           variogram="1e300 Sph(900)"))
    out = capfd.readouterr().out
    assert code == 2
    msgs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert not [m for m in msgs if m["type"] == "result"]
    assert "no target got a finite estimate" in msgs[-1]["message"]
    assert not (tmp_path / "o" / "kriging_estimate.tif").exists()


def test_1e308_psill_from_a_variogram_file(meuse_gpkg, tmp_path, capsys):
    vj = tmp_path / "V.json"
    vj.write_text(json.dumps({"format": "gcnn-rnn-variogram", "version": 1, "model": {
        "structures": [{"model": "sph", "psill": 1e308, "range": 900.0, "extra": None}],
        "anisotropy": None}}))
    out = tmp_path / "o"
    code = main(["krige", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--cell-size", "80", "--variogram", str(vj), "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "kriging.json").read_text())
    assert summary["n_unstable"] == 0
    unit = tmp_path / "unit"
    assert main(["krige", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--cell-size", "80", "--variogram", "1 Sph(900)", "--output-dir",
                 str(unit)]) == 0
    import rasterio

    with rasterio.open(out / "kriging_estimate.tif") as a, \
            rasterio.open(unit / "kriging_estimate.tif") as b:
        np.testing.assert_allclose(a.read(1), b.read(1), rtol=1e-6)  # weights: sill-free


def test_unstable_counts_reach_kriging_json(meuse_gpkg, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["krige", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--cell-size", "80", "--variogram", "200001 Gau(1000)", "--output-dir",
                 str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "Gaussian-like structure" in err and "unstable kriging system" in err
    summary = json.loads((out / "kriging.json").read_text())
    assert summary["n_unstable"] > 0
    # nodata: unresolved systems, and estimates outside the plausible band (negative zinc)
    assert summary["n_nonfinite_estimate"] == summary["n_unresolved"] + summary["n_implausible"]
    import rasterio

    with rasterio.open(out / "kriging_estimate.tif") as ds:
        arr = ds.read(1)
    assert np.isfinite(arr).all()  # no inf in a raster: nodata instead


def test_variances_beyond_float32_are_counted_not_silent(meuse_gpkg, tmp_path, capsys):
    """A sill of 1e39: the estimates are sill-free and kept; variances beyond float32's range
    are nodata in the raster, and the log says how many (before: silently nodata)."""
    out = tmp_path / "o"
    code = main(["krige", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--transform", "none", "--cell-size", "80", "--variogram", "1e39 Sph(900)",
                 "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    import rasterio

    with rasterio.open(out / "kriging_variance.tif") as ds:
        var = ds.read(1, masked=True)
    n_nodata = int(var.mask.sum())
    assert n_nodata > 0
    assert f"{n_nodata} of {var.size} kriging variance(s) are beyond the float32 range" in err
    assert "RuntimeWarning" not in err
