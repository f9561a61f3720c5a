"""All-or-nothing output sets: stage a command's files, then commit them together.

``krige``, ``predict`` and ``run`` write several files into one folder. Replacing them one by
one leaves a mix of old and new files when a run fails or is cancelled half-way. Instead a
command writes its whole set into a hidden staging folder inside the output folder (same
file system, so renames are atomic and cheap); :meth:`OutputSet.commit` then sets the old
set aside, moves the new one in and only then deletes the old one, restoring it if anything
fails. A failure or cancel before the commit leaves the old set untouched.

While a set is open the folder is locked (``.gcnn-rnn.lock``, an OS lock that dies with its
process): a second run into the same folder refuses at once instead of racing. The lock
holder also removes what killed runs left behind (staging folders and temporary files whose
process is gone).

Commands declare ``OUTPUT_SET = ("output_dir", names)``; the CLI (``cli/main.py``) opens the
set, points the command's folder argument at the staging folder, and commits after the
command returned. Paths a command records in its own documents go through
:func:`final_paths` so that they name the final location.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import EngineIOError, InputDataError
from .safe_write import is_stale_temp, pid_alive

logger = logging.getLogger(__name__)

LOCK_NAME = ".gcnn-rnn.lock"
#: ``.gcnn-rnn-staging.<pid>.<tag>.tmp`` (a folder); matched by the QGIS runner's temp pattern.
STAGING = re.compile(r"^\.gcnn-rnn-staging\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_OLD = ".old"


def final_paths(value: Any) -> Any:
    """``value`` with every path inside a staging folder mapped to its final location.

    Works on strings, paths and (nested) dicts, lists and tuples; anything else is returned
    unchanged.
    """
    if isinstance(value, dict):
        return {k: final_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(final_paths(v) for v in value)
    if isinstance(value, str | os.PathLike):
        parts = Path(value).parts
        kept = [p for p in parts if not STAGING.match(p)]
        if len(kept) == len(parts):
            return value
        out = str(Path(*kept)) if kept else "."
        return out if isinstance(value, str) else Path(out)
    return value


class FolderLock:
    """An exclusive lock on an output folder, released when its process ends."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(5):  # the holder may unlink the file between our open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not self._try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                raise InputDataError(
                    f"another gcnn-rnn run{f' (process {holder})' if holder else ''} is writing "
                    f"into {str(self.path.parent)!r}; wait for it to finish or choose another "
                    "output folder"
                )
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)
        raise InputDataError(f"cannot lock the output folder {str(self.path.parent)!r}")

    @staticmethod
    def _try_lock(fd: int) -> bool:
        try:
            import fcntl
        except ImportError:  # Windows: msvcrt locks a byte range
            import msvcrt

            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the lock
        self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, AttributeError):
        return None


class OutputSet:
    """The files a command owns in ``folder``; written in a staging folder, then committed.

    Parameters
    ----------
    folder : path
        The output folder (created if needed).
    owned : iterable of str
        Names of every file the command may write there (a trailing ``/`` marks a folder,
        e.g. ``model/``). On commit, existing entries with these names are replaced by the new
        set; an owned name the new run did not write is removed (never a mix of two runs).
    """

    def __init__(self, folder: str | os.PathLike, owned: Iterable[str]) -> None:
        self.folder = Path(folder)
        self.owned = {n.rstrip("/"): n.endswith("/") for n in owned}
        self.staging: Path | None = None
        self._lock = FolderLock(self.folder)
        self.committed = False

    # ----------------------------------------------------------------- life cycle
    def open(self) -> Path:
        """Lock the folder, clean a killed run's leftovers, check names; returns the staging
        folder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputDataError(f"cannot create the output folder {str(self.folder)!r} "
                                 f"({exc.strerror or exc})") from None
        self._lock.acquire()
        try:
            self._check_existing()
            self.clean_stale()
            self.staging = self.folder / f".gcnn-rnn-staging.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            self.staging.mkdir()
        except BaseException:
            self._lock.release()
            raise
        return self.staging

    def _check_existing(self) -> None:
        for name, is_dir in self.owned.items():
            p = self.folder / name
            if p.is_symlink() or not p.exists():
                continue
            if is_dir != p.is_dir():
                raise InputDataError(
                    f"{str(p)!r} exists and is {'not ' if is_dir else ''}a folder; this run "
                    f"would replace it with a {'folder' if is_dir else 'file'}: rename or "
                    "remove it, or choose another output folder"
                )

    def clean_stale(self) -> list[Path]:
        """Remove staging folders and temporary files of runs that no longer exist."""
        removed = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return removed
        for entry in entries:
            m = STAGING.match(entry.name)
            stale = (not pid_alive(int(m.group("pid")))) if m else (
                is_stale_temp(entry.name) and entry.name.lstrip(".").split(".")[0]
                in {n.split(".")[0] for n in self.owned})
            if not stale:
                continue
            if m and entry.is_dir(follow_symlinks=False):
                _roll_forward(self.folder, Path(entry.path))
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
        if removed:
            logger.info("removed %d leftover temporary file(s) of an interrupted run in %s",
                        len(removed), self.folder)
        return removed

    def commit(self, outputs: Any = None) -> Any:
        """Replace the old set by the staged one; returns ``outputs`` with final paths.

        A journal (``.commit.json`` in the staging folder, synced to disk) names the staged
        files before the first rename: a run killed during the renames (SIGKILL, power) leaves
        it behind, and the next run into the folder finishes the commit
        (:func:`_roll_forward`), so the folder holds the complete new set, never a mix.
        """
        if self.staging is None or self.committed:
            raise RuntimeError("output set is not open")
        staged = [e for e in os.listdir(self.staging) if e != _OLD and not is_stale_temp(e)
                  and not e.startswith(".")]
        old_dir = self.staging / _OLD
        old_dir.mkdir()
        _write_journal(self.staging, staged, self.owned)
        moved_old: list[str] = []
        moved_new: list[str] = []
        try:
            for name in set(self.owned) | set(staged):
                p = self.folder / name
                if p.is_symlink() or p.exists():
                    os.replace(p, old_dir / name)
                    moved_old.append(name)
            for name in staged:
                os.replace(self.staging / name, self.folder / name)
                moved_new.append(name)
        except BaseException as exc:
            for name in moved_new:  # put everything back as it was
                _quiet(os.replace, self.folder / name, self.staging / name)
            for name in moved_old:
                _quiet(os.replace, old_dir / name, self.folder / name)
            _quiet(os.unlink, self.staging / JOURNAL)  # rolled back: nothing to finish
            if isinstance(exc, OSError):
                raise EngineIOError(
                    f"cannot move the new outputs into {str(self.folder)!r} ({exc}); the "
                    "previous outputs were kept"
                ) from None
            raise
        self.committed = True
        shutil.rmtree(self.staging, ignore_errors=True)
        return final_paths(outputs)

    def close(self) -> None:
        """Remove the staging folder (an uncommitted set is discarded) and unlock."""
        try:
            if self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._lock.release()

    def __enter__(self) -> OutputSet:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


JOURNAL = ".commit.json"


def _write_journal(staging: Path, staged: list[str], owned: dict[str, bool]) -> None:
    import json

    path = staging / JOURNAL
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"staged": sorted(staged), "owned": sorted(owned)}, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _roll_forward(folder: Path, staging: Path) -> bool:
    """Finish the commit a killed run started (its staging folder holds a journal).

    The renames of a commit first move every old entry aside, then every staged one in, so
    a name still in the staging folder was not moved in yet (what stands in the folder under
    that name is the old one), and a staged name missing there is already in place. Doing
    the remaining renames in the same order is idempotent: a kill during the recovery is
    recovered by the next run in turn. Returns whether a journal was found.
    """
    import json

    try:
        journal = json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
        staged = [n for n in journal["staged"] if _plain_name(n)]
        owned = [n for n in journal["owned"] if _plain_name(n)]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    old_dir = staging / _OLD
    old_dir.mkdir(exist_ok=True)
    pending = [n for n in staged if (staging / n).exists() or (staging / n).is_symlink()]
    for name in set(owned) | set(pending):  # old entries still in place
        if name in staged and name not in pending:
            continue  # the new one is already in
        p = folder / name
        if p.is_symlink() or p.exists():
            _quiet(os.replace, p, old_dir / name)
    for name in pending:
        _quiet(os.replace, staging / name, folder / name)
    logger.warning("finished the commit of an interrupted run in %s: the folder holds its "
                   "complete set of %d output(s)", folder, len(staged))
    return True


def _plain_name(name: object) -> bool:
    """A journal entry must be a bare name inside the folder (never a path out of it)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and not name.startswith("."))


def _quiet(fn, *args) -> None:
    try:
        fn(*args)
    except OSError:
        pass
