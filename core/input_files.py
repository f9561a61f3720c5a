"""Input paths that can be read without blocking: regular files (or folders, which GDAL reads
as data sets). A FIFO, socket or device as ``--input`` made the engine wait forever for a
writer, deaf to SIGTERM (issue 11)."""

from __future__ import annotations

import os
import stat

from .errors import InputDataError


def require_readable_file(path: str | os.PathLike, what: str = "input") -> None:
    """Refuse ``path`` when it exists but is neither a regular file nor a folder.

    GDAL virtual paths (``/vsizip/...``) and missing files are left to the reader, which names
    them in its own message.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "a device")
        raise InputDataError(f"{what} {str(path)!r} is {kind}, not a file; give a file "
                             "(GeoPackage, Shapefile, CSV, GeoTIFF ...)")
