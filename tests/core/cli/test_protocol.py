"""The CLI contract: doctor, JSON-lines protocol, exit codes (run as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ENGINE = [sys.executable, "-m", "gcnn_rnn.core"]


def run_cli(*args, timeout=120):
    return subprocess.run([*ENGINE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_doctor_human_and_json():
    human = run_cli("doctor", "--no-tensorflow")
    assert human.returncode == 0, human.stderr
    assert "numpy" in human.stdout and "rasterio" in human.stdout
    js = run_cli("doctor", "--json-progress")
    assert js.returncode == 0, js.stderr
    msgs = json_lines(js.stdout)  # every stdout line is JSON
    result = [m for m in msgs if m["type"] == "result"]
    assert len(result) == 1
    out = result[0]["outputs"]
    assert out["ok"] is True
    assert out["versions"]["numpy"].startswith("2.")
    assert out["tensorflow"]["available"] is True
    assert isinstance(out["gpu"], bool)


def test_doctor_warmup_runs_every_kernel():
    """``doctor --warmup`` (the set-up dialog's post-install step) runs each compiled kernel
    once, so numba's cache holds them before the first real command."""
    from gcnn_rnn.core.warmup import _steps

    js = run_cli("doctor", "--no-tensorflow", "--warmup", "--json-progress")
    assert js.returncode == 0, js.stderr
    out = [m for m in json_lines(js.stdout) if m["type"] == "result"][0]["outputs"]
    assert list(out["warmup"]["steps"]) == [name for name, _ in _steps()]
    assert out["warmup"]["seconds"] >= sum(out["warmup"]["steps"].values()) - 0.01
    plain = run_cli("doctor", "--no-tensorflow", "--json-progress")
    assert [m for m in json_lines(plain.stdout) if m["type"] == "result"][0]["outputs"][
        "warmup"] is None


def test_json_result_of_inspect(meuse_gpkg):
    r = run_cli("inspect", "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
                "--json-progress")
    assert r.returncode == 0, r.stderr
    (res,) = json_lines(r.stdout)
    assert res["type"] == "result"
    out = res["outputs"]
    assert out["n"] == 155 and out["epsg"] == 28992
    assert out["stats"]["min"] == 113 and out["stats"]["max"] == 1839


@pytest.mark.parametrize(
    "args,kind,text",
    [
        (["--field", "zn"], "input", "no field 'zn'; numeric fields are"),
        (["--field", "landuse"], "input", "is not numeric"),
        (["--field", "zinc", "--layer", "nope"], "input", "no layer 'nope'"),
    ],
)
def test_bad_input_exit_2_with_error_line(meuse_gpkg, args, kind, text):
    r = run_cli("inspect", "--input", meuse_gpkg, *args, "--json-progress")
    assert r.returncode == 2
    msgs = json_lines(r.stdout)
    assert msgs[-1]["type"] == "error" and msgs[-1]["kind"] == kind
    assert text in msgs[-1]["message"]
    assert "Traceback" not in r.stderr


def test_warning_becomes_log_line(tmp_path):
    csv = tmp_path / "gaps.csv"
    csv.write_text("x,y,cu\n0,0,1\n1,5,\n2,1,3\n3,7,4\n")
    r = run_cli("inspect", "--input", csv, "--field", "cu", "--crs", "EPSG:32631",
                "--json-progress")
    assert r.returncode == 0, r.stderr
    msgs = json_lines(r.stdout)
    logs = [m for m in msgs if m["type"] == "log"]
    assert logs and logs[0]["level"] == "warning" and "dropped 1 of 4" in logs[0]["message"]
    assert msgs[-1]["outputs"]["n"] == 3


def test_human_mode_error_is_one_line_no_traceback(tmp_path):
    r = run_cli("inspect", "--input", tmp_path / "missing.gpkg", "--field", "zinc")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: input file not found")
    assert "Traceback" not in r.stderr


def test_usage_errors_exit_2():
    assert run_cli("no-such-command").returncode == 2
    r = run_cli("inspect", "--json-progress")  # --input and --field missing
    assert r.returncode == 2
    assert json_lines(r.stdout)[-1]["kind"] == "usage"
    assert run_cli("--version").returncode == 0


def test_console_script_entry_point_exists():
    from pathlib import Path

    exe = Path(sys.executable).with_name("gcnn-rnn")
    assert exe.exists()
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "gcnn-rnn" in r.stdout


BLOCK_NUMPY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from gcnn_rnn.core.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_doctor_works_and_commands_explain_when_numpy_is_missing(meuse_gpkg):
    """A broken engine environment must still diagnose itself instead of crashing."""
    doc = subprocess.run([sys.executable, "-c", BLOCK_NUMPY, "doctor", "--no-tensorflow",
                          "--json-progress"], capture_output=True, text=True, timeout=60)
    assert doc.returncode == 0, doc.stderr
    msgs = json_lines(doc.stdout)
    out = msgs[-1]["outputs"]
    assert out["ok"] is False and out["versions"]["numpy"] is None
    assert any("missing engine packages: numpy" in m.get("message", "") for m in msgs)
    ins = subprocess.run([sys.executable, "-c", BLOCK_NUMPY, "inspect", "--input", str(meuse_gpkg),
                          "--field", "zinc", "--json-progress"],
                         capture_output=True, text=True, timeout=60)
    assert ins.returncode == 1
    err = json_lines(ins.stdout)[-1]
    assert err["type"] == "error" and "'numpy'" in err["message"] and "Set up" in err["message"]


def test_usage_error_carries_argparse_reason(meuse_gpkg):
    r = run_cli("inspect", "--input", meuse_gpkg, "--json-progress")
    err = json_lines(r.stdout)[-1]
    assert r.returncode == 2 and err["kind"] == "usage"
    assert "the following arguments are required: --field" in err["message"]
    r = run_cli("inspect", "--input", meuse_gpkg, "--field", "zinc", "--bogus", "--json-progress")
    assert "unrecognized arguments: --bogus" in json_lines(r.stdout)[-1]["message"]


def test_unwritable_output_folder_refused_before_work(meuse_gpkg, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = run_cli("krige", "--input", meuse_gpkg, "--field", "zinc", "--cell-size", "40",
                "--variogram", "0.05 Nug + 0.59 Sph(897)", "--output-dir", blocker / "out",
                "--json-progress")
    assert r.returncode == 2
    err = json_lines(r.stdout)[-1]
    assert err["kind"] == "input" and "cannot write to the output folder" in err["message"]
    assert not any(m["type"] == "progress" and m["percent"] > 5 for m in json_lines(r.stdout))


def test_template_in_another_crs_refused(meuse_gpkg, meuse_dist_tif, tmp_path):
    import rasterio
    from rasterio.crs import CRS

    other = tmp_path / "dist_utm.tif"
    with rasterio.open(meuse_dist_tif) as src:
        profile, data = src.profile, src.read()
    profile["crs"] = CRS.from_epsg(32631)
    with rasterio.open(other, "w", **profile) as dst:
        dst.write(data)
    r = run_cli("krige", "--input", meuse_gpkg, "--field", "zinc", "--template", other,
                "--variogram", "0.05 Nug + 0.59 Sph(897)", "--output-dir", tmp_path / "out",
                "--json-progress")
    assert r.returncode == 2
    msg = json_lines(r.stdout)[-1]["message"]
    assert "is in CRS 'WGS 84 / UTM zone 31N'" in msg and "Amersfoort / RD New" in msg
    assert not (tmp_path / "out" / "kriging_estimate.tif").exists()


def test_negative_values_of_z_levels_and_extent_are_accepted(tmp_path):
    """``--z-levels -50:0:5`` as typed (argparse alone would read -50:0:5 as an option)."""
    csv = tmp_path / "holes.csv"
    rows = ["x,y,z,v"] + [f"{x},{y},{z},{(x + y) / 100 + z / 10}"
                          for x in (0, 100, 200) for y in (0, 150) for z in (-40, -20, 0)]
    csv.write_text("\n".join(rows) + "\n")
    r = run_cli("krige", "--input", csv, "--field", "v", "--z-field", "z", "--crs", "EPSG:32632",
                "--variogram", "0.01 Nug + 1 Exp(200)", "--cell-size", "50",
                "--extent", "-100,-50,300,200", "--z-levels", "-40:0:20",
                "--output-dir", tmp_path / "out", "--json-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    import rasterio

    with rasterio.open(tmp_path / "out" / "kriging_estimate.tif") as ds:
        assert ds.count == 3 and ds.descriptions == ("z=-40", "z=-20", "z=0")
        assert ds.bounds.left == -100 and ds.bounds.bottom == -50
