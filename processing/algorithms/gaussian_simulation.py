"""``gcnnrnn:gaussiansimulation``: conditional sequential Gaussian simulation rasters."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination

from ..compat import NUMBER_INTEGER
from ..constants import GROUP_GEOSTATISTICS, SIMULATION_RASTERS
from . import params as P
from .base import EngineAlgorithm

REALISATIONS, MULTIGRID, LOAD_REALISATIONS = "REALISATIONS", "MULTIGRID", "LOAD_REALISATIONS"
OUTPUT_REALISATIONS = "OUTPUT_REALISATIONS"


#: The units of each kind of simulation raster (its destination's help).
UNITS = {"value": ", in the field's units",
         "variance": ", in squared units of the field (ppm² for a field in ppm)",
         "probability": ", a probability 0-1"}


class GaussianSimulation(EngineAlgorithm):
    ALG_ID = "gaussiansimulation"
    DISPLAY = "Gaussian simulation (conditional, sequential)"
    GROUP = GROUP_GEOSTATISTICS
    ICON = "kriging"
    TAGS = ("simulation", "sequential gaussian simulation", "sgs", "realisations",
            "uncertainty", "e-type", "probability", "gstat")
    NUMBERS_NOTE = ""
    DESCRIPTION = (
        "<p>Sequential Gaussian simulation: equally probable maps that honour the samples and "
        "reproduce their histogram and variogram, where kriging gives one smooth map. The "
        "values are normal-score transformed; each realisation visits the grid nodes in its "
        "own random order and draws each node from the simple-kriging distribution of the "
        "normal scores given the nearest samples and already simulated nodes; the result is "
        "back-transformed. Cells holding a sample take its value in every realisation. A grid "
        "too large for one random path in memory is simulated slab by slab of rows, top to "
        "bottom, each slab conditioned also on the rows above it that the search reaches "
        "(the engine's <code>simulate --path auto</code>).</p>"
        "<p>Outputs: the realisations (one band each; in 3D one band per realisation and z "
        "level), their mean (E-type estimate), their variance (conditional variance) and, "
        "with a threshold, the fraction of realisations above it. The same seed gives the "
        "same realisations. Agrees in method with R gstat's <code>krige(..., nsim)</code> on "
        "normal scores.</p>"
    )

    def initAlgorithm(self, config=None):
        for p in P.point_input(with_transform=False):
            self.addParameter(p)
        self.addParameter(P.with_help(
            P.variogram_param(),
            "Variogram model of the normal scores (V.json, e.g. 'Fit variogram' with the "
            "normal-score transform). Empty: fitted automatically to the normal scores."))
        self.addParameter(P.with_help(
            QgsProcessingParameterNumber(REALISATIONS, "Number of realisations", NUMBER_INTEGER,
                                         10, minValue=1, maxValue=10000),
            "How many realisations to simulate; more give smoother E-type and probability "
            "maps (100 or more for probabilities), at proportional cost."))
        self.addParameter(P.with_help(
            QgsProcessingParameterNumber(P.SEED, "Random seed", NUMBER_INTEGER, 0, minValue=0),
            "Seed of the random paths and draws: the same seed gives the same realisations."))
        self.addParameter(P.with_help(
            QgsProcessingParameterNumber(P.NEIGHBOURS, "Neighbours", NUMBER_INTEGER, 16,
                                         minValue=1, maxValue=1000),
            "Most conditioning values (samples and previously simulated nodes) per node "
            "(gstat's nmax; default 16)."))
        self.addParameter(P.with_help(
            P.kriging_neighbourhood()[1],  # MAX_DISTANCE
            "Only samples and simulated nodes closer than this distance (layer units) condition "
            "a node; empty: samples at any distance, simulated nodes within the variogram's "
            "practical range.", advanced=True))
        self.addParameter(P.with_help(
            QgsProcessingParameterNumber(MULTIGRID, "Multigrid levels", NUMBER_INTEGER, 0,
                                         minValue=0, maxValue=8),
            "Simulate coarse sub-grids (every 2^L-th node) first, which helps reproduce long "
            "ranges with few neighbours; 0 = one random path.", advanced=True))
        for p in P.grid_params():
            self.addParameter(p)
        self.addParameter(P.threshold_param())
        self.addParameter(P.flag_param(
            LOAD_REALISATIONS, "Load the realisations raster", False,
            "Add the multi-band realisations raster to the project (off by default: it is "
            "large). It is written to its destination either way.", advanced=False))
        for name, (_, kind, label) in SIMULATION_RASTERS.items():
            text = {"value": "viridis", "variance": "magma", "probability": "reds"}[kind]
            optional = name == "EXCEEDANCE"
            self.addParameter(P.with_help(
                QgsProcessingParameterRasterDestination(
                    name, label, optional=optional, createByDefault=not optional),
                f"GeoTIFF with the {label.lower()}{UNITS[kind]} (nodata -9999), styled with "
                f"a {text} ramp"
                + (" (only with a threshold)." if name == "EXCEEDANCE" else ".")))

    def validate(self, parameters, context):
        super().validate(parameters, context)
        source = self.parameterAsSource(parameters, P.INPUT, context)
        # the engine simulates a grid that does not fit memory slab by slab of rows (simulate
        # --path auto), writing the rasters stripe by stripe: like a streamed grid it is
        # refused only when too wide, or for the disk that all the realisations' bands need
        # (a slab's own need depends on the variogram's reach, which the engine checks)
        n_real = self.parameterAsInt(parameters, REALISATIONS, context)
        thresholded = parameters.get(P.THRESHOLD) not in (None, "")
        self.check_grid(parameters, context, source.sourceCrs(), source.sourceExtent(),
                        source.featureCount(), outputs=4, streamed=True,
                        disk_outputs=n_real + (3 if thresholded else 2))

    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, P.INPUT, context)
        crs = source.sourceCrs()
        field = self.value_field(parameters, context)
        mask = self.parameterAsSource(parameters, P.MASK, context)
        with self.work_folder() as work:
            args = self.point_args(parameters, context, feedback)
            args += self.variogram_args(parameters, context)
            for name, flag in ((REALISATIONS, "--realisations"), (P.SEED, "--seed"),
                               (P.NEIGHBOURS, "--neighbours"), (MULTIGRID, "--multigrid")):
                args += [flag, str(self.parameterAsInt(parameters, name, context))]
            if parameters.get(P.MAX_DISTANCE) not in (None, ""):
                dist = self.parameterAsDouble(parameters, P.MAX_DISTANCE, context)
                if dist > 0:
                    args += ["--max-distance", repr(dist)]
            args += self.grid_args(parameters, context, crs)
            args += self.threshold_args(parameters, context)
            args += ["--output-dir", str(work)]
            self.engine("simulate", args, feedback, work)
            results = self.deliver_rasters(
                SIMULATION_RASTERS, parameters, context, work, feedback, f" ({field})", mask,
                required=("OUTPUT_REALISATIONS", "ETYPE_MEAN", "CONDITIONAL_VARIANCE"))
        if not self.parameterAsBoolean(parameters, LOAD_REALISATIONS, context):
            # written, but not loaded: many bands are slow to render and clutter the project
            # (after delivery, which registers every destination for loading again)
            layers = context.layersToLoadOnCompletion()
            if layers.pop(results.get(OUTPUT_REALISATIONS), None) is not None:
                context.setLayersToLoadOnCompletion(layers)
        return results
