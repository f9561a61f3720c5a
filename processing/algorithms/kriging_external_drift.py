"""``gcnnrnn:krigingexternaldrift``: kriging with an external drift / universal kriging."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
)

from ..compat import TYPE_RASTER
from . import params as P
from .checks import check_drift
from .ordinary_kriging import OrdinaryKriging


class KrigingExternalDrift(OrdinaryKriging):
    """Ordinary kriging's inputs and outputs, with a trend in covariates and coordinates."""

    ALG_ID = "krigingexternaldrift"
    DISPLAY = "Kriging with external drift / universal kriging"
    TAGS = ("kriging", "external drift", "KED", "universal kriging", "trend", "covariate",
            "regression kriging", "block kriging", "gstat")
    NUMBERS_NOTE = ("Its accuracy against ordinary kriging is measured by 'Cross-validate' "
                    "(method: kriging with external drift, on the same folds).")
    DESCRIPTION = (
        "<p>Kriging whose mean is not constant but linear in covariate rasters (kriging with "
        "an external drift, KED: e.g. distance to a river, elevation) and/or a polynomial in "
        "the coordinates (universal kriging: drift 'x,y', or 'x,y,x2,xy,y2'), as R gstat's "
        "<code>krige(z ~ cov + x + y, ...)</code>, to which it is equal. Writes the estimate "
        "and the kriging variance like 'Ordinary kriging'.</p>"
        "<p>The variogram must be that of the residuals from the trend: empty, it is fitted "
        "automatically to the least-squares residuals. Covariates are read at the cell "
        "containing each sample and each output cell centre; cells without a covariate value "
        "stay nodata, samples without one are left out (the log counts them). Block kriging "
        "(advanced) estimates cell or block means.</p>"
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input():
            self.addParameter(p)
        self.addParameter(P.with_help(
            QgsProcessingParameterMultipleLayers(P.COVARIATES, "Covariate rasters (external "
                                                 "drift)", TYPE_RASTER, optional=True),
            "Rasters in the points' CRS whose values the mean is linear in. They should cover "
            "the samples and the output grid; cells without a value stay nodata.",
        ))
        self.addParameter(P.with_help(
            QgsProcessingParameterString(P.DRIFT, "Coordinate drift terms (universal kriging)",
                                         "", optional=True),
            "Polynomial trend in the coordinates: a comma list of x, y, x2, xy, y2 (3D also "
            "z, z2, xz, yz), e.g. 'x,y' (linear) or 'x,y,x2,xy,y2' (quadratic). Empty: none.",
        ))
        self.addParameter(P.with_help(
            P.variogram_param(),
            "A residual variogram model file (V.json, fitted to the residuals from the "
            "trend). Empty: fitted automatically to the least-squares residuals.",
        ))
        self.addParameter(P.neighbours_param(32))
        self.addParameter(P.block_param())
        for p in P.grid_params():
            self.addParameter(p)
        self.add_kriging_outputs()

    def validate(self, parameters, context):
        super().validate(parameters, context)
        if not self.parameterAsLayerList(parameters, P.COVARIATES, context) and not check_drift(
                self.parameterAsString(parameters, P.DRIFT, context)):
            raise QgsProcessingException(
                "kriging with an external drift needs covariate rasters or coordinate drift "
                "terms (e.g. x,y); without a trend use 'Ordinary kriging'")

    def drift_args(self, parameters, context) -> list[str]:
        args = self.covariate_args(parameters, context)
        terms = check_drift(self.parameterAsString(parameters, P.DRIFT, context))
        if terms:
            args += ["--drift", ",".join(terms)]
        return args
