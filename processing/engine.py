"""Locating the engine's Python interpreter and the environment it runs in.

The engine (``gcnn_rnn.core``) lives in its own Python (numpy 2, TensorFlow, rasterio ...), not in
QGIS's. The interpreter is looked up, in this order:

1. the environment variable ``GCNN_RNN_PYTHON``;
2. the plugin setting ``gcnn_rnn/engine_python`` (the set-up dialog writes it);
3. the private environment made by "Set up engine…" under
   ``<QGIS settings folder>/gcnn_rnn/venv``;
4. ``.venv/`` inside the plugin folder (a development checkout).

An explicit choice (1 or 2) that points at a missing file is reported as such instead of silently
falling back to another interpreter.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "GCNN_RNN_PYTHON"
SETTINGS_KEY = "gcnn_rnn/engine_python"
PACKAGE = "gcnn_rnn"

#: Where the plugin folder is (the repository root in a checkout; ``.../plugins/gcnn_rnn``).
PLUGIN_DIR = Path(__file__).resolve().parent.parent

FIX_HINT = (
    "Open Plugins ▸ GCNN-RNN ▸ Set up engine… to create it, or point the setting "
    "'Engine Python' (same dialog) or the environment variable GCNN_RNN_PYTHON at a Python "
    "that has the gcnn-rnn engine installed."
)


class EngineNotFoundError(RuntimeError):
    """No usable engine interpreter; the message says how to fix it."""


@dataclass(frozen=True)
class EngineLocation:
    """An engine interpreter and where its path came from.

    Parameters
    ----------
    python : Path
        The interpreter.
    source : str
        ``"environment"``, ``"setting"``, ``"private"`` or ``"development"``.
    """

    python: Path
    source: str


def _venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def private_venv_dir() -> Path:
    """The folder of the engine environment "Set up engine…" creates (outside the plugin)."""
    from qgis.core import QgsApplication

    base = QgsApplication.qgisSettingsDirPath() or str(Path.home() / ".gcnn_rnn")
    return Path(base) / "gcnn_rnn" / "venv"


def private_venv_python() -> Path:
    return _venv_python(private_venv_dir())


def setting_python() -> str:
    """The interpreter stored in the plugin setting (empty when unset)."""
    from qgis.core import QgsSettings

    value = QgsSettings().value(SETTINGS_KEY, "", type=str)
    return (value or "").strip()


def set_setting_python(path: str) -> None:
    """Store (or clear, with ``""``) the interpreter setting."""
    from qgis.core import QgsSettings

    settings = QgsSettings()
    if path:
        settings.setValue(SETTINGS_KEY, str(path))
    else:
        settings.remove(SETTINGS_KEY)


def candidates() -> list[tuple[str, str]]:
    """``(source, path)`` pairs in lookup order; empty paths are omitted."""
    out = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        out.append(("environment", env))
    try:
        setting = setting_python()
    except Exception:  # no QgsApplication (plain unit tests)
        setting = ""
    if setting:
        out.append(("setting", setting))
    try:
        out.append(("private", str(private_venv_python())))
    except Exception:
        pass
    out.append(("development", str(_venv_python(PLUGIN_DIR / ".venv"))))
    return out


def find_engine_python() -> EngineLocation:
    """The engine interpreter to use.

    Raises
    ------
    EngineNotFoundError
        With a message naming what was tried and how to fix it.
    """
    tried = []
    for source, path in candidates():
        p = Path(path)
        if p.is_file() and os.access(p, os.X_OK):
            return EngineLocation(p, source)
        if source == "environment":
            raise EngineNotFoundError(
                f"The GCNN-RNN engine Python given by {ENV_VAR}={path!r} does not exist or is "
                f"not executable. {FIX_HINT}"
            )
        if source == "setting":
            raise EngineNotFoundError(
                f"The GCNN-RNN engine Python in the plugin setting ({path!r}) does not exist or "
                f"is not executable. {FIX_HINT}"
            )
        tried.append(path)
    raise EngineNotFoundError(
        "The GCNN-RNN engine is not installed (no engine Python found; tried "
        + ", ".join(repr(t) for t in tried)
        + f"). {FIX_HINT}"
    )


def package_root() -> Path:
    """A folder whose entry ``gcnn_rnn`` is this plugin folder (for the engine's PYTHONPATH).

    The plugin folder's parent when the folder is named ``gcnn_rnn`` (an installed plugin);
    otherwise (a checkout under another name) a private folder with a ``gcnn_rnn`` symlink.
    """
    if PLUGIN_DIR.name == PACKAGE:
        return PLUGIN_DIR.parent
    digest = hashlib.sha1(str(PLUGIN_DIR).encode("utf-8")).hexdigest()[:12]
    link_dir = Path(tempfile.gettempdir()) / f"gcnn_rnn_pkg_{digest}"
    link = link_dir / PACKAGE
    try:
        if not (link.is_symlink() and link.resolve() == PLUGIN_DIR):
            link_dir.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(PLUGIN_DIR, target_is_directory=True)
        return link_dir
    except OSError:  # no symlinks (Windows without privilege): rely on an installed engine
        return PLUGIN_DIR.parent


def engine_environment() -> dict[str, str]:
    """The environment for the engine process: QGIS's own Python settings removed."""
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "VIRTUAL_ENV",
                "PYTHONNOUSERSITE"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(package_root())
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def engine_command(python: Path | str, command: str, args: list[str]) -> list[str]:
    """``[python, -m, gcnn_rnn.core, command, *args, --json-progress]``."""
    return [str(python), "-m", f"{PACKAGE}.core", command, *args, "--json-progress"]


_PROBES: dict[tuple[str, float], tuple[bool, str]] = {}


def probe(python: Path | str, timeout: float = 30.0) -> tuple[bool, str]:
    """Whether ``python`` can import the engine; cached per interpreter and its mtime.

    Returns
    -------
    (bool, str)
        ``(True, version)`` or ``(False, reason)``.
    """
    p = Path(python)
    try:
        key = (str(p), p.stat().st_mtime)
    except OSError as exc:
        return False, f"{str(p)!r}: {exc.strerror}"
    if key in _PROBES:
        return _PROBES[key]
    code = (
        "import sys; assert sys.version_info >= (3, 10), 'Python >= 3.10 needed'; "
        "import gcnn_rnn.core as c; print(c.__version__)"
    )
    try:
        proc = subprocess.run(
            [str(p), "-c", code], capture_output=True, text=True, timeout=timeout,
            env=engine_environment(), stdin=subprocess.DEVNULL, **_no_window(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        result = (False, f"cannot run {str(p)!r}: {exc}")
    else:
        if proc.returncode == 0:
            result = (True, proc.stdout.strip())
        else:
            tail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            result = (False, f"{str(p)!r} cannot import the engine: {tail}")
    _PROBES[key] = result
    return result


def check_engine() -> tuple[bool, str]:
    """``(True, "")`` when an engine interpreter is found and imports the engine."""
    try:
        location = find_engine_python()
    except EngineNotFoundError as exc:
        return False, str(exc)
    ok, detail = probe(location.python)
    if not ok:
        return False, f"The GCNN-RNN engine does not work: {detail}. {FIX_HINT}"
    return True, ""


def _no_window() -> dict:
    """Popen keywords hiding the console window on Windows."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}
