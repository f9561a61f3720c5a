"""D7, D8, D10 and the weak spots: bad input gives a clear exit 2, never a traceback."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from reliability_helpers import V, krige_args

from gcnn_rnn.core.cli.main import main


def _krige(meuse_gpkg, tmp_path, capsys, *extra, variogram=V):
    code = main(krige_args(meuse_gpkg, tmp_path / "o", *extra, variogram=variogram))
    return code, capsys.readouterr().err


LONG_MODEL = "0.05 Nug + " + " + ".join(f"0.03 Sph({100 + 50 * i})" for i in range(20))


def test_a_21_structure_variogram_text_works(meuse_gpkg, tmp_path, capsys):
    assert len(LONG_MODEL) > 255  # longer than a file name may be (D7: ENAMETOOLONG)
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "80", variogram=LONG_MODEL)
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "kriging.json").read_text())
    assert summary["variogram"]["text"].count("Sph") == 20


@pytest.mark.parametrize("text", ["0.6 Sph(" + "(" * 400 + "897" + ")" * 400 + ")",
                                  "+".join(["0.01 Sph(900)"] * 5000)[:20000] + "x"])
def test_absurd_variogram_texts_are_input_errors(meuse_gpkg, tmp_path, capsys, text):
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "80", variogram=text)
    assert code == 2 and "Traceback" not in err and "File name too long" not in err


CASES = {
    # flags                                            -> words the message must contain
    "cell_size_tiny": (["--cell-size", "1e-300"], "too small"),
    "cell_size_zero": (["--cell-size", "0"], "cell size must be a positive number"),
    "extent_inf": (["--cell-size", "40", "--extent=-inf,0,inf,100"], "finite numbers"),
    "extent_nan": (["--cell-size", "40", "--extent", "nan,0,100,100"], "finite numbers"),
    "max_memory_negative": (["--cell-size", "40", "--max-memory-gb", "-1"],
                            "--max-memory-gb must be a positive number"),
    "max_memory_nan": (["--cell-size", "40", "--max-memory-gb", "nan"],
                       "--max-memory-gb must be a positive number"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_grid_flags_are_clean_input_errors(meuse_gpkg, tmp_path, capsys, name):
    flags, words = CASES[name]
    t0 = time.perf_counter()
    code, err = _krige(meuse_gpkg, tmp_path, capsys, *flags)
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert time.perf_counter() - t0 < 30  # refused before any work
    # (--z-levels 0:1e12:1, which grew to 24 GB, runs memory-bounded in test_cancel.py)


def test_variogram_file_with_a_text_azimuth(meuse_gpkg, tmp_path, capsys):
    vj = tmp_path / "V.json"
    vj.write_text(json.dumps({"format": "gcnn-rnn-variogram", "version": 1, "model": {
        "structures": [{"model": "sph", "psill": 1, "range": 900, "extra": None}],
        "anisotropy": {"azimuth": "x", "ratio": 0.5}}}))
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "80", variogram=str(vj))
    assert code == 2 and "anisotropy azimuth must be a number" in err


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000,
                                     '{"format": "gcnn-rnn-variogram", "version": NaN}'])
def test_deep_or_nan_variogram_files(meuse_gpkg, tmp_path, capsys, content):
    vj = tmp_path / "V.json"
    vj.write_text(content)
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "80", variogram=str(vj))
    assert code == 2 and "cannot read variogram file" in err


def test_variogram_file_with_a_byte_order_mark(meuse_gpkg, tmp_path, capsys):
    vj = tmp_path / "V.json"
    doc = {"format": "gcnn-rnn-variogram", "version": 1, "model": {
        "structures": [{"model": "sph", "psill": 1, "range": 900, "extra": None}],
        "anisotropy": None}}
    vj.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "80", variogram=str(vj))
    assert code == 0, err


def test_csv_target_points(meuse_gpkg, meuse_csv, tmp_path, capsys):
    """D8: a CSV for --points works (before: AttributeError, exit 1)."""
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--points", str(meuse_csv))
    assert code == 0, err
    import geopandas as gpd

    out = gpd.read_file(tmp_path / "o" / "kriging_points.gpkg")
    assert len(out) == 155 and np.isfinite(out["kriging_estimate"]).all()
    # at the samples themselves kriging is exact
    np.testing.assert_allclose(out["kriging_estimate"], out["zinc"], rtol=1e-9)


def test_negative_seed(meuse_gpkg, tmp_path, capsys):
    code = main(["cv", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc", "--variogram",
                 V, "--folds", "5", "--seed", "-1", "--output-json", str(tmp_path / "cv.json")])
    assert code == 2 and "--seed must be >= 0" in capsys.readouterr().err


def test_cv_output_json_naming_a_folder_is_refused_first(meuse_gpkg, tmp_path, capsys):
    t0 = time.perf_counter()
    code = main(["cv", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--variogram", V, "--output-json", str(tmp_path)])
    assert code == 2 and "is a folder" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 10


def test_collinear_samples_say_collinear(tmp_path, capsys):
    import geopandas as gpd

    pts = gpd.GeoDataFrame({"v": np.arange(10.0)},
                           geometry=gpd.points_from_xy(np.arange(10.0) * 100, np.full(10, 5.0)),
                           crs="EPSG:28992")
    pts.to_file(tmp_path / "line.gpkg")
    code = main(["krige", "--quiet", "--input", str(tmp_path / "line.gpkg"), "--field", "v",
                 "--variogram", "1 Sph(300)", "--cell-size", "40", "--output-dir",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "collinear" in err and "--extent" in err and "np.float64" not in err


def test_two_layer_geopackage_says_which_layer(meuse_gpkg, tmp_path, capsys):
    import geopandas as gpd

    g = gpd.read_file(meuse_gpkg)
    two = tmp_path / "two.gpkg"
    g.to_file(two, layer="a")
    g.iloc[:50].to_file(two, layer="b")
    code = main(["krige", "--quiet", "--input", str(two), "--field", "zinc", "--variogram", V,
                 "--cell-size", "80", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0 and "has 2 layers ['a', 'b']; using the first, 'a'" in err
    assert "site-packages" not in err


def test_a_grid_far_from_the_samples_warns(meuse_gpkg, tmp_path, capsys):
    code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "40", "--extent",
                       "0,0,4000,4000")
    assert code == 0 and "extrapolation" in err


def test_empty_csv(tmp_path, capsys):
    (tmp_path / "e.csv").write_text("")
    code = main(["krige", "--quiet", "--input", str(tmp_path / "e.csv"), "--field", "z",
                 "--cell-size", "40", "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "the file is empty" in capsys.readouterr().err


def test_run_checks_points_before_the_long_work(meuse_gpkg, tmp_path, capsys):
    t0 = time.perf_counter()
    code = main(["run", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc", "--folds",
                 "3", "--ensemble", "1", "--epochs", "2", "--points",
                 str(tmp_path / "nope.gpkg"), "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "target points not found" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 30
    assert not any((tmp_path / "o").glob("*.json")) and not (tmp_path / "o" / "model").exists()


@pytest.mark.parametrize("argv,words", [
    (["synth", "--n", "20", "--variogram", "1 Sph(300)", "--output", "{tmp}/s.txt"],
     "ending in .gpkg"),
    (["variogram", "--input", "{gpkg}", "--field", "zinc", "--output-json", "{tmp}/V.json",
      "--plot", "{tmp}/V.xyz"], "ending in .png"),
])
def test_output_names_must_match_their_format(meuse_gpkg, tmp_path, capsys, argv, words):
    argv = [a.format(tmp=tmp_path, gpkg=meuse_gpkg) for a in argv]
    assert main([*argv, "--quiet"]) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_text_in_the_z_field_is_an_error(tmp_path, capsys):
    import pandas as pd

    pd.DataFrame({"x": [0.0, 100, 200, 50], "y": [0.0, 100, 0, 200], "v": [1.0, 2, 3, 4],
                  "z": ["1", "2", "deep", "4"]}).to_csv(tmp_path / "p.csv", index=False)
    code = main(["krige", "--quiet", "--input", str(tmp_path / "p.csv"), "--crs", "EPSG:28992",
                 "--field", "v", "--z-field", "z", "--cell-size", "50", "--z-levels", "0:4:2",
                 "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "z field 'z' is not numeric (e.g. value 'deep')" in (
        capsys.readouterr().err)


def test_an_unknown_flag_is_named(capsys):
    assert main(["krige", "--bogus", "1"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err and "required" not in err


def test_metre_coordinates_declared_in_degrees(meuse_csv, tmp_path, capsys):
    for extra in ([], ["--reproject", "EPSG:32631"]):
        code = main(["krige", "--quiet", "--input", str(meuse_csv), "--field", "zinc", "--crs",
                     "EPSG:4326", *extra, "--cell-size", "40", "--output-dir",
                     str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and "are not degrees" in err and "the CRS is wrong" in err


def test_points_with_z_all_zero_are_2d(meuse_gpkg, tmp_path, capsys):
    import geopandas as gpd

    g = gpd.read_file(meuse_gpkg)
    g["geometry"] = gpd.points_from_xy(g.geometry.x, g.geometry.y, np.zeros(len(g)))
    g.to_file(tmp_path / "z0.gpkg")
    code = main(["krige", "--quiet", "--input", str(tmp_path / "z0.gpkg"), "--field", "zinc",
                 "--variogram", V, "--cell-size", "80", "--output-dir", str(tmp_path / "o")])
    assert code == 0 and "treating the data as 2D" in capsys.readouterr().err


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_values_beyond_squaring_range_are_refused(meuse_gpkg, tmp_path, capsys, scale):
    import geopandas as gpd

    g = gpd.read_file(meuse_gpkg)
    g["v"] = g["zinc"] * scale
    g.to_file(tmp_path / "s.gpkg")
    code = main(["krige", "--quiet", "--input", str(tmp_path / "s.gpkg"), "--field", "v",
                 "--cell-size", "80", "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "rescale the field" in capsys.readouterr().err


def test_an_extreme_outlier_is_reported(meuse_gpkg, tmp_path, capsys):
    import geopandas as gpd

    g = gpd.read_file(meuse_gpkg)
    g.loc[7, "zinc"] = 1e12
    g.to_file(tmp_path / "o.gpkg")
    code = main(["krige", "--quiet", "--input", str(tmp_path / "o.gpkg"), "--field", "zinc",
                 "--variogram", V, "--transform", "log", "--cell-size", "80", "--output-dir",
                 str(tmp_path / "o")])
    assert code == 0 and "extreme value 1e+12" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["variogram", "input"])
def test_a_path_the_system_cannot_look_up_is_an_input_error(meuse_gpkg, tmp_path, capsys, where):
    """A name over 255 bytes makes stat() itself fail (ENAMETOOLONG): exit 2, no traceback."""
    (tmp_path / "data").mkdir()
    long_name = str(tmp_path / "data" / ("d" * 300))
    if where == "variogram":
        code, err = _krige(meuse_gpkg, tmp_path, capsys, "--cell-size", "80",
                           variogram=long_name + ".json")
    else:
        code = main(krige_args(long_name + ".gpkg", tmp_path / "o", "--cell-size", "80"))
        err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and ("File name too long" in err or "not found" in err)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
