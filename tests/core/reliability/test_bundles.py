"""S1, S2, S3, D9 and the bundle rows of D10: a bundle stays inside itself, its numbers are
checked, a diverged network is never saved or used (report cases ``bundle_*``,
``train_lr_huge``, ``predict_lr_huge``, ``keras_version_floor``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from reliability_helpers import TINY, V

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.errors import BundleError, GcnnRnnError

ROOT = Path(__file__).resolve().parents[3]


def _tampered(bundle: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    doc = json.loads((copy / "model.json").read_text())
    edit(doc, copy)
    (copy / "model.json").write_text(json.dumps(doc))
    return copy


def _predict(bundle, template, out, capsys, *extra):
    code = main(["predict", "--quiet", "--model-dir", str(bundle), "--template", str(template),
                 "--output-dir", str(out), *extra])
    return code, capsys.readouterr().err


def _set(path: str, value):
    def edit(doc, folder):
        *head, last = path.split(".")
        node = doc
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value(folder) if callable(
            value) else value
    return edit


def _nan_sample(doc, folder):
    """A NaN among the training values of the samples file, with a matching checksum (so
    that the range check, not the checksum, must catch it)."""
    import numpy as np

    from gcnn_rnn.core.model.bundle_checks import sha256_file

    path = folder / doc["training_data"]["file"]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["values"][0] = np.nan
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    doc["training_data"]["sha256"] = sha256_file(path)


def _both_covariates(value):
    def edit(doc, folder):
        v = value(folder) if callable(value) else value
        doc["params"]["covariates"] = [v]
        doc["feature_config"]["covariates"] = [v]
    return edit


def _url_vrt(path):
    path.write_text(
        '<VRTDataset rasterXSize="1" rasterYSize="1"><VRTRasterBand dataType="Float32" '
        'band="1"><SimpleSource><SourceFilename>/vsicurl/http://127.0.0.1:9/d.tif'
        '</SourceFilename></SimpleSource></VRTRasterBand></VRTDataset>\n')
    return str(path)


MEMBER_CASES = {
    "traversal": (_set("members.0.file", "../other/member_0.keras"), "must be the file"),
    "absolute": (_set("members.0.file", lambda f: str(f.parent / "elsewhere.keras")),
                 "must be the file"),
    "h5": (_set("members.0.file", "member_0.h5"), "must be the file"),
    "covariate_vsicurl": (_both_covariates("/vsicurl/http://127.0.0.1:9/meuse_dist.tif"),
                          "not a local file"),
    "covariate_url": (_both_covariates("https://example.invalid/d.tif"), "not a local file"),
    "covariate_vsizip": (_both_covariates("/vsizip/a.zip/d.tif"), "not a local file"),
    "covariate_driver": (_both_covariates("GTIFF_DIR:1:/tmp/d.tif"), "not a local file"),
    "covariate_moved": (_both_covariates("/nonexistent/dist.tif"), "predict --covariates"),
    # a local VRT whose source is a URL (found by the re-run of the report: S1 through a VRT)
    "covariate_vrt": (_both_covariates(lambda f: _url_vrt(f.parent / "evil.vrt")),
                      "XML raster description"),
    "huge_quantile": (_set("calibration.quantile", 1e300), "calibration.quantile"),
    "nan_quantile": (_set("calibration.quantile", float("nan")), "non-finite number"),
    "neg_quantile": (_set("calibration.quantile", -5.0), "calibration.quantile"),
    "zero_scale": (_set("scalers.static.scale.0", 0.0), "scalers.static.scale"),
    "crs_garbage": (_set("crs", "not a crs"), "CRS in model.json cannot be understood"),
    "nan_value": (_nan_sample, "non-finite value"),
    "samples_traversal": (_set("training_data.file", "../other/training_data.npz"),
                          "must be the file"),
    "samples_checksum": (_set("training_data.sha256", "0" * 64), "checksum"),
    "version_str": (_set("format_version", "2"), "(a str, not a number)"),
    "diverged": (_set("metrics.hybrid_oof_rmse", 1.357e19), "diverged"),
}


@pytest.mark.parametrize("name", sorted(MEMBER_CASES))
def test_tampered_bundles_are_refused(cov_bundle, meuse_dist_tif, tmp_path, capsys, name):
    edit, words = MEMBER_CASES[name]
    bundle = _tampered(cov_bundle, tmp_path, edit)
    code, err = _predict(bundle, meuse_dist_tif, tmp_path / "out", capsys)
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_symlinked_member_is_refused(cov_bundle, meuse_dist_tif, tmp_path, capsys):
    bundle = _tampered(cov_bundle, tmp_path, lambda doc, f: None)
    real = tmp_path / "outside.keras"
    os.replace(bundle / "member_0.keras", real)
    os.symlink(real, bundle / "member_0.keras")
    code, err = _predict(bundle, meuse_dist_tif, tmp_path / "out", capsys)
    assert code == 2 and "symbolic link" in err


def test_deeply_nested_model_json(cov_bundle, meuse_dist_tif, tmp_path, capsys):
    bundle = _tampered(cov_bundle, tmp_path, lambda doc, f: None)
    (bundle / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    code, err = _predict(bundle, meuse_dist_tif, tmp_path / "out", capsys)
    assert code == 2 and "nested" in err


def test_covariates_on_the_command_line_replace_stored_ones(cov_bundle, meuse_dist_tif,
                                                            tmp_path, capsys):
    """A moved bundle (report: bundle_cov_missing) is pointed at its covariate again."""
    moved = _tampered(cov_bundle, tmp_path, _both_covariates("/nonexistent/dist.tif"))
    code, err = _predict(moved, meuse_dist_tif, tmp_path / "a", capsys,
                         "--covariates", str(meuse_dist_tif))
    assert code == 0, err
    code, err = _predict(cov_bundle, meuse_dist_tif, tmp_path / "b", capsys)
    assert code == 0, err
    assert (tmp_path / "a" / "prediction.tif").read_bytes() == (
        tmp_path / "b" / "prediction.tif").read_bytes()
    code, err = _predict(moved, meuse_dist_tif, tmp_path / "c", capsys,
                         "--covariates", "/vsicurl/http://127.0.0.1:9/x.tif")
    assert code == 2 and "not a local file" in err


def test_keras_safe_mode_floor(monkeypatch):
    import keras

    from gcnn_rnn.core.model.bundle_checks import require_safe_keras

    assert require_safe_keras() is keras  # the installed release is recent enough
    monkeypatch.setattr(keras, "__version__", "3.11.2")
    with pytest.raises(GcnnRnnError, match="keras >= 3.12"):
        require_safe_keras()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"keras>=3.12"' in text


def test_members_are_loaded_in_safe_mode(cov_bundle):
    """A Lambda layer (arbitrary Python) in a member file is refused, not run."""
    import keras

    from gcnn_rnn.core.model.bundle import load_bundle

    est, doc = load_bundle(cov_bundle)  # the real bundle loads
    assert est.coords_.shape == (155, 2)
    evil = keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda x: x * 2)])
    target = cov_bundle.parent / "evil"
    shutil.copytree(cov_bundle, target)
    evil.save(target / "member_0.keras")
    from gcnn_rnn.core.model.bundle_checks import sha256_file

    doc = json.loads((target / "model.json").read_text())
    doc["members"][0]["sha256"] = sha256_file(target / "member_0.keras")
    (target / "model.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="cannot load"):
        load_bundle(target)


def test_a_diverged_training_is_refused_and_saves_nothing(meuse_gpkg, tmp_path, capsys):
    model = tmp_path / "m" / "model"
    code = main(["train", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--transform", "log", "--variogram", V, "--learning-rate", "1e6", *TINY,
                 "--model-dir", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and "diverged" in err
    assert not model.exists()
    assert list((tmp_path / "m").iterdir()) == []  # no temporary bundle either


def test_a_grid_off_the_covariate_is_refused(cov_bundle, tmp_path, capsys):
    """Report predict_extent_far / bundle_cov_other_grid: 100 % nodata, exit 0 before."""
    code = main(["predict", "--quiet", "--model-dir", str(cov_bundle), "--cell-size", "40",
                 "--extent", "0,0,4000,4000", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "gets a prediction" in err and "extrapolation" in err
    assert not any((tmp_path / "o").iterdir())
