"""Styling of output rasters (.qml sidecar or fallback ramp) and the polygon mask."""

from __future__ import annotations

import shutil

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsRasterLayer,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
)
from qgis_helpers import SAMPLE_DATA, read_raster

from gcnn_rnn.processing import styling
from gcnn_rnn.processing.masking import apply_mask


def copy_dist(tmp_path, with_qml: bool):
    dest = tmp_path / "dist.tif"
    shutil.copyfile(SAMPLE_DATA / "meuse_dist.tif", dest)
    if with_qml:
        shutil.copyfile(SAMPLE_DATA / "meuse_dist.qml", tmp_path / "dist.qml")
    return dest


def test_sidecar_style_is_applied(tmp_path):
    path = copy_dist(tmp_path, with_qml=True)
    layer = QgsRasterLayer(str(path), "dist")
    assert styling.apply_style(layer, "value")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    assert items[0].color.name() == "#440154"  # the engine's viridis ramp


def test_fallback_ramp_without_sidecar_per_kind(tmp_path):
    path = copy_dist(tmp_path, with_qml=False)
    layer = QgsRasterLayer(str(path), "dist")
    assert not isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)
    assert styling.apply_style(layer, "variance")
    renderer = layer.renderer()
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    assert [i.color.name() for i in items] == styling.RAMPS["variance"]
    a, *_ = read_raster(path)
    valid = a[a != -9999]
    assert renderer.classificationMin() == float(valid.min())
    assert renderer.classificationMax() == float(valid.max())
    prob = styling.pseudocolor_renderer(layer, "probability")
    assert (prob.classificationMin(), prob.classificationMax()) == (0.0, 1.0)


def test_post_processor_is_kept_referenced_and_styles(tmp_path):
    path = copy_dist(tmp_path, with_qml=False)
    context = QgsProcessingContext()
    details = QgsProcessingContext.LayerDetails("x", context.project(), "x")
    context.addLayerToLoadOnCompletion(str(path), details)
    before = len(styling._POST_PROCESSORS)
    styling.register_output(context, str(path), "probability", "Probability (zinc)")
    assert len(styling._POST_PROCESSORS) == before + 1
    assert context.layerToLoadOnCompletionDetails(str(path)).name == "Probability (zinc)"
    processor = context.layerToLoadOnCompletionDetails(str(path)).postProcessor()
    layer = QgsRasterLayer(str(path), "p")
    processor.postProcessLayer(layer, context, QgsProcessingFeedback())
    items = layer.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert [i.color.name() for i in items] == styling.RAMPS["probability"]


def test_mask_sets_cells_outside_polygons_to_nodata(tmp_path):
    path = copy_dist(tmp_path, with_qml=False)
    before, gt, *_ = read_raster(path)
    mask = QgsVectorLayer("Polygon?crs=EPSG:28992", "mask", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(179000, 330000, 180000, 332000)))
    mask.dataProvider().addFeatures([f])
    n = apply_mask([path], mask, QgsProcessingContext())
    after, gt2, *_ = read_raster(path)
    assert gt == gt2
    xs = gt[0] + gt[1] * (np.arange(before.shape[1]) + 0.5)
    ys = gt[3] + gt[5] * (np.arange(before.shape[0]) + 0.5)
    inside = ((xs[None, :] > 179000) & (xs[None, :] < 180000)
              & (ys[:, None] > 330000) & (ys[:, None] < 332000))
    np.testing.assert_array_equal(after[inside], before[inside])
    assert (after[~inside] == -9999).all()
    assert n == int((~inside).sum())


def test_legend_numbers_are_rounded_to_three_significant_digits_of_the_span():
    # D13: the report saw 1,853,814.699 and 3,055.136053 in legends
    assert styling.readable(1853814.699, 1853814.699 - 3055.136053) == "1,850,000"
    assert styling.readable(3055.136053, 1850759.0) == "0"
    assert styling.readable(3055.136053, 3000.0) == "3,060"
    assert styling.readable(0.23456, 1.0) == "0.23"
    assert styling.readable(108.129968, 50.0) == "108.1"
    assert styling.legend_decimals(1e6) == 0 and styling.legend_decimals(0.01) == 4


def test_loaded_style_gets_readable_legend_labels_and_format(tmp_path):
    path = copy_dist(tmp_path, with_qml=True)
    layer = QgsRasterLayer(str(path), "dist")
    assert styling.apply_style(layer, "value")
    shader = layer.renderer().shader().rasterShaderFunction()
    labels = [item.label for item in shader.colorRampItemList()]
    span = shader.maximumValue() - shader.minimumValue()
    decimals = styling.legend_decimals(span)
    for label in labels:
        digits = label.split(".")[1] if "." in label else ""
        assert len(digits) == decimals, labels
    fmt = shader.legendSettings().numericFormat()
    assert fmt.numberDecimalPlaces() == decimals
