"""Build the plugin zip for QGIS's "Install from ZIP": one folder ``gcnn_rnn/``.

Usage: python3 scripts/package.py [--output gcnn_rnn.zip] [--max-mb 25] [--release]

The plugin's homepage, repository and tracker come from pyproject.toml's ``[project.urls]``.
While they are still the placeholder address, the build prints a loud warning, and
``--release`` (``make package-release``) refuses to build.

Standard library only (``make package`` runs it with any Python 3). The files are the
repository's (``git ls-files`` when this is a git checkout, tracked and untracked-but-not-ignored;
otherwise a walk of the folder) minus what a QGIS user does not need: tests, benchmarks, CI,
development scripts, virtual environments, caches, build products and compiled binaries.
``pyproject.toml``, ``README.md`` and ``LICENSE`` stay: "Set up engine…" pip-installs the engine
from the plugin folder.
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = "gcnn_rnn"

#: Top-level entries never shipped.
EXCLUDED_TOP = {
    "tests", "benchmarks", "scripts", ".ci", ".git", ".github", ".cache", ".venv", ".venv-qgis",
    ".venv-qt6check",
    "build", "dist", "demo_output", "requirements", "Makefile", ".gitignore", ".gitattributes",
    ".pre-commit-config.yaml", "BENCHMARKS.md", "DEVELOPERS.md",
}
#: Path components (anywhere) never shipped.
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".mypy_cache",
                  ".ipynb_checkpoints"}
#: File name patterns never shipped (caches, binaries, archives, editor files).
EXCLUDED_NAMES = (
    "*.pyc", "*.pyo", "*.so", "*.dll", "*.dylib", "*.pyd", "*.exe", "*.o", "*.a", "*.lib",
    "*.whl", "*.zip", "*.tar", "*.tar.gz", "*.tgz", "*.egg", "*.egg-info", "*.keras", "*.h5",
    "*.tmp", "*.swp", "*~", ".DS_Store", "*.aux.xml",
)
REQUIRED = ("metadata.txt", "__init__.py", "plugin.py", "LICENSE", "pyproject.toml",
            "processing/provider.py", "core/__init__.py")
METADATA_KEYS = ("name", "qgisMinimumVersion", "qgisMaximumVersion", "description", "about",
                 "version", "author", "email", "tracker", "repository", "homepage",
                 "hasProcessingProvider")


def excluded(rel: str) -> bool:
    """Whether the repository-relative POSIX path ``rel`` stays out of the zip."""
    parts = rel.split("/")
    if parts[0] in EXCLUDED_TOP:
        return True
    if any(p in EXCLUDED_PARTS or p.endswith(".egg-info") for p in parts):
        return True
    name = parts[-1]
    return any(fnmatch.fnmatch(name, pat) for pat in EXCLUDED_NAMES)


def candidate_files(root: Path) -> list[str]:
    """Repository files as sorted relative POSIX paths (git's view when available)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root, capture_output=True, check=True,
        ).stdout.decode("utf-8")
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return sorted({f for f in files if (root / f).is_file()})


def check_metadata(path: Path) -> None:
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(path, encoding="utf-8")
    if "general" not in meta:
        raise SystemExit(f"{path}: no [general] section")
    missing = [k for k in METADATA_KEYS if not meta["general"].get(k, "").strip()]
    if missing:
        raise SystemExit(f"{path}: missing metadata {', '.join(missing)}")


#: metadata.txt key -> ``[project.urls]`` key of pyproject.toml (the one place to set them).
URL_KEYS = {"homepage": "Homepage", "repository": "Repository", "tracker": "Issues"}


def project_urls(pyproject: Path) -> dict[str, str]:
    """``[project.urls]`` of pyproject.toml (a tiny reader: tomllib needs Python 3.11)."""
    urls, inside = {}, False
    for line in pyproject.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == "[project.urls]"
            continue
        if inside and "=" in stripped and not stripped.startswith("#"):
            key, value = stripped.split("=", 1)
            urls[key.strip().strip('"')] = value.strip().strip('"')
    return urls


#: The address written while the real repository was unknown (D4 of the QGIS user report):
#: it does not exist, so plugins.qgis.org would refuse the zip and the Help button leads
#: nowhere. Set the real one once, in pyproject.toml's [project.urls] (metadata.txt's copies
#: must agree: tests/qgis/test_package.py checks it).
PLACEHOLDER_PREFIX = "https://github.com/gcnn-rnn/gcnn-rnn"


def placeholder_urls(root: Path) -> list[str]:
    """The ``[project.urls]`` keys that still hold :data:`PLACEHOLDER_PREFIX`."""
    urls = project_urls(root / "pyproject.toml")
    return [key for key in URL_KEYS.values()
            if urls.get(key, "").rstrip("/").startswith(PLACEHOLDER_PREFIX)]


def placeholder_warning(keys: list[str]) -> str:
    line = "!" * 78
    return (f"{line}\nWARNING: pyproject.toml [project.urls] {', '.join(keys)} still hold the "
            f"placeholder\n  {PLACEHOLDER_PREFIX}\nwhich is not a real repository. This zip is "
            "fine for testing but NOT for publishing\n(plugins.qgis.org needs a reachable "
            "homepage, repository and tracker).\nSet the real address there; "
            f"'--release' refuses to build until then.\n{line}")


def metadata_with_urls(root: Path) -> str:
    """metadata.txt with tracker/repository/homepage taken from pyproject.toml."""
    urls = project_urls(root / "pyproject.toml")
    missing = [v for v in URL_KEYS.values() if not urls.get(v)]
    if missing:
        raise SystemExit(f"pyproject.toml [project.urls] lacks {', '.join(missing)}")
    lines = []
    for line in (root / "metadata.txt").read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key}={urls[URL_KEYS[key]]}" if key in URL_KEYS and "=" in line else line)
    return "\n".join(lines) + "\n"


def build(output: Path, root: Path = ROOT, max_mb: float = 25.0) -> list[str]:
    """Write the zip; return the archived names (``gcnn_rnn/...``)."""
    check_metadata(root / "metadata.txt")
    files = [f for f in candidate_files(root) if not excluded(f)]
    missing = [r for r in REQUIRED if r not in files]
    if missing:
        raise SystemExit(f"required plugin files missing: {', '.join(missing)}")
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    stamp = time.localtime(time.time())[:6]
    names = []
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            src = root / rel
            if src.resolve() == output:
                continue
            info = zipfile.ZipInfo(f"{FOLDER}/{rel}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o644 & 0xFFFF) << 16
            data = (metadata_with_urls(root).encode("utf-8") if rel == "metadata.txt"
                    else src.read_bytes())
            zf.writestr(info, data)
            names.append(info.filename)
    size_mb = tmp.stat().st_size / 1024**2
    if size_mb > max_mb:
        tmp.unlink()
        raise SystemExit(f"the zip would be {size_mb:.1f} MB, over the {max_mb} MB limit")
    tmp.replace(output)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="gcnn_rnn.zip", help="zip to write")
    parser.add_argument("--max-mb", type=float, default=25.0, help="size limit in MB")
    parser.add_argument("--release", action="store_true",
                        help="refuse to build while the metadata URLs are placeholders")
    args = parser.parse_args(argv)
    placeholders = placeholder_urls(ROOT)
    if placeholders:
        print(placeholder_warning(placeholders), file=sys.stderr)
        if args.release:
            print("package.py --release: refused (placeholder URLs)", file=sys.stderr)
            return 2
    names = build(Path(args.output), ROOT, args.max_mb)
    size = Path(args.output).stat().st_size / 1024**2
    print(f"{args.output}: {len(names)} files, {size:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
