"""Exception hierarchy of the engine.

Every error the engine raises on purpose derives from :class:`GcnnRnnError` and also from
the closest built-in, so callers may catch either. The CLI maps them to exit codes
(``InputDataError`` → 2, ``Cancelled`` → 130, anything else → 1); the QGIS runner turns
those into ``QgsProcessingException`` with the message.
"""

from __future__ import annotations


class GcnnRnnError(Exception):
    """Root of all deliberate engine errors."""

    kind = "error"


class InputDataError(GcnnRnnError, ValueError):
    """The user's input (file, layer, field, values, parameters) cannot be used as given."""

    kind = "input"


class GridTooLargeError(InputDataError):
    """The requested output grid does not fit the memory limit."""

    kind = "grid_too_large"


class UnknownModelError(InputDataError, LookupError):
    """A variogram model name (or other registry key) is not known."""

    kind = "unknown_model"


class EngineIOError(GcnnRnnError, OSError):
    """Reading or writing a file failed for a reason outside the data itself."""

    kind = "io"


class BundleError(InputDataError):
    """A saved model bundle is missing, damaged or from an incompatible version."""

    kind = "bundle"


class Cancelled(GcnnRnnError):
    """The user asked to stop (SIGINT/SIGTERM, or the QGIS cancel button)."""

    kind = "cancelled"
