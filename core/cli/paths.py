"""Output-path checks made before a command starts (standard library only)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import InputDataError


def check_writable_dir(path: str | Path, what: str) -> Path:
    """Create ``path`` if needed and make sure files can be written there, before any work."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gcnn-rnn-write-test-"):
            pass
    except OSError as exc:
        raise InputDataError(
            f"cannot write to the {what} {str(path)!r} ({exc.strerror or exc}); choose a "
            "folder you can write to"
        ) from None
    return folder
