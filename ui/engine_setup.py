"""Creating the engine's private environment: venv + pip + ``gcnn-rnn doctor`` in a QgsTask."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..processing.engine import (
    PLUGIN_DIR,
    _no_window,
    _venv_python,
    engine_command,
    engine_environment,
)

#: Used only when the plugin folder has no pyproject.toml (which normally declares them).
FALLBACK_REQUIREMENTS = [
    "numpy>=2.0", "scipy>=1.11", "pandas>=2.1", "geopandas>=1.0", "shapely>=2.0",
    "pyproj>=3.6", "rasterio>=1.4", "matplotlib>=3.8", "tqdm>=4.66", "scikit-learn>=1.4",
    "numba>=0.60",
]
FALLBACK_DL = ["tensorflow>=2.16"]

_VERSION_CHECK = ("import sys, venv, ensurepip; "
                  "print('%d.%d.%d' % sys.version_info[:3])")


def python_version(python: str, timeout: float = 20.0) -> str | None:
    """``"3.11.2"`` if ``python`` runs and can make venvs (``venv`` + ``ensurepip``), else None."""
    try:
        proc = subprocess.run([python, "-c", _VERSION_CHECK], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=_clean_env(),
                              **_no_window())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _version_ok(version: str | None) -> bool:
    if not version:
        return False
    major, minor = (int(v) for v in version.split(".")[:2])
    return (major, minor) >= (3, 10)


def find_base_pythons() -> list[tuple[str, str]]:
    """Pythons >= 3.10 able to create a venv: ``[(path, version), ...]``, best first."""
    names = ["python3.13", "python3.12", "python3.11", "python3.10", "python3", "python"]
    paths = [shutil.which(n) for n in names]
    if sys.platform != "win32":
        paths += ["/usr/bin/python3", "/usr/local/bin/python3",
                  "/opt/homebrew/bin/python3"]
    exe = Path(sys.executable)
    if exe.name.lower().startswith("python"):
        paths.append(str(exe))
    seen, out = set(), []
    for p in paths:
        if not p or not Path(p).is_file():
            continue
        real = str(Path(p).resolve())
        if real in seen:
            continue
        seen.add(real)
        version = python_version(p)
        if _version_ok(version):
            out.append((p, version))
    return out


def install_arguments(with_dl: bool) -> list[str]:
    """What ``pip install`` gets: the plugin folder's project (with the ``dl`` extra)."""
    if (PLUGIN_DIR / "pyproject.toml").is_file():
        return [f"{PLUGIN_DIR}[dl]" if with_dl else str(PLUGIN_DIR)]
    return FALLBACK_REQUIREMENTS + (FALLBACK_DL if with_dl else [])


def _clean_env() -> dict:
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(key, None)
    return env


class EngineSetupTask(QgsTask):
    """Create ``venv_dir`` from ``base_python``, pip-install the engine, run ``doctor``.

    Signals
    -------
    line(str)
        Every line of output (venv, pip, doctor), delivered in the main thread.
    done(bool)
        Emitted in the main thread at the end (True on success).
    """

    line = pyqtSignal(str)
    done = pyqtSignal(bool)

    def __init__(self, base_python: str, venv_dir: str | Path, pip_args: list[str],
                 run_doctor: bool = True, upgrade_pip: bool = True):
        super().__init__("GCNN-RNN: set up the engine", QgsTask.Flag.CanCancel)
        self.base_python = str(base_python)
        self.venv_dir = Path(venv_dir)
        self.pip_args = list(pip_args)
        self.run_doctor = run_doctor
        self.upgrade_pip = upgrade_pip
        self.error = ""
        self.doctor: dict = {}
        self._proc: subprocess.Popen | None = None

    @property
    def python(self) -> Path:
        return _venv_python(self.venv_dir)

    def run(self) -> bool:
        try:
            return self._run()
        except Exception as exc:  # never let an exception escape a task thread
            self.error = f"{type(exc).__name__}: {exc}"
            self.line.emit(self.error)
            return False

    def _run(self) -> bool:
        version = python_version(self.base_python)
        if not _version_ok(version):
            self.error = (f"{self.base_python!r} is not a Python >= 3.10 with venv and "
                          f"ensurepip (found {version or 'nothing usable'})")
            self.line.emit(self.error)
            return False
        self.setProgress(1)
        if not self.python.exists():
            self.line.emit(f"creating {self.venv_dir} with Python {version}")
            if not self._step([self.base_python, "-m", "venv", str(self.venv_dir)], 1, 8):
                return False
        steps = [([str(self.python), "-m", "pip", "install", "--upgrade", *self.pip_args], 15, 92)]
        if self.upgrade_pip:
            steps.insert(0, ([str(self.python), "-m", "pip", "install", "--upgrade", "pip"], 8, 15))
        for argv, start, stop in steps:
            if not self._step(argv, start, stop):
                return False
        if self.run_doctor:
            argv = engine_command(self.python, "doctor", ["--warmup"])  # compile kernels now
            if not self._step(argv, 92, 100, env=engine_environment(), doctor=True):
                return False
        self.setProgress(100)
        return True

    def _step(self, argv, start: float, stop: float, env=None, doctor: bool = False) -> bool:
        if self.isCanceled():
            self.error = "cancelled"
            return False
        self.line.emit("$ " + " ".join(argv))
        try:
            self._proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env or _clean_env(), **_no_window())
        except OSError as exc:
            self.error = f"cannot run {argv[0]!r}: {exc}"
            self.line.emit(self.error)
            return False
        n = 0
        for raw in iter(self._proc.stdout.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip()
            n += 1
            if doctor and text.startswith("{"):
                try:
                    msg = json.loads(text)
                except ValueError:
                    msg = {}
                if msg.get("type") == "result":
                    self.doctor = msg.get("outputs", {})
                    text = "doctor: " + json.dumps(self.doctor.get("versions", {}))
                elif msg.get("type") == "log":
                    text = f"doctor {msg.get('level')}: {msg.get('message')}"
                elif msg.get("type") == "error":
                    text = f"doctor error: {msg.get('message')}"
                elif msg.get("type") == "progress":
                    continue
            if text:
                self.line.emit(text)
            # pip prints no overall progress: approach the step's end as lines come in
            self.setProgress(start + (stop - start) * (1.0 - math.exp(-n / 60.0)))
            if self.isCanceled():
                self._proc.terminate()
        rc = self._proc.wait()
        self._proc.stdout.close()
        if self.isCanceled():
            self.error = "cancelled"
            return False
        if rc != 0:
            self.error = f"{Path(argv[0]).name} {' '.join(argv[1:4])} failed with exit code {rc}"
            self.line.emit(self.error)
            return False
        self.setProgress(stop)
        return True

    def cancel(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.terminate()
            except OSError:
                pass
        super().cancel()

    def finished(self, ok: bool) -> None:
        self.done.emit(bool(ok))
