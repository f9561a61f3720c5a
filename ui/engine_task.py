"""Running an engine command in a ``QgsTask`` (background thread, cancellable)."""

from __future__ import annotations

from qgis.core import QgsProcessingFeedback, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..processing.runner import EngineError, run_engine


class EngineTask(QgsTask):
    """``gcnn-rnn <command> <args>`` in the background; ``result``/``error`` when finished.

    Signals
    -------
    done(bool)
        Emitted in the main thread when the task has finished (True on success).
    """

    done = pyqtSignal(bool)

    def __init__(self, description: str, command: str, args: list[str], cleanup_dirs=()):
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.command, self.args = command, list(args)
        self.cleanup_dirs = list(cleanup_dirs)
        self.feedback = QgsProcessingFeedback()
        self.feedback.progressChanged.connect(self.setProgress)
        self.result: dict = {}
        self.error = ""

    def run(self) -> bool:
        try:
            self.result = run_engine(self.command, self.args, self.feedback,
                                     cleanup_dirs=self.cleanup_dirs)
        except EngineError as exc:
            self.error = str(exc)
            return False
        except Exception as exc:  # never let an exception escape a task thread
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        return True

    def cancel(self) -> None:
        self.feedback.cancel()
        super().cancel()

    def finished(self, ok: bool) -> None:
        self.done.emit(bool(ok))
