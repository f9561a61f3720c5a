"""Names shared by the provider, the algorithms, the styling and the dialogs.

Pure Python, no QGIS import: the engine contract (file names, CLI choices) written down once on
the QGIS side.
"""

from __future__ import annotations

PROVIDER_ID = "gcnnrnn"
PROVIDER_NAME = "GCNN-RNN"

GROUP_GEOSTATISTICS = ("geostatistics", "Geostatistics")
GROUP_HYBRID = ("hybrid", "Hybrid GCNN-RNN model")

#: ``TRANSFORM`` enum: (CLI value, label).
TRANSFORMS = (
    ("none", "None"),
    ("log", "Natural logarithm (lognormal back-transform)"),
    ("nscore", "Normal score"),
)

#: Variogram models the engine knows (``core/variogram/models.py`` MODELS), in gstat spelling;
#: ``nug`` is always added by the fit.
VARIOGRAM_MODELS = (
    ("sph", "Spherical"),
    ("exp", "Exponential"),
    ("gau", "Gaussian"),
    ("mat", "Matérn"),
    ("ste", "Stable"),
    ("cub", "Cubic"),
    ("lin", "Linear with sill"),
    ("pow", "Power (unbounded)"),
    ("hol", "Hole effect"),
)
DEFAULT_FIT_MODELS = ("sph", "exp", "gau", "mat")  # the engine's default

#: Cross-validation methods of ``gcnn-rnn cv --method``.
CV_METHODS = (
    ("ok", "Ordinary kriging"),
    ("linear", "Ridge regression on kriging features"),
    ("hybrid", "Hybrid GCNN-RNN"),
    ("ked", "Kriging with external drift (needs covariate rasters)"),  # appended: indices stay
    ("uk", "Universal kriging (linear drift in x, y)"),  # appended: indices stay
    ("idw", "Inverse distance weighting (power 2)"),  # appended: indices stay
)

#: Bytes per grid node and the default ceiling of the output grid's memory. They MUST equal
#: ``BYTES_PER_NODE`` and ``DEFAULT_MAX_BYTES`` in ``core/grid.py`` (the engine's check), so a
#: grid the plugin accepts is never refused by the engine; tests/qgis/test_compat.py reads
#: core/grid.py and fails when they drift. (Plain numbers here: this side never imports core.)
BYTES_PER_NODE = 64
MAX_GRID_BYTES = 2 * 1024**3
#: A streamed grid (``krige``, ``predict``) holds only stripes of its outputs and the samples:
#: these MUST equal ``BLOCK``, ``STRIPE_BYTES_PER_CELL``, ``STRIPES_HELD``,
#: ``BYTES_PER_SAMPLE`` and ``DISK_BYTES_PER_NODE`` in ``core/tiles.py`` (the engine's check;
#: tests/qgis/test_compat.py compares them).
STRIPE_ROWS = 256
STRIPE_BYTES_PER_CELL = 5
STRIPES_HELD = 2
BYTES_PER_SAMPLE = 160
DISK_BYTES_PER_NODE = 4
#: The most nodes a grid may have (roughly three hours of kriging); MUST equal
#: ``DEFAULT_MAX_NODES`` in ``core/cli/options.py`` (tests/qgis/test_compat.py compares them).
MAX_NODES = 2_000_000_000
#: The plugin's own MASK step (``masking.apply_mask``) reads whole bands: a byte mask, its
#: comparison and one float32 band at a time, about 8 bytes per cell.
MASK_BYTES_PER_NODE = 8

#: Raster outputs: parameter name -> (engine file name, kind for the colour ramp, layer label).
KRIGING_RASTERS = {
    "ESTIMATE": ("kriging_estimate.tif", "value", "Kriging estimate"),
    "VARIANCE": ("kriging_variance.tif", "variance", "Kriging variance"),
    # derived by the plugin (processing/derived.py): the variance's square root, field units
    "STD": ("kriging_std.tif", "variance", "Kriging standard deviation"),
}
#: The rasters the kriging engine itself writes (the others are derived from them).
KRIGING_ENGINE_RASTERS = ("ESTIMATE", "VARIANCE")
HYBRID_RASTERS = {
    "PREDICTION": ("prediction.tif", "value", "Hybrid prediction"),
    "KRIGING_ESTIMATE": ("kriging_estimate.tif", "value", "Kriging estimate"),
    "KRIGING_VARIANCE": ("kriging_variance.tif", "variance", "Kriging variance"),
    "PREDICTION_STD": ("prediction_std.tif", "variance", "Prediction standard deviation"),
    "INTERVAL_LOWER": ("interval_lower.tif", "value", "Prediction interval, lower bound"),
    "INTERVAL_UPPER": ("interval_upper.tif", "value", "Prediction interval, upper bound"),
    "EXCEEDANCE": ("exceedance_probability.tif", "probability", "Probability of exceeding"),
}

SIMULATION_RASTERS = {
    "OUTPUT_REALISATIONS": ("realisations.tif", "value", "Realisations"),
    "ETYPE_MEAN": ("etype_mean.tif", "value", "E-type mean"),
    "CONDITIONAL_VARIANCE": ("conditional_variance.tif", "variance", "Conditional variance"),
    "EXCEEDANCE": ("exceedance_probability.tif", "probability", "Probability of exceeding"),
}

#: Numeric outputs of cross-validation: parameter name -> (method, metric key); one RMSE, MAE
#: and R² per method of ``CV_METHODS`` (``RMSE_OK``, ``RMSE_LINEAR``, ``RMSE_KED``, ...), as
#: the keys of the CLI's cv.json ``metrics``.
CV_METRIC_KEYS = (("RMSE", "rmse"), ("MAE", "mae"), ("R2", "r2"))
CV_NUMBERS = {f"{label}_{method.upper()}": (method, key)
              for method, _ in CV_METHODS for label, key in CV_METRIC_KEYS}
#: Their descriptions, e.g. "R² (ok, cross-validation)" (one spelling everywhere).
CV_NUMBER_LABELS = {name: f"{name.split('_')[0].replace('R2', 'R²')} ({method}, "
                          "cross-validation)" for name, (method, _) in CV_NUMBERS.items()}

#: Numeric outputs of training (model.json ``metrics``, transformed units): name -> key.
TRAIN_NUMBERS = {
    "HYBRID_OOF_RMSE": ("hybrid_oof_rmse", "Hybrid out-of-fold RMSE (transformed units)"),
    "OK_LOO_RMSE": ("ok_loo_rmse", "Kriging leave-one-out RMSE (transformed units)"),
    "OOF_COVERAGE": ("oof_coverage", "Out-of-fold interval coverage"),
    "SHRINKAGE": ("shrinkage", "Shrinkage of the network's correction"),
    "N_OUT_OF_FOLD": ("n_out_of_fold", "Samples predicted out of fold"),
}

CITATION = (
    "Anvari, R., Benndorf, J., Gerber, C., Alisch, K.: Hybrid geostatistical and deep learning "
    "framework for geochemical characterization in historical mine tailings (the GCNN-RNN "
    "method: ordinary kriging features feeding a 1D CNN + bidirectional LSTM)."
)
