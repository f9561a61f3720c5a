"""``gcnn-rnn simulate`` end to end on the Meuse sample (in process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.io import read_points

VG = "0.1 Nug + 0.9 Sph(900)"


def _simulate(capsys, *args) -> tuple[int, str]:
    code = main(["simulate", "--quiet", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def zinc(meuse_gpkg):
    return read_points(meuse_gpkg, "zinc", layer="meuse")


def test_outputs_and_data_honoured(meuse_gpkg, zinc, tmp_path, capsys):
    code, err = _simulate(capsys, "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                          "--realisations", 4, "--seed", 7, "--variogram", VG,
                          "--cell-size", 100, "--threshold", 500, "--output-dir", tmp_path)
    assert code == 0, err
    with rasterio.open(tmp_path / "realisations.tif") as ds:
        real = ds.read(masked=True)
        assert ds.count == 4 and ds.crs.to_epsg() == 28992 and ds.nodata == -9999.0
        assert ds.descriptions == tuple(f"realisation {r}" for r in range(1, 5))
        rows, cols = rasterio.transform.rowcol(ds.transform, zinc.coords[:, 0],
                                               zinc.coords[:, 1])
    rows, cols = np.asarray(rows), np.asarray(cols)
    cells = rows * real.shape[2] + cols
    single = np.bincount(cells)[cells] == 1  # cells holding one sample: exactly that sample
    np.testing.assert_array_equal(
        real[:, rows[single], cols[single]],
        np.broadcast_to(zinc.values[single].astype(np.float32), (4, int(single.sum()))))
    assert real.min() >= 0.0  # the normal-score tails stop at 0 for non-negative data
    with rasterio.open(tmp_path / "etype_mean.tif") as ds:
        etype = ds.read(1, masked=True)
        assert ds.descriptions[0].startswith("E-type mean of zinc")
    with rasterio.open(tmp_path / "conditional_variance.tif") as ds:
        cvar = ds.read(1, masked=True)
    with rasterio.open(tmp_path / "exceedance_probability.tif") as ds:
        prob = ds.read(1, masked=True)
    data = real.astype(float)
    np.testing.assert_allclose(etype, data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(cvar, data.var(axis=0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(prob, (data > 500).mean(axis=0))
    for name in ("realisations", "etype_mean", "conditional_variance",
                 "exceedance_probability"):
        assert (tmp_path / f"{name}.qml").is_file()
    summary = json.loads((tmp_path / "simulation.json").read_text())
    assert summary["variogram"]["text"] == VG
    assert summary["config"]["realisations"] == 4 and summary["config"]["neighbours"] == 16
    assert summary["sample_cells"] == int(len(np.unique(cells)))
    scores = summary["normal_scores"]
    assert len(scores["mean_per_realisation"]) == 4
    assert abs(scores["mean"]) < 0.5 and 0.5 < scores["variance"] < 1.5


def test_deterministic_with_seed_and_auto_variogram(meuse_gpkg, tmp_path, capsys):
    outs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, err = _simulate(capsys, "--input", meuse_gpkg, "--layer", "meuse",
                              "--field", "copper", "--realisations", 2, "--seed", seed,
                              "--cell-size", 200, "--output-dir", tmp_path / name)
        assert code == 0, err
        with rasterio.open(tmp_path / name / "realisations.tif") as ds:
            outs.append(ds.read())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    summary = json.loads((tmp_path / "a" / "simulation.json").read_text())
    assert summary["variogram"]["source"] == "auto"
    # fitted to the normal scores, whose variance is about 1
    assert 0.6 < float(np.sum([s for s in _sills(summary["variogram"]["text"])])) < 1.4


def _sills(text: str) -> list[float]:
    return [float(part.split()[0]) for part in text.split("+")]


def test_3d_bands(tmp_path, capsys):
    rng = np.random.default_rng(0)
    csv = tmp_path / "holes.csv"
    x, y = rng.uniform(0, 100, 40), rng.uniform(0, 100, 40)
    z = rng.choice([-10.0, -5.0, 0.0], 40)
    v = rng.lognormal(size=40)
    csv.write_text("x,y,depth,v\n" + "".join(
        f"{a},{b},{c},{d}\n" for a, b, c, d in zip(x, y, z, v, strict=True)))
    code, err = _simulate(capsys, "--input", csv, "--field", "v", "--z-field", "depth",
                          "--crs", "EPSG:28992", "--realisations", 2, "--variogram",
                          "1 Exp(30)", "--cell-size", 20, "--z-levels", "-10:0:5",
                          "--output-dir", tmp_path / "out")
    assert code == 0, err
    with rasterio.open(tmp_path / "out" / "realisations.tif") as ds:
        assert ds.count == 6
        assert ds.descriptions[:2] == ("realisation 1, z=-10", "realisation 1, z=-5")
    with rasterio.open(tmp_path / "out" / "etype_mean.tif") as ds:
        assert ds.count == 3


@pytest.mark.parametrize("flags, message", [
    (["--realisations", "0"], "--realisations"),
    (["--neighbours", "0"], "--neighbours"),
    (["--max-distance", "-5"], "--max-distance"),
    (["--variogram", "1 Pow(1.5)"], "bounded"),
    (["--variogram", "1 Foo(3)"], "Foo"),
    (["--field", "nonexistent"], "nonexistent"),
    # realisations are written batch by batch: the memory guard counts one batch (16 per
    # thread) of 27,300 nodes at 20 m, about 12 MB per thread, over 0.01 GB
    (["--realisations", "100000", "--cell-size", "20"], "realisations"),
])
def test_bad_input_writes_nothing(meuse_gpkg, tmp_path, capsys, flags, message):
    args = {"--input": str(meuse_gpkg), "--layer": "meuse", "--field": "zinc",
            "--cell-size": "100", "--variogram": VG, "--realisations": "2"}
    for i in range(0, len(flags), 2):
        args[flags[i]] = flags[i + 1]
    argv = [t for kv in args.items() for t in kv]
    out = tmp_path / "out"
    code, err = _simulate(capsys, *argv, "--max-memory-gb", "0.01", "--output-dir", out)
    assert code == 2
    assert message in err
    assert not out.exists() or not any(out.iterdir())


def test_variogram_file_not_of_normal_scores_is_warned_about(meuse_gpkg, tmp_path, capsys):
    vfile = tmp_path / "v.json"
    assert main(["variogram", "--quiet", "--input", str(meuse_gpkg), "--layer", "meuse",
                 "--field", "zinc", "--transform", "log", "--models", "sph",
                 "--output-json", str(vfile)]) == 0
    capsys.readouterr()
    code = main(["simulate", "--input", str(meuse_gpkg), "--layer", "meuse", "--field",
                 "zinc", "--realisations", "1", "--variogram", str(vfile), "--cell-size",
                 "400", "--output-dir", str(tmp_path / "out")])
    assert code == 0
    assert "a variogram of 'log' values" in capsys.readouterr().err
