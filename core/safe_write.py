"""Writing files so that a failed write is a failure: temporary name, read back, then rename.

A short write (full disk, a file-size limit, a quota) does not always raise: GDAL reports it
as an error state that rasterio does not turn into an exception, so a truncated GeoTIFF could
replace a good one. Every writer of the engine therefore writes under a temporary name, reads
the file back and compares it with what it meant to write, and only then renames it over the
destination. A failure raises :class:`~gcnn_rnn.core.errors.EngineIOError` and leaves the
previous file in place.

Temporary names carry the writer's process id (``.NAME.<pid>.<tag>.tmp``) so that the next run
into a folder can tell a dead run's leftovers from a live writer's (:func:`is_stale_temp`).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EngineIOError

#: Hidden temporary names: ``.NAME.<pid>.<tag>.tmp`` (and ``.old`` for set-aside originals);
#: the older form without a pid, ``.NAME.<tag>.tmp``, is recognised too. (The QGIS runner's
#: ``TEMP_FILE_RE`` matches both.)
TEMP_NAME = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{8}\.(?:tmp|old)(?:\.\w+)?$")


def temp_path_for(path: Path) -> Path:
    """A hidden sibling name, unique per process and call, used while a file is written."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: keep its files)
    return True


def is_stale_temp(name: str) -> bool:
    """A temporary name left by a writer that no longer runs (legacy names count as stale)."""
    m = TEMP_NAME.match(name)
    if not m:
        return False
    pid = m.group("pid")
    return pid is None or not pid_alive(int(pid))


def remove_quietly(path: Path) -> None:
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def replace_verified(tmp: Path, path: Path, verify: Callable[[Path], None], what: str) -> Path:
    """Check ``tmp`` with ``verify`` (raises on a bad file), then rename it to ``path``.

    Any failure removes ``tmp`` and raises :class:`EngineIOError`; ``path`` keeps its old
    content.
    """
    try:
        verify(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, EngineIOError):
            raise
        if isinstance(exc, OSError | ValueError):
            raise EngineIOError(f"cannot write {what} {str(path)!r}: {exc}") from None
        raise
    return path


def write_text_verified(path: str | os.PathLike, text: str, what: str = "file") -> Path:
    """Write ``text`` (UTF-8) atomically; the file is read back before it replaces ``path``."""
    path = Path(path)
    tmp = temp_path_for(path)
    data = text.encode("utf-8")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise EngineIOError(f"cannot write {what} {str(path)!r}: {exc}") from None
        raise

    def _same(p: Path) -> None:
        if p.read_bytes() != data:
            raise EngineIOError(
                f"cannot write {what} {str(path)!r}: the file read back differs from what was "
                "written (disk full or a file-size limit?)"
            )

    return replace_verified(tmp, path, _same, what)


def write_json_verified(path: str | os.PathLike, doc: Any, *, what: str = "file",
                        indent: int | None = 2, default: Callable | None = None,
                        allow_nan: bool = True) -> Path:
    """``json.dumps(doc)`` written with :func:`write_text_verified` (trailing newline)."""
    try:
        text = json.dumps(doc, indent=indent, default=default, allow_nan=allow_nan)
    except (TypeError, ValueError) as exc:
        raise EngineIOError(f"cannot write {what} {str(path)!r}: {exc}") from None
    return write_text_verified(path, text + "\n", what)


def verify_raster(path: Path, expected) -> None:
    """Reopen a GeoTIFF and compare every band with ``expected`` (bands, rows, cols), row block
    by row block so the check needs little memory. Raises :class:`EngineIOError`."""
    import numpy as np
    import rasterio

    try:
        with rasterio.Env(CPL_DEBUG=False), rasterio.open(path) as ds:
            if (ds.count, ds.height, ds.width) != tuple(expected.shape):
                raise EngineIOError(f"{path.name}: wrong size when read back")
            step = 256
            for row in range(0, ds.height, step):
                window = rasterio.windows.Window(0, row, ds.width, min(step, ds.height - row))
                got = ds.read(window=window)
                want = expected[:, row:row + step, :]
                if not np.array_equal(got, want, equal_nan=True):
                    raise EngineIOError(f"{path.name}: the data read back differ")
    except EngineIOError as exc:
        raise EngineIOError(
            f"the raster written to {str(path)!r} is damaged ({exc}); disk full or a file-size "
            "limit?"
        ) from None
    except (rasterio.errors.RasterioError, OSError) as exc:
        raise EngineIOError(
            f"the raster written to {str(path)!r} cannot be read back ({exc}); disk full or a "
            "file-size limit?"
        ) from None
