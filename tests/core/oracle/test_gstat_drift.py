"""Kriging with an external drift against gstat's ``krige(v ~ cov, ...)`` on Meuse (to 1e-6).

Log(zinc) with the drift ``dist`` (and ``sqrt(dist)``) at the nodes of the Meuse 40 m grid
(whose ``dist`` column is the same covariate) plus a few sample locations, where KED is exact
(estimate = sample value, variance 0). Global and local neighbourhoods, a nested and an
anisotropic model, an unbounded one (KED is invariant to the covariance shift), and two
drift terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gstat_oracle import r_vgm, run_r, untied

from gcnn_rnn.core.kriging import krige_external_drift
from gcnn_rnn.core.variogram.models import parse_model

TOL = 1e-6
SAMPLE = Path(__file__).resolve().parents[3] / "sample_data"
N_SAMPLE_TARGETS = 6


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    formula: str  # gstat's right-hand side
    neighbours: int = 0


CASES = [
    Case("sph_dist_global", "0.05 Nug + 0.4 Sph(700)", "dist"),
    Case("sph_sqrtdist_global", "0.05 Nug + 0.3 Sph(600)", "sd"),
    Case("exp_sqrtdist_nmax32", "0.05 Nug + 0.35 Exp(250)", "sd", neighbours=32),
    Case("nested_two_drifts_global", "0.04 Nug + 0.2 Sph(300) + 0.15 Exp(800)", "dist + sd"),
    Case("aniso_dist_global", "0.05 Nug + 0.4 Sph(900, anis=(40, 0.5))", "dist"),
    Case("pow_dist_global", "0.05 Nug + 0.4 Pow(1000, alpha=1.2)", "dist"),
    Case("gau_dist_nmax20", "0.06 Nug + 0.35 Gau(400)", "dist", neighbours=20),
]


def _drift(df, formula: str) -> np.ndarray:
    cols = {"dist": df["dist"].to_numpy(float), "sd": np.sqrt(df["dist"].to_numpy(float))}
    return np.column_stack([cols[t.strip()] for t in formula.split("+")])


@pytest.fixture(scope="module")
def setup(meuse, meuse_grid_full):
    t = meuse_grid_full.copy()
    t = t.iloc[::3].reset_index(drop=True)  # every third node keeps R quick
    samples = meuse.iloc[:N_SAMPLE_TARGETS][["x", "y", "dist"]]
    targets = pd.DataFrame({"x": np.r_[t["x"], samples["x"]], "y": np.r_[t["y"], samples["y"]],
                       "dist": np.r_[t["dist"], samples["dist"]]})
    lines = [
        'd <- IN("data"); d$sd <- sqrt(d$dist); coordinates(d) <- ~x + y',
        't <- IN("targets"); t$sd <- sqrt(t$dist); coordinates(t) <- ~x + y',
    ]
    for c in CASES:
        nmax = f", nmax = {c.neighbours}" if c.neighbours else ""
        lines.append(f"k <- krige(v ~ {c.formula}, d, t, model = {r_vgm(parse_model(c.model))}"
                     f"{nmax}, debug.level = 0)")
        lines.append(f'OUT(data.frame(est = k$var1.pred, var = k$var1.var), "{c.name}")')
    data = {"x": meuse["x"], "y": meuse["y"], "dist": meuse["dist"], "v": meuse["logzinc"]}
    out = run_r("\n".join(lines), {"data": data, "targets": targets})
    return targets, out


@pytest.fixture(scope="module")
def meuse_grid_full():
    return pd.read_csv(SAMPLE / "meuse_grid.csv")[["x", "y", "dist"]].astype(float)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_external_drift_matches_gstat(case: Case, setup, meuse):
    targets, out = setup
    coords = meuse[["x", "y"]].to_numpy(float)
    res = krige_external_drift(coords, meuse["logzinc"].to_numpy(float), _drift(meuse, case.formula),
                               targets[["x", "y"]].to_numpy(float),
                               _drift(targets, case.formula), parse_model(case.model),
                               neighbours=case.neighbours)
    ref = out[case.name]
    est, var = ref["est"].to_numpy(float), ref["var"].to_numpy(float)
    keep = untied(coords, targets[["x", "y"]].to_numpy(float), parse_model(case.model),
                  case.neighbours)
    assert keep.sum() > 0.95 * len(keep)
    np.testing.assert_allclose(res.estimate[keep], est[keep], rtol=0, atol=TOL)
    np.testing.assert_allclose(res.variance[keep], np.clip(var[keep], 0, None), rtol=0, atol=TOL)
    # exact at the samples
    np.testing.assert_allclose(res.estimate[-N_SAMPLE_TARGETS:],
                               meuse["logzinc"].to_numpy(float)[:N_SAMPLE_TARGETS], atol=1e-8)
    np.testing.assert_allclose(res.variance[-N_SAMPLE_TARGETS:], 0.0, atol=1e-8)
    assert res.n_singular == 0
