"""Reading JSON that someone else may have written: bounded nesting, no NaN, clean errors.

``json.loads`` accepts ``NaN``/``Infinity`` tokens and raises ``RecursionError`` on deeply
nested input; the engine's own files never contain either, so both mean a damaged or crafted
file and become :class:`~gcnn_rnn.core.errors.InputDataError` (or the subclass the caller
chooses) naming the file.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InputDataError

#: Deepest nesting of arrays/objects accepted; the engine's files stay below 10.
MAX_DEPTH = 64


def _no_constant(token: str):
    raise ValueError(f"non-finite number {token!r} (NaN or infinity)")


def loads_checked(text: str | bytes, what: str, error: type[InputDataError] = InputDataError,
                  allow_nan: bool = False) -> Any:
    """Parse ``text``; any problem raises ``error`` with ``what`` (e.g. the file name)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"cannot read {what}: {exc}") from None
    text = text.lstrip("\ufeff")  # a UTF-8 BOM (Windows Notepad) is harmless
    depth = _max_depth(text)
    if depth > MAX_DEPTH:
        raise error(f"cannot read {what}: nested {depth} levels deep (at most {MAX_DEPTH})")
    try:
        kwargs = {} if allow_nan else {"parse_constant": _no_constant}
        return json.loads(text, **kwargs)
    except (ValueError, RecursionError) as exc:
        raise error(f"cannot read {what}: {exc}") from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _max_depth(text: str) -> int:
    """Deepest bracket nesting outside strings (a cheap scan before parsing)."""
    depth = best = 0
    for m in _BRACKET.finditer(_STRING.sub("", text)):
        if m.group() in "[{":
            depth += 1
            best = max(best, depth)
            if best > MAX_DEPTH:
                break
        else:
            depth -= 1
    return best
