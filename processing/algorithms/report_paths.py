"""The engine's HTML report names the files it wrote into the private work folder; after
delivery those are gone. This rewrites them to where the user's outputs really are, so the
report's "Outputs" table and its reproduce-JSON point at files that exist."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

NOT_KEPT = "(not kept: no destination chosen)"


def _variants(path: str) -> list[str]:
    """How a path can appear in the report: as is, HTML-escaped, JSON-escaped."""
    out = {path, html.escape(path, quote=True), html.escape(path, quote=False),
           json.dumps(path)[1:-1], html.escape(json.dumps(path)[1:-1], quote=True)}
    return sorted(out, key=len, reverse=True)


def rewrite_report_paths(report: Path, mapping: dict[str, str], work: Path,
                         fallback: str = NOT_KEPT) -> None:
    """Replace every engine path in ``report`` by its final place (``mapping``); any other
    path inside ``work`` (a file nobody asked to keep) by ``fallback``.

    Longer paths are replaced first, so a folder never clobbers a file inside it.
    """
    text = report.read_text(encoding="utf-8")
    for old in sorted(mapping, key=len, reverse=True):
        for form in _variants(old):
            new = mapping[old]
            text = text.replace(form, html.escape(new, quote=False) if form != old else new)
    root = str(work)
    while root in text:  # a leftover work path: up to the next quote, tag or whitespace
        start = text.index(root)
        end = start
        while end < len(text) and text[end] not in "\"'<>\n\t ,":
            end += 1
        text = text[:start] + fallback + text[end:]
    tmp = report.with_name(f".{report.name}.rewrite.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, report)
