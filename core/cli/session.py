"""One CLI invocation's channel to its caller: progress, logs, result, error, cancellation.

Human mode draws tqdm bars on stderr. ``--json-progress`` mode writes one JSON object per line
on stdout (the protocol the QGIS plugin reads)::

    {"type": "progress", "percent": 42.0, "text": "kriging"}
    {"type": "log", "level": "warning", "message": "..."}
    {"type": "result", "outputs": {...}}
    {"type": "error", "kind": "input", "message": "..."}

In JSON mode the process's file descriptor 1 is pointed at stderr, so stray prints from
libraries (TensorFlow, GDAL) can never corrupt the protocol; only this class writes to the
original stdout.
"""

from __future__ import annotations

import _thread
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any

from ..errors import Cancelled

#: Seconds a cancelled command gets to stop at its next cancellation point before it is
#: interrupted wherever it is (the QGIS runner kills after 3 s; the contract is 2 s).
CANCEL_GRACE_S = 0.8


def _jsonable(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


class _ProtocolLogHandler(logging.Handler):
    def __init__(self, session: Session) -> None:
        super().__init__(logging.INFO)
        self.session = session

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.session.log(record.levelname.lower(), record.getMessage())
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class Session:
    """Progress, logging and cancellation for one command."""

    def __init__(self, json_mode: bool = False, quiet: bool = False, verbose: bool = False):
        self.json_mode = json_mode
        self.quiet = quiet
        self._stop = False
        self._bar = None
        self._last_emit = 0.0
        self._last_percent = -1.0
        self._saved_stdout = sys.stdout
        self._saved_fd1: int | None = None
        if json_mode:
            sys.stdout.flush()
            self._saved_fd1 = os.dup(1)
            self._out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
            os.dup2(2, 1)
            sys.stdout = sys.stderr
        else:
            self._out = sys.stdout
        handler = _ProtocolLogHandler(self)
        self._saved_loggers = []
        for name, level in (("gcnn_rnn", logging.DEBUG if verbose else logging.INFO),
                            ("py.warnings", logging.WARNING)):
            logger = logging.getLogger(name)
            self._saved_loggers.append((logger, logger.handlers[:], logger.level, logger.propagate))
            logger.handlers[:] = [handler]
            logger.setLevel(level)
            logger.propagate = False
        logging.captureWarnings(True)
        self._saved_signals: dict = {}
        self._watchdog: threading.Timer | None = None

    # ----------------------------------------------------------------- protocol
    def emit(self, obj: dict) -> None:
        self._out.write(json.dumps(obj, default=_jsonable) + "\n")
        self._out.flush()

    def progress(self, fraction: float, text: str = "") -> None:
        """Report overall progress ``fraction`` in [0, 1]; also a cancellation point."""
        percent = round(100.0 * min(max(float(fraction), 0.0), 1.0), 1)
        if self.json_mode:
            now = time.monotonic()
            # Throttle: a busy loop may call this thousands of times a second.
            if percent != self._last_percent and (now - self._last_emit > 0.1 or percent >= 100):
                self.emit({"type": "progress", "percent": percent, "text": text})
                self._last_emit, self._last_percent = now, percent
        elif not self.quiet:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=100, unit="%", file=sys.stderr, leave=False,
                                 bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]")
            self._bar.n = percent
            if text:
                self._bar.set_description_str(text, refresh=False)
            self._bar.refresh()

    def log(self, level: str, message: str) -> None:
        if self.json_mode:
            self.emit({"type": "log", "level": level, "message": message})
        elif not (self.quiet and level in ("info", "debug")):
            self._close_bar()
            print(f"{level}: {message}", file=sys.stderr)

    def info(self, message: str) -> None:
        self.log("info", message)

    def result(self, outputs: dict) -> None:
        self._close_bar()
        if self.json_mode:
            self.emit({"type": "result", "outputs": outputs})
        else:
            for key, value in outputs.items():
                if isinstance(value, dict | list):
                    value = json.dumps(value, default=_jsonable)
                print(f"{key}: {value}", file=self._out)

    def error(self, kind: str, message: str) -> None:
        self._close_bar()
        if self.json_mode:
            self.emit({"type": "error", "kind": kind, "message": message})
        else:
            print(f"error: {message}", file=sys.stderr)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ----------------------------------------------------------------- cancellation
    def should_stop(self) -> bool:
        return self._stop

    def check(self) -> None:
        if self._stop:
            raise Cancelled("cancelled by the user")

    def install_signal_handlers(self) -> None:
        """First SIGINT/SIGTERM asks the work to stop; a second one stops at once.

        Work that does not poll :meth:`should_stop` (a library call, a phase nobody wrapped)
        is interrupted anyway :data:`CANCEL_GRACE_S` after the first signal: a watchdog then
        raises ``KeyboardInterrupt`` in the main thread, which ends the command with exit 130
        and lets every writer remove its temporary files.
        """

        def handler(signum, frame):
            if self._stop:
                raise KeyboardInterrupt
            self._stop = True
            self._watchdog = threading.Timer(CANCEL_GRACE_S, _thread.interrupt_main)
            self._watchdog.daemon = True
            self._watchdog.start()

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._saved_signals[sig] = signal.signal(sig, handler)

    def disarm(self) -> None:
        """The outputs are committed: a cancel arriving now no longer changes the outcome
        (the run ends with exit 0 and the complete new set)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for sig in self._saved_signals:
            signal.signal(sig, signal.SIG_IGN)

    def close(self) -> None:
        """Undo every global change (stdout, fd 1, loggers, signal handlers).

        Lets ``main()`` be called in-process (tests, notebooks) without side effects.
        """
        self._close_bar()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for sig, old in self._saved_signals.items():
            signal.signal(sig, old)
        self._saved_signals.clear()
        for logger, handlers, level, propagate in self._saved_loggers:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved_loggers.clear()
        logging.captureWarnings(False)
        if self._saved_fd1 is not None:
            sys.stdout.flush()
            self._out.close()
            os.dup2(self._saved_fd1, 1)
            os.close(self._saved_fd1)
            self._saved_fd1 = None
            sys.stdout = self._saved_stdout
