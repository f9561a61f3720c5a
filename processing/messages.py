"""Engine messages in the words of a QGIS user: parameter names instead of CLI flags, layer
names instead of Processing's temporary files, and no TensorFlow start-up noise in the log.

The engine is one program for the command line and for QGIS; its messages name CLI flags
(``use --transform none or nscore``) and the files it was given, which in QGIS are temporary
exports (``/tmp/processing_x/…/INPUT.gpkg``). :class:`MessageRewriter` translates both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: CLI flag → how the Processing dialogs name it.
FLAG_WORDS = {
    "--transform": "'Transform of the values' (TRANSFORM)",
    "--variogram": "'Variogram model file' (VARIOGRAM)",
    "--refit-variogram": "'Refit the variogram in every fold' (REFIT_VARIOGRAM)",
    "--field": "'Value field' (FIELD)",
    "--z-field": "'Z / depth field' (Z_FIELD)",
    "--cell-size": "'Cell size' (CELL_SIZE)",
    "--extent": "'Output extent' (EXTENT)",
    "--template": "'Template raster' (TEMPLATE)",
    "--z-levels": "'Z levels' (Z_LEVELS)",
    "--neighbours": "'Neighbours' (NEIGHBOURS)",
    "--kriging-neighbours": "'Kriging neighbours' (KRIGING_NEIGHBOURS)",
    "--min-neighbours": "'Minimum neighbours' (MIN_NEIGHBOURS)",
    "--max-distance": "'Maximum search distance' (MAX_DISTANCE)",
    "--covariates": "'Covariate rasters' (COVARIATES)",
    "--co-fields": "'Co-located fields' (CO_FIELDS)",
    "--ensemble": "'Ensemble members' (ENSEMBLE)",
    "--epochs": "'Maximum training epochs' (EPOCHS)",
    "--folds": "'Cross-validation folds' (FOLDS)",
    "--method": "'Methods' (METHODS)",
    "--threshold": "'Threshold' (THRESHOLD)",
    "--points": "'Predict at these points' (POINTS)",
    "--model-dir": "'Model folder' (MODEL)",
    "--output-units": "'Output units' (OUTPUT_UNITS)",
    "--seed": "'Random seed' (SEED)",
}

#: Engine arguments naming input files → how to call them in a message.
FILE_WORDS = {"--input": "the point layer (INPUT)", "--points": "the target points (POINTS)"}

#: stderr lines of TensorFlow/absl/XLA start-up, not meant for the user (kept for crash tails).
NOISE = re.compile(
    r"absl::InitializeLog|^[IWE]\d{4} |oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|"
    r"cuda|cuDNN|cuFFT|cuBLAS|TensorRT|This TensorFlow binary is optimized|"
    r"To enable the following instructions|rebuild TensorFlow|computation placer|"
    r"tensorflow/core/|external/local_xla|Unable to register",
    re.IGNORECASE,
)

#: What a temporary folder is called in a message.
TEMPORARY = "<temporary folder>"

_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_LONG_NUMBER = re.compile(r"(?<![\w./])\d+\.\d{7,}(?:e[-+]?\d+)?")


def round_numbers(text: str) -> str:
    """Numbers printed with 7 or more decimals (``0.05066040888719743``) to 4 significant
    digits (``0.05066``): a log line is read, not parsed."""
    return _LONG_NUMBER.sub(lambda m: f"{float(m.group()):.4g}", text)


def is_noise(line: str) -> bool:
    """Whether an engine stderr line is library start-up noise."""
    return bool(NOISE.search(line))


class MessageRewriter:
    """Rewrites engine messages for the Processing log (see the module docstring)."""

    def __init__(self, args: Sequence[str] = (), temp_roots: Sequence[str] = ()) -> None:
        self.paths: dict[str, str] = {}
        args = [str(a) for a in args]
        for i, arg in enumerate(args[:-1]):
            if arg in FILE_WORDS and any(args[i + 1].startswith(r) for r in temp_roots if r):
                self.paths[args[i + 1]] = FILE_WORDS[arg]
        self.temp_roots = [r for r in temp_roots if r]

    def __call__(self, message: str) -> str:
        for path in sorted(self.paths, key=len, reverse=True):
            message = message.replace(repr(path), self.paths[path])
            message = message.replace(path, self.paths[path])
        for root in self.temp_roots:
            message = message.replace(root, TEMPORARY)
        message = _FLAG.sub(lambda m: FLAG_WORDS.get(m.group(0), m.group(0)), message)
        return round_numbers(message.replace("(NaN)", "(nodata)"))
