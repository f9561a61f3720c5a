"""Run the engine CLI from QGIS: JSON lines → ``QgsProcessingFeedback``, cancel, exit codes.

The engine prints one JSON object per line on stdout (``--json-progress``)::

    {"type": "progress", "percent": 42.0, "text": "kriging"}
    {"type": "log", "level": "info" | "warning" | "debug" | "error", "message": "..."}
    {"type": "result", "outputs": {...}}
    {"type": "error", "kind": "input", "message": "..."}

and exits with 0 (ok), 2 (bad input), 130 (cancelled) or 1 (any other error). The runner reads
stdout and stderr in threads, polls ``feedback.isCanceled()`` every 0.1 s and, on cancel, stops
reading, terminates the engine (SIGTERM, then SIGKILL after 1.5 s), deletes the engine's
temporary files (``.<name>.<hex>.tmp``) and the outputs of the run, and raises
:class:`EngineCancelled`. Anything but exit code 0 raises :class:`EngineError` (a
``QgsProcessingException``) carrying the engine's own message, or for a crash the signal and the
tail of stderr.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .engine import _no_window, engine_command, engine_environment, find_engine_python
from .messages import TEMPORARY, is_noise

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_CANCELLED = 0, 1, 2, 130

#: How often the cancel flag is polled, and how long SIGTERM gets before SIGKILL (seconds).
#: The engine exits 130 within 0.2-1.1 s of SIGTERM on a loaded machine (cancel checked
#: inside long compiled calls, no interpreter teardown after a cancel), with its staging
#: cleaned up; the grace leaves it that plus a margin while a QGIS user still sees a cancel
#: end within 2 s. An engine killed after the grace leaves a complete set anyway (the
#: output set's commit journal), and the runner removes its temporary files.
POLL_INTERVAL = 0.1
TERMINATE_GRACE = 1.5
STDERR_TAIL_LINES = 30

#: Temporary names the engine writes before renaming (``core/raster.py temp_path_for``).
TEMP_FILE_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


class EngineError(QgsProcessingException):
    """The engine failed; the message is the engine's own (or describes the crash)."""

    def __init__(self, message: str, returncode: int | None = None, kind: str = "error"):
        super().__init__(message)
        self.message = message
        self.returncode = returncode
        self.kind = kind

    def __str__(self) -> str:  # QgsProcessingException's str() is empty on some builds
        return self.message


class EngineCancelled(EngineError):
    """The user cancelled; the engine was stopped and its outputs removed."""


def remove_temp_files(dirs: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete the engine's temporary files (``.<name>.<hex>.tmp``) below ``dirs``, and its
    staging folders (``.gcnn-rnn-staging.<pid>.<hex>.tmp``, the same pattern) with their
    contents: unlinking only the files left an empty staging folder behind until the next
    run in that folder removed it."""
    removed = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            continue
        # deepest first, so a staging folder's own temporary files are counted before it goes
        for path in sorted(root.rglob(".*.tmp"), key=lambda p: len(p.parts), reverse=True):
            if not TEMP_FILE_RE.match(path.name):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def remove_outputs(paths: Iterable[str | os.PathLike]) -> None:
    """Delete output files (and their ``.qml``/``.aux.xml`` sidecars) when they exist."""
    for p in paths:
        if not p:
            continue
        path = Path(p)
        for candidate in (path, path.with_suffix(".qml"), Path(str(path) + ".aux.xml")):
            try:
                if candidate.is_file():
                    candidate.unlink()
            except OSError:
                pass


def _reader(stream, sink: queue.Queue, tag: str) -> None:
    try:
        for raw in iter(stream.readline, b""):
            sink.put((tag, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    except (OSError, ValueError):
        pass
    finally:
        sink.put((tag, None))


class _Feedback:
    """Maps protocol messages to a ``QgsProcessingFeedback``."""

    def __init__(self, feedback: QgsProcessingFeedback, progress_range: tuple[float, float],
                 rewrite=None):
        self.fb = feedback
        self.rewrite = rewrite or (lambda text: text)
        self.start, self.stop = progress_range
        self.last_text = None
        self.warnings: list[str] = []

    def progress(self, percent, text) -> None:
        try:
            pct = min(max(float(percent), 0.0), 100.0)
        except (TypeError, ValueError):
            return
        self.fb.setProgress(self.start + (self.stop - self.start) * pct / 100.0)
        if text and text != self.last_text:
            self.last_text = text
            self.fb.setProgressText(str(text))

    def log(self, level: str, message: str) -> None:
        level = (level or "info").lower()
        message = self.rewrite(message)
        if level == "info" and TEMPORARY in message:
            level = "debug"  # "written to <temporary folder>/…": the delivery names the result
        if level == "debug":
            self.fb.pushDebugInfo(message)
        elif level in ("warning", "error", "critical"):
            self.warnings.append(message)
            if level == "warning" and hasattr(self.fb, "pushWarning"):  # QGIS >= 3.16
                self.fb.pushWarning(message)
            else:
                self.fb.reportError(message, False)
        else:
            self.fb.pushInfo(message)

    def console(self, line: str) -> None:
        if is_noise(line):  # TensorFlow start-up chatter: only for those who look for it
            self.fb.pushDebugInfo(line)
        else:
            self.fb.pushConsoleInfo(line)


def run_process(
    argv: Sequence[str],
    feedback: QgsProcessingFeedback | None = None,
    *,
    env: dict | None = None,
    cleanup_dirs: Iterable[str | os.PathLike] = (),
    outputs: Iterable[str | os.PathLike] = (),
    progress_range: tuple[float, float] = (0.0, 100.0),
    poll_interval: float = POLL_INTERVAL,
    terminate_grace: float = TERMINATE_GRACE,
    rewrite=None,
) -> dict:
    """Run one engine process speaking the JSON-lines protocol.

    Parameters
    ----------
    argv : sequence of str
        The full command line.
    feedback : QgsProcessingFeedback, optional
        Receives progress, logs and warnings; its cancel flag stops the engine.
    env : dict, optional
        Process environment (default :func:`engine_environment`).
    cleanup_dirs : iterable of path
        Folders the engine writes to: its temporary files there are deleted after a failure or
        cancel.
    outputs : iterable of path
        Final output files of this run, deleted (with sidecars) after a failure or cancel so no
        partial result is left.
    progress_range : (float, float)
        The engine's 0..100 % is mapped into this range of the feedback's progress.
    rewrite : callable, optional
        Applied to the engine's log and error messages (``messages.MessageRewriter``: CLI
        flags and temporary paths in the user's words).

    Returns
    -------
    dict
        The ``outputs`` of the engine's ``result`` line (empty if it sent none).

    Raises
    ------
    EngineCancelled
        The feedback was cancelled (or the engine exited with 130).
    EngineError
        Any other non-zero exit, with the engine's message or the crash and the stderr tail.
    """
    feedback = feedback or QgsProcessingFeedback()
    fb = _Feedback(feedback, progress_range, rewrite)
    cleanup_dirs = [Path(d) for d in cleanup_dirs]
    outputs = [Path(p) for p in outputs if p]
    popen_kw = _no_window()
    if sys.platform != "win32":
        popen_kw["start_new_session"] = True  # SIGKILL can then reach any worker processes
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=engine_environment() if env is None else env, **popen_kw,
        )
    except OSError as exc:
        raise EngineError(f"cannot start the GCNN-RNN engine {argv[0]!r}: {exc}") from None

    lines: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_reader, args=(proc.stdout, lines, "out"), daemon=True),
        threading.Thread(target=_reader, args=(proc.stderr, lines, "err"), daemon=True),
    ]
    for t in readers:
        t.start()

    stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    result: dict = {}
    error: dict | None = None
    open_streams = 2
    cancelled = False
    while open_streams or proc.poll() is None:
        if feedback.isCanceled():
            cancelled = True
            break
        try:
            tag, line = lines.get(timeout=poll_interval)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
            continue
        if tag == "err":
            stderr_tail.append(line)
            if line.strip():
                fb.console(line)
            continue
        msg = _parse(line)
        if msg is None:
            if line.strip():
                fb.console(line)
            continue
        kind = msg.get("type")
        if kind == "progress":
            fb.progress(msg.get("percent"), msg.get("text"))
        elif kind == "log":
            fb.log(str(msg.get("level", "info")), str(msg.get("message", "")))
        elif kind == "result":
            out = msg.get("outputs")
            result = out if isinstance(out, dict) else {}
        elif kind == "error":
            error = msg

    if cancelled:
        _stop(proc, terminate_grace)
        _close(proc)
        remove_temp_files(cleanup_dirs)
        remove_outputs(outputs)
        raise EngineCancelled("cancelled by the user; the engine was stopped and its outputs "
                              "removed", proc.returncode, "cancelled")

    rc = proc.wait()
    _close(proc)
    if rc == EXIT_OK:
        return result
    remove_temp_files(cleanup_dirs)
    remove_outputs(outputs)
    message = fb.rewrite(str(error.get("message", ""))) if error else ""
    kind = str(error.get("kind", "error")) if error else "error"
    if rc == EXIT_CANCELLED:
        raise EngineCancelled(message or "the engine was interrupted", rc, "cancelled")
    if rc < 0:
        raise EngineError(_crash_message(-rc, stderr_tail), rc, "crash")
    if message:
        prefix = "" if rc == EXIT_INPUT else "the GCNN-RNN engine failed: "
        raise EngineError(prefix + message, rc, kind)
    raise EngineError(
        f"the GCNN-RNN engine failed with exit code {rc}" + _tail_text(stderr_tail), rc, "crash"
    )


def run_engine(
    command: str,
    args: Sequence[str],
    feedback: QgsProcessingFeedback | None = None,
    **kwargs,
) -> dict:
    """Run ``gcnn-rnn <command> <args> --json-progress`` with the located engine.

    See :func:`run_process` for the keyword arguments, the return value and the errors; an
    engine that cannot be found raises :class:`EngineError` with the way to fix it.
    """
    from .engine import EngineNotFoundError

    try:
        location = find_engine_python()
    except EngineNotFoundError as exc:
        raise EngineError(str(exc), None, "engine_missing") from None
    argv = engine_command(location.python, command, [str(a) for a in args])
    env = kwargs.pop("env", None) or engine_environment()
    if feedback is not None:
        feedback.pushCommandInfo(f"PYTHONPATH={env.get('PYTHONPATH', '')} "
                                 + " ".join(_quote(a) for a in argv))
    kwargs["env"] = env
    try:
        return run_process(argv, feedback, **kwargs)
    except EngineCancelled:
        raise
    except EngineError as exc:
        if exc.kind != "crash" or not exc.returncode or exc.returncode < 0:
            raise  # the engine's own error, or a signal (a running interpreter that crashed)
        # Not the engine speaking: is the interpreter an engine at all? (canExecute, which
        # probes, is not called by processing.run or qgis_process)
        from .engine import FIX_HINT, probe

        ok, detail = probe(location.python)
        if ok:
            raise
        raise EngineError(f"The GCNN-RNN engine does not work: {detail}. {FIX_HINT}",
                          exc.returncode, "engine_broken") from None


def _parse(line: str) -> dict | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL (to the whole process group) after ``grace`` seconds."""
    if proc.poll() is None:
        try:
            proc.terminate()
        except OSError:
            pass
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    if proc.poll() is None:
        _kill_group(proc)  # still unreaped: the group id is certainly the engine's
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pass


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill what is left of the engine's process group (worker processes)."""
    if sys.platform == "win32":
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _close(proc: subprocess.Popen) -> None:
    for stream in (proc.stdout, proc.stderr):
        try:
            stream.close()
        except (OSError, AttributeError):
            pass


def _crash_message(signum: int, tail) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"the engine crashed (killed by signal {signum}) [{name}]" + _tail_text(tail)


def _tail_text(tail) -> str:
    lines = [ln for ln in tail if ln.strip()]
    if not lines:
        return ""
    return "; last engine output:\n" + "\n".join(lines[-15:])


def _quote(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or not arg) else arg
