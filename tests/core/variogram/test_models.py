"""Contract and hand-computed tests of the variogram models, anisotropy and text form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gcnn_rnn.core.errors import InputDataError, UnknownModelError
from gcnn_rnn.core.variogram.models import (
    MODELS,
    Anisotropy,
    Structure,
    VariogramModel,
    model_class,
    parse_model,
)

SHAPE = {"mat": 1.5, "ste": 1.3, "pow": 1.5}


def single(name: str, psill: float = 2.0, range_: float = 100.0, extra=None) -> VariogramModel:
    if extra is None:
        extra = SHAPE.get(name)
    return VariogramModel((Structure(name, psill, range_, extra),))


@pytest.mark.parametrize("name", list(MODELS))
def test_gamma_zero_at_origin_and_nonnegative(name):
    m = VariogramModel((Structure("nug", 0.3), *single(name).structures))
    h = np.concatenate([[0.0], np.geomspace(1e-9, 1e4, 400)])
    g = m.gamma(h)
    assert g[0] == 0.0
    assert np.all(g[1:] >= 0.3 - 1e-12)  # the nugget jumps in for any h > 0
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name", [n for n, c in MODELS.items() if c.monotone])
def test_monotone(name):
    h = np.linspace(0.0, 2000.0, 4001)
    g = single(name).gamma(h)
    assert np.all(np.diff(g) >= -1e-14)


@pytest.mark.parametrize("name", [n for n, c in MODELS.items() if c.bounded])
def test_reaches_the_sill(name):
    m = single(name, psill=2.0, range_=100.0)
    far = {"sph": 100.0, "cub": 100.0, "lin": 100.0, "hol": 1e9}.get(name, 1e5)
    assert m.sill == 2.0
    assert m.gamma(far) == pytest.approx(2.0, abs=1e-6)
    assert m.covariance(0.0) == pytest.approx(2.0)
    assert m.covariance(far) == pytest.approx(0.0, abs=1e-6)


def test_hand_computed_values():
    a = 100.0
    assert single("sph", 1.0, a).gamma(a / 2) == pytest.approx(0.6875)
    assert single("sph", 3.0, a).gamma(a / 2) == pytest.approx(3 * 0.6875)
    assert single("exp", 1.0, a).gamma(a) == pytest.approx(1 - math.exp(-1))
    assert single("gau", 1.0, a).gamma(a) == pytest.approx(1 - math.exp(-1))
    assert single("gau", 1.0, a).gamma(2 * a) == pytest.approx(1 - math.exp(-4))
    # 7/4 - 8.75/8 + 3.5/32 - 0.75/128
    assert single("cub", 1.0, a).gamma(a / 2) == pytest.approx(0.759765625)
    assert single("lin", 1.0, a).gamma(a / 4) == pytest.approx(0.25)
    assert single("pow", 1.0, 1.0, 1.5).gamma(4.0) == pytest.approx(8.0)
    assert single("pow", 1.0, 2.0, 1.0).gamma(4.0) == pytest.approx(2.0)
    assert single("hol", 1.0, a).gamma(math.pi * a) == pytest.approx(1.0)
    assert single("hol", 1.0, a).gamma(math.pi * a / 2) == pytest.approx(1 - 2 / math.pi)
    h = np.linspace(1.0, 500.0, 50)
    # Matern nu = 0.5 is the exponential; nu = 1.5 is (1 + x) exp(-x) in gstat's scaling
    np.testing.assert_allclose(
        single("mat", 1, a, 0.5).gamma(h), 1 - np.exp(-h / a), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        single("mat", 1, a, 1.5).gamma(h), 1 - (1 + h / a) * np.exp(-h / a), rtol=1e-12, atol=1e-14
    )
    # stable alpha = 2 is the gaussian, alpha = 1 the exponential
    np.testing.assert_allclose(single("ste", 1, a, 2.0).gamma(h), single("gau", 1, a).gamma(h))
    np.testing.assert_allclose(single("ste", 1, a, 1.0).gamma(h), single("exp", 1, a).gamma(h))


def test_nested_sum_and_properties():
    m = parse_model("0.0507 Nug + 0.5906 Sph(897)")
    assert m.nugget == 0.0507
    assert m.sill == pytest.approx(0.6413)
    assert m.bounded
    assert m.max_range == 897.0
    assert m.gamma(897.0 / 2) == pytest.approx(0.0507 + 0.5906 * 0.6875)
    assert m.gamma(0.0) == 0.0
    unbounded = parse_model("0.1 Nug + 1 Pow(1, alpha=1.5)")
    assert not unbounded.bounded and unbounded.sill == math.inf
    with pytest.raises(InputDataError):
        unbounded.covariance(1.0)
    assert unbounded.covariance(4.0, shift=100.0) == pytest.approx(100.0 - 0.1 - 8.0)


def _random_points(ndim: int, n: int = 60, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 500.0, size=(n, ndim))


@pytest.mark.parametrize(
    ("name", "ndim"),
    [(n, d) for n, c in MODELS.items() if c.bounded for d in (2, 3) if c.max_dim >= d],
)
def test_covariance_positive_definite(name, ndim):
    pts = _random_points(ndim)
    # the hole effect is analytic (like the gaussian): a shorter range keeps it well conditioned
    cov = single(name, 1.0, 15.0 if name == "hol" else 100.0).covariance(cdist(pts, pts))
    assert np.allclose(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0.0


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.9])
def test_power_conditionally_negative_definite(alpha, ndim):
    pts = _random_points(ndim, seed=3)
    gam = single("pow", 1.0, 50.0, alpha).gamma(cdist(pts, pts))
    n = len(pts)
    proj = np.eye(n) - 1.0 / n  # weights summing to zero
    assert np.linalg.eigvalsh(-proj @ gam @ proj).min() > -1e-9


def test_unknown_model_lists_known():
    with pytest.raises(UnknownModelError, match="'foo'.*sph"):
        Structure("foo", 1.0, 1.0)
    with pytest.raises(UnknownModelError):
        parse_model("1 Bar(3)")
    assert model_class("Spherical") is MODELS["sph"]
    assert model_class("EXC") is MODELS["ste"]
    assert Structure("SPH", 1, 2).model == "sph"


@pytest.mark.parametrize(
    "args",
    [
        ("sph", -1.0, 10.0),
        ("sph", 1.0, 0.0),
        ("exp", 1.0, -5.0),
        ("sph", math.nan, 10.0),
        ("mat", 1.0, 10.0, 0.0),
        ("mat", 1.0, 10.0, -1.0),
        ("ste", 1.0, 10.0, 2.5),
        ("ste", 1.0, 10.0, 0.0),
        ("pow", 1.0, 1.0, 2.0),
        ("sph", 1.0, 10.0, 1.0),
    ],
)
def test_structure_validation(args):
    with pytest.raises(InputDataError):
        Structure(*args)


@pytest.mark.parametrize("kwargs", [{"ratio": 0.0}, {"ratio": 1.5}, {"ratio_vertical": -1}])
def test_anisotropy_validation(kwargs):
    with pytest.raises(InputDataError):
        Anisotropy(**kwargs)


def test_bounds_and_defaults():
    assert MODELS["nug"].bounds() == {"psill": (0.0, math.inf)}
    assert MODELS["sph"].bounds() == {"psill": (0.0, math.inf), "range": (0.0, math.inf)}
    assert MODELS["ste"].bounds()["extra"] == (0.0, 2.0)
    for name, cls in MODELS.items():
        if cls.extra_name is not None:
            cls.check_extra(cls.default_extra)  # the default is admissible
            assert Structure(name, 1.0, 5.0).extra == cls.default_extra


def test_extra_defaults_resolved_for_equality():
    assert Structure("mat", 1, 10) == Structure("mat", 1, 10, 0.5)
    assert Structure("nug", 1, 123.0).range_ == 0.0
    assert Structure("pow", 1).range_ == 1.0


def test_anisotropy_2d_axes():
    anis = Anisotropy(azimuth=45.0, ratio=0.5)
    major = np.array([[math.sin(math.radians(45)), math.cos(math.radians(45))]])
    minor = np.array([[math.cos(math.radians(45)), -math.sin(math.radians(45))]])
    assert np.linalg.norm(anis.transform(major)) == pytest.approx(1.0)
    assert np.linalg.norm(anis.transform(minor)) == pytest.approx(2.0)
    # north-south major axis: an east offset of 10 counts as 10 / ratio
    ns = Anisotropy(azimuth=0.0, ratio=0.25)
    np.testing.assert_allclose(
        np.abs(ns.transform(np.array([[10.0, 0.0], [0.0, 10.0]]))),
        [[0.0, 40.0], [10.0, 0.0]],
        atol=1e-12,
    )
    m = VariogramModel((Structure("sph", 1.0, 100.0),), ns)
    # along the minor axis the model reaches the sill at 25
    assert m.gamma(np.linalg.norm(m.reduce(np.array([[25.0, 0.0]])), axis=1))[0] == 1.0
    assert m.gamma(np.linalg.norm(m.reduce(np.array([[0.0, 25.0]])), axis=1))[0] < 1.0


def test_anisotropy_3d_gslib_convention():
    # major axis towards east, dipping 30 degrees downwards (GSLIB ang2 = -30)
    anis = Anisotropy(azimuth=90.0, ratio=0.5, dip=-30.0, plunge=0.0, ratio_vertical=0.1)
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    np.testing.assert_allclose(
        anis.transform(np.array([[c, 0.0, -s]])), [[1.0, 0.0, 0.0]], atol=1e-12
    )
    # horizontal minor axis (north-south) scaled by 1/0.5
    assert np.linalg.norm(anis.transform(np.array([[0.0, 1.0, 0.0]]))) == pytest.approx(2.0)
    # the direction perpendicular to both scaled by 1/0.1
    assert np.linalg.norm(anis.transform(np.array([[s, 0.0, c]]))) == pytest.approx(10.0)
    # pure rotation when the ratios are 1; 2D block equals the 2D anisotropy
    rot = Anisotropy(33.0, 1.0, 12.0, -40.0, 1.0).matrix(3)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(
        Anisotropy(33.0, 0.4).matrix(3)[:2, :2], Anisotropy(33.0, 0.4).matrix(2)
    )
    assert Anisotropy.from_gslib((90, -30, 0), (0.5, 0.1)) == anis
    with pytest.raises(InputDataError):
        anis.matrix(2)


@pytest.mark.parametrize(
    "text",
    [
        "0.0507 Nug + 0.5906 Sph(897)",
        "0.05 Nug + 0.59 Sph(897, anis=(45, 0.5))",
        "1 Mat(300, nu=1.5)",
        "0.8 Ste(200.5, alpha=1.2) + 0.1 Pow(1, alpha=1.5)",
        "1 Sph(300, anis=(30, -10, 5, 0.5, 0.2)) + 0.25 Exp(1000)",
        "0.1 Nug + 0.30000000000000004 Gau(12.345678901234567) + 2 Hol(40) + 1 Cub(7)",
        "1e-05 Lin(1e+20)",
    ],
)
def test_text_round_trip(text):
    m = parse_model(text)
    assert parse_model(m.to_text()) == m
    assert VariogramModel.from_dict(m.to_dict()) == m
    if "e+" not in text:
        assert m.to_text() == text  # canonical texts are reproduced verbatim


def test_text_forms_and_errors():
    m = parse_model("  0.05 nug(0)+0.59*sph(897,anis=(45,0.5)) ")
    assert m.structures == (Structure("nug", 0.05), Structure("sph", 0.59, 897.0))
    assert m.anisotropy == Anisotropy(45.0, 0.5)
    assert m.to_text() == "0.05 Nug + 0.59 Sph(897, anis=(45, 0.5))"
    assert parse_model("1e+3 Nug").nugget == 1000.0
    assert parse_model("Mat(10, 2.5)").structures[0] == Structure("mat", 1.0, 10.0, 2.5)
    assert parse_model("1 Mat(10, kappa=2.5)") == parse_model("1 Mat(10, nu=2.5)")
    for bad in [
        "",
        "0.5",
        "1 Sph",
        "1 Sph(1, 2)",
        "1 Sph(10",
        "1 Nug(5)",
        "1 Sph(10, nu=2)",
        "1 Sph(10, anis=(1, 2, 3))",
        "1 Sph(10, anis=(0, 0.5)) + 1 Exp(5, anis=(9, 0.5))",
        "-1 Sph(10)",
        "1 Sph(abc)",
    ]:
        with pytest.raises(InputDataError):
            parse_model(bad)


def test_dict_is_json_safe():
    import json

    m = parse_model("0.05 Nug + 0.59 Sph(897, anis=(45, 0.5)) + 1 Mat(30, nu=2)")
    d = json.loads(json.dumps(m.to_dict()))
    assert VariogramModel.from_dict(d) == m
    assert d["structures"][1] == {"model": "sph", "psill": 0.59, "range": 897.0, "extra": None}
    with pytest.raises(InputDataError):
        VariogramModel.from_dict({"structures": [{"model": "sph"}]})


def test_kernel_arrays():
    m = parse_model("0.1 Nug + 1 Mat(30, nu=2) + 2 Sph(10)")
    codes, params = m.kernel_arrays()
    assert codes.dtype == np.int64 and params.dtype == np.float64
    assert codes.tolist() == [0, 4, 1]
    np.testing.assert_array_equal(params[:, :3], [[0.1, 0.0, 0.0], [1.0, 30.0, 2.0], [2.0, 10.0, 0.0]])
    np.testing.assert_array_equal(params[0, 3:], 0.0)  # the Matérn table is in its own row only
    np.testing.assert_array_equal(params[2, 3:], 0.0)
