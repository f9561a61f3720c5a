"""D4: output sets are all or nothing, the folder is locked, a killed run's leftovers are
cleaned (report cases ``out_predict_fail_midset``, ``sig_krige_term_write_*``,
``sig_krige_kill_13.5``, ``out_target_is_dir``, ``conc_variogram_same_vjson``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from reliability_helpers import digests, engine, engine_popen, krige_args

from gcnn_rnn.core.cli.main import main
from gcnn_rnn.core.errors import Cancelled, InputDataError
from gcnn_rnn.core.output_set import OutputSet, final_paths

OWNED = ("a.tif", "a.qml", "b.tif", "s.json")


def _write(folder, names, text):
    for n in names:
        (folder / n).write_text(f"{text} {n}")


def test_commit_replaces_the_whole_set(tmp_path):
    _write(tmp_path, ("a.tif", "a.qml", "b.tif", "s.json"), "old")
    (tmp_path / "mine.txt").write_text("user file")
    with OutputSet(tmp_path, OWNED) as oset:
        _write(oset.staging, ("a.tif", "a.qml", "s.json"), "new")
        out = oset.commit({"a": str(oset.staging / "a.tif"), "n": [str(oset.staging)]})
    assert out == {"a": str(tmp_path / "a.tif"), "n": [str(tmp_path)]}
    # the new set, nothing of the old (b.tif belonged to it), the user's file untouched
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "a.tif": "new a.tif", "a.qml": "new a.qml", "s.json": "new s.json",
        "mine.txt": "user file"}


def test_a_failure_before_the_commit_keeps_the_old_set(tmp_path):
    _write(tmp_path, OWNED, "old")
    before = digests(tmp_path)
    with pytest.raises(Cancelled), OutputSet(tmp_path, OWNED) as oset:
        _write(oset.staging, ("a.tif", "a.qml"), "new")
        raise Cancelled("cancelled by the user")
    assert digests(tmp_path) == before


def test_a_failed_commit_restores_the_old_set(tmp_path, monkeypatch):
    import os

    _write(tmp_path, OWNED, "old")
    before = digests(tmp_path)
    oset = OutputSet(tmp_path, OWNED)
    oset.open()
    _write(oset.staging, OWNED, "new")
    real, calls = os.replace, []

    def flaky(src, dst):  # the third move of the new set fails (e.g. the disk went away)
        if ".old" not in str(dst) and ".gcnn-rnn-staging" in str(src):
            calls.append(src)
            if len(calls) == 3:
                raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(Exception, match="previous outputs were kept"):
        oset.commit()
    monkeypatch.setattr(os, "replace", real)
    oset.close()
    assert digests(tmp_path) == before


def test_a_directory_in_the_way_is_refused_before_any_work(tmp_path, meuse_gpkg, capsys):
    (tmp_path / "kriging_estimate.tif").mkdir()
    t0 = time.perf_counter()
    code = main(krige_args(meuse_gpkg, tmp_path, "--cell-size", "80"))
    assert code == 2
    assert "exists and is a folder" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kriging_estimate.tif"]


def test_final_paths_maps_staging_paths():
    staged = "/x/out/.gcnn-rnn-staging.12.0123abcd.tmp/model/model.json"
    assert final_paths(staged) == "/x/out/model/model.json"
    assert final_paths({"k": (staged, 3)}) == {"k": ("/x/out/model/model.json", 3)}
    assert final_paths("/x/out/a.tif") == "/x/out/a.tif"


def test_a_second_run_into_a_locked_folder_refuses(tmp_path, meuse_gpkg):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from gcnn_rnn.core.output_set import OutputSet;"
         f"o = OutputSet({str(tmp_path)!r}, ['x']); o.open(); print('locked', flush=True);"
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = engine(krige_args(meuse_gpkg, tmp_path, "--cell-size", "80"), timeout=120)
        assert r.returncode == 2
        assert "another gcnn-rnn run" in r.stderr and str(holder.pid) in r.stderr
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its process: the next run works
    r = engine(krige_args(meuse_gpkg, tmp_path, "--cell-size", "80"), timeout=120)
    assert r.returncode == 0, r.stderr
    with pytest.raises(InputDataError, match="another gcnn-rnn run"):
        with OutputSet(tmp_path, ["x"]), OutputSet(tmp_path, ["x"]):
            pass


def test_a_killed_runs_leftovers_are_cleaned_by_the_next_run(tmp_path, meuse_gpkg):
    # A run killed (SIGKILL) while writing: its staging folder and temporary files stay.
    code = ("import os; from gcnn_rnn.core.output_set import OutputSet;"
            f"o = OutputSet({str(tmp_path)!r}, ['kriging_estimate.tif']); s = o.open();"
            "(s / 'kriging_estimate.tif').write_bytes(b'x' * 1000);"
            "(s / '.kriging_estimate.tif.1.0123abcd.tmp').write_bytes(b'y');"
            "os.kill(os.getpid(), 9)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    (tmp_path / ".kriging_variance.tif.d06de9fc.tmp").write_bytes(b"z" * 100)  # old-style
    assert len(list(tmp_path.iterdir())) == 3  # staging folder, lock file, legacy temp
    r = engine(krige_args(meuse_gpkg, tmp_path, "--cell-size", "80"), timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kriging.json", "kriging_estimate.qml", "kriging_estimate.tif", "kriging_variance.qml",
        "kriging_variance.tif"]


def test_cancel_while_writing_keeps_the_old_set(tmp_path, meuse_gpkg):
    """SIGTERM at any moment: exit 130 and the complete old set, or exit 0 and the new one
    (report: sig_krige_term_write_12.5 left a new estimate without variance)."""
    out = tmp_path / "out"
    r = engine(krige_args(meuse_gpkg, out, "--cell-size", "40"))
    assert r.returncode == 0
    before = digests(out)
    for delay in (2.0, 4.0, 6.0):
        p = engine_popen(krige_args(meuse_gpkg, out, "--cell-size", "4", "--json-progress",
                                    variogram="0.1 Nug + 0.5 Exp(500)"))
        time.sleep(delay)
        p.terminate()
        try:
            p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        now = digests(out)
        # 130: cancelled; -SIGTERM: killed while the interpreter itself was still starting
        # (before any code of ours runs, on a busy machine): either way the old set stays
        if p.returncode in (130, -signal.SIGTERM):
            assert now == before
        else:
            assert p.returncode == 0 and set(now) == set(before)
            before = now
        assert sorted(now) == sorted(before)


KILL_DURING_COMMIT = """
import os, signal, sys
from pathlib import Path
from gcnn_rnn.core.output_set import OutputSet
folder, kill_at = Path(sys.argv[1]), int(sys.argv[2])
out = OutputSet(folder, ["a.txt", "b.txt", "c.txt", "d.txt"])
staging = out.open()
for name in ("a.txt", "b.txt", "c.txt"):
    (staging / name).write_text("new " + name)
real, calls = os.replace, [0]
def replace(src, dst):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
out.commit()
"""


@pytest.mark.parametrize("kill_at", range(1, 8))
def test_a_kill_during_the_commit_renames_is_finished_by_the_next_run(tmp_path, kill_at):
    """SIGKILL at every rename of a commit (4 old entries aside, 3 new in): the next run into
    the folder finds the journal and finishes the commit, so the folder holds the complete
    new set (before: a mix of old and new files, and the new ones deleted as stale)."""
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (folder / name).write_text("old " + name)
    r = subprocess.run([sys.executable, "-c", KILL_DURING_COMMIT, str(folder), str(kill_at)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    with OutputSet(folder, ["a.txt", "b.txt", "c.txt", "d.txt"]):
        pass  # opening cleans up: it finishes the killed run's commit
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["a.txt", "b.txt", "c.txt"], names
    for name in names:
        assert (folder / name).read_text() == "new " + name
