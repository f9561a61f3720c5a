"""Styled loading of the engine's rasters: ``.qml`` sidecars plus a pseudocolor fallback.

The engine writes ``<name>.qml`` beside every raster; QGIS applies it when it loads the layer
(default style). A post-processor applies it again explicitly and, should the sidecar be missing
or unreadable, builds a singleband pseudocolor renderer itself: viridis for values, magma for
variances / standard deviations, reds for probabilities.

Post-processor objects must stay referenced from Python until QGIS has run them, otherwise they
are garbage-collected and styling silently does nothing; :data:`_POST_PROCESSORS` keeps them.
"""

from __future__ import annotations

import math
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsBasicNumericFormat,
    QgsColorRampShader,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

#: Colour stops per kind (the same as the engine's ``.qml`` ramps).
RAMPS = {
    "value": ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"],
    "variance": ["#000004", "#51127c", "#b73779", "#fc8961", "#fcfdbf"],
    "probability": ["#fff5f0", "#fcbba1", "#fb6a4a", "#cb181d", "#67000d"],
    "residual": ["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"],
}

#: Strong references to the post-processors of recent runs (see the module docstring).
_POST_PROCESSORS: list = []
_MAX_KEPT = 256


def _interpolated():
    ramp_type = getattr(Qgis, "ShaderInterpolationMethod", None)  # QGIS >= 3.30
    if ramp_type is not None and hasattr(ramp_type, "Linear"):
        return ramp_type.Linear
    return QgsColorRampShader.Type.Interpolated


def _min_max_flags():
    stat = getattr(Qgis, "RasterBandStatistic", None)  # QGIS >= 3.36
    if stat is not None and hasattr(stat, "Min"):
        return stat.Min | stat.Max
    return QgsRasterBandStats.Stats.Min | QgsRasterBandStats.Stats.Max


def pseudocolor_renderer(layer: QgsRasterLayer, kind: str = "value",
                         band: int = 1) -> QgsSingleBandPseudoColorRenderer:
    """A singleband pseudocolor renderer over the band's min..max with the ``kind`` ramp."""
    provider = layer.dataProvider()
    stats = provider.bandStatistics(band, _min_max_flags())
    lo, hi = float(stats.minimumValue), float(stats.maximumValue)
    if kind == "probability":
        lo, hi = 0.0, 1.0
    if not hi > lo:
        hi = lo + 1.0
    colours = RAMPS.get(kind, RAMPS["value"])
    n = len(colours)
    items = [
        QgsColorRampShader.ColorRampItem(v, QColor(c), readable(v, hi - lo))
        for v, c in ((lo + (hi - lo) * i / (n - 1), c) for i, c in enumerate(colours))
    ]
    ramp_shader = QgsColorRampShader(lo, hi)
    ramp_shader.setColorRampType(_interpolated())
    ramp_shader.setColorRampItemList(items)
    ramp = QgsStyle.defaultStyle().colorRamp({"value": "Viridis", "variance": "Magma",
                                              "probability": "Reds"}.get(kind, "Viridis"))
    if ramp is not None:
        ramp_shader.setSourceColorRamp(ramp)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp_shader)
    renderer = QgsSingleBandPseudoColorRenderer(provider, band, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    return renderer


def readable(value: float, span: float) -> str:
    """``value`` rounded for a legend: 3 significant digits of the class span, no float noise
    (``1853814.699`` → ``1,850,000``; ``0.2346`` → ``0.23`` when the span is 1)."""
    if not math.isfinite(value):
        return str(value)
    decimals = legend_decimals(span)
    step = 10.0 ** (2 - math.floor(math.log10(span))) if span > 0 else 1.0
    rounded = round(value * step) / step if decimals == 0 and step < 1 else value
    return f"{rounded:,.{decimals}f}"


def round_legend(renderer) -> None:
    """Relabel a pseudocolor renderer's ramp items with :func:`readable` numbers."""
    if not isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        return
    shader = renderer.shader().rasterShaderFunction() if renderer.shader() else None
    if not isinstance(shader, QgsColorRampShader):
        return
    items = shader.colorRampItemList()
    if not items:
        return
    span = max(i.value for i in items) - min(i.value for i in items)
    for item in items:
        item.label = readable(item.value, span)
    shader.setColorRampItemList(items)
    # the continuous legend (QGIS >= 3.18) prints min and max with its own numeric format
    if hasattr(shader, "legendSettings"):
        settings = shader.legendSettings()
        fmt = QgsBasicNumericFormat()
        fmt.setNumberDecimalPlaces(legend_decimals(span))
        fmt.setShowThousandsSeparator(True)
        settings.setNumericFormat(fmt)
        shader.setLegendSettings(settings)


def legend_decimals(span: float) -> int:
    """Decimals that show 3 significant digits of a class span (0 for spans >= 100)."""
    if not span > 0 or not math.isfinite(span):
        return 0
    return max(0, 2 - int(math.floor(math.log10(span))))


def apply_style(layer: QgsRasterLayer, kind: str = "value") -> bool:
    """Apply the raster's ``.qml`` sidecar, or a pseudocolor ramp when that fails.

    Returns
    -------
    bool
        True when the layer ends up with a singleband pseudocolor renderer.
    """
    if layer is None or not layer.isValid():
        return False
    source = Path(layer.source().split("|")[0])
    qml = source.with_suffix(".qml")
    if qml.is_file():
        layer.loadNamedStyle(str(qml))
    if not isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer):
        layer.setRenderer(pseudocolor_renderer(layer, kind))
    round_legend(layer.renderer())
    layer.triggerRepaint()
    return isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)


class RasterStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles one output raster after Processing has loaded it."""

    def __init__(self, kind: str, group=None, rank: int = 0) -> None:
        super().__init__()
        self.kind = kind
        self.group = group
        self.rank = rank

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802 - QGIS API
        if isinstance(layer, QgsRasterLayer):
            apply_style(layer, self.kind)
        if self.group is not None and layer is not None:
            self.group.place(layer, self.rank, context.project() if context else None)


def register_output(context: QgsProcessingContext, path: str, kind: str, name: str,
                    group=None, rank: int = 0) -> None:
    """Give an output that will be loaded a readable name, a styling post-processor and a
    place in its run's layer-tree group (``group``, a ``layer_tree.RunGroup``)."""
    if not path or not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    processor = RasterStylePostProcessor(kind, group, rank)
    _POST_PROCESSORS.append(processor)
    del _POST_PROCESSORS[:-_MAX_KEPT]
    details.setPostProcessor(processor)
