"""Kriging-derived features: leave-one-out leakage, hand-checkable content, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.features import (
    FeatureConfig,
    Scaler,
    compute_features,
    encode_co_fields,
    fit_co_field_encoding,
    sample_covariates,
)
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.variogram.models import parse_model

VG = parse_model("0.0507 Nug + 0.5906 Sph(897)")


@pytest.fixture(scope="module")
def meuse(meuse_gpkg):
    from gcnn_rnn.core.io import read_points

    pts = read_points(meuse_gpkg, "zinc", layer="meuse", extra_fields=("soil", "elev", "landuse"))
    return pts, np.log(pts.values)


def test_a_samples_own_value_never_reaches_its_features(meuse):
    pts, y = meuse
    cfg = FeatureConfig(neighbours=16)
    base = compute_features(pts.coords, y, pts.coords, VG, cfg, exclude_self=True)
    i = 17
    bumped = y.copy()
    bumped[i] += 5.0
    after = compute_features(pts.coords, bumped, pts.coords, VG, cfg, exclude_self=True)
    # unchanged up to rounding (the kriging kernel may centre all values on their mean, a
    # 1e-16 dependence that is arithmetic, not information: the bump is 5.0)
    np.testing.assert_allclose(after.sequence[i], base.sequence[i], rtol=0, atol=1e-12)
    np.testing.assert_allclose(after.static[i], base.static[i], rtol=0, atol=1e-12)
    # ... while the samples that have it as a neighbour do see the change (the test can fail)
    users = np.flatnonzero(np.abs(after.static[:, 0] - base.static[:, 0]) > 1e-9)
    assert users.size > 0 and i not in users


def test_without_exclusion_the_sample_is_its_own_nearest_neighbour(meuse):
    pts, y = meuse
    f = compute_features(pts.coords, y, pts.coords[:5], VG, FeatureConfig(neighbours=8))
    np.testing.assert_allclose(f.sequence[:, 0, 0], y[:5])  # value of the nearest = itself
    np.testing.assert_allclose(f.static[:, 3], 0.0)  # distance to the nearest sample
    np.testing.assert_allclose(f.ok_estimate, y[:5], atol=1e-9)  # kriging is exact


def test_sequence_content_matches_kriging_by_hand(meuse):
    pts, y = meuse
    k = 10
    cfg = FeatureConfig(neighbours=k, kriging_neighbours=k)
    target = np.array([[180500.0, 331500.0]])
    f = compute_features(pts.coords, y, target, VG, cfg)
    ref = krige(pts.coords, y, target, VG, KrigingConfig(neighbours=k), return_details=True)
    d = np.hypot(*(pts.coords - target[0]).T)
    order = np.argsort(d)[:k]
    seq = f.sequence[0]
    assert f.sequence_names == ("value", "dx", "dy", "distance", "covariance", "ok_weight")
    np.testing.assert_allclose(seq[:, 3], d[order])  # nearest first
    np.testing.assert_allclose(seq[:, 0], y[order])
    np.testing.assert_allclose(seq[:, 1:3], pts.coords[order] - target[0])
    np.testing.assert_allclose(seq[:, 4], (VG.sill - VG.gamma(d[order])) / VG.sill)
    np.testing.assert_allclose(seq[:, 5].sum(), 1.0, atol=1e-9)  # OK weights sum to one
    np.testing.assert_allclose((seq[:, 5] * seq[:, 0]).sum(), f.ok_estimate[0], atol=1e-9)
    np.testing.assert_allclose(f.ok_estimate, ref.estimate)
    np.testing.assert_allclose(f.static[0, :6], [
        ref.estimate[0], np.sqrt(ref.variance[0]), ref.lagrange[0], d[order][0],
        y[order].mean(), y[order].std()])


def test_extra_static_features_and_coordinates(meuse):
    pts, y = meuse
    cfg = FeatureConfig(neighbours=4, coordinates=True)
    extra = np.arange(2.0 * pts.n).reshape(pts.n, 2)
    f = compute_features(pts.coords, y, pts.coords, VG, cfg, exclude_self=True,
                         extra=extra, extra_names=("a", "b"))
    assert f.static_names[-4:] == ("x", "y", "a", "b")
    np.testing.assert_array_equal(f.static[:, -2:], extra)
    np.testing.assert_array_equal(f.static[:, -4:-2], pts.coords)


def test_too_few_samples_for_the_sequence(meuse):
    pts, y = meuse
    with pytest.raises(InputDataError, match="needs 16 samples"):
        compute_features(pts.coords[:16], y[:16], pts.coords[:16], VG, FeatureConfig(16),
                         exclude_self=True)


def test_co_fields_numeric_and_one_hot():
    attrs = pd.DataFrame({"ni": [1.0, 2.0, 3.0], "rock": ["b", "a", "b"]})
    enc = fit_co_field_encoding(attrs, ["ni", "rock"])
    assert enc.names == ("ni", "rock=a", "rock=b")
    np.testing.assert_array_equal(encode_co_fields(attrs, enc),
                                  [[1, 0, 1], [2, 1, 0], [3, 0, 1]])
    other = pd.DataFrame({"ni": [5.0], "rock": ["c"]})  # unseen class: all zeros
    np.testing.assert_array_equal(encode_co_fields(other, enc), [[5, 0, 0]])
    with pytest.raises(InputDataError, match="'cu'"):
        fit_co_field_encoding(attrs, ["cu"])
    with pytest.raises(InputDataError, match="no field 'rock'"):
        encode_co_fields(pd.DataFrame({"ni": [1.0]}), enc, "target points")
    with pytest.raises(InputDataError, match="NULL"):
        fit_co_field_encoding(pd.DataFrame({"ni": [1.0, np.nan]}), ["ni"])


def _raster(path, crs_epsg: int, extent=(178000, 329000, 182000, 334000), cell=100.0):
    from pyproj import CRS

    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.raster import write_raster

    grid = Grid.from_extent(extent, cell, crs=CRS.from_epsg(crs_epsg).to_wkt())
    rows, cols = np.indices(grid.shape)
    write_raster(path, (rows * 1000 + cols).astype(float), grid, "test", qml=False)
    return grid


def test_covariates_sampled_and_checked(meuse, tmp_path):
    pts, _ = meuse
    crs = pts.crs
    grid = _raster(tmp_path / "ok.tif", 28992)
    vals = sample_covariates([str(tmp_path / "ok.tif")], pts.coords[:3], crs)
    col = np.floor((pts.coords[:3, 0] - grid.xmin) / 100.0)
    row = np.floor((grid.ymax - pts.coords[:3, 1]) / 100.0)
    np.testing.assert_array_equal(vals[:, 0], row * 1000 + col)
    _raster(tmp_path / "small.tif", 28992, extent=(178000, 329000, 179500, 334000))
    with pytest.raises(InputDataError, match="does not cover"):
        sample_covariates([str(tmp_path / "small.tif")], pts.coords, crs)
    _raster(tmp_path / "utm.tif", 32631)
    with pytest.raises(InputDataError, match="reproject"):
        sample_covariates([str(tmp_path / "utm.tif")], pts.coords, crs)


def test_scaler_round_trip_and_clipping():
    data = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    sc = Scaler.fit(data)
    z = sc.transform(data)
    np.testing.assert_allclose(z[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    np.testing.assert_array_equal(z[:, 1], 0.0)  # constant channel: scale 1
    assert Scaler.from_dict(sc.to_dict()) == sc
    far = sc.transform(np.array([[100.0, 5.0]]), clip=True)
    assert far[0, 0] == pytest.approx(1.2247449)


def _ok_weights_by_hand(coords, target, model):
    """Ordinary-kriging weights from the full system, solved directly (all samples)."""
    n = len(coords)
    a = np.ones((n + 1, n + 1))
    a[n, n] = 0.0
    a[:n, :n] = model.covariance(np.hypot(*(coords[:, None, :] - coords[None, :, :]).T).T)
    b = np.ones(n + 1)
    b[:n] = model.covariance(np.hypot(*(coords - target).T))
    return np.linalg.solve(a, b)[:n]


def test_covariate_channels_match_a_hand_computation(meuse):
    pts, y = meuse
    n, k = 30, 6
    coords, vals = pts.coords[:n], y[:n]
    cov = np.column_stack([np.sqrt(np.arange(n) + 1.0), (np.arange(n) % 3 == 0) * 1.0])
    target = np.array([[180600.0, 331600.0]])
    t_cov = np.array([[2.5, 1.0]])
    cfg = FeatureConfig(neighbours=k, kriging_neighbours=n)
    f = compute_features(coords, vals, target, VG, cfg, extra=t_cov, extra_names=("c", "h"),
                         sample_extra=cov)
    order = np.argsort(np.hypot(*(coords - target[0]).T))[:k]
    assert f.sequence_names[-4:] == ("nb:c", "nb:h", "diff:c", "diff:h")
    np.testing.assert_allclose(f.sequence[0, :, -4:-2], cov[order])
    np.testing.assert_allclose(f.sequence[0, :, -2:], t_cov[0] - cov[order])
    lam = _ok_weights_by_hand(coords, target[0], VG)
    est = lam @ cov  # the covariate kriged with the field's OK weights
    assert f.static_names[-6:] == ("c", "h", "ok:c", "ok:h", "surprise:c", "surprise:h")
    np.testing.assert_allclose(f.static[0, -6:-4], t_cov[0])
    np.testing.assert_allclose(f.static[0, -4:-2], est, atol=1e-9)
    np.testing.assert_allclose(f.static[0, -2:], t_cov[0] - est, atol=1e-9)
    # switched off: the covariates are plain static features as before
    off = compute_features(coords, vals, target, VG, FeatureConfig(k, n, covariate_sequence=False),
                           extra=t_cov, extra_names=("c", "h"), sample_extra=cov)
    assert off.sequence.shape[-1] == 6 and off.static_names[-2:] == ("c", "h")


def test_covariate_channels_are_leakage_free(meuse):
    pts, y = meuse
    cov = np.sqrt(np.abs(pts.coords[:, 0] - 178000.0))[:, None]
    cfg = FeatureConfig(neighbours=8, multiscale=True)
    kw = {"exclude_self": True, "extra": cov, "extra_names": ("c",), "sample_extra": cov}
    base = compute_features(pts.coords, y, pts.coords, VG, cfg, **kw)
    i = 40
    bumped = y.copy()
    bumped[i] -= 4.0
    after = compute_features(pts.coords, bumped, pts.coords, VG, cfg, **kw)
    np.testing.assert_allclose(after.sequence[i], base.sequence[i], rtol=0, atol=1e-12)
    np.testing.assert_allclose(after.static[i], base.static[i], rtol=0, atol=1e-12)
    assert (np.abs(after.static - base.static).max(axis=1) > 1e-9).sum() > 0
    # the sample itself is never among its own neighbours: no zero difference from itself
    nb = base.sequence_names.index("nb:c")
    assert not np.any(np.isclose(base.sequence[i, :, nb], cov[i, 0]) &
                      np.isclose(base.sequence[i, :, 3], 0.0))


def test_multiscale_statics_by_hand(meuse):
    pts, y = meuse
    k = 8
    target = np.array([[179900.0, 330900.0]])
    f = compute_features(pts.coords, y, target, VG, FeatureConfig(k, 32, multiscale=True))
    names = list(f.static_names)
    d = np.hypot(*(pts.coords - target[0]).T)
    order = np.argsort(d)[:k]
    w = 1.0 / d[order] ** 2
    np.testing.assert_allclose(f.static[0, names.index("idw")], (w * y[order]).sum() / w.sum())
    ok8 = krige(pts.coords, y, target, VG, KrigingConfig(neighbours=8))
    np.testing.assert_allclose(f.static[0, names.index("ok8_estimate")], ok8.estimate[0])
    # a plane is reproduced exactly by the local plane fit (slope ridge aside: tiny tilt)
    plane = 2.0 + 1e-3 * (pts.coords[:, 0] - 179000.0)
    fp = compute_features(pts.coords, plane, target, VG, FeatureConfig(k, 32, multiscale=True))
    assert abs(fp.static[0, names.index("local_plane")] - (2.0 + 1e-3 * 900.0)) < 0.05


def test_zero_kriging_neighbours_means_global_kriging(meuse):
    # 0 = all samples, as for the krige command; the statics then equal a global OK solved
    # independently (numpy, the full ordinary kriging system with a Lagrange row).
    pts, y = meuse
    f = compute_features(pts.coords, y, pts.coords[:4] + 13.0, VG, FeatureConfig(neighbours=8,
                         kriging_neighbours=0))
    n = len(y)
    d = np.sqrt(((pts.coords[:, None] - pts.coords[None]) ** 2).sum(-1))
    sill = VG.sill
    a = np.ones((n + 1, n + 1))
    a[:n, :n] = sill - VG.gamma(d)
    a[np.diag_indices(n)] = sill
    a[n, n] = 0.0
    t = pts.coords[:4] + 13.0
    b = np.ones((n + 1, 4))
    b[:n] = sill - VG.gamma(np.sqrt(((pts.coords[:, None] - t[None]) ** 2).sum(-1)))
    w = np.linalg.solve(a, b)
    np.testing.assert_allclose(f.ok_estimate, w[:n].T @ y, rtol=0, atol=1e-9)
    # the sequence is still the 8 nearest, nearest first
    assert np.all(np.diff(f.sequence[:, :, 3], axis=1) >= 0)
    local = compute_features(pts.coords, y, t, VG, FeatureConfig(neighbours=8))
    assert np.abs(local.ok_estimate - f.ok_estimate).max() > 1e-6  # 32 ≠ all: test can fail
    with pytest.raises(InputDataError, match="kriging neighbours must be >= 0"):
        FeatureConfig(kriging_neighbours=-1)


def _holes():
    # 12 vertical holes of 8 samples 5 m apart, a field varying mostly with depth
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 1000, (12, 2))
    z = -5.0 * np.arange(8)
    coords = np.array([[x, y, zz] for x, y in xy for zz in z])
    values = np.sin(coords[:, 2] / 7) + coords[:, 0] / 1000 + rng.normal(0, 0.1, len(coords))
    return coords, values


def test_leave_out_groups_detects_drill_holes(meuse):
    from gcnn_rnn.core.features import leave_out_groups

    pts, _ = meuse
    coords, _ = _holes()
    assert leave_out_groups(pts.coords, "auto") is None  # 2D: leave-one-out
    g = leave_out_groups(coords, "auto")
    assert g is not None and len(np.unique(g)) == 12
    assert all(len(np.unique(coords[g == i, :2], axis=0)) == 1 for i in np.unique(g))
    assert leave_out_groups(coords, "sample") is None
    scattered = coords + np.column_stack([np.arange(len(coords)) * 0.37, np.zeros((96, 2))])
    assert leave_out_groups(scattered, "auto") is None  # no shared columns
    assert len(np.unique(leave_out_groups(scattered, "column"))) == 96
    with pytest.raises(InputDataError, match="leave-out must be one of"):
        leave_out_groups(coords, "hole")


def test_a_samples_whole_hole_never_reaches_its_features():
    from gcnn_rnn.core.features import leave_out_groups

    coords, values = _holes()
    vg = parse_model("0.01 Nug + 1 Sph(400, anis=(0, 0, 0, 1, 0.05))")
    cfg = FeatureConfig(neighbours=8)
    groups = leave_out_groups(coords, "column")
    base = compute_features(coords, values, coords, vg, cfg, exclude_self=True, groups=groups)
    hole = groups == groups[10]
    bumped = values.copy()
    bumped[hole] += 5.0  # every sample of the hole of sample 10
    after = compute_features(coords, bumped, coords, vg, cfg, exclude_self=True, groups=groups)
    np.testing.assert_allclose(after.sequence[hole], base.sequence[hole], rtol=0, atol=1e-12)
    np.testing.assert_allclose(after.static[hole], base.static[hole], rtol=0, atol=1e-12)
    # equal to kriging the hole from the other holes
    direct = compute_features(coords[~hole], values[~hole], coords[hole], vg, cfg)
    np.testing.assert_allclose(base.static[hole], direct.static, atol=1e-12)
    # plain leave-one-out does see the neighbours in the hole (the test can fail)
    loo = compute_features(coords, bumped, coords, vg, cfg, exclude_self=True)
    assert np.abs(loo.static[hole, 0] - base.static[hole, 0]).max() > 1.0
