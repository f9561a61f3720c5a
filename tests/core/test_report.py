"""The self-contained HTML report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from gcnn_rnn.core.report import ReportContext, write_report
from gcnn_rnn.core.variogram.models import parse_model


def _ctx(**over):
    rng = np.random.default_rng(0)
    vals = np.exp(rng.normal(5, 0.5, 50))
    coords = rng.random((50, 2)) * 1000
    model = parse_model("0.05 Nug + 0.6 Sph(400)")
    base = dict(
        title="Report <test>",
        data={"field": "zinc", "values": vals, "values_t": np.log(vals), "transform": "log",
              "coords": coords, "crs_name": "Amersfoort / RD New", "source": "x.gpkg"},
        variogram={"model": model, "experimental": None},
        cv={"protocol": "3-fold, identical folds", "units": "original",
            "metrics": {"ok": {"rmse": 1.25, "r2": 0.5}, "hybrid": {"rmse": 1.125, "r2": 0.6,
                                                                    "coverage": 0.9}},
            "observed": vals, "predictions": {"ok": vals * 1.1, "hybrid": vals * 0.95},
            "fold_differences": [{"fold": 1, "n": 50, "rmse_ok": 1.0, "rmse_hybrid": 0.9,
                                  "difference": -0.1}]},
        training={"history": {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.8, 0.9],
                              "lr": [1e-3, 1e-3, 5e-4]}, "best_epochs": [2, 3]},
        maps={"extent": (0, 0, 1000, 1000), "layers": {"prediction": rng.random((8, 10)),
                                                        "prediction_std": rng.random((8, 10))}},
        parameters={"seed": 7, "ensemble": 5},
        versions={"gcnn_rnn": "0.1.0", "tensorflow": "2.21"},
    )
    base.update(over)
    return ReportContext(**base)


def test_report_is_one_self_contained_file(tmp_path):
    path = write_report(tmp_path / "r" / "report.html", _ctx())
    html = path.read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == 6  # histogram, variogram, CV scatter, residual map, curves, maps
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in imgs)
    assert not re.search(r'(src|href)="(http|file|/)', html)
    for text in ("Report &lt;test&gt;", "Cross-validation", "3-fold, identical folds",
                 "1.125", "0.9", "Training", "Maps", "&quot;seed&quot;: 7", "tensorflow",
                 "0.05 Nug + 0.6 Sph(400)"):
        assert text in html, text
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp files left


def test_optional_sections_are_skipped(tmp_path):
    html = write_report(tmp_path / "r.html", _ctx(cv=None, training=None, maps=None)).read_text()
    assert "Cross-validation" not in html and "Maps" not in html
    assert html.count("data:image/png") == 2


def test_cv_in_both_units_with_ratios(tmp_path):
    cv = dict(_ctx().cv, transform="log",
              metrics_transformed={"ok": {"rmse": 0.5, "r2": 0.7},
                                   "hybrid": {"rmse": 0.46, "r2": 0.75}})
    html = write_report(tmp_path / "r.html", _ctx(cv=cv)).read_text()
    assert "The same predictions in transformed (log) units" in html
    # hybrid / OK: 1.125 / 1.25 = 0.9 in data units, 0.46 / 0.5 = 0.92 in log units; the
    # ratio table is the last with a hybrid row of exactly two numbers
    rows = re.findall(r"<tr><td class=\"l\">hybrid</td><td class=\"\">([^<]+)</td>"
                      r"<td class=\"\">([^<]+)</td></tr>", html)
    assert [float(v) for v in rows[-1]] == pytest.approx([0.9, 0.92])
    plain = write_report(tmp_path / "p.html", _ctx()).read_text()
    assert "The same predictions in transformed" not in plain


def test_variogram_candidates_base_and_gate_are_reported(tmp_path):
    from gcnn_rnn.core.model.base import Base
    from gcnn_rnn.core.model.gate import GateDecision
    from gcnn_rnn.core.variogram.fit import Candidate, FittedVariogram

    sph, exp = parse_model("0.05 Nug + 0.6 Sph(400)"), parse_model("0.05 Nug + 0.6 Exp(150)")
    fit = FittedVariogram(exp, 2e-5, "npairs_h2",
                          (Candidate(sph, 1e-5, 0.412, 0.93, "loo"),
                           Candidate(exp, 2e-5, 0.398, 1.01, "loo"),
                           Candidate(parse_model("0.05 Nug + 0.6 Gau(90)"), 3e-5, 0.47, 0.8,
                                     "loo, dropped after 500 samples", False)), "cv")
    gate = GateDecision(0.0, "KED", 0.40, 0.43, 0.41, 120).to_dict()
    base = Base("ked", exp, 1, (1.0, 2.0), {"ok": 0.44, "ked": 0.40, "ked:sqrt(covariate 1)": 0.40,
                                            "ked:identity(covariate 1)": 0.42},
                ("sqrt",), (0.0,)).to_dict()
    ctx = _ctx(variogram={"model": exp, "experimental": None, "fit": fit.to_dict()},
               training={"history": {}, "metrics": {"ok_loo_rmse": 0.44, "gate": gate,
                                                    "base": base}})
    html = write_report(tmp_path / "r.html", ctx).read_text()
    assert "Candidates, selected by lowest kriging cross-validation RMSE" in html
    for text in ("0.05 Nug + 0.6 Sph(400)", "0.412", "0.93", "0.398", "1.01", "selected"):
        assert text in html, text
    assert "dropped early (loo, dropped after 500 samples)" in html
    assert "Classical base:</b> KED in sqrt(covariate 1)" in html
    assert "KED in identity(covariate 1) 0.42" in html
    assert ("the network did not improve on KED for these data: the prediction equals KED"
            in html)
