"""Parameter builders shared by the algorithms (stable uppercase ids, help on every one)."""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import (
    FIELD_ANY,
    FIELD_NUMERIC,
    FILE_BEHAVIOUR_FILE,
    FLAG_ADVANCED,
    NUMBER_DOUBLE,
    NUMBER_INTEGER,
    TYPE_RASTER,
    TYPE_VECTOR_POINT,
    TYPE_VECTOR_POLYGON,
    add_flag,
)
from ..constants import TRANSFORMS

INPUT, FIELD, Z_FIELD, TRANSFORM = "INPUT", "FIELD", "Z_FIELD", "TRANSFORM"
VARIOGRAM, NEIGHBOURS, MIN_NEIGHBOURS, MAX_DISTANCE = (
    "VARIOGRAM", "NEIGHBOURS", "MIN_NEIGHBOURS", "MAX_DISTANCE")
CELL_SIZE, EXTENT, TEMPLATE, MASK, Z_LEVELS = "CELL_SIZE", "EXTENT", "TEMPLATE", "MASK", "Z_LEVELS"
COVARIATES, CO_FIELDS, ENSEMBLE, EPOCHS, SEED = (
    "COVARIATES", "CO_FIELDS", "ENSEMBLE", "EPOCHS", "SEED")
THRESHOLD, FOLDS, MODEL, REPORT = "THRESHOLD", "FOLDS", "MODEL", "REPORT"
OUTPUT_UNITS, BLOCK, DRIFT, REPROJECT = "OUTPUT_UNITS", "BLOCK", "DRIFT", "REPROJECT"
KRIGING_NEIGHBOURS, COORDINATES, INTERVAL = "KRIGING_NEIGHBOURS", "COORDINATES", "INTERVAL"
BATCH_SIZE, LEARNING_RATE, PATIENCE = "BATCH_SIZE", "LEARNING_RATE", "PATIENCE"
TARGET, LOSS = "TARGET", "LOSS"
TARGET_CHOICES = (("residual", "Residual of kriging (default)"), ("value", "The value itself"))
LOSS_CHOICES = (("huber", "Huber (robust, default)"), ("mse", "Mean squared error"))

OUTPUT_UNIT_CHOICES = (("original", "Original units"), ("transformed", "Transformed units"))
#: How ``auto`` variograms choose among their candidates (index 1 was "loo", the same rule).
SELECT, GATE, BASE = "SELECT", "GATE", "BASE"
BASE_CHOICES = (("auto", "Automatic (KED when covariates clearly help, else OK)"),
                ("ok", "Ordinary kriging"),
                ("ked", "Kriging with external drift in the covariates"))
SELECT_CHOICES = (("sse", "Lowest weighted squared error of the fit"),
                  ("cv", "Lowest kriging cross-validation RMSE (default)"))


def destination_given(parameters: dict, name: str) -> bool:
    """Whether the destination ``name`` was given (not skipped), without resolving it: resolving
    a temporary output registers a layer to load, which a check must not do."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    return value not in (None, "")


def with_help(param, text: str, advanced: bool = False):
    """Set the parameter's help text (QGIS >= 3.16) and optionally mark it advanced."""
    if hasattr(param, "setHelp"):
        param.setHelp(text)
    if advanced:
        add_flag(param, FLAG_ADVANCED)
    return param


def point_input(with_transform: bool = True, variogram_file: bool = True) -> list:
    """``INPUT``, ``FIELD``, ``Z_FIELD`` (and ``TRANSFORM``)."""
    out = [
        with_help(
            QgsProcessingParameterFeatureSource(INPUT, "Point samples", [TYPE_VECTOR_POINT]),
            "Point layer with the measured values, in a projected CRS (metres or feet). Any "
            "provider works (GeoPackage, Shapefile, CSV, memory layers); 'Selected features "
            "only' is honoured.",
        ),
        with_help(
            value_field_param(),
            "Numeric field to interpolate (e.g. a concentration). NULL values are dropped with "
            "a warning; samples at identical locations are averaged. Empty: the first numeric "
            "field that is not the feature id (fid, the primary key) or a coordinate or "
            "identifier column (x, y, lat, id, ...), named in the log; the dialog starts on it.",
        ),
        with_help(
            QgsProcessingParameterField(Z_FIELD, "Z / depth field (3D data)", None, INPUT,
                                        FIELD_NUMERIC, optional=True),
            "Optional numeric field with the elevation or depth of each sample: the data become "
            "3D (use Z levels for a 3D output). Without it, a Z geometry is used when present.",
            advanced=True,
        ),
    ]
    out.append(with_help(
        QgsProcessingParameterCrs(REPROJECT, "Work in this projected CRS (reproject the "
                                             "points)", optional=True),
        "Optional projected CRS the samples are reprojected to before anything is computed "
        "(like the command line's --reproject); the outputs are in this CRS. Not set: the "
        "layer's CRS, or for a layer in degrees (geographic CRS) the UTM zone of its centre, "
        "named in the log.",
        advanced=True,
    ))
    if with_transform:
        out.append(transform_param(variogram_file))
    return out


#: The dialogs' value-field widget (``ui/value_field.py``), imported by path only when a
#: dialog opens (never in qgis_process).
VALUE_FIELD_WRAPPER = "gcnn_rnn.ui.value_field.ValueFieldWidgetWrapper"


def value_field_param():
    """``FIELD``, never ``fid`` by default on every QGIS version.

    The parameter is optional: left empty, the algorithm itself takes the layer's preferred
    value field (``EngineAlgorithm.value_field``), which works the same on QGIS 3 and 4, in
    ``qgis_process``, PyQGIS, models and batch rows. A required field parameter would make
    QGIS's stock widget select the first numeric field, ``fid``. On QGIS 3 the dialogs'
    widget also shows that field (``ui/value_field.py``); QGIS 4 dropped the Python wrapper it
    extends, so there the stock widget starts empty ("not set") and the log names the field.
    """
    param = QgsProcessingParameterField(FIELD, "Value field", None, INPUT, FIELD_NUMERIC,
                                        optional=True)
    if Qgis.QGIS_VERSION_INT < 40000:  # QGIS 4 dropped the Python wrapper it extends
        param.setMetadata({"widget_wrapper": {"class": VALUE_FIELD_WRAPPER}})
    return param


def transform_param(variogram_file: bool = True):
    """``TRANSFORM``; ``variogram_file``: the algorithm also takes a variogram model file."""
    unset = ("the transform recorded in the variogram model file, else none." if variogram_file
             else "none.")
    return with_help(
        QgsProcessingParameterEnum(TRANSFORM, "Transform of the values",
                                   [label for _, label in TRANSFORMS], optional=True),
        "Transform applied before the variogram and kriging: none, natural log (strictly "
        "positive values; lognormal back-transform using the kriging variance) or normal score "
        "(with a tail model for the back-transform). Results are back-transformed. Not set: "
        + unset,
    )


def variogram_param():
    param = QgsProcessingParameterFile(VARIOGRAM, "Variogram model file (empty: fit automatically)",
                                       FILE_BEHAVIOUR_FILE, "json", optional=True,
                                       fileFilter="Variogram model (*.json)")
    return with_help(
        param,
        "A variogram model file written by 'Fit variogram' or saved from the Variogram "
        "explorer (V.json). Empty: the engine fits one automatically to the (transformed) data.",
    )


def neighbours_param(default: int, hybrid: bool = False):
    text = (
        "Number of nearest samples forming each location's sequence for the network "
        "(and its kriging features)." if hybrid else
        "Number of nearest samples used for each kriged node; 0 uses all samples "
        "(global kriging, slow for large data)."
    )
    return with_help(
        QgsProcessingParameterNumber(NEIGHBOURS, "Neighbours", NUMBER_INTEGER, default,
                                     minValue=0 if not hybrid else 2, maxValue=1000),
        text,
    )


def kriging_neighbourhood() -> list:
    return [
        with_help(
            QgsProcessingParameterNumber(MIN_NEIGHBOURS, "Minimum neighbours", NUMBER_INTEGER,
                                         optional=True, minValue=1),
            "Nodes with fewer samples within the maximum distance are left nodata.",
            advanced=True,
        ),
        with_help(
            QgsProcessingParameterDistance(MAX_DISTANCE, "Maximum search distance",
                                           parentParameterName=INPUT, optional=True, minValue=0),
            "Only samples closer than this distance (layer units) are used; empty: no limit.",
            advanced=True,
        ),
    ]


def grid_params(with_distance_parent: bool = True) -> list:
    """``CELL_SIZE``, ``EXTENT``, ``TEMPLATE``, ``MASK``, ``Z_LEVELS``."""
    if with_distance_parent:
        cell = QgsProcessingParameterDistance(CELL_SIZE, "Cell size", parentParameterName=INPUT,
                                              optional=True, minValue=0)
    else:
        cell = QgsProcessingParameterNumber(CELL_SIZE, "Cell size (in the model's CRS units)",
                                            NUMBER_DOUBLE, optional=True, minValue=0)
    return [
        with_help(cell, "Output cell size in the layer's CRS units (e.g. metres). Not set and no "
                        "template raster: a quarter of the mean sample spacing, rounded to 1, 2, "
                        "2.5 or 5 times a power of ten (the log names the value used)."),
        with_help(
            QgsProcessingParameterExtent(EXTENT, "Output extent", optional=True),
            "Area of the output grid; empty: the extent of the samples (the training samples "
            "of a model folder). Snapped outwards to multiples of the cell size. Far outside "
            "the samples the map is an extrapolation: a warning names the share of such cells.",
        ),
        with_help(
            QgsProcessingParameterRasterLayer(TEMPLATE, "Template raster (defines the grid)",
                                              optional=True),
            "A raster whose grid (origin, cell size, size, CRS) and nodata mask the outputs "
            "copy, instead of the cell size and extent.",
        ),
        with_help(
            QgsProcessingParameterFeatureSource(MASK, "Mask polygons", [TYPE_VECTOR_POLYGON],
                                                optional=True),
            "Cells whose centre lies outside these polygons are set to nodata.",
        ),
        with_help(
            QgsProcessingParameterString(Z_LEVELS, "Z levels for 3D output (start:stop:step)",
                                         optional=True),
            "3D data only: elevations of the horizontal output slices, e.g. '0:10:2'. Each "
            "level becomes one band described 'z=LEVEL'.",
            advanced=True,
        ),
    ]


def hybrid_params() -> list:
    """``COVARIATES``, ``CO_FIELDS``, ``ENSEMBLE``, ``EPOCHS``, ``SEED``."""
    return [
        with_help(
            QgsProcessingParameterMultipleLayers(COVARIATES, "Covariate rasters", TYPE_RASTER,
                                                 optional=True),
            "Rasters sampled at every sample and grid node as extra inputs of the network (e.g. "
            "elevation, distance to a river). They must cover the samples and the output grid.",
        ),
        with_help(
            QgsProcessingParameterField(CO_FIELDS, "Co-located fields", None, INPUT, FIELD_ANY,
                                        allowMultiple=True, optional=True),
            "Other fields of the samples used as inputs (e.g. other elements; text fields are "
            "one-hot encoded). At grid nodes they are kriged from the samples.",
            advanced=True,
        ),
        with_help(
            QgsProcessingParameterNumber(ENSEMBLE, "Ensemble members", NUMBER_INTEGER, 5,
                                         minValue=1, maxValue=50),
            "Number of networks trained with different seeds; their spread is part of the "
            "prediction uncertainty.",
            advanced=True,
        ),
        with_help(
            QgsProcessingParameterNumber(EPOCHS, "Maximum training epochs", NUMBER_INTEGER,
                                         optional=True, minValue=1, maxValue=100000),
            "Upper limit on training epochs (early stopping usually ends sooner); empty: the "
            "engine's default.",
            advanced=True,
        ),
        seed_param(),
        *expert_params(),
    ]


def expert_params() -> list:
    """Advanced knobs of the network training (passed only when set)."""

    def number(name, label, kind, text, **kw):
        return with_help(QgsProcessingParameterNumber(name, label, kind, optional=True, **kw),
                         text, advanced=True)

    return [
        number(KRIGING_NEIGHBOURS, "Kriging neighbours for the features", NUMBER_INTEGER,
               "Neighbours of the ordinary kriging that makes the static features (0: all "
               "samples, global kriging); empty: the engine's default (32).", minValue=0),
        with_help(QgsProcessingParameterBoolean(COORDINATES, "Use coordinates as features",
                                                False),
                  "Also feed the x/y(/z) coordinates to the network.", advanced=True),
        number(INTERVAL, "Prediction interval level", NUMBER_DOUBLE,
               "Nominal coverage of the prediction intervals (default 0.9 = 90 %).",
               minValue=0.5, maxValue=0.999),
        number(BATCH_SIZE, "Batch size", NUMBER_INTEGER,
               "Mini-batch size; empty: the engine's default.", minValue=1),
        number(LEARNING_RATE, "Learning rate", NUMBER_DOUBLE,
               "Initial Adam learning rate; empty: the engine's default.", minValue=0.0),
        number(PATIENCE, "Early-stopping patience (epochs)", NUMBER_INTEGER,
               "Epochs without improvement before training stops; empty: the engine's default.",
               minValue=1),
        with_help(QgsProcessingParameterEnum(TARGET, "Network target",
                                             [label for _, label in TARGET_CHOICES],
                                             defaultValue=0),
                  "What the network predicts: the residual of kriging in transformed units "
                  "(default, more accurate) or the value itself.", advanced=True),
        with_help(QgsProcessingParameterEnum(LOSS, "Training loss",
                                             [label for _, label in LOSS_CHOICES],
                                             defaultValue=0),
                  "Huber (robust to outliers) or mean squared error.", advanced=True),
    ]


def seed_param():
    return with_help(
        QgsProcessingParameterNumber(SEED, "Random seed", NUMBER_INTEGER, 0, minValue=0),
        "Seed of every random choice (folds, network initialisation): the same seed gives the "
        "same result.",
        advanced=True,
    )


def folds_param(default: str = "10", optional: bool = False, advanced: bool = False):
    return with_help(
        QgsProcessingParameterString(FOLDS, "Cross-validation folds", default,
                                     optional=optional),
        "'loo' (leave-one-out), a number K (K-fold, random folds from the seed) or "
        "'spatial:SIZE' (spatial blocks of SIZE layer units; 'spatial' alone picks the size).",
        advanced=advanced,
    )


def threshold_param():
    return with_help(
        QgsProcessingParameterNumber(THRESHOLD, "Threshold (probability of exceeding)",
                                     NUMBER_DOUBLE, optional=True),
        "Optional limit (e.g. a regulatory limit or a cut-off grade, in the field's units): "
        "adds the raster 'Probability of exceeding' (0-1) at each cell. It is always written "
        "when a threshold is set (to a temporary file when no destination is chosen, loaded "
        "with the other outputs).",
    )


def output_units_param():
    return with_help(
        QgsProcessingParameterEnum(OUTPUT_UNITS, "Output units",
                                   [label for _, label in OUTPUT_UNIT_CHOICES], defaultValue=0),
        "With a transform: report the estimate back-transformed to the original units "
        "(default) or in transformed units.",
        advanced=True,
    )


def select_param():
    return with_help(
        QgsProcessingParameterEnum(SELECT, "Choose the automatic variogram by",
                                   [label for _, label in SELECT_CHOICES], defaultValue=1),
        "How the automatic variogram picks among its fitted candidates (spherical, "
        "exponential, Gaussian, Matern): the kriging cross-validation RMSE with the "
        "neighbourhood that is used (default: what matters for the map), or the weighted "
        "squared error of the fit to the experimental variogram.",
        advanced=True,
    )


def base_param():
    return with_help(
        QgsProcessingParameterEnum(BASE, "Classical base of the hybrid",
                                   [label for _, label in BASE_CHOICES], defaultValue=0),
        "The kriging the network corrects (and falls back to): ordinary kriging, or kriging "
        "with an external drift in the covariate rasters; automatic keeps KED when its "
        "leave-one-out error on the training samples is clearly lower.",
        advanced=True,
    )


def gate_param():
    return flag_param(
        GATE, "Do-no-harm gate", True,
        "Keep only the share of the network's correction that lowers the cross-validated "
        "error on the training data; when it does not help, the prediction is the kriging "
        "base's and the log says so.")


def flag_param(name: str, label: str, default: bool, text: str, advanced: bool = True):
    return with_help(QgsProcessingParameterBoolean(name, label, default), text, advanced)


def block_param():
    return with_help(
        QgsProcessingParameterString(BLOCK, "Block size (block kriging)", "", optional=True),
        "Empty (default): point support, the estimate at each cell centre. 'cell': the mean "
        "over each output cell; or sizes 'DX,DY' (3D: 'DX,DY,DZ') in layer units. Block "
        "kriging estimates block means with their (smaller) block kriging variance, as "
        "gstat's block argument (4 x 4 Gauss points per block). With a log or normal-score "
        "transform, set Output units to transformed: a back-transformed block mean of "
        "transformed values is not the block mean of the values.",
        advanced=True,
    )
