"""Shared ending of the benchmark scripts: print the result as JSON, optionally save it."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, output: str | None) -> int:
    """Print ``result`` as indented JSON and write it to ``output`` when given; returns 0."""
    text = json.dumps(result, indent=1)
    print(text)
    if output:
        Path(output).write_text(text)
    return 0
