"""The QGIS 4 (Qt 6) readiness check (``scripts/check_qt6.py``, run by ``make test``): it finds
Qt5-only code, and the plugin passes it. It runs in ``.venv-qt6check/`` (PyQt6 from PyPI)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from qgis_helpers import REPO

CHECK_PYTHON = REPO / ".venv-qt6check" / "bin" / "python"

QT5_ONLY = '''\
from qgis.PyQt.QtCore import Qt, QVariant, QRegExp
from qgis.PyQt.QtWidgets import QDialog, QMessageBox, QDesktopWidget
a = Qt.AlignLeft
ok = Qt.AlignmentFlag.AlignRight | Qt.ItemDataRole.UserRole
b = QMessageBox.Ok
dlg.exec_()
combo.activated[str].connect(print)
w = fm.width("x")
t = QVariant.Int
import resources_rc
'''


def run_check(*paths) -> subprocess.CompletedProcess:
    if not CHECK_PYTHON.exists():
        pytest.fail("no .venv-qt6check: run `make qt6-env` (make test does)")
    return subprocess.run([str(CHECK_PYTHON), str(REPO / "scripts" / "check_qt6.py"),
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_the_check_finds_qt5_only_code(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(QT5_ONLY)
    proc = run_check(bad)
    assert proc.returncode == 1
    out = proc.stdout
    for expected in ("bad.py:1: QtCore.QRegExp does not exist in PyQt6",
                     "bad.py:2: QtWidgets.QDesktopWidget does not exist in PyQt6",
                     "bad.py:3: Qt.AlignLeft does not exist in PyQt6; Qt 6 needs the scoped enum "
                     "Qt.AlignmentFlag.AlignLeft",
                     "bad.py:5: QMessageBox.Ok does not exist in PyQt6; Qt 6 needs the scoped "
                     "enum QMessageBox.StandardButton.Ok",
                     "bad.py:6: exec_() is gone", "bad.py:7: overloaded-signal indexing",
                     "bad.py:8: QFontMetrics.width() is gone", "bad.py:9: QVariant.Int does not",
                     "bad.py:10: compiled Qt resources"):
        assert expected in out, (expected, out)
    assert "bad.py:4:" not in out  # scoped enums pass


def test_the_plugin_code_is_qt6_ready():
    proc = run_check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = int(proc.stdout.split("readiness: ")[1].split()[0])
    assert files >= len(list((REPO / "processing").rglob("*.py")))
    assert Path(REPO / "plugin.py").is_file()
