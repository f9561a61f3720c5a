"""Progress and cancellation plumbing shared by all long-running core functions.

Long functions take two optional callables, ``progress(fraction, text)`` and
``should_stop()``, instead of knowing about tqdm, JSON lines or QGIS. The CLI builds them.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


def no_progress(fraction: float, text: str = "") -> None:
    """A progress callback that ignores everything."""


def never_stop() -> bool:
    """A stop callback that never asks to stop."""
    return False


def check_cancel(should_stop: StopFn | None) -> None:
    """Raise :class:`Cancelled` when ``should_stop()`` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled by the user")


def scaled(progress: ProgressFn | None, start: float, stop: float) -> ProgressFn:
    """Map a sub-task's 0..1 progress into ``[start, stop]`` of the parent's progress."""
    if progress is None:
        return no_progress

    def _scaled(fraction: float, text: str = "") -> None:
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), text)

    return _scaled
