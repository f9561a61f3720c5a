"""``gcnnrnn:ordinarykriging``: kriging estimate and variance rasters."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterRasterDestination

from ..constants import GROUP_GEOSTATISTICS, KRIGING_ENGINE_RASTERS, KRIGING_RASTERS
from . import params as P
from .base import EngineAlgorithm
from .target_points import (
    check_points_outputs,
    deliver_points,
    points_args,
    target_point_params,
    wants_points,
)


class OrdinaryKriging(EngineAlgorithm):
    ALG_ID = "ordinarykriging"
    DISPLAY = "Ordinary kriging"
    GROUP = GROUP_GEOSTATISTICS
    ICON = "kriging"
    TAGS = ("kriging", "ordinary kriging", "variance", "raster", "gstat")
    NUMBERS_NOTE = ("The accuracy of ordinary kriging (RMSE, MAE, R²) is measured by "
                    "'Cross-validate' (RMSE_OK, MAE_OK, R2_OK) and 'Hybrid interpolation'.")
    DESCRIPTION = (
        "<p>Ordinary kriging of a numeric field onto a raster grid: the best linear unbiased "
        "estimate from the nearest samples (a local neighbourhood, or all samples with "
        "Neighbours = 0) under a variogram model, plus the kriging variance, which is never "
        "negative and zero at the samples (kriging is exact), in squared units of the field; "
        "its square root, the kriging standard deviation, is written too, in the field's "
        "units. Singular neighbourhoods "
        "(coincident or collinear samples) are regularised and counted in a warning.</p>"
        "<p>The variogram comes from a model file ('Fit variogram' or the Variogram explorer) "
        "or is fitted automatically. With a log or normal-score transform, the estimate is "
        "back-transformed (the lognormal back-transform uses the kriging variance). Results "
        "agree with R gstat's <code>krige()</code>.</p>"
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input():
            self.addParameter(p)
        self.addParameter(P.variogram_param())
        self.addParameter(P.neighbours_param(32))
        for p in P.kriging_neighbourhood():
            self.addParameter(p)
        self.addParameter(P.block_param())
        for p in P.grid_params():
            self.addParameter(p)
        self.add_kriging_outputs()

    def add_kriging_outputs(self) -> None:
        """Output units, the estimate and variance rasters, the variogram selection rule and
        the target points (shared with ``krigingexternaldrift``)."""
        self.addParameter(P.output_units_param())
        transformed = "transformed units with Output units = transformed"
        units = {"ESTIMATE": f"in the field's units ({transformed})",
                 "VARIANCE": f"in squared units of the field (ppm² for a field in ppm; squared "
                             f"{transformed})",
                 "STD": "in the field's units, like the estimate (ppm for a field in ppm; "
                        f"{transformed}): the square root of the kriging variance, which "
                        "reads more easily than the variance"}
        for name, (_, kind, label) in KRIGING_RASTERS.items():
            self.addParameter(P.with_help(
                QgsProcessingParameterRasterDestination(name, label, optional=True,
                                                        createByDefault=True),
                f"GeoTIFF (or the format of the file's extension) with the {label.lower()} "
                f"{units[name]}; nodata -9999, styled with a "
                f"{'magma' if kind == 'variance' else 'viridis'} ramp. Not written when "
                "predicting at points.",
            ))
        self.addParameter(P.select_param())
        for p in target_point_params("the columns 'kriging_estimate' and 'kriging_variance'"):
            self.addParameter(p)

    def validate(self, parameters, context):
        super().validate(parameters, context)
        check_points_outputs(self, parameters, context)
        self.block_args(parameters, context)
        if wants_points(parameters):
            return
        source = self.parameterAsSource(parameters, P.INPUT, context)
        self.check_grid(parameters, context, self.working_crs(parameters, context, source),
                        self.sample_extent(parameters, context, source), source.featureCount())

    def drift_args(self, parameters, context) -> list[str]:
        """Flags of the trend (none for ordinary kriging; see ``krigingexternaldrift``)."""
        return []

    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, P.INPUT, context)
        crs = self.working_crs(parameters, context, source)
        field = self.value_field(parameters, context)
        mask = self.parameterAsSource(parameters, P.MASK, context)
        with self.work_folder() as work:
            args = self.point_args(parameters, context, feedback)
            args += self.variogram_args(parameters, context)
            args += ["--neighbours", str(self.parameterAsInt(parameters, P.NEIGHBOURS, context))]
            if parameters.get(P.MIN_NEIGHBOURS) not in (None, "") and self.parameterDefinition(
                    P.MIN_NEIGHBOURS) is not None:
                args += ["--min-neighbours",
                         str(self.parameterAsInt(parameters, P.MIN_NEIGHBOURS, context))]
            if parameters.get(P.MAX_DISTANCE) not in (None, "") and self.parameterDefinition(
                    P.MAX_DISTANCE) is not None:
                dist = self.parameterAsDouble(parameters, P.MAX_DISTANCE, context)
                if dist > 0:
                    args += ["--max-distance", repr(dist)]
            args += self.block_args(parameters, context)
            args += self.drift_args(parameters, context)
            points = wants_points(parameters)
            if points:
                args += points_args(self, parameters, context, feedback)
            else:
                self.warn_extrapolation(parameters, context, source, feedback)
                args += self.grid_args(parameters, context, crs,
                                       (self.sample_extent(parameters, context, source),
                                    source.featureCount()), feedback)
            units = self.parameterAsEnum(parameters, P.OUTPUT_UNITS, context)
            if units:
                args += ["--output-units", P.OUTPUT_UNIT_CHOICES[units][0]]
            args += ["--output-dir", str(work)]
            self.engine("krige", args, feedback, work)
            if points:
                return deliver_points(self, parameters, context, work / "kriging_points.gpkg",
                                      f"Kriging at points ({field})")
            return self.deliver_rasters(KRIGING_RASTERS, parameters, context, work, feedback,
                                        f" ({field})", mask, required=KRIGING_ENGINE_RASTERS,
                                        run_label=f"{self.DISPLAY} ({field})")
