"""Static QGIS 4 (Qt 6) readiness check of the plugin code; exit code 1 on any finding.

Usage: python scripts/check_qt6.py [PATH ...]   (default: plugin.py __init__.py processing ui)

Run it with a Python that has PyQt6 installed (``make qt6-check`` makes ``.venv-qt6check/``):
PyQt6 is never imported, only its type stubs (``PyQt6/Qt*.pyi``) are read, so no Qt 6 library
is needed. Every ``Name.attr[.attr...]`` whose ``Name`` comes from ``qgis.PyQt.<module>`` (or
PyQt5/PyQt6) is resolved against PyQt6's own classes and enums: an unscoped enum (``Qt.AlignLeft``
instead of ``Qt.AlignmentFlag.AlignLeft``), a removed class (``QRegExp``, ``QDesktopWidget``) or
a removed member fails, with the scoped spelling when one exists. Text patterns catch what a
name lookup cannot see: ``exec_()``, ``activated[str]``-style overloaded signals,
``QFontMetrics.width``, ``QVariant`` type constants and compiled resources (``resources_rc``,
``pyrcc``).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = ("plugin.py", "__init__.py", "processing", "ui")
QT_PACKAGES = ("qgis.PyQt", "PyQt5", "PyQt6")

#: Qt5-only spellings no attribute lookup can see: (regex, message).
PATTERNS = (
    (re.compile(r"\.exec_\s*\("), "exec_() is gone in PyQt6: call exec()"),
    (re.compile(r"\.\w+\[\s*(str|int|bool|float|'[^']*'|\"[^\"]*\")\s*\]\s*\.\s*connect"),
     "overloaded-signal indexing (e.g. activated[str]) is gone in PyQt6: connect the plain "
     "signal (textActivated for the text)"),
    (re.compile(r"(fontMetrics\(\)|QFontMetricsF?\([^()]*\)|\bmetrics|\bfm)\.width\("),
     "QFontMetrics.width() is gone in Qt 6: use horizontalAdvance()"),
    (re.compile(r"\bQVariant\.(Int|UInt|LongLong|ULongLong|Double|String|Bool|Date|Time|"
                r"DateTime|List|Map|StringList|ByteArray|Invalid)\b"),
     "QVariant type constants are gone in Qt 6: use QMetaType.Type (or the compat helpers)"),
    (re.compile(r"\bresources_rc\b|\bpyrcc[56]?\b"),
     "compiled Qt resources (pyrcc, resources_rc) do not exist for PyQt6: load files by path"),
    (re.compile(r"\bQRegExp\b"), "QRegExp is gone in Qt 6: use QRegularExpression"),
    (re.compile(r"\bQDesktopWidget\b"), "QDesktopWidget is gone in Qt 6: use QScreen"),
)


@dataclass
class StubClass:
    """A class of the PyQt6 stubs: members, nested classes and base class names."""

    name: str
    members: set[str] = field(default_factory=set)
    nested: dict[str, StubClass] = field(default_factory=dict)
    bases: list[str] = field(default_factory=list)


def _stub_class(node: ast.ClassDef) -> StubClass:
    cls = StubClass(node.name, bases=[ast.unparse(b).split(".")[-1] for b in node.bases])
    for item in node.body:
        if isinstance(item, ast.ClassDef):
            cls.nested[item.name] = _stub_class(item)
        elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            cls.members.add(item.name)
        elif isinstance(item, ast.Assign):
            cls.members.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            cls.members.add(item.target.id)
    return cls


def load_pyqt6_tables(pyqt6_dir: Path) -> dict[str, dict[str, StubClass | None]]:
    """``{module: {top-level name: StubClass or None (a function/constant)}}`` from the stubs."""
    tables: dict[str, dict[str, StubClass | None]] = {}
    for stub in sorted(pyqt6_dir.glob("Qt*.pyi")):
        names: dict[str, StubClass | None] = {}
        for node in ast.parse(stub.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                names[node.name] = _stub_class(node)
            elif isinstance(node, (ast.FunctionDef, ast.Assign, ast.AnnAssign)):
                targets = ([node.name] if isinstance(node, ast.FunctionDef) else
                           [t.id for t in getattr(node, "targets", [getattr(node, "target",
                                                                                None)])
                            if isinstance(t, ast.Name)])
                names.update(dict.fromkeys(targets))
        tables[stub.stem] = names
    return tables


class Resolver:
    """Looks attribute chains up in the PyQt6 tables (following base classes)."""

    def __init__(self, tables: dict[str, dict[str, StubClass | None]]) -> None:
        self.tables = tables
        self.classes = {n: c for mod in tables.values() for n, c in mod.items() if c}

    def lookup(self, cls: StubClass, attr: str, seen: frozenset = frozenset()):
        """``(found, nested class or None)`` for ``cls.attr``."""
        if attr in cls.nested:
            return True, cls.nested[attr]
        if attr in cls.members:
            return True, None
        for base in cls.bases:
            parent = self.classes.get(base)
            if parent is not None and base not in seen:
                found, nested = self.lookup(parent, attr, seen | {cls.name})
                if found:
                    return found, nested
        return False, None

    def scoped(self, cls: StubClass, attr: str) -> str | None:
        """The scoped spelling of an unscoped enum member, e.g. ``AlignmentFlag.AlignLeft``."""
        for name, nested in cls.nested.items():
            if attr in nested.members:
                return f"{name}.{attr}"
        return None


def _chain(node: ast.Attribute) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _qt_module(module: str | None) -> str | None:
    """``QtCore`` for ``qgis.PyQt.QtCore`` / ``PyQt5.QtCore`` / ``PyQt6.QtCore``."""
    for package in QT_PACKAGES:
        if module and module.startswith(package + ".Qt"):
            return module[len(package) + 1:].split(".")[0]
    return None


def check_source(path: Path, text: str, resolver: Resolver) -> list[str]:
    """The findings in one Python file, as ``path:line: message`` strings."""
    findings = []
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    tree = ast.parse(text, filename=str(path))
    _mark_parents(tree)
    imported: dict[str, tuple[str, str]] = {}  # local name -> (Qt module, class name)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _qt_module(node.module)
            if module is None or isinstance(getattr(node, "parent", None), ast.ExceptHandler):
                continue  # not Qt, or the Qt 5 fallback of a try: ... except ImportError:
            table = resolver.tables.get(module)
            for alias in node.names:
                if table is None:
                    findings.append(f"{rel}:{node.lineno}: module {module} does not exist in "
                                    "PyQt6")
                elif alias.name not in table:
                    findings.append(f"{rel}:{node.lineno}: {module}.{alias.name} does not "
                                    "exist in PyQt6 (Qt 6)")
                else:
                    imported[alias.asname or alias.name] = (module, alias.name)
    reported: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or isinstance(getattr(node, "parent", None),
                                                             ast.Attribute):
            continue
        chain = _chain(node)
        if not chain or chain[0] not in imported:
            continue
        module, name = imported[chain[0]]
        cls = resolver.tables[module].get(name)
        spelled = [name]
        for attr in chain[1:]:
            if cls is None:
                break
            found, nested = resolver.lookup(cls, attr)
            if not found:
                scoped = resolver.scoped(cls, attr)
                hint = (f"; Qt 6 needs the scoped enum {'.'.join(spelled)}.{scoped}" if scoped
                        else "")
                key = (node.lineno, ".".join(spelled + [attr]))
                if key not in reported:
                    reported.add(key)
                    findings.append(f"{rel}:{node.lineno}: {'.'.join(spelled + [attr])} does "
                                    f"not exist in PyQt6{hint}")
                break
            spelled.append(attr)
            cls = nested
    for lineno, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for pattern, message in PATTERNS:
            if pattern.search(code):
                findings.append(f"{rel}:{lineno}: {message}")
    return findings


def _mark_parents(tree: ast.AST) -> None:
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]


def python_files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.py") if "__pycache__" not in q.parts)
        elif p.suffix == ".py":
            out.append(p)
    return out


def pyqt6_dir() -> Path:
    spec = importlib.util.find_spec("PyQt6")  # finds the package without loading Qt 6
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("PyQt6 is not installed in this Python: run `make qt6-check` (it "
                         "creates .venv-qt6check/ with PyQt6 from PyPI)")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / "QtCore.pyi").is_file():
        raise SystemExit(f"{folder} has no QtCore.pyi: a PyQt6 wheel with type stubs is needed")
    return folder


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    paths = [Path(a) if Path(a).is_absolute() else ROOT / a for a in (args or DEFAULT_PATHS)]
    resolver = Resolver(load_pyqt6_tables(pyqt6_dir()))
    findings = []
    files = python_files(paths)
    for path in files:
        text = path.read_text(encoding="utf-8")
        findings += check_source(path, text, resolver)
    for line in findings:
        print(line)
    print(f"Qt 6 readiness: {len(files)} files checked against PyQt6 "
          f"({len(resolver.classes)} classes), {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
