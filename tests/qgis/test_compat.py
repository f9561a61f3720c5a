"""The code running inside QGIS must work on Python 3.9 (QGIS 3.22-3.28 on Windows/macOS) and
agree with the engine's constants.

Checked without a Python 3.9: the files parse with the 3.9 grammar, no ``X | Y`` type union is
evaluated at run time (``isinstance(x, int | float)`` raises TypeError before 3.10), and no
3.10+ standard-library API is used. When a Python 3.9 is installed (pyenv), the files are also
byte-compiled by it and the pure-Python modules imported and exercised by it.
"""

from __future__ import annotations

import ast
import glob
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from qgis_helpers import REPO

#: Everything QGIS's Python imports from the plugin.
WALL = sorted(
    [REPO / "__init__.py", REPO / "plugin.py"]
    + list((REPO / "processing").rglob("*.py"))
    + list((REPO / "ui").rglob("*.py"))
)

BUILTIN_TYPES = {"int", "float", "str", "bytes", "bool", "list", "dict", "tuple", "set",
                 "frozenset", "type", "object", "complex", "Path"}
#: Attributes added in 3.10+ (itertools.pairwise, int.bit_count, Path.hardlink_to, ...).
NEW_ATTRS = {"pairwise", "bit_count", "hardlink_to", "get_annotations",
             "packages_distributions", "TypeAlias", "ParamSpec", "TypeGuard", "StrEnum"}
#: Modules and names whose import fails before 3.10/3.11.
NEW_NAMES = NEW_ATTRS | {"aiter", "anext", "Concatenate", "Self", "LiteralString", "Never",
                         "assert_never", "reveal_type", "ExceptionGroup", "BaseExceptionGroup",
                         "TaskGroup", "tomllib", "UTC"}
#: Keywords that 3.9 does not accept: zip(strict=), dataclass(slots=/kw_only=).
NEW_KEYWORDS = {"zip": {"strict"}, "dataclass": {"slots", "kw_only", "match_args"}}


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation (argument, return or variable)."""
    ids: set[int] = set()

    def mark(node):
        if node is not None:
            ids.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            args = node.args
            for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if a is not None:
                    mark(a.annotation)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
    return ids


def _is_type_like(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Name) and node.id in BUILTIN_TYPES:
        return True
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
            and node.value.id in BUILTIN_TYPES:
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and (
        _is_type_like(node.left) or _is_type_like(node.right))


def py39_problems(source: str, name: str = "<string>") -> list[str]:
    """What in ``source`` would fail on Python 3.9 (empty when nothing)."""
    try:
        tree = ast.parse(source, name, feature_version=(3, 9))
    except SyntaxError as exc:
        return [f"{name}:{exc.lineno}: not Python 3.9 syntax ({exc.msg})"]
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                 and any(a.name == "annotations" for a in n.names) for n in tree.body)
    in_annotation = _annotation_nodes(tree)
    problems = []
    for node in ast.walk(tree):
        line = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            if fname in ("isinstance", "issubclass") and len(node.args) == 2:
                if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                       for n in ast.walk(node.args[1])):
                    problems.append(f"{line}: {fname}() with an X | Y union (3.10+)")
            bad = NEW_KEYWORDS.get(fname, set()) & {k.arg for k in node.keywords}
            if bad:
                problems.append(f"{line}: {fname}({', '.join(sorted(bad))}=...) is 3.10+")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if _is_type_like(node) and (id(node) not in in_annotation or not future):
                problems.append(f"{line}: X | Y type union evaluated at run time (3.10+)")
        elif isinstance(node, ast.Attribute) and node.attr in NEW_ATTRS:
            problems.append(f"{line}: .{node.attr} is a 3.10+ API")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            for n in names:
                if n.split(".")[-1] in NEW_NAMES or n.split(".")[0] in NEW_NAMES:
                    problems.append(f"{line}: import of {n!r} (3.10+)")
    return problems


def test_the_checker_finds_what_breaks_python_39():
    assert py39_problems("x = isinstance(1, int | float)\n")
    assert py39_problems("from __future__ import annotations\nok = isinstance(v, (int, float) | None)\n")
    assert py39_problems("T = str | None\n")
    assert py39_problems("def f(a: str | None): pass\n")  # no future import: evaluated
    assert py39_problems("match x:\n    case 1:\n        pass\n")
    assert py39_problems("for a, b in zip(x, y, strict=True): pass\n")
    assert py39_problems("import itertools\nitertools.pairwise(x)\n")
    assert py39_problems("import tomllib\n")
    fine = ("from __future__ import annotations\nimport math\n"
            "def f(a: str | None, b: list[int] | None = None) -> dict | None:\n"
            "    x: int | None = None\n    return isinstance(a, (int, float)) and (1 | 2)\n")
    assert py39_problems(fine) == []


def test_plugin_code_is_python_39_compatible():
    assert len(WALL) > 20
    problems = []
    for path in WALL:
        problems += py39_problems(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert problems == []


def _python39() -> str | None:
    for candidate in [shutil.which("python3.9"), *sorted(glob.glob(
            str(Path.home() / ".pyenv" / "versions" / "3.9*" / "bin" / "python3.9")))]:
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2]"
                                         " == (3, 9)"], capture_output=True).returncode == 0:
            return candidate
    return None


def test_python_39_compiles_the_plugin_and_runs_its_pure_modules(tmp_path):
    py39 = _python39()
    if py39 is None:
        pytest.skip("no Python 3.9 installed")
    for path in WALL:
        proc = subprocess.run([py39, "-c", "import sys; compile(open(sys.argv[1], encoding="
                               "'utf-8').read(), sys.argv[1], 'exec')", str(path)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "gcnn_rnn").symlink_to(REPO, target_is_directory=True)
    code = (
        "import importlib.util, sys\n"
        "def load(name, path):\n"
        "    spec = importlib.util.spec_from_file_location(name, path)\n"
        "    mod = importlib.util.module_from_spec(spec); sys.modules[name] = mod\n"
        "    spec.loader.exec_module(mod); return mod\n"
        f"c = load('constants', {str(REPO / 'processing' / 'constants.py')!r})\n"
        f"m = load('variogram_models', {str(REPO / 'ui' / 'variogram_models.py')!r})\n"
        "d = {'structures': [{'model': 'nug', 'psill': 0.05}, {'model': 'sph', 'psill': 0.4,"
        " 'range': 300.0}, {'model': 'mat', 'psill': 0.2, 'range': 900.0, 'extra': 1.5}],"
        " 'anisotropy': None}\n"
        "s = m.SimpleModel.from_dict(d)\n"
        "assert s.to_dict()['structures'][2]['extra'] == 1.5\n"
        "print(s.to_text(), round(s.gamma(500.0), 6), c.BYTES_PER_NODE)\n"
    )
    proc = subprocess.run([py39, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("0.05 Nug + 0.4 Sph(300) + 0.2 Mat(900, nu=1.5)")


def _engine_constant(name: str, module: str = "grid.py") -> int:
    text = (REPO / "core" / module).read_text(encoding="utf-8")
    match = re.search(rf"^{name}\s*=\s*(.+?)\s*(#.*)?$", text, re.MULTILINE)
    assert match, f"{name} not found in core/{module}"
    value = eval(match.group(1), {"__builtins__": {}})  # a plain arithmetic literal
    assert isinstance(value, int)
    return value


def test_grid_memory_constants_equal_the_engines():
    from gcnn_rnn.processing import constants

    assert constants.BYTES_PER_NODE == _engine_constant("BYTES_PER_NODE")
    assert constants.MAX_GRID_BYTES == _engine_constant("DEFAULT_MAX_BYTES")
    # the streamed grid's check (what is held at once, and the disk)
    assert constants.STRIPE_ROWS == _engine_constant("BLOCK", "tiles.py")
    for name in ("STRIPE_BYTES_PER_CELL", "STRIPES_HELD", "BYTES_PER_SAMPLE",
                 "DISK_BYTES_PER_NODE"):
        assert getattr(constants, name) == _engine_constant(name, "tiles.py"), name
    assert constants.MAX_NODES == _engine_constant("DEFAULT_MAX_NODES", "cli/options.py")
