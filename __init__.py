"""GCNN-RNN QGIS plugin.

This module must stay importable without QGIS (``import gcnn_rnn.core`` in the engine's own
Python runs it), so it imports nothing from ``qgis`` at module level.
"""


def classFactory(iface):  # noqa: N802 - QGIS API name
    """Create the plugin; ``iface`` is ``None`` under ``qgis_process`` and is not touched here."""
    from .plugin import GcnnRnnPlugin

    return GcnnRnnPlugin(iface)
