"""``gcnn-rnn variogram`` end to end on the Meuse sample data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.variogram.io import load_variogram
from gcnn_rnn.core.variogram.models import VariogramModel


def _result(capsys) -> dict:
    """The outcome of an in-process run (human mode: ``key: value`` lines, ``error: ...``)."""
    cap = capsys.readouterr()
    errors = [x[len("error: "):] for x in cap.err.splitlines() if x.startswith("error: ")]
    if errors:
        return {"type": "error", "message": errors[-1]}
    outputs = dict(x.split(": ", 1) for x in cap.out.splitlines() if ": " in x)
    return {"type": "result", "outputs": outputs}


def test_meuse_log_zinc(meuse_gpkg, tmp_path, capsys):
    out = tmp_path / "v.json"
    png = tmp_path / "v.png"
    code = main(
        [
            "variogram",
            "--input",
            str(meuse_gpkg),
            "--layer",
            "meuse",
            "--field",
            "zinc",
            "--transform",
            "log",
            "--models",
            "sph",
            "--directions",
            "0,45,90,135",
            "--output-json",
            str(out),
            "--plot",
            str(png),
            "--quiet",
        ]
    )
    res = _result(capsys)
    assert code == 0, res
    assert res["outputs"]["variogram"] == str(out) and res["outputs"]["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(out.read_text())
    assert doc["format"] == "gcnn-rnn-variogram" and doc["version"] == 1
    assert doc["field"] == "zinc" and doc["transform"] == "log" and doc["dims"] == 2
    assert "Amersfoort" in doc["crs"]
    model = VariogramModel.from_dict(doc["model"])
    assert doc["text"] == model.to_text() == res["outputs"]["model"]
    nug, sph = model.structures
    # gstat: 0.0507 Nug + 0.5906 Sph(897)
    assert nug.psill == pytest.approx(0.0507, rel=0.02)
    assert sph.psill == pytest.approx(0.5906, rel=0.02)
    assert sph.range_ == pytest.approx(897, rel=0.02)
    omni = doc["experimental"]["omni"]
    assert omni["npairs"][:3] == [57, 299, 419]
    assert omni["gamma"][0] == pytest.approx(0.1234479, abs=1e-6)
    assert sorted(doc["experimental"]["directions"]) == ["0", "135", "45", "90"]
    d45 = doc["experimental"]["directions"]["45"]
    assert len(d45["lag"]) == len(d45["gamma"]) == len(d45["npairs"]) > 5
    assert doc["experimental"]["width"] == pytest.approx(doc["experimental"]["cutoff"] / 15)
    assert doc["fit"]["weights"] == "npairs_h2" and len(doc["fit"]["candidates"]) == 1
    # krige --variogram V.json reads it back
    assert load_variogram(str(out)) == model


def test_candidates_anisotropy_and_expert_flags(meuse_csv, tmp_path, capsys):
    out = tmp_path / "a.json"
    code = main(
        [
            "variogram",
            "--input",
            str(meuse_csv),
            "--crs",
            "EPSG:28992",
            "--field",
            "zinc",
            "--transform",
            "log",
            "--models",
            "sph,exp,gau",
            "--directions",
            "0,45,90,135",
            "--anisotropy",
            "--cutoff",
            "1200",
            "--lags",
            "100",
            "--estimator",
            "cressie",
            "--fit-weights",
            "npairs",
            "--output-json",
            str(out),
            "--quiet",
        ]
    )
    res = _result(capsys)
    assert code == 0, res
    doc = json.loads(out.read_text())
    assert doc["experimental"]["cutoff"] == 1200 and doc["experimental"]["width"] == 100
    assert doc["experimental"]["estimator"] == "cressie"
    assert len(doc["experimental"]["omni"]["lag"]) == 12
    assert [c["text"].split()[-1][:3] for c in doc["fit"]["candidates"]] == ["Sph", "Exp", "Gau"]
    model = VariogramModel.from_dict(doc["model"])
    # Meuse zinc is most continuous along the river, roughly north-east (gstat's example: 45)
    assert model.anisotropy is not None
    assert 20.0 <= model.anisotropy.azimuth <= 70.0
    assert model.anisotropy.ratio < 0.8


def test_loo_selection_without_nugget(meuse_csv, tmp_path, capsys):
    out = tmp_path / "l.json"
    code = main(
        [
            "variogram",
            "--input",
            str(meuse_csv),
            "--crs",
            "EPSG:28992",
            "--field",
            "zinc",
            "--transform",
            "log",
            "--models",
            "sph,gau",
            "--select",
            "loo",
            "--no-nugget",
            "--output-json",
            str(out),
            "--quiet",
        ]
    )
    res = _result(capsys)
    assert code == 0, res
    doc = json.loads(out.read_text())
    cands = doc["fit"]["candidates"]
    assert doc["fit"]["selected_by"] == "cv"  # 'loo' is the old name of the cv rule
    assert all(c["loo_rmse"] > 0 and c["cv_rmse"] == c["loo_rmse"] for c in cands)
    assert all(c["cv_scheme"] == "loo" and c["msdr"] > 0 for c in cands)
    best = min(cands, key=lambda c: c["loo_rmse"])
    assert doc["text"] == best["text"]
    assert "Nug" not in doc["text"]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--models", "sph,xyz"], "'xyz'"),
        (["--anisotropy", "--directions", "45"], "at least two"),
        (["--directions", "north"], "'north'"),
        (["--cutoff", "-5"], "cutoff"),
        (["--field", "landuse"], "not numeric"),
        (["--vertical"], "--vertical needs 3D points"),
    ],
)
def test_bad_arguments_exit_2(meuse_gpkg, tmp_path, capsys, args, text):
    base = ["variogram", "--input", str(meuse_gpkg), "--layer", "meuse", "--field", "zinc"]
    if "--field" in args:
        base = base[:-2]
    code = main([*base, *args, "--output-json", str(tmp_path / "x.json"), "--quiet"])
    res = _result(capsys)
    assert code == 2
    assert res["type"] == "error" and text in res["message"]
    assert not (tmp_path / "x.json").exists()


def test_text_output_and_log_of_nonpositive(tmp_path, capsys):
    csv = tmp_path / "p.csv"
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (30, 2))
    z = rng.normal(size=30)
    csv.write_text("x,y,v\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(xy, z)))
    code = main(
        [
            "variogram",
            "--input",
            str(csv),
            "--crs",
            "EPSG:32632",
            "--field",
            "v",
            "--transform",
            "log",
            "--output-json",
            str(tmp_path / "x.json"),
            "--quiet",
        ]
    )
    assert code == 2
    assert _result(capsys)["type"] == "error"


def test_vertical_anisotropy_of_synthetic_drill_holes(tmp_path, capsys):
    # layered 3D samples (37 drill holes): the horizontal model plus a short vertical range
    src = tmp_path / "holes.gpkg"
    assert main(["synth", "--dims", "3", "--n", "400", "--variogram", "0.1 Nug + 1 Sph(300)",
                 "--layers", "4", "--seed", "2", "--output", str(src), "--quiet"]) == 0
    out = tmp_path / "v.json"
    code = main(["variogram", "--input", str(src), "--field", "value", "--models", "sph,exp",
                 "--vertical", "--output-json", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    model = load_variogram(str(out))
    a = model.anisotropy
    assert a is not None and a.ratio == 1.0 and 0.01 < a.ratio_vertical < 0.5
    assert model.sill - model.nugget > 0.5 * model.sill
    # what krige --variogram auto fits on the same data
    from gcnn_rnn.core.io import read_points
    from gcnn_rnn.core.variogram.fit import auto_variogram

    pts = read_points(src, "value")
    assert auto_variogram(pts.coords, pts.values, ("sph", "exp")).model == model
