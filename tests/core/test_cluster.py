"""The heavy stages on a Dask cluster (issue 13): a local cluster of 2 worker processes on
127.0.0.1 gives the very floats of the in-process run, survives a killed worker, cancels
cleanly, and an unreachable scheduler is a quick, clear error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

distributed = pytest.importorskip("distributed")

from gcnn_rnn.core.cli.main import main  # noqa: E402

VG = "0.0507 Nug + 0.5906 Sph(897)"


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        yield lc.scheduler_address, client


def _rasters(folder) -> list[np.ndarray]:
    out = []
    for name in ("kriging_estimate.tif", "kriging_variance.tif"):
        with rasterio.open(folder / name) as ds:
            out.append(ds.read())
    return out


def _krige_args(meuse_gpkg, out, *extra) -> list[str]:
    return list(map(str, ["krige", "--quiet", "--input", meuse_gpkg, "--layer", "meuse",
                          "--field", "zinc", "--transform", "log", "--variogram", VG,
                          "--neighbours", "20", "--memory-mb", "1", "--output-dir", out,
                          *extra]))


def test_krige_2d_on_the_cluster_equals_in_process(meuse_gpkg, tmp_path, cluster, capsys):
    address, _ = cluster
    grid = ["--cell-size", "40"]
    assert main(_krige_args(meuse_gpkg, tmp_path / "a", *grid)) == 0
    assert main(_krige_args(meuse_gpkg, tmp_path / "b", *grid, "--scheduler", address)) == 0, \
        capsys.readouterr().err
    for a, b in zip(_rasters(tmp_path / "a"), _rasters(tmp_path / "b")):
        assert np.array_equal(a, b)
    assert (tmp_path / "a" / "kriging_estimate.qml").read_text() == (
        tmp_path / "b" / "kriging_estimate.qml").read_text()
    # external drift: the workers read the covariate raster's window of each range themselves
    ked = [*grid, "--covariates", meuse_gpkg.parent / "meuse_dist.tif"]
    assert main(_krige_args(meuse_gpkg, tmp_path / "c", *ked)) == 0
    assert main(_krige_args(meuse_gpkg, tmp_path / "d", *ked, "--scheduler", address)) == 0, \
        capsys.readouterr().err
    for a, b in zip(_rasters(tmp_path / "c"), _rasters(tmp_path / "d")):
        assert np.array_equal(a, b) and np.isfinite(a).any()


def test_krige_3d_with_a_drift_via_the_environment_variable(tmp_path, cluster, capsys,
                                                            monkeypatch):
    address, _ = cluster
    rng = np.random.default_rng(5)
    xyz = rng.uniform(0, 1000, size=(120, 3)) * [1, 1, 0.1]
    z = np.sin(xyz[:, 0] / 200) + xyz[:, 2] / 50 + rng.normal(0, 0.1, 120)
    csv = tmp_path / "s.csv"
    np.savetxt(csv, np.column_stack([xyz, z]), delimiter=",", header="x,y,depth,v",
               comments="")
    for drift in ([], ["--drift", "x,z", "--neighbours", "16"]):
        args = ["krige", "--quiet", "--input", csv, "--field", "v", "--z-field", "depth",
                "--crs", "EPSG:32631", "--variogram", "0.05 Nug + 1 Exp(300)",
                "--cell-size", "25", "--extent", "0,0,1000,1000", "--z-levels", "0:100:50",
                "--memory-mb", "1", *drift]
        monkeypatch.delenv("GCNN_RNN_SCHEDULER", raising=False)
        assert main(list(map(str, [*args, "--output-dir", tmp_path / "a"]))) == 0
        monkeypatch.setenv("GCNN_RNN_SCHEDULER", address)
        assert main(list(map(str, [*args, "--output-dir", tmp_path / "b"]))) == 0, \
            capsys.readouterr().err
        for a, b in zip(_rasters(tmp_path / "a"), _rasters(tmp_path / "b")):
            assert a.shape == (3, 40, 40) and np.array_equal(a, b)


def test_unreachable_scheduler_is_a_quick_input_error(meuse_gpkg, tmp_path, capsys):
    t0 = time.monotonic()
    code = main(_krige_args(meuse_gpkg, tmp_path / "x", "--cell-size", "40",
                            "--scheduler", "tcp://127.0.0.1:9"))
    assert code == 2 and time.monotonic() - t0 < 20
    assert "cannot reach the Dask scheduler 'tcp://127.0.0.1:9'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def _run_until(args, percent: float, action) -> subprocess.CompletedProcess:
    """Run the CLI with --json-progress; call ``action(proc)`` once progress passes
    ``percent``; return the finished process and its protocol lines."""
    proc = subprocess.Popen([sys.executable, "-m", "gcnn_rnn.core", *args, "--json-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, fired = [], False
    for line in proc.stdout:
        msg = json.loads(line)
        lines.append(msg)
        if not fired and msg["type"] == "progress" and msg["percent"] >= percent:
            action(proc)
            fired = True
    proc.wait(timeout=120)
    proc.stderr.close()
    return proc, lines, fired


def test_a_killed_worker_is_retried_and_the_result_is_the_same(meuse_gpkg, tmp_path, cluster):
    address, client = cluster
    grid = ["--cell-size", "20", "--extent", "178000,329000,182000,333000"]  # 40,000 nodes
    assert main(_krige_args(meuse_gpkg, tmp_path / "a", *grid)) == 0
    before = client.run(os.getpid)
    victim = sorted(before.values())[0]

    proc, lines, fired = _run_until(
        _krige_args(meuse_gpkg, tmp_path / "b", *grid, "--scheduler", address), 20,
        lambda p: os.kill(victim, signal.SIGKILL))
    assert fired and proc.returncode == 0, lines[-3:]
    for a, b in zip(_rasters(tmp_path / "a"), _rasters(tmp_path / "b")):
        assert np.array_equal(a, b)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker
    assert victim not in client.run(os.getpid).values()


def test_cancel_stops_the_cluster_tasks_and_leaves_nothing(meuse_gpkg, tmp_path, cluster):
    address, client = cluster
    grid = ["--cell-size", "10", "--extent", "178000,329000,182000,333000"]  # 160,000 nodes
    args = _krige_args(meuse_gpkg, tmp_path / "c", *grid, "--scheduler", address)
    proc, lines, fired = _run_until(args, 5,
                                    lambda p: p.send_signal(signal.SIGINT))
    assert fired and proc.returncode == 130, lines[-3:]
    assert lines[-1] == {"type": "error", "kind": "cancelled", "message": "cancelled by the user"}
    assert not (tmp_path / "c").exists() or sorted(p.name for p in (tmp_path / "c").iterdir()) \
        == []
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0


@pytest.mark.parametrize(("folds", "methods"), [("5", "ok,uk"), ("loo", "ok")])
def test_cv_folds_and_methods_on_the_cluster_equal_in_process(meuse_gpkg, tmp_path, cluster,
                                                              capsys, folds, methods):
    address, _ = cluster
    base = ["cv", "--quiet", "--input", meuse_gpkg, "--layer", "meuse", "--field", "zinc",
            "--transform", "log", "--variogram", VG, "--method", methods, "--folds", folds,
            "--seed", "3"]
    docs = []
    for extra, name in (([], "a.json"), (["--scheduler", address], "b.json")):
        assert main(list(map(str, [*base, *extra, "--output-json", tmp_path / name]))) == 0, \
            capsys.readouterr().err
        doc = json.loads((tmp_path / name).read_text())
        doc.pop("timings_s", None)
        docs.append(doc)
    assert docs[0]["metrics"]["ok"]["n"] == 155
    assert docs[0] == docs[1]


def test_predict_streamed_and_on_the_cluster_equal_a_whole_grid_prediction(
        meuse_gpkg, tmp_path, cluster, capsys):
    """Two ranges of 65,536 nodes: the whole-grid prediction written at once, the streamed
    in-process one and the cluster's are the same float32 cells."""
    from gcnn_rnn.core.grid import Grid
    from gcnn_rnn.core.model.bundle import load_bundle
    from gcnn_rnn.core.model.outputs import LAYERS
    from gcnn_rnn.core.raster import write_raster

    address, _ = cluster
    model = tmp_path / "model"
    assert main(["train", "--quiet", "--input", str(meuse_gpkg), "--field", "zinc",
                 "--transform", "log", "--variogram", VG, "--ensemble", "2", "--epochs", "2",
                 "--neighbours", "8", "--kriging-neighbours", "16", "--seed", "1",
                 "--model-dir", str(model)]) == 0, capsys.readouterr().err
    grid_args = ["--cell-size", "12", "--extent", "178500,329700,181500,333600"]  # 81,250
    for extra, name in (([], "a"), (["--scheduler", address], "b")):
        assert main(["predict", "--quiet", "--model-dir", str(model), *grid_args, *extra,
                     "--output-dir", str(tmp_path / name)]) == 0, capsys.readouterr().err
    estimator, doc = load_bundle(model)
    with rasterio.open(tmp_path / "a" / "prediction.tif") as ds:
        t = ds.transform
        grid = Grid(t.c, t.f, 12.0, ds.width, ds.height, ds.crs.to_wkt())
    assert grid.n_nodes > 65_536
    pred = estimator.predict_full(grid.node_coords())
    for layer, (kind, desc) in LAYERS.items():
        if layer == "exceedance_probability":
            continue
        whole = write_raster(tmp_path / f"{layer}.tif", np.asarray(getattr(pred, layer))
                             .reshape(grid.shape), grid, desc, kind=kind)
        with rasterio.open(whole) as w, rasterio.open(tmp_path / "a" / f"{layer}.tif") as a, \
                rasterio.open(tmp_path / "b" / f"{layer}.tif") as b:
            want = w.read()
            assert np.array_equal(want, a.read()) and np.array_equal(want, b.read()), layer


def test_workers_starts_a_local_cluster_and_removes_it(meuse_gpkg, tmp_path, capsys):
    import glob
    import tempfile

    before = set(glob.glob(f"{tempfile.gettempdir()}/gcnn-rnn-dask-*"))
    grid = ["--cell-size", "40"]
    assert main(_krige_args(meuse_gpkg, tmp_path / "a", *grid)) == 0
    assert main(_krige_args(meuse_gpkg, tmp_path / "b", *grid, "--workers", "2")) == 0, \
        capsys.readouterr().err
    for a, b in zip(_rasters(tmp_path / "a"), _rasters(tmp_path / "b")):
        assert np.array_equal(a, b)
    assert set(glob.glob(f"{tempfile.gettempdir()}/gcnn-rnn-dask-*")) <= before
    assert main(_krige_args(meuse_gpkg, tmp_path / "c", *grid, "--workers", "0")) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_local_workers_keep_glibc_adaptive_allocation():
    """Dask sets MALLOC_TRIM_THRESHOLD_=65536 for its workers (and leaves it in this
    process's environment), which turns off glibc's adaptive mmap threshold: every large
    array is then mapped, zeroed and unmapped anew (40 % of a hybrid predict's worker time).
    The workers of --workers get explicit values that do what the adaptive threshold does,
    even when this process already has Dask's, and their share of the cores."""
    import argparse

    import dask

    from gcnn_rnn.core.cluster import WORKER_MALLOC, cluster_client

    assert dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"] \
        == 65536  # Dask's default
    names = (*WORKER_MALLOC, "NUMBA_NUM_THREADS")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as a Dask cluster before leaves it
        with cluster_client(argparse.Namespace(scheduler=None, workers=2)) as client:
            env = client.run(lambda: {k: os.environ.get(k) for k in names})
    assert len(env) == 2
    share = str(max(1, (os.cpu_count() or 1) // 2))
    want = {**WORKER_MALLOC, "NUMBA_NUM_THREADS": share}
    assert int(want["MALLOC_MMAP_THRESHOLD_"]) == 32 * 1024**2
    assert all(e == want for e in env.values()), env


def _feature_arrays(fs) -> list[np.ndarray]:
    return [fs.sequence, fs.static, fs.ok_estimate, fs.ok_variance, fs.lagrange]


def test_leave_out_training_features_on_the_cluster_equal_in_process(cluster):
    """5,000 samples (two tasks of leave-one-out; with drill holes, tasks of whole holes):
    the features assembled from the workers are the floats of the in-process computation."""
    import argparse

    from distributed import get_task_stream

    from gcnn_rnn.core.cluster import cluster_client
    from gcnn_rnn.core.features import CLUSTER_MIN_SAMPLES, FeatureConfig, compute_features
    from gcnn_rnn.core.variogram.models import parse_model

    address, client = cluster
    rng = np.random.default_rng(11)
    n = 5000
    assert n >= CLUSTER_MIN_SAMPLES
    xy = rng.uniform(0, 1000, size=(n, 2))
    y = np.sin(xy[:, 0] / 150) + np.cos(xy[:, 1] / 200) + rng.normal(0, 0.1, n)
    cov = (xy[:, :1] / 1000) ** 2 + rng.normal(0, 0.01, (n, 1))
    # drill holes: 100 columns of 50 samples, 1 m apart
    holes = np.repeat(rng.uniform(0, 1000, size=(100, 2)), 50, axis=0)
    xyz = np.column_stack([holes, np.tile(-1.0 * np.arange(50), 100)])
    cases = [
        (xy, parse_model("0.05 Nug + 1 Sph(300)"), None,
         FeatureConfig(neighbours=8, kriging_neighbours=16, multiscale=True)),
        (xyz, parse_model("0.05 Nug + 1 Exp(200)"), np.repeat(np.arange(100), 50),
         FeatureConfig(neighbours=8, kriging_neighbours=16)),
    ]
    for coords, model, groups, cfg in cases:
        kw = dict(exclude_self=True, extra=cov, extra_names=("c",), sample_extra=cov,
                  groups=groups)
        want = compute_features(coords, y, coords, model, cfg, **kw)
        with cluster_client(argparse.Namespace(scheduler=address, workers=None)), \
                get_task_stream(client) as tasks:
            got = compute_features(coords, y, coords, model, cfg, **kw)
        assert sum(str(t["key"]).startswith("gcnn-rnn-") for t in tasks.data) >= 2
        assert got.static_names == want.static_names
        assert got.sequence_names == want.sequence_names
        for a, b in zip(_feature_arrays(got), _feature_arrays(want)):
            np.testing.assert_array_equal(a, b)


def test_simulate_on_the_cluster_equals_in_process(meuse_gpkg, tmp_path, cluster, capsys):
    """40 realisations at one thread: three batches of path groups as tasks; the same seed
    gives the same rasters as in-process."""
    address, client = cluster
    from distributed import get_task_stream

    args = ["simulate", "--quiet", "--input", meuse_gpkg, "--layer", "meuse", "--field",
            "zinc", "--variogram", "0.1 Nug + 0.9 Sph(900)", "--realisations", "40",
            "--seed", "7", "--threads", "1", "--cell-size", "100", "--threshold", "500"]
    assert main(list(map(str, [*args, "--output-dir", tmp_path / "a"]))) == 0
    with get_task_stream(client) as tasks:
        assert main(list(map(str, [*args, "--output-dir", tmp_path / "b",
                                   "--scheduler", address]))) == 0, capsys.readouterr().err
    assert sum(str(t["key"]).startswith("gcnn-rnn-") for t in tasks.data) == 3
    for name in ("realisations.tif", "etype_mean.tif", "conditional_variance.tif",
                 "exceedance_probability.tif"):
        with rasterio.open(tmp_path / "a" / name) as a, rasterio.open(tmp_path / "b" / name) as b:
            assert np.array_equal(a.read(), b.read()), name
    a = json.loads((tmp_path / "a" / "simulation.json").read_text())["normal_scores"]
    b = json.loads((tmp_path / "b" / "simulation.json").read_text())["normal_scores"]
    assert a == b


def _slab_args(meuse_gpkg, out, *extra) -> list[str]:
    return list(map(str, ["simulate", "--quiet", "--input", meuse_gpkg, "--layer", "meuse",
                          "--field", "zinc", "--variogram", "0.1 Nug + 0.9 Sph(900)",
                          "--realisations", "40", "--seed", "7", "--threads", "1",
                          "--cell-size", "100", "--path", "slabs", "--slab-rows", "10",
                          "--output-dir", out, *extra]))


def _same_simulation(a, b) -> None:
    for name in ("realisations.tif", "etype_mean.tif", "conditional_variance.tif"):
        with rasterio.open(a / name) as x, rasterio.open(b / name) as y:
            assert np.array_equal(x.read(), y.read()), name
    ja = json.loads((a / "simulation.json").read_text())
    jb = json.loads((b / "simulation.json").read_text())
    assert ja["normal_scores"] == jb["normal_scores"] and ja["path"] == jb["path"]


def test_simulate_in_slabs_on_the_cluster_equals_in_process(meuse_gpkg, tmp_path, cluster,
                                                            capsys):
    """40 realisations in 10-row slabs: one chain of slab tasks per path group (three),
    the client passing each slab's state on; the rasters and score moments of the run
    without the cluster."""
    address, client = cluster
    from distributed import get_task_stream

    assert main(_slab_args(meuse_gpkg, tmp_path / "a")) == 0
    with get_task_stream(client) as tasks:
        assert main(_slab_args(meuse_gpkg, tmp_path / "b", "--scheduler", address)) == 0, \
            capsys.readouterr().err
    slabs = json.loads((tmp_path / "a" / "simulation.json").read_text())["path"]["slabs"]
    assert slabs >= 3
    chain = [t for t in tasks.data if str(t["key"]).startswith("gcnn-rnn-chain-")]
    assert len(chain) == 3 * slabs
    assert len({t["worker"] for t in chain}) == 2  # both workers simulated slabs
    _same_simulation(tmp_path / "a", tmp_path / "b")


def test_simulate_in_slabs_survives_a_killed_worker(meuse_gpkg, tmp_path, cluster):
    """A worker killed mid-run: its slab task is retried elsewhere from the state the
    client passed it, and the rasters are those of the run without the cluster."""
    address, client = cluster
    assert main(_slab_args(meuse_gpkg, tmp_path / "a")) == 0
    victim = sorted(client.run(os.getpid).values())[0]
    proc, lines, fired = _run_until(
        _slab_args(meuse_gpkg, tmp_path / "b", "--scheduler", address), 30,
        lambda p: os.kill(victim, signal.SIGKILL))
    assert fired and proc.returncode == 0, lines[-3:]
    _same_simulation(tmp_path / "a", tmp_path / "b")
    client.wait_for_workers(2, timeout=60)
