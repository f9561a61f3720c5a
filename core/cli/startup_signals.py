"""Signals received while the ``gcnn-rnn`` process starts, before ``main`` handles them.

Imported before anything heavy (this package's ``__init__`` is empty), so a cancel that
arrives while Python imports numpy, GDAL or numba is recorded instead of killing the process:
``main(early_signals=...)`` then ends the run as a cancel (exit 130, nothing written), and the
recorder is also what ``main`` restores when it returns, so a signal during the teardown
cannot kill a finished run either.
"""

from __future__ import annotations

import signal


def record_signals() -> list[int]:
    """Record SIGINT/SIGTERM from now on; returns the (live) list of those received."""
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    return received
