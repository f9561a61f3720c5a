"""Copy the maps figure of ``make demo``'s report into the README's picture.

The report (``demo_output/report.html``) embeds its figures as PNG data; the README shows the
same maps panel, so it is taken from there rather than drawn a second time.

    python scripts/demo_picture.py [demo_output/report.html] [docs/demo_maps.png]
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path


def maps_png(report: Path) -> bytes:
    """The PNG bytes of the report's ``maps`` figure."""
    text = report.read_text(encoding="utf-8")
    match = re.search(r'<img alt="maps" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    if match is None:
        raise SystemExit(f"{report}: no maps figure (did `make demo` finish?)")
    return base64.b64decode(match.group(1))


def main(argv: list[str]) -> int:
    report = Path(argv[0] if argv else "demo_output/report.html")
    out = Path(argv[1] if len(argv) > 1 else "docs/demo_maps.png")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(maps_png(report))
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
