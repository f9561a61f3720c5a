"""The "Set up engine…" dialog: engine status, private environment creation, existing Python."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..processing import engine
from .engine_setup import EngineSetupTask, find_base_pythons, install_arguments
from .engine_task import EngineTask


def in_this_dialog(message: str) -> str:
    """An engine message as read inside this dialog: "open Set up engine…" becomes "below"."""
    return message.replace(engine.FIX_HINT, IN_DIALOG_HINT)


IN_DIALOG_HINT = ("Create it below ('Create / update engine'), or choose a Python that has the "
                  "engine installed under 'Or use an existing Python'.")


class SetupDialog(QDialog):
    """Shows which engine is used and creates or chooses one."""

    def __init__(self, parent=None, detect: bool = True):
        super().__init__(parent)
        self.setWindowTitle("GCNN-RNN — Set up engine")
        self.resize(760, 560)
        self.task: EngineSetupTask | None = None
        self.doctor_task: EngineTask | None = None

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        refresh = QPushButton("Check again")
        refresh.clicked.connect(self.refresh_status)
        self.doctor_button = QPushButton("Run doctor")
        self.doctor_button.clicked.connect(self.run_doctor)
        status_box = QGroupBox("Engine in use")
        sl = QVBoxLayout(status_box)
        sl.addWidget(self.status)
        row = QHBoxLayout()
        row.addWidget(refresh)
        row.addWidget(self.doctor_button)
        row.addStretch(1)
        sl.addLayout(row)

        create_box = QGroupBox("Create the engine's private environment")
        cl = QVBoxLayout(create_box)
        self.base_python = QComboBox()
        self.base_python.setEditable(True)
        self.target = QLabel()
        self.target.setWordWrap(True)
        self.with_dl = QCheckBox("Install the deep-learning extra (TensorFlow, about 600 MB; "
                                 "needed by the hybrid model)")
        self.with_dl.setChecked(True)
        self.create_button = QPushButton("Create / update engine")
        self.create_button.clicked.connect(self.start_setup)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_setup)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        row = QHBoxLayout()
        row.addWidget(QLabel("Base Python (>= 3.10)"))
        row.addWidget(self.base_python, 1)
        cl.addLayout(row)
        cl.addWidget(self.target)
        cl.addWidget(self.with_dl)
        row = QHBoxLayout()
        row.addWidget(self.create_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 1)
        cl.addLayout(row)

        existing_box = QGroupBox("Or use an existing Python with the engine installed")
        el = QHBoxLayout(existing_box)
        self.existing = QLineEdit(engine.setting_python())
        self.existing.setPlaceholderText("path to python (e.g. …/venv/bin/python)")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        use = QPushButton("Use this Python")
        use.clicked.connect(lambda: self.use_existing(self.existing.text()))
        clear = QPushButton("Clear setting")
        clear.clicked.connect(lambda: self.use_existing(""))
        el.addWidget(self.existing, 1)
        el.addWidget(browse)
        el.addWidget(use)
        el.addWidget(clear)

        cluster_box = QGroupBox("Dask cluster (optional: the engine needs gcnn-rnn[cluster])")
        kl = QHBoxLayout(cluster_box)
        self.scheduler = QLineEdit(engine.setting_scheduler())
        self.scheduler.setPlaceholderText("scheduler address, e.g. tcp://10.0.0.5:8786 (empty: "
                                          "run on this computer)")
        save_scheduler = QPushButton("Use for every algorithm")
        save_scheduler.clicked.connect(lambda: self.use_scheduler(self.scheduler.text()))
        kl.addWidget(self.scheduler, 1)
        kl.addWidget(save_scheduler)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        # The boxes scroll: long paths and large fonts must never push text under the buttons.
        boxes = QWidget()
        boxes_layout = QVBoxLayout(boxes)
        boxes_layout.setContentsMargins(0, 0, 0, 0)
        for w in (status_box, create_box, existing_box, cluster_box):
            boxes_layout.addWidget(w)
        boxes_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(boxes)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 3)
        layout.addWidget(QLabel("Log"))
        layout.addWidget(self.log, 1)
        layout.addWidget(buttons)

        try:
            self.target.setText(f"Target folder: {engine.private_venv_dir()} (kept across "
                                "plugin updates)")
        except Exception:
            self.target.setText("Target folder: unavailable")
        if detect:
            for path, version in find_base_pythons():
                self.base_python.addItem(f"{path}", path)
                self.base_python.setItemText(self.base_python.count() - 1,
                                             f"{path}  (Python {version})")
        self.refresh_status()

    # ------------------------------------------------------------------ status
    def refresh_status(self) -> bool:
        try:
            location = engine.find_engine_python()
        except engine.EngineNotFoundError as exc:
            self.status.setText(f"<b>No engine.</b> {in_this_dialog(str(exc))}")
            return False
        ok, detail = engine.probe(location.python)
        if ok:
            self.status.setText(f"<b>OK</b>: engine {detail} in {location.python} "
                                f"(from the {location.source})")
        else:
            self.status.setText(f"<b>Not working</b>: {in_this_dialog(detail)}")
        return ok

    def use_existing(self, path: str) -> bool:
        """Store ``path`` as the engine setting after checking it imports the engine."""
        path = (path or "").strip()
        if not path:
            engine.set_setting_python("")
            self.append("engine setting cleared")
            self.refresh_status()
            return True
        if not Path(path).is_file():
            self.append(f"not a file: {path!r}")
            return False
        ok, detail = engine.probe(path)
        if not ok:
            self.append(f"{path!r} cannot run the engine: {detail}")
            return False
        engine.set_setting_python(path)
        self.append(f"engine setting: {path} (engine {detail})")
        self.refresh_status()
        return True

    def use_scheduler(self, address: str) -> None:
        """Store the Dask scheduler address every algorithm passes to the engine."""
        address = (address or "").strip()
        engine.set_setting_scheduler(address)
        self.append(f"Dask scheduler: {address}" if address
                    else "Dask scheduler cleared: algorithms run on this computer")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Engine Python", "", "Python (python*)")
        if path:
            self.existing.setText(path)

    def append(self, text: str) -> None:
        self.log.appendPlainText(text)

    # ------------------------------------------------------------------ set-up
    def start_setup(self, venv_dir: str | None = None, pip_args: list[str] | None = None,
                    run_doctor: bool = True, upgrade_pip: bool = True) -> EngineSetupTask | None:
        base = self.base_python.currentData() or self.base_python.currentText().split("  (")[0]
        if not base:
            self.append("no Python >= 3.10 found: install one (python.org or your package "
                        "manager) and enter its path")
            return None
        target = Path(venv_dir) if venv_dir else engine.private_venv_dir()
        args = pip_args if pip_args is not None else install_arguments(self.with_dl.isChecked())
        self.task = EngineSetupTask(base, target, args, run_doctor, upgrade_pip)
        self.task.line.connect(self.append)
        self.task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        self.task.done.connect(self._setup_done)
        self.create_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel_setup(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _setup_done(self, ok: bool) -> None:
        engine.clear_probe_cache()  # the environment changed under the cached probes
        self.create_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if ok:
            self.progress.setValue(100)
            self.append("engine ready" + (f": {json.dumps(self.task.doctor.get('versions'))}"
                                          if self.task and self.task.doctor else ""))
        else:
            self.append(f"set-up failed: {self.task.error if self.task else 'unknown error'}")
        self.refresh_status()

    # ------------------------------------------------------------------ doctor
    def run_doctor(self) -> EngineTask:
        self.doctor_task = EngineTask("GCNN-RNN doctor", "doctor", [])
        self.doctor_task.done.connect(self._doctor_done)
        self.doctor_button.setEnabled(False)
        self.append("running gcnn-rnn doctor…")
        QgsApplication.taskManager().addTask(self.doctor_task)
        return self.doctor_task

    def _doctor_done(self, ok: bool) -> None:
        self.doctor_button.setEnabled(True)
        task = self.doctor_task
        if not ok or task is None:
            self.append(f"doctor failed: {task.error if task else ''}")
            return
        result = task.result
        tf = result.get("tensorflow", {})
        self.append("doctor: " + ", ".join(f"{k} {v}" for k, v in
                                           result.get("versions", {}).items()))
        self.append(f"TensorFlow: {'yes ' + str(tf.get('version')) if tf.get('available') else 'no'}"
                    f"; GPU: {'yes' if result.get('gpu') else 'no'}")
