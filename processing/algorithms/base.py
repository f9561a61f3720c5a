"""Base class of the GCNN-RNN algorithms: metadata, checks, engine calls and output delivery.

Every algorithm builds a CLI command line from its parameters, runs the engine into a private
work folder (inside the Processing temp folder), and only when the engine succeeded moves the
contract's files to the destinations the user chose. A failure or cancel therefore never leaves
an output behind; the work folder is always removed.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import uuid
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingUtils,
    QgsRectangle,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QIcon

from ..constants import (
    BYTES_PER_NODE,
    BYTES_PER_SAMPLE,
    CITATION,
    DISK_BYTES_PER_NODE,
    MASK_BYTES_PER_NODE,
    MAX_GRID_BYTES,
    MAX_NODES,
    STRIPE_BYTES_PER_CELL,
    STRIPE_ROWS,
    STRIPES_HELD,
    TRANSFORMS,
)
from ..derived import derive
from ..engine import check_engine
from ..formats import driver_for, write_raster_as
from ..layer_tree import RunGroup, layer_rank
from ..masking import apply_mask
from ..messages import MessageRewriter
from ..provider import ICONS_DIR, plugin_metadata
from ..runner import EngineError, run_engine
from ..styling import register_output
from . import params as P
from .checks import (
    check_block,
    check_degrees,
    check_folds,
    check_template_crs,
    check_value_field,
    check_variogram_file,
    check_z_levels_need_3d,
    default_cell_size,
    key_field_indexes,
    parse_z_levels,
    preferred_field_of,
    utm_crs,
    utm_suggestion,
)
from .extrapolation import warn_extrapolation

#: Rasters delivered whenever the engine wrote them, with or without a destination (D1: a
#: threshold always gives its probability-of-exceeding map).
ALWAYS_DELIVERED = ("EXCEEDANCE",)
#: Rasters in squared units of the field (their layer names say so).
SQUARED_UNITS = ("VARIANCE", "KRIGING_VARIANCE", "CONDITIONAL_VARIANCE")


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Shared behaviour; subclasses set the class attributes and two methods."""

    ALG_ID = ""
    DISPLAY = ""
    GROUP = ("", "")
    ICON = "gcnn_rnn"
    TAGS: tuple[str, ...] = ()
    #: What the algorithm does and how (HTML paragraphs); parameter help is appended.
    DESCRIPTION = ""
    #: What the numeric outputs are (or, without any, where such numbers come from).
    NUMBERS_NOTE = ""

    # ------------------------------------------------------------------ metadata
    def createInstance(self):
        return type(self)()

    def name(self) -> str:
        return self.ALG_ID

    def displayName(self) -> str:
        return self.DISPLAY

    def group(self) -> str:
        return self.GROUP[1]

    def groupId(self) -> str:
        return self.GROUP[0]

    def tags(self) -> list[str]:
        return list(self.TAGS) + ["gcnn-rnn", "geostatistics", "interpolation"]

    def icon(self) -> QIcon:
        return QIcon(self.svgIconPath())

    def svgIconPath(self) -> str:
        return str(ICONS_DIR / f"{self.ICON}.svg")

    def helpUrl(self) -> str:
        return plugin_metadata("homepage")

    def shortHelpString(self) -> str:
        parts = [self.DESCRIPTION.strip(), "<h3>Parameters</h3><dl>"]
        for p in self.parameterDefinitions():
            text = p.help() if hasattr(p, "help") else ""
            parts.append(f"<dt><b>{p.description()}</b> (<code>{p.name()}</code>)</dt>"
                         f"<dd>{text}</dd>")
        parts.append("</dl><h3>Outputs</h3><dl>")
        for o in self.outputDefinitions():
            parts.append(f"<dt><b>{o.description()}</b> (<code>{o.name()}</code>)</dt>")
        parts.append("</dl>" + self.numbers_help())
        parts.append("<h3>Citation</h3><p>" + CITATION + "</p>")
        parts.append("<p>The computation runs in the GCNN-RNN engine, a separate Python "
                     "environment (Plugins ▸ GCNN-RNN ▸ Set up engine…).</p>")
        return "".join(parts)

    def numbers_help(self) -> str:
        """The "Numeric outputs" section: which numbers the result dictionary holds."""
        numbers = [o for o in self.outputDefinitions()
                   if o.type() in ("outputNumber", "outputString")]
        if numbers:
            items = ", ".join(f"<code>{o.name()}</code> ({o.description()})" for o in numbers)
            text = f"Returned in the results (and usable in models): {items}."
        else:
            text = "None: this algorithm returns only the files and layers above."
        return f"<h3>Numeric outputs</h3><p>{text} {self.NUMBERS_NOTE}</p>"

    def canExecute(self):
        return check_engine()

    # ------------------------------------------------------------------ checks
    def checkParameterValues(self, parameters, context):
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            self.validate(parameters, context)
        except QgsProcessingException as exc:
            return False, exc.args[0] if exc.args else str(exc)
        return True, ""

    def validate(self, parameters, context) -> None:
        """Raise ``QgsProcessingException`` for inputs the engine would refuse."""
        for param in self.destinationParameterDefinitions():
            if param.type() == "rasterDestination" and P.destination_given(parameters,
                                                                          param.name()):
                value = parameters[param.name()]
                if isinstance(value, QgsProcessingOutputLayerDefinition):
                    value = value.sink.staticValue()
                if isinstance(value, str) and value != "TEMPORARY_OUTPUT":
                    driver_for(value)  # refuses an extension GDAL cannot write, before the run
        if self.parameterDefinition(P.INPUT) is not None:
            self.check_points(parameters, context)
        vario = self.parameterDefinition(P.VARIOGRAM)
        if vario is not None and not vario.isDestination():
            check_variogram_file(self.parameterAsFile(parameters, P.VARIOGRAM, context))
        if self.parameterDefinition(P.Z_LEVELS) is not None:
            levels = parse_z_levels(self.parameterAsString(parameters, P.Z_LEVELS, context))
            if self.parameterDefinition(P.INPUT) is not None:
                source = self.parameterAsSource(parameters, P.INPUT, context)
                z_field = (self.parameterAsString(parameters, P.Z_FIELD, context)
                           if self.parameterDefinition(P.Z_FIELD) is not None else "")
                check_z_levels_need_3d(levels, bool(z_field),
                                       QgsWkbTypes.hasZ(source.wkbType()))
        if self.parameterDefinition(P.FOLDS) is not None:
            check_folds(self.parameterAsString(parameters, P.FOLDS, context))

    def check_points(self, parameters, context):
        source = self.parameterAsSource(parameters, P.INPUT, context)
        if source is None:
            raise QgsProcessingException("the point layer (INPUT) cannot be read")
        crs = source.sourceCrs()
        if not crs.isValid():
            raise QgsProcessingException(
                "the point layer has no CRS; assign its projected CRS (Layer Properties ▸ "
                "Source) before interpolating")
        if crs.isGeographic():
            check_degrees(source)
        target = self.reprojection(parameters, context, source)
        if target is not None and target.isGeographic():
            raise QgsProcessingException(
                f"the CRS to work in ({target.authid() or target.description()}) is "
                "geographic (degrees): distances and variograms need a projected CRS, e.g. "
                f"{utm_suggestion(source, context)} (UTM zone of the data centre)")
        if crs.isGeographic() and (target is None or not target.isValid()):
            raise QgsProcessingException(
                f"the point layer is in a geographic CRS ({crs.authid() or crs.description()}, "
                "degrees): distances and variograms need a projected CRS. Reproject it first, "
                f"e.g. to {utm_suggestion(source, context)} (UTM zone of the data centre).")
        fields = source.fields()
        keys = key_field_indexes(self.input_layer(parameters, context), fields)
        for name in (P.FIELD, P.Z_FIELD):
            if self.parameterDefinition(name) is None:
                continue
            value = self.parameterAsString(parameters, name, context)
            if value:
                check_value_field(fields, value, keys)
        if self.parameterDefinition(P.FIELD) is not None:
            self.value_field(parameters, context)  # refuses a layer without a numeric field
        if source.featureCount() >= 0 and source.featureCount() < 3:
            raise QgsProcessingException(
                f"the point layer has {source.featureCount()} features; at least 3 are needed")
        return source

    def reprojection(self, parameters, context, source) -> QgsCoordinateReferenceSystem | None:
        """The CRS the samples are reprojected to: REPROJECT, else for a layer in degrees the
        UTM zone of its centre; ``None`` to keep the layer's CRS."""
        if self.parameterDefinition(P.REPROJECT) is not None and parameters.get(
                P.REPROJECT) not in (None, ""):
            target = self.parameterAsCrs(parameters, P.REPROJECT, context)
            if target.isValid() and target != source.sourceCrs():
                return target
        if source.sourceCrs().isGeographic():
            return utm_crs(source, context)
        return None

    def working_crs(self, parameters, context, source) -> QgsCoordinateReferenceSystem:
        """The CRS the engine computes and writes in."""
        return self.reprojection(parameters, context, source) or source.sourceCrs()

    def sample_extent(self, parameters, context, source) -> QgsRectangle:
        """The samples' extent in :meth:`working_crs`."""
        target = self.reprojection(parameters, context, source)
        if target is None:
            return source.sourceExtent()
        tr = QgsCoordinateTransform(source.sourceCrs(), target, context.transformContext())
        return tr.transformBoundingBox(source.sourceExtent())

    def warn_extrapolation(self, parameters, context, source, feedback) -> float:
        """See :func:`extrapolation.warn_extrapolation` (D21)."""
        return warn_extrapolation(self, parameters, context, source, feedback)

    def value_field(self, parameters, context, feedback=None) -> str:
        """``FIELD``, or when it is empty the layer's preferred value field (the first
        numeric field that is neither its key nor a coordinate column; never ``fid``),
        named in the log. The same on QGIS 3 and 4 (see ``params.value_field_param``)."""
        field = self.parameterAsString(parameters, P.FIELD, context)
        if field:
            return field
        source = self.parameterAsSource(parameters, P.INPUT, context)
        if source is None:
            raise QgsProcessingException("the point layer (INPUT) cannot be read")
        fields = source.fields()
        field = preferred_field_of(fields, key_field_indexes(
            self.input_layer(parameters, context), fields))
        if not field:
            raise QgsProcessingException(
                "the point layer has no numeric field to interpolate (other than its feature "
                f"id); its fields: {', '.join(fields.names()) or '(none)'}")
        if feedback is not None:
            feedback.pushInfo(f"Value field: {field!r} (the layer's first numeric field that "
                              "is not its feature id or a coordinate column; choose another "
                              "in 'Value field')")
        return field

    def input_layer(self, parameters, context):
        """The INPUT vector layer (for its provider's primary key), or ``None``."""
        try:
            return self.parameterAsVectorLayer(parameters, P.INPUT, context)
        except Exception:
            return None

    def check_grid(self, parameters, context, crs: QgsCoordinateReferenceSystem, default_extent,
                   n_samples: int = 0, outputs: int = 2, streamed: bool = True,
                   disk_outputs: int | None = None):
        """Refuse a missing cell size, a template in another CRS or a grid that cannot be made.

        ``default_extent`` and ``n_samples`` describe the samples: without a cell size and a
        template, the cell size defaults to :func:`checks.default_cell_size` of them.

        ``streamed``: the engine writes the grid's ``outputs`` rasters stripe by stripe
        (``krige``, ``predict``), so memory holds only those stripes and the samples, whatever
        the number of rows; such a grid is refused for memory only when it is too *wide*, and
        otherwise only when its rasters cannot fit the free disk of the Processing temporary
        folder (where the engine writes them), with the size they need. Otherwise (``run``'s
        report) the whole grid is held, estimated at the engine's ``BYTES_PER_NODE``.
        ``disk_outputs``: the rasters' count for the disk check when it differs from the
        stripes held (``simulate`` writes one band per realisation, holding few at once). The plugin's MASK step reads whole bands (``MASK_BYTES_PER_NODE``).
        The numbers are the engine's (``constants``), so the plugin and the engine agree.
        """
        template = self.parameterAsRasterLayer(parameters, P.TEMPLATE, context)
        check_template_crs(template, crs)
        levels = parse_z_levels(self.parameterAsString(parameters, P.Z_LEVELS, context))
        nz = len(levels) if levels else 1
        if template is not None:
            cell = template.rasterUnitsPerPixelX()
            ncols, nrows = template.width(), template.height()
        else:
            cell, _ = self.cell_size(parameters, context, default_extent, n_samples)
            extent = self.extent_in(parameters, context, crs) or default_extent
            if extent is None or extent.isEmpty():
                return
            x0 = math.floor(extent.xMinimum() / cell) * cell
            y1 = math.ceil(extent.yMaximum() / cell) * cell
            ncols = max(1, math.ceil((extent.xMaximum() - x0) / cell - 1e-9))
            nrows = max(1, math.ceil((y1 - extent.yMinimum()) / cell - 1e-9))
        cells = ncols * nrows * nz
        shape = f"{cells:,} cells ({ncols:,} x {nrows:,}{f' x {nz} levels' if nz > 1 else ''})"
        if streamed:
            stripes = outputs * STRIPES_HELD * STRIPE_ROWS * ncols * STRIPE_BYTES_PER_CELL
            need = stripes + n_samples * BYTES_PER_SAMPLE
            if need > MAX_GRID_BYTES:
                room = MAX_GRID_BYTES - n_samples * BYTES_PER_SAMPLE  # the columns scale as 1/cell
                fits = f"a cell size of at least {cell * stripes / room * 1.01:.4g}" \
                    if room > 0 else "fewer samples"
                raise QgsProcessingException(
                    f"the output grid would be {ncols:,} columns wide: the stripes of "
                    f"{STRIPE_ROWS} rows of its {outputs} rasters and the {n_samples:,} samples "
                    f"held at once need about {need / 1024**3:.1f} GiB, over the limit of "
                    f"{MAX_GRID_BYTES / 1024**3:.0f} GiB; use {fits} or a narrower extent")
        else:
            _check_whole(cells * BYTES_PER_NODE, cell, f"the output grid would have {shape} "
                         "and need about {gib} GiB", "or a smaller extent")
        if (self.parameterDefinition(P.MASK) is not None
                and parameters.get(P.MASK) not in (None, "")):
            _check_whole(ncols * nrows * MASK_BYTES_PER_NODE, cell,
                         f"the output grid would have {shape}; applying the mask polygons "
                         "(MASK) reads whole rasters and needs about {gib} GiB",
                         "or leave MASK empty and clip afterwards")
        if streamed:
            files = outputs if disk_outputs is None else disk_outputs
            check_disk_space(cells * DISK_BYTES_PER_NODE * files, shape, files, cell)
        if cells > MAX_NODES:  # the engine's node ceiling: hours of work, likely a typo
            raise QgsProcessingException(
                f"the output grid would have {shape}, over the limit of {MAX_NODES:,} cells "
                "(hours of kriging); use a cell size of at least "
                f"{_cell_that_fits(cell, cells, MAX_NODES):.4g} or a smaller extent")

    def cell_size(self, parameters, context, sample_extent, n_samples: int) -> tuple[float, bool]:
        """``(cell size, defaulted)``: CELL_SIZE, or a default from the sample spacing."""
        if parameters.get(P.CELL_SIZE) not in (None, ""):
            cell = self.parameterAsDouble(parameters, P.CELL_SIZE, context)
            if cell and cell > 0:
                return cell, False
        if sample_extent is None or sample_extent.isEmpty() or n_samples < 2:
            raise QgsProcessingException(
                "give a cell size (CELL_SIZE > 0) or a template raster (TEMPLATE)")
        return default_cell_size(sample_extent.width(), sample_extent.height(), n_samples), True

    # ------------------------------------------------------------------ arguments
    def extent_in(self, parameters, context, crs) -> QgsRectangle | None:
        if parameters.get(P.EXTENT) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, P.EXTENT, context, crs)
        return None if rect.isNull() else rect

    def point_args(self, parameters, context, feedback) -> list[str]:
        """``--input F [--layer L] --field Z [--z-field Z] [--transform T]``."""
        path, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, P.INPUT, context, ["gpkg", "shp", "geojson", "fgb"], "gpkg", feedback)
        if not path:
            raise QgsProcessingException("the point layer (INPUT) cannot be exported")
        args = ["--input", path]
        if layer:
            args += ["--layer", layer]
        args += ["--field", self.value_field(parameters, context, feedback)]
        if self.parameterDefinition(P.Z_FIELD) is not None:
            z = self.parameterAsString(parameters, P.Z_FIELD, context)
            if z:
                args += ["--z-field", z]
        target = self.reprojection(parameters, context, self.parameterAsSource(
            parameters, P.INPUT, context))
        if target is not None:
            args += ["--reproject", target.authid() or target.toWkt()]
            if feedback is not None:
                feedback.pushInfo(f"The samples are reprojected to {target.authid()} "
                                  f"({target.description()}); the outputs are in that CRS.")
        if self.parameterDefinition(P.TRANSFORM) is not None and parameters.get(
                P.TRANSFORM) not in (None, ""):
            idx = self.parameterAsEnum(parameters, P.TRANSFORM, context)
            args += ["--transform", TRANSFORMS[idx][0]]
        return args

    def grid_args(self, parameters, context, crs, samples=(None, 0), feedback=None) -> list[str]:
        """``--cell-size S [--extent ...] | --template R`` plus ``--z-levels``.

        ``samples`` is ``(extent, count)`` of the samples, for the default cell size (which the
        log then names).
        """
        args: list[str] = []
        template = self.parameterAsRasterLayer(parameters, P.TEMPLATE, context)
        if template is not None:
            args += ["--template", template.source().split("|")[0]]
        else:
            cell, defaulted = self.cell_size(parameters, context, *samples)
            if defaulted and feedback is not None:
                feedback.pushInfo(f"No cell size or template raster given: using a cell size of "
                                  f"{cell:g} (a quarter of the mean sample spacing, rounded).")
            args += ["--cell-size", repr(float(cell))]
            extent = self.extent_in(parameters, context, crs)
            if extent is not None:  # "--flag=value": negative numbers must not look like flags
                args.append("--extent=" + ",".join(repr(v) for v in (
                    extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())))
        z_levels = self.parameterAsString(parameters, P.Z_LEVELS, context)
        if z_levels:
            args.append("--z-levels=" + z_levels.strip().replace(",", ":").replace(" ", ""))
        return args

    def variogram_args(self, parameters, context) -> list[str]:
        path = self.parameterAsFile(parameters, P.VARIOGRAM, context)
        return ["--variogram", path if path else "auto", *self.select_args(parameters, context)]

    def select_args(self, parameters, context) -> list[str]:
        """``--select cv|sse`` when the algorithm has the parameter (always passed: the
        engine's default and the parameter's agree, but a batch file may say otherwise)."""
        if self.parameterDefinition(P.SELECT) is None:
            return []
        idx = self.parameterAsEnum(parameters, P.SELECT, context)
        return ["--select", P.SELECT_CHOICES[idx][0]]

    def covariate_args(self, parameters, context) -> list[str]:
        """``--covariates a.tif,b.tif`` from the ``COVARIATES`` rasters (none: nothing)."""
        layers = self.parameterAsLayerList(parameters, P.COVARIATES, context) or []
        if not layers:
            return []
        return ["--covariates", ",".join(lyr.source().split("|")[0] for lyr in layers)]

    def block_args(self, parameters, context) -> list[str]:
        """``--block`` when a block size is given (checked by ``check_block``)."""
        text = check_block(self.parameterAsString(parameters, P.BLOCK, context))
        return ["--block", text] if text else []

    def hybrid_args(self, parameters, context) -> list[str]:
        """``--neighbours --covariates --co-fields --ensemble --epochs --seed``."""
        args = ["--neighbours", str(self.parameterAsInt(parameters, P.NEIGHBOURS, context))]
        args += self.covariate_args(parameters, context)
        co_fields = self.parameterAsFields(parameters, P.CO_FIELDS, context) or []
        if co_fields:
            args += ["--co-fields", ",".join(co_fields)]
        args += ["--ensemble", str(self.parameterAsInt(parameters, P.ENSEMBLE, context))]
        if parameters.get(P.EPOCHS) not in (None, ""):
            args += ["--epochs", str(self.parameterAsInt(parameters, P.EPOCHS, context))]
        args += ["--seed", str(self.parameterAsInt(parameters, P.SEED, context))]
        args += self.expert_args(parameters, context)
        return args

    def expert_args(self, parameters, context) -> list[str]:
        """The advanced training options that were given (see ``params.expert_params``)."""
        args: list[str] = []
        for name, flag, as_int in ((P.KRIGING_NEIGHBOURS, "--kriging-neighbours", True),
                                   (P.INTERVAL, "--interval", False),
                                   (P.BATCH_SIZE, "--batch-size", True),
                                   (P.LEARNING_RATE, "--learning-rate", False),
                                   (P.PATIENCE, "--patience", True)):
            if self.parameterDefinition(name) is None or parameters.get(name) in (None, ""):
                continue
            value = (self.parameterAsInt(parameters, name, context) if as_int
                     else self.parameterAsDouble(parameters, name, context))
            args += [flag, str(value) if as_int else repr(value)]
        if self.parameterDefinition(P.COORDINATES) is not None and self.parameterAsBoolean(
                parameters, P.COORDINATES, context):
            args.append("--coordinates")
        if self.parameterDefinition(P.GATE) is not None and not self.parameterAsBoolean(
                parameters, P.GATE, context):
            args.append("--no-gate")
        if self.parameterDefinition(P.BASE) is not None:
            args += ["--base", P.BASE_CHOICES[self.parameterAsEnum(parameters, P.BASE,
                                                                   context)][0]]
        for name, flag, choices in ((P.TARGET, "--target", P.TARGET_CHOICES),
                                    (P.LOSS, "--loss", P.LOSS_CHOICES)):
            if self.parameterDefinition(name) is not None:
                idx = self.parameterAsEnum(parameters, name, context)
                if idx:
                    args += [flag, choices[idx][0]]
        return args

    def threshold_args(self, parameters, context) -> list[str]:
        if parameters.get(P.THRESHOLD) in (None, ""):
            return []
        return [f"--threshold={self.parameterAsDouble(parameters, P.THRESHOLD, context)!r}"]

    # ------------------------------------------------------------------ running
    @staticmethod
    @contextlib.contextmanager
    def work_folder():
        """A fresh folder in the Processing temp folder, removed afterwards whatever happens."""
        work = Path(QgsProcessingUtils.tempFolder()) / f"gcnn_rnn_{uuid.uuid4().hex[:12]}"
        work.mkdir(parents=True)
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def engine(command: str, args: list[str], feedback, work: Path, **kwargs) -> dict:
        """Run one engine command; outputs go to ``work`` (cleaned on failure by the caller)."""
        rewrite = MessageRewriter(args, [str(work), QgsProcessingUtils.tempFolder()])
        try:
            result = run_engine(command, args, feedback, cleanup_dirs=[work], rewrite=rewrite,
                                **kwargs)
        except EngineError as exc:
            # a plain QgsProcessingException: QGIS shows its message, not a Python traceback
            raise QgsProcessingException(exc.message) from None
        if feedback is not None and feedback.isCanceled():
            raise QgsProcessingException("cancelled by the user")
        return result

    def deliver_rasters(self, spec: dict, parameters, context, work: Path, feedback,
                        label_suffix: str = "", mask_source=None,
                        required: tuple[str, ...] = (), run_label: str = "") -> dict:
        """Move the engine's rasters to the destinations, masked and registered for styling.

        ``spec`` maps a destination parameter name to ``(file name, kind, label)``. A raster of
        :data:`ALWAYS_DELIVERED` that the engine wrote (the exceedance map of a threshold) is
        delivered even without a destination: to a temporary file, loaded with the others.
        Loaded layers go into one layer-tree group per run (``run_label`` names it).
        """
        chosen = {}
        for name, (fname, kind, label) in spec.items():
            if self.parameterDefinition(name) is None:
                continue
            dest = self.parameterAsOutputLayer(parameters, name, context)
            src = work / fname
            if not src.is_file() and dest:
                derive(work, fname)  # e.g. the kriging standard deviation from the variance
            if not src.is_file():
                if name in required:
                    raise QgsProcessingException(f"the engine did not write {fname!r}")
                continue
            if not dest and name in ALWAYS_DELIVERED:
                dest = QgsProcessingUtils.generateTempFilename(fname)
                if any(context.willLoadLayerOnCompletion(c[1]) for c in chosen.values()):
                    context.addLayerToLoadOnCompletion(
                        dest, QgsProcessingContext.LayerDetails(label, context.project(), name))
            if dest:
                chosen[name] = (src, dest, kind, label)
        if mask_source is not None and chosen:
            apply_mask([c[0] for c in chosen.values()], mask_source, context, feedback)
        group = RunGroup(run_label or self.displayName())
        results = {}
        for name, (src, dest, kind, label) in chosen.items():
            if name == "EXCEEDANCE" and parameters.get(P.THRESHOLD) not in (None, ""):
                threshold = self.parameterAsDouble(parameters, P.THRESHOLD, context)
                label = f"{label} {threshold:g}"
            deliver_raster(src, Path(dest), work / "convert" / name)
            results[name] = dest
            suffix = (label_suffix[:-1] + ", squared units)" if name in SQUARED_UNITS
                      and label_suffix.endswith(")") else label_suffix)
            register_output(context, dest, kind, label + suffix, group, layer_rank(name))
        return results


# ---------------------------------------------------------------------- helpers
def _check_whole(need: int, cell: float, what: str, instead: str) -> None:
    """Refuse ``need`` bytes held for a whole grid over :data:`MAX_GRID_BYTES`, with the cell
    size that would fit (``what`` has a ``{gib}`` field for the size)."""
    if need > MAX_GRID_BYTES:
        fits = _cell_that_fits(cell, need, MAX_GRID_BYTES)
        raise QgsProcessingException(
            what.format(gib=f"{need / 1024**3:.1f}") + f", over the limit of "
            f"{MAX_GRID_BYTES / 1024**3:.0f} GiB; use a cell size of at least {fits:.4g} "
            + instead)


def _cell_that_fits(cell: float, need: float, limit: float) -> float:
    """The cell size that brings ``need`` (growing as 1 / cell², a 2D grid's cells) under
    ``limit``, with a 1 % margin for the grid's rounding to whole cells."""
    return cell * math.sqrt(need / max(limit, 1)) * 1.01


def check_disk_space(need: int, shape: str, outputs: int, cell: float) -> None:
    """Refuse ``outputs`` rasters of ``need`` bytes (float32 before compression: the most they
    can take) that the Processing temporary folder, where the engine writes, cannot hold."""
    folder = Path(QgsProcessingUtils.tempFolder())
    where = folder
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        raise QgsProcessingException(
            f"the output grid would have {shape}: its {outputs} rasters need up to "
            f"{_size(need)} of disk (float32, before compression), but the Processing "
            f"temporary folder {str(folder)!r} has {_size(free)} free; free space, set "
            "another temporary folder (Settings > Options > Processing), or use a cell size "
            f"of at least {_cell_that_fits(cell, need, free):.4g} or a smaller "
            "extent")


def _size(n: float) -> str:
    """``n`` bytes in the largest unit that keeps it >= 1 (KiB ... TiB), 3 digits."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


def deliver_raster(src: Path, dest: Path, scratch: Path) -> None:
    """Put the engine's GeoTIFF ``src`` (and its ``.qml`` style) at ``dest``, in the format
    that ``dest``'s extension names."""
    placed = write_raster_as(src, dest, scratch)
    qml = src.with_suffix(".qml")
    if qml.is_file() and dest.suffix:
        shutil.move(str(qml), str(dest.with_suffix(".qml")))
    for path in placed:
        aux = Path(str(path) + ".aux.xml")
        if aux.is_file() and aux not in placed:  # statistics of a previous file at dest
            aux.unlink()


def move_output(src: Path, dest: Path) -> None:
    """Move a file and its ``.qml`` sidecar to ``dest`` (replacing what is there)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dest))
    qml = src.with_suffix(".qml")
    if qml.is_file() and dest.suffix:
        shutil.move(str(qml), str(dest.with_suffix(".qml")))
    aux = Path(str(dest) + ".aux.xml")
    if aux.is_file():  # statistics of a previous file at dest
        aux.unlink()


def move_folder(src: Path, dest: Path) -> None:
    """Move the contents of folder ``src`` into ``dest`` (entries of the same name replaced)."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        shutil.move(str(entry), str(target))


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QgsProcessingException(f"cannot read the engine's {str(path)!r}: {exc}") from None
    return data if isinstance(data, dict) else {}
