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
import json
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


#: Plugin setting: the Dask scheduler address every algorithm's engine run uses (optional).
SCHEDULER_KEY = "gcnn_rnn/dask_scheduler"
#: The engine's environment variable for it (core/cluster.py).
SCHEDULER_ENV = "GCNN_RNN_SCHEDULER"


def setting_scheduler() -> str:
    """The Dask scheduler address in the plugin setting (empty: run in the engine process)."""
    from qgis.core import QgsSettings

    return (QgsSettings().value(SCHEDULER_KEY, "", type=str) or "").strip()


def set_setting_scheduler(address: str) -> None:
    """Store (or clear, with ``""``) the Dask scheduler address."""
    from qgis.core import QgsSettings

    settings = QgsSettings()
    if (address or "").strip():
        settings.setValue(SCHEDULER_KEY, address.strip())
    else:
        settings.remove(SCHEDULER_KEY)


def engine_environment() -> dict[str, str]:
    """The environment for the engine process: QGIS's own Python settings removed, and the
    Dask scheduler of the plugin setting, when set, for every command."""
    env = dict(os.environ)
    try:
        scheduler = setting_scheduler()
    except Exception:  # no QGIS settings (tests of the runner outside QGIS)
        scheduler = ""
    if scheduler:
        env[SCHEDULER_ENV] = scheduler
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


#: What the probe imports: the engine's hard dependencies and its CLI entry point.
PROBE_PACKAGES = ("numpy", "scipy", "pandas", "shapely", "pyproj", "geopandas", "rasterio")
MIN_NUMPY_MAJOR = 2

#: Run by the engine's Python: prints one JSON line; exit code 0 only when all is well.
PROBE_CODE = r"""
import importlib, json, sys
out = {"ok": False, "python": "%d.%d.%d" % sys.version_info[:3], "missing": [], "problems": [],
       "broken": {}}
if sys.version_info < (3, 10):
    out["problems"].append("Python %s is too old (the engine needs Python >= 3.10)" % out["python"])
for name in PACKAGES:
    try:
        importlib.import_module(name)
    except Exception as exc:
        out["missing"].append(name)
        if not isinstance(exc, ModuleNotFoundError):  # installed but broken: say why
            out["broken"][name] = "%s: %s" % (type(exc).__name__, exc)
if "numpy" not in out["missing"]:
    import numpy
    out["numpy"] = numpy.__version__
    if int(numpy.__version__.split(".")[0]) < MIN_NUMPY:
        out["problems"].append("numpy %s is too old (the engine needs numpy >= %d)"
                               % (numpy.__version__, MIN_NUMPY))
if not (out["problems"] or out["missing"]):
    try:
        import gcnn_rnn.core.cli.main
        from gcnn_rnn.core import __version__
        out["version"] = __version__
    except Exception as exc:
        out["problems"].append("the engine (gcnn_rnn.core.cli.main) cannot be imported "
                               "(%s: %s)" % (type(exc).__name__, exc))
out["ok"] = not (out["problems"] or out["missing"])
print(json.dumps(out))
sys.exit(0 if out["ok"] else 3)
"""

#: Successful probes only (a failure is always probed again: the user may just have fixed
#: it), keyed by what pip changes: the interpreter and its site-packages folders' mtimes.
_PROBES: dict[tuple, tuple[bool, str]] = {}


def _site_packages(python: Path) -> list[Path]:
    """The site-packages folders of the environment ``python`` belongs to (venv layouts)."""
    root = python.parent.parent
    found = sorted(root.glob("lib/python3*/site-packages")) + sorted(
        root.glob("lib64/python3*/site-packages"))
    lib = root / "Lib" / "site-packages"  # Windows venv
    if lib.is_dir():
        found.append(lib)
    return found


def probe_key(python: Path) -> tuple | None:
    """A key that changes when pip installs or removes anything; ``None``: do not cache.

    pip adds and removes ``*.dist-info`` folders directly in site-packages, which changes that
    folder's mtime; an interpreter outside a recognisable environment is never cached.
    """
    sites = _site_packages(python)
    if not sites:
        return None
    try:
        return (str(python), python.stat().st_mtime_ns,
                *((str(s), s.stat().st_mtime_ns) for s in sites))
    except OSError:
        return None


def clear_probe_cache() -> None:
    """Forget earlier probes (after "Set up engine…" changed an environment)."""
    _PROBES.clear()


def probe(python: Path | str, timeout: float = 60.0) -> tuple[bool, str]:
    """Whether ``python`` can really run the engine.

    It must be Python >= 3.10 and import numpy >= 2, scipy, pandas, shapely, pyproj,
    geopandas, rasterio and ``gcnn_rnn.core.cli.main`` (about 1 s). Successes are cached by
    :func:`probe_key`; failures never are.

    Returns
    -------
    (bool, str)
        ``(True, engine version)`` or ``(False, what is missing or wrong)``.
    """
    p = Path(python)
    if not p.is_file():
        return False, f"{str(p)!r} does not exist"
    key = probe_key(p)
    if key is not None and key in _PROBES:
        return _PROBES[key]
    code = PROBE_CODE.replace("PACKAGES", repr(PROBE_PACKAGES)).replace(
        "MIN_NUMPY", str(MIN_NUMPY_MAJOR))
    try:
        proc = subprocess.run(
            [str(p), "-c", code], capture_output=True, text=True, timeout=timeout,
            env=engine_environment(), stdin=subprocess.DEVNULL, **_no_window(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot run {str(p)!r}: {exc}"
    result = _probe_result(p, proc.returncode, proc.stdout, proc.stderr)
    if result[0] and key is not None:
        _PROBES[key] = result
    return result


def _probe_result(python: Path, returncode: int, stdout: str, stderr: str) -> tuple[bool, str]:
    info = None
    for line in reversed(stdout.strip().splitlines()):
        try:
            info = json.loads(line)
            break
        except ValueError:
            continue
    if not isinstance(info, dict):
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"{str(python)!r} is not a working Python for the engine: {tail}"
    if returncode == 0 and info.get("ok"):
        return True, str(info.get("version", "?"))
    parts = []
    missing = info.get("missing") or []
    if missing:
        broken = info.get("broken") or {}
        parts.append("missing Python package(s) " + ", ".join(
            f"{name} ({broken[name]})" if name in broken else name for name in missing))
    parts += [str(t) for t in info.get("problems", [])]
    return False, f"{str(python)!r}: " + ("; ".join(parts) or "unknown problem")


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
