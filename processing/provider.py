"""The ``gcnnrnn`` Processing provider: lists the algorithms explicitly."""

from __future__ import annotations

import configparser
import functools
from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .constants import PROVIDER_ID, PROVIDER_NAME

ICONS_DIR = Path(__file__).resolve().parent.parent / "icons"
METADATA = Path(__file__).resolve().parent.parent / "metadata.txt"


@functools.cache
def plugin_metadata(key: str) -> str:
    """A key of the plugin's ``metadata.txt`` (the one place for its addresses)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(METADATA, encoding="utf-8")
    return parser.get("general", key, fallback="")


def icon(name: str) -> QIcon:
    """An icon of the plugin by file name stem (``icons/<name>.svg``), loaded by path."""
    return QIcon(str(ICONS_DIR / f"{name}.svg"))


class GcnnRnnProvider(QgsProcessingProvider):
    """Processing provider ``gcnnrnn`` ("GCNN-RNN")."""

    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return PROVIDER_NAME

    def longName(self) -> str:
        return "GCNN-RNN: geostatistics and hybrid deep-learning interpolation"

    def icon(self) -> QIcon:
        return icon("gcnn_rnn")

    def svgIconPath(self) -> str:
        return str(ICONS_DIR / "gcnn_rnn.svg")

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        # The engine writes GeoTIFF; another extension is converted by GDAL (formats.py).
        from .formats import writable_extensions

        return writable_extensions()

    def defaultRasterFileExtension(self) -> str:
        return "tif"

    def loadAlgorithms(self) -> None:
        from .algorithms import ALGORITHMS

        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
