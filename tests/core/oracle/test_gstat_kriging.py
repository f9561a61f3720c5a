"""Ordinary and simple kriging against gstat's ``krige()`` on the Meuse data (to 1e-6).

One R script krige's log(zinc) for every case below at the nodes of the Meuse 40 m grid plus a
few sample locations (where both must return the sample value with variance 0); the engine
krige's the same targets with the same model and neighbourhood.

Conventions checked here rather than assumed: gstat's ``vgm`` ranges (``Exp``/``Gau`` range
parameters, ``Mat`` kappa, ``Exc`` = our stable model, ``Pow``), ``anis = c(azimuth, ratio)``
(and the five 3D parameters) against :class:`Anisotropy`, and ``nmax``/``nmin``/``maxdist``
against ``neighbours``/``min_neighbours``/``max_distance``. gstat picks the ``nmax`` nearest
samples by *Euclidean* distance (``maxdist`` too) unless ``vdist = TRUE``, when it ranks them
by the variogram value, i.e. by anisotropic distance for a strictly increasing model; the
engine always uses the anisotropic distance, so the anisotropic local case uses ``vdist``
with an exponential model.

Targets whose ``k``-th and ``k+1``-th nearest samples are exactly equidistant are left out of
the local comparisons: either sample is a correct choice, and the two programs break such ties
differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from gstat_oracle import r_vgm, run_r, untied

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.kriging import KrigingConfig, krige
from gcnn_rnn.core.raster import read_raster
from gcnn_rnn.core.variogram.models import VariogramModel, parse_model

TOL = 1e-6
N_SAMPLE_TARGETS = 8  # the first samples are appended to the targets (exactness)
SPH = "0.0507 Nug + 0.5906 Sph(897)"


@dataclass(frozen=True)
class Case:
    """One kriging configuration, run by gstat and by the engine."""

    name: str
    model: str
    neighbours: int = 0  # 0: global
    min_neighbours: int = 1
    max_distance: float | None = None
    mean: float | None = None  # simple kriging
    vdist: bool = False  # gstat ranks neighbours by variogram (anisotropic) distance
    dims: int = 2

    @property
    def variogram(self) -> VariogramModel:
        return parse_model(self.model)

    @property
    def config(self) -> KrigingConfig:
        return KrigingConfig(
            neighbours=self.neighbours,
            min_neighbours=self.min_neighbours,
            max_distance=self.max_distance,
            mean=self.mean,
        )

    def r_call(self) -> str:
        """The gstat ``krige()`` call for this case (``d``: data, ``t``: targets)."""
        args = [f"model = {r_vgm(self.variogram)}", "debug.level = 0"]
        if self.neighbours:
            args.append(f"nmax = {self.neighbours}")
        if self.min_neighbours > 1:
            args.append(f"nmin = {self.min_neighbours}")
        if self.max_distance is not None:
            args.append(f"maxdist = {self.max_distance!r}")
        if self.mean is not None:
            args.append(f"beta = {self.mean!r}")
        if self.dims == 3:
            return f"krige(v ~ 1, ~x + y + z, d3, t3, {', '.join(args)})"
        if self.vdist:  # krige() does not pass vdist on: go through gstat()/predict();
            # gstat wants a (Euclidean) maxdist with vdist: one that keeps every sample
            args.append("maxdist = 1e7")
            g = f"gstat(NULL, 'v', v ~ 1, d, vdist = TRUE, {', '.join(args[:1] + args[2:])})"
            return f"predict({g}, t, debug.level = 0)"
        return f"krige(v ~ 1, d, t, {', '.join(args)})"


CASES = [
    Case("sph_global", SPH),
    Case("sph_nmax32", SPH, neighbours=32),
    Case("sph_nmax10_maxdist600_nmin3", SPH, neighbours=10, min_neighbours=3, max_distance=600.0),
    Case("exp_global", "0.05 Nug + 0.6 Exp(300)"),
    Case("exp_nmax32", "0.05 Nug + 0.6 Exp(300)", neighbours=32),
    Case("gau_global", "0.08 Nug + 0.5 Gau(450)"),
    Case("gau_nmax32", "0.08 Nug + 0.5 Gau(450)", neighbours=32),
    Case("mat15_global", "0.05 Nug + 0.6 Mat(250, nu=1.5)"),
    Case("mat15_nmax32", "0.05 Nug + 0.6 Mat(250, nu=1.5)", neighbours=32),
    # the compiled kernels interpolate Matérn from a table (exact path near 0 for small nu)
    Case("mat12_nmax32", "0.05 Nug + 0.6 Mat(60, nu=12.17)", neighbours=32),
    Case("mat03_nmax32", "0.05 Nug + 0.6 Mat(300, nu=0.3)", neighbours=32),
    Case("stable_exc_nmax32", "0.05 Nug + 0.6 Ste(400, alpha=1.5)", neighbours=32),
    Case("hole_global", "0.1 Nug + 0.5 Hol(150)"),
    Case("nested_global", "0.05 Nug + 0.3 Sph(300) + 0.3 Exp(600)"),
    Case("pow_global", "0.05 Nug + 0.6 Pow(1000, alpha=1.2)"),
    Case("aniso_sph_global", "0.05 Nug + 0.6 Sph(1200, anis=(40, 0.5))"),
    Case("aniso_sph_az120_global", "0.05 Nug + 0.6 Sph(1000, anis=(120, 0.3))"),
    Case(
        "aniso_exp_nmax20_vdist",
        "0.05 Nug + 0.6 Exp(500, anis=(40, 0.4))",
        neighbours=20,
        vdist=True,
    ),
    Case("sk_global", SPH, mean=5.9),
    Case("sk_nmax32", SPH, neighbours=32, mean=5.9),
    Case("sk_exp_nmax16", "0.05 Nug + 0.6 Exp(300)", neighbours=16, mean=6.2),
    Case("3d_sph_global", "0.05 Nug + 0.6 Sph(900)", dims=3),
    Case("3d_aniso_global", "0.05 Nug + 0.6 Sph(1200, anis=(30, 20, 10, 0.5, 0.3))", dims=3),
    Case(
        "3d_aniso_dip_down_global", "0.05 Nug + 0.6 Sph(1200, anis=(150, -35, 0, 0.6, 0.2))", dims=3
    ),
    Case("3d_exp_nmax24", "0.05 Nug + 0.6 Exp(300)", neighbours=24, dims=3),
]

#: Vertical exaggeration of the synthetic 3D samples (z = elevation * Z_SCALE).
Z_SCALE = 100.0


def _targets(meuse: pd.DataFrame, grid: pd.DataFrame) -> np.ndarray:
    return np.vstack(
        [grid[["x", "y"]].to_numpy(float), meuse[["x", "y"]].to_numpy(float)[:N_SAMPLE_TARGETS]]
    )


def _data3d(meuse: pd.DataFrame, grid: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """3D samples (Meuse x, y and exaggerated elevation) and 3D targets (every 4th node at
    three levels, plus the first samples)."""
    coords = np.column_stack([meuse["x"], meuse["y"], meuse["elev"] * Z_SCALE]).astype(float)
    xy = grid[["x", "y"]].to_numpy(float)[::4]
    levels = [coords[:, 2].min(), coords[:, 2].mean(), coords[:, 2].max()]
    t = np.vstack([np.column_stack([xy, np.full(len(xy), z)]) for z in levels])
    return coords, np.vstack([t, coords[:N_SAMPLE_TARGETS]])


@pytest.fixture(scope="module")
def gstat_results(meuse, meuse_grid) -> dict[str, pd.DataFrame]:
    """gstat's estimates and variances of every case (one R run)."""
    c3, t3 = _data3d(meuse, meuse_grid)
    t = _targets(meuse, meuse_grid)
    lines = [
        'd <- IN("data"); coordinates(d) <- ~x + y',
        't <- IN("targets"); coordinates(t) <- ~x + y',
        'd3 <- IN("data3"); t3 <- IN("targets3")',
    ]
    for case in CASES:
        lines.append(f"k <- {case.r_call()}")
        lines.append(
            f'OUT(data.frame(est = k$v.pred, var = k$v.var), "{case.name}")'
            if case.vdist
            else f'OUT(data.frame(est = k$var1.pred, var = k$var1.var), "{case.name}")'
        )
    inputs = {
        "data": {"x": meuse["x"], "y": meuse["y"], "v": meuse["logzinc"]},
        "targets": {"x": t[:, 0], "y": t[:, 1]},
        "data3": {"x": c3[:, 0], "y": c3[:, 1], "z": c3[:, 2], "v": meuse["logzinc"]},
        "targets3": {"x": t3[:, 0], "y": t3[:, 1], "z": t3[:, 2]},
    }
    out = run_r("\n".join(lines), inputs)
    assert set(out) == {c.name for c in CASES}
    return out


def _untied(coords: np.ndarray, targets: np.ndarray, case: Case) -> np.ndarray:
    """Mask of the targets whose neighbour set is unambiguous (no tie at the k-th place)."""
    return untied(coords, targets, case.variogram, case.neighbours, case.max_distance)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kriging_matches_gstat(case: Case, gstat_results, meuse, meuse_grid):
    values = meuse["logzinc"].to_numpy(float)
    if case.dims == 3:
        coords, targets = _data3d(meuse, meuse_grid)
    else:
        coords, targets = meuse[["x", "y"]].to_numpy(float), _targets(meuse, meuse_grid)
    res = krige(coords, values, targets, case.variogram, case.config)
    ref = gstat_results[case.name]
    est, var = ref["est"].to_numpy(float), ref["var"].to_numpy(float)
    assert est.shape == res.estimate.shape

    # same targets left empty (too few samples within maxdist), none otherwise
    np.testing.assert_array_equal(np.isnan(res.estimate), np.isnan(est))
    np.testing.assert_array_equal(np.isnan(res.variance), np.isnan(var))
    if case.min_neighbours > 1:
        assert res.n_missing == int(np.isnan(est).sum()) > 0  # the case does exercise nmin

    ok = _untied(coords, targets, case) & ~np.isnan(est)
    assert ok.sum() >= 0.99 * len(targets) - np.isnan(est).sum()
    np.testing.assert_allclose(res.estimate[ok], est[ok], rtol=0, atol=TOL)
    np.testing.assert_allclose(res.variance[ok], var[ok], rtol=0, atol=TOL)

    # at the samples: the sample value itself and variance 0, in both programs
    at = slice(len(targets) - N_SAMPLE_TARGETS, None)
    np.testing.assert_allclose(est[at], values[:N_SAMPLE_TARGETS], rtol=0, atol=1e-12)
    np.testing.assert_allclose(var[at], 0.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(res.estimate[at], values[:N_SAMPLE_TARGETS])
    np.testing.assert_array_equal(res.variance[at], 0.0)


def test_krige_command_matches_gstat(sample_dir, meuse, tmp_path, capsys):
    """``gcnn-rnn krige`` end to end (GeoPackage in, log transform, template grid, GeoTIFFs
    out) equals gstat at every node of the template raster (float32 output: 1e-6)."""
    code = main(
        [
            "krige",
            "--quiet",
            "--input",
            str(sample_dir / "meuse.gpkg"),
            "--layer",
            "meuse",
            "--field",
            "zinc",
            "--transform",
            "log",
            "--output-units",
            "transformed",
            "--variogram",
            SPH,
            "--neighbours",
            "32",
            "--template",
            str(sample_dir / "meuse_dist.tif"),
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    est, grid, _ = read_raster(tmp_path / "kriging_estimate.tif")
    var, _, _ = read_raster(tmp_path / "kriging_variance.tif")
    nodes = grid.node_coords()
    ref = run_r(
        f"""d <- IN("data"); coordinates(d) <- ~x + y
        t <- IN("nodes"); coordinates(t) <- ~x + y
        k <- krige(log(zinc) ~ 1, d, t, model = {r_vgm(parse_model(SPH))}, nmax = 32,
                   debug.level = 0)
        OUT(data.frame(est = k$var1.pred, var = k$var1.var), "grid")""",
        {"data": meuse[["x", "y", "zinc"]], "nodes": {"x": nodes[:, 0], "y": nodes[:, 1]}},
    )["grid"]
    coords = meuse[["x", "y"]].to_numpy(float)
    ok = _untied(coords, nodes, Case("cli", SPH, neighbours=32))
    assert est.size == len(nodes) and ok.mean() > 0.99
    # the template's nodata cells (outside the flood plain) stay nodata; all others are filled
    inside = np.isfinite(est.ravel())
    assert inside.sum() == 3103 and np.isfinite(var.ravel()).sum() == 3103
    ok &= inside
    np.testing.assert_allclose(est.ravel()[ok], ref["est"].to_numpy()[ok], rtol=0, atol=TOL)
    np.testing.assert_allclose(var.ravel()[ok], ref["var"].to_numpy()[ok], rtol=0, atol=TOL)
