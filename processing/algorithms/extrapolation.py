"""The warning that a grid extrapolates far beyond the samples (the report's D21).

Ordinary kriging over the samples' bounding box fills unsampled corners: there the estimate
tends to the mean and a lognormal back-transform can exceed every observation (the report saw
2219 ppm where the largest sample is 1839). A template, a mask or a maximum search distance
already limits the map; otherwise the share of the grid outside the samples' convex hull is
measured and, above :data:`EXTRAPOLATION_WARN`, named in a warning with the ways to limit it.
"""

from __future__ import annotations

from qgis.core import QgsCoordinateTransform, QgsGeometry

from . import params as P

#: Share of a grid outside the samples' convex hull above which the log warns.
EXTRAPOLATION_WARN = 0.25


def warn_extrapolation(alg, parameters, context, source, feedback) -> float:
    """Warn when much of a cell-size grid lies outside the samples' convex hull.

    Returns the share of the grid outside the hull (0 when a template, a mask or a maximum
    search distance already limits the map).
    """
    limited = any(parameters.get(n) not in (None, "") for n in (P.TEMPLATE, P.MASK,
                                                                 P.MAX_DISTANCE))
    if limited or source is None:
        return 0.0
    points = [f.geometry() for f in source.getFeatures() if f.hasGeometry()]
    hull = QgsGeometry.collectGeometry(points).convexHull() if len(points) >= 3 else None
    if hull is None or hull.isEmpty():
        return 0.0
    target = alg.reprojection(parameters, context, source)
    if target is not None:
        hull.transform(QgsCoordinateTransform(source.sourceCrs(), target,
                                              context.transformContext()))
    crs = alg.working_crs(parameters, context, source)
    extent = alg.extent_in(parameters, context, crs) or alg.sample_extent(
        parameters, context, source)
    grid = QgsGeometry.fromRect(extent)
    if grid.area() <= 0:
        return 0.0
    outside = 1.0 - hull.intersection(grid).area() / grid.area()
    if outside > EXTRAPOLATION_WARN and feedback is not None:
        feedback.pushWarning(
            f"{outside:.0%} of the output grid lies outside the convex hull of the samples: "
            "there the map extrapolates (values tend to the mean; with a log transform they "
            "can exceed the largest observation). Limit the map with 'Mask polygons', "
            "'Maximum search distance' or a template raster with a nodata mask.")
    return outside
