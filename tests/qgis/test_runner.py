"""The engine runner against a fake engine: protocol mapping, exit codes, crash and cancel."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from gcnn_rnn.processing import engine as engine_mod
from gcnn_rnn.processing.runner import (
    TERMINATE_GRACE,
    EngineCancelled,
    EngineError,
    remove_temp_files,
    run_engine,
    run_process,
)


class RecordingFeedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.infos, self.warnings, self.errors, self.debug, self.texts = [], [], [], [], []
        self.console, self.progresses = [], []
        self.progressChanged.connect(self.progresses.append)

    def pushInfo(self, info):
        self.infos.append(info)

    def pushWarning(self, warning):
        self.warnings.append(warning)

    def reportError(self, error, fatalError=False):
        self.errors.append(error)

    def pushDebugInfo(self, info):
        self.debug.append(info)

    def pushConsoleInfo(self, info):
        self.console.append(info)

    def setProgressText(self, text):
        self.texts.append(text)


def argv(fake_engine, *args):
    return [sys.executable, str(fake_engine), *map(str, args)]


def test_protocol_lines_map_to_feedback(fake_engine):
    fb = RecordingFeedback()
    outputs = run_process(argv(fake_engine, "ok"), fb, env=dict(os.environ))
    assert outputs == {"answer": 42, "path": "x.tif"}
    assert fb.progresses == [25.0, 50.0, 75.0, 100.0]  # 0 is no change: no signal
    assert fb.texts == ["step 0", "step 25", "step 50", "step 75", "step 100"]
    assert fb.infos == ["read 155 points"]
    assert fb.warnings == ["2 NULL values dropped"]
    assert fb.debug == ["cutoff 1500"]


def test_progress_range_scales_engine_percent(fake_engine):
    fb = RecordingFeedback()
    run_process(argv(fake_engine, "ok"), fb, env=dict(os.environ), progress_range=(50, 100))
    assert fb.progresses == [50.0, 62.5, 75.0, 87.5, 100.0]


def test_non_json_stdout_goes_to_the_console_log(fake_engine):
    fb = RecordingFeedback()
    assert run_process(argv(fake_engine, "noise"), fb, env=dict(os.environ)) == {"ok": True}
    assert "not json at all" in fb.console and "{broken json" in fb.console


def test_bad_input_raises_with_the_engine_message(fake_engine):
    with pytest.raises(QgsProcessingException) as info:
        run_process(argv(fake_engine, "input-error"), RecordingFeedback(), env=dict(os.environ))
    assert isinstance(info.value, EngineError)
    assert info.value.returncode == 2 and info.value.kind == "input"
    assert str(info.value) == "field 'zinc2' not found; numeric fields: zinc"


def test_engine_error_exit_1(fake_engine):
    with pytest.raises(EngineError, match="engine failed: ValueError: boom") as info:
        run_process(argv(fake_engine, "error"), RecordingFeedback(), env=dict(os.environ))
    assert info.value.returncode == 1


def test_unknown_exit_code_reports_stderr_tail(fake_engine):
    with pytest.raises(EngineError, match="exit code 3") as info:
        run_process(argv(fake_engine, "exit3"), RecordingFeedback(), env=dict(os.environ))
    assert "something odd on stderr" in str(info.value)


def test_sigkill_crash_is_a_clear_error(fake_engine, tmp_path):
    (tmp_path / ".x.tif.deadbeef.tmp").write_text("partial")
    with pytest.raises(EngineError) as info:
        run_process(argv(fake_engine, "crash"), RecordingFeedback(), env=dict(os.environ),
                    cleanup_dirs=[tmp_path])
    message = str(info.value)
    assert "the engine crashed (killed by signal 9)" in message
    assert "fatal: about to be killed" in message
    assert info.value.kind == "crash"
    assert not (tmp_path / ".x.tif.deadbeef.tmp").exists()


def test_exit_130_is_a_cancel(fake_engine):
    with pytest.raises(EngineCancelled):
        run_process(argv(fake_engine, "interrupted"), RecordingFeedback(), env=dict(os.environ))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def cancel_once_started(fb, folder: Path, cancel_at: list[float] | None = None):
    """A started thread that cancels ``fb`` 0.3 s after the fake engine wrote its pid into
    ``folder`` (it is then really running), noting the time in ``cancel_at``."""

    def cancel_when_started():
        deadline = time.monotonic() + 20
        while not (folder / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        fb.cancel()
        if cancel_at is not None:
            cancel_at.append(time.monotonic())

    thread = threading.Thread(target=cancel_when_started)
    thread.start()
    return thread


@pytest.mark.parametrize("scenario", ["slow", "stubborn"])
def test_cancel_stops_engine_within_two_seconds_and_removes_outputs(fake_engine, tmp_path,
                                                                     scenario):
    fb = RecordingFeedback()
    done = tmp_path / "done.tif"
    (tmp_path / "done.qml").write_text("<qgis/>")
    cancel_at: list[float] = []
    thread = cancel_once_started(fb, tmp_path, cancel_at)
    with pytest.raises(EngineCancelled):
        run_process(argv(fake_engine, scenario, tmp_path), fb, env=dict(os.environ),
                    cleanup_dirs=[tmp_path], outputs=[done])
    returned = time.monotonic()
    thread.join()
    # an engine that honours SIGTERM is gone at once; a stubborn one is killed after the grace
    assert returned - cancel_at[0] < (2.0 if scenario == "slow" else TERMINATE_GRACE + 1.0)
    pid = int((tmp_path / "pid").read_text())
    assert not _alive(pid)
    assert not done.exists() and not (tmp_path / "done.qml").exists()
    assert not (tmp_path / ".part.tif.0123abcd.tmp").exists()
    assert fb.progresses  # it was really running


def test_an_engine_that_cancels_as_fast_as_the_real_one_is_not_killed(fake_engine, tmp_path):
    """Rows 235/283 of the reliability report: the engine needed 1.9-2.2 s to exit after
    SIGTERM, beyond the 1.5 s grace, so it was killed before it finished cleaning up. It now
    exits within 0.2-1.1 s on a loaded machine (the fake engine takes 1.1 s), inside the
    grace, which stays short enough for a cancel to end within 2 s."""
    assert 1.1 < TERMINATE_GRACE <= 1.5
    fb = RecordingFeedback()
    thread = cancel_once_started(fb, tmp_path)
    with pytest.raises(EngineCancelled):
        run_process(argv(fake_engine, "slowstop", tmp_path), fb, env=dict(os.environ),
                    cleanup_dirs=[tmp_path])
    thread.join()
    assert (tmp_path / "stopped_cleanly").exists()  # it finished; it was not killed


def test_remove_temp_files_only_touches_engine_temp_names(tmp_path):
    keep = [tmp_path / "a.tif", tmp_path / ".hidden.tmp", tmp_path / ".a.tif.xyz.tmp"]
    gone = [tmp_path / ".a.tif.0a1b2c3d.tmp", tmp_path / "sub" / ".b.qml.ffffffff.tmp"]
    for p in keep + gone:
        p.parent.mkdir(exist_ok=True)
        p.write_text("x")
    removed = remove_temp_files([tmp_path])
    assert sorted(removed) == sorted(gone)
    assert all(p.exists() for p in keep)


def test_remove_temp_files_removes_a_staging_folder_whole(tmp_path):
    """The engine's output set stages into ``.gcnn-rnn-staging.<pid>.<hex8>.tmp``; after a
    failed run the folder goes too, not only its files (it used to stay behind, empty)."""
    staging = tmp_path / ".gcnn-rnn-staging.4242.0a1b2c3d.tmp"
    (staging / ".old").mkdir(parents=True)
    (staging / "kriging_estimate.tif").write_text("x")
    (staging / ".kriging_variance.tif.ffffffff.tmp").write_text("x")
    (tmp_path / "kept.tif").write_text("x")
    removed = remove_temp_files([tmp_path])
    assert staging in removed and not staging.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.tif"]


def test_missing_engine_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GCNN_RNN_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(EngineError, match="GCNN_RNN_PYTHON") as info:
        run_engine("doctor", [], RecordingFeedback())
    assert "Set up engine" in str(info.value)
    ok, message = engine_mod.check_engine()
    assert not ok and "Set up engine" in message


def test_lookup_order_setting_then_private_then_development(monkeypatch, tmp_path):
    monkeypatch.delenv("GCNN_RNN_PYTHON", raising=False)
    fake_python = tmp_path / "bin" / "python"
    fake_python.parent.mkdir()
    fake_python.write_text("#!/bin/sh\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(engine_mod, "setting_python", lambda: str(fake_python))
    assert engine_mod.find_engine_python() == engine_mod.EngineLocation(fake_python, "setting")
    monkeypatch.setattr(engine_mod, "setting_python", lambda: "")
    monkeypatch.setattr(engine_mod, "private_venv_python", lambda: fake_python)
    assert engine_mod.find_engine_python().source == "private"
    monkeypatch.setattr(engine_mod, "private_venv_python", lambda: tmp_path / "missing")
    dev = engine_mod.PLUGIN_DIR / ".venv" / "bin" / "python"
    if dev.exists():
        assert engine_mod.find_engine_python().source == "development"
    else:
        with pytest.raises(engine_mod.EngineNotFoundError):
            engine_mod.find_engine_python()


def test_engine_runs_with_the_plugin_package_importable(tmp_path):
    """The real engine: ``doctor`` through the runner, with PYTHONPATH pointing at the plugin."""
    if not os.environ.get("GCNN_RNN_PYTHON"):
        pytest.fail("no engine: set GCNN_RNN_PYTHON (make test-qgis does)")
    fb = RecordingFeedback()
    outputs = run_engine("doctor", ["--no-tensorflow"], fb)
    assert outputs["ok"] is True
    assert outputs["versions"]["numpy"].startswith("2.")
    root = engine_mod.package_root()
    assert (root / "gcnn_rnn" / "core" / "__init__.py").resolve() == (
        engine_mod.PLUGIN_DIR / "core" / "__init__.py")
