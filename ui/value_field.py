"""The value-field widget of the algorithm dialogs: defaults to a measured value, never ``fid``.

QGIS's own field widget selects the layer's first numeric field, which in a GeoPackage is the
feature id ``fid`` (or a coordinate column ``x``). This wrapper, named in the ``FIELD``
parameter's ``widget_wrapper`` metadata, selects ``checks.preferred_value_field`` instead. It
extends QGIS 3's Python field wrapper, which QGIS 4 drops: there the (optional) parameter
keeps QGIS's stock widget, which starts empty, and the algorithm itself resolves an empty field
to the same preferred field (``EngineAlgorithm.value_field``; see ``params.value_field_param``).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # "deprecated, removed in QGIS 4": used on QGIS 3 only
    warnings.simplefilter("ignore", DeprecationWarning)
    from processing.gui.wrappers import (
        DIALOG_BATCH,
        DIALOG_STANDARD,
        TableFieldWidgetWrapper,
    )

from ..processing.algorithms.checks import preferred_value_field


class ValueFieldWidgetWrapper(TableFieldWidgetWrapper):
    """A single numeric field combo box that starts on the preferred value field."""

    def __init__(self, *args, **kwargs) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(*args, **kwargs)

    def refreshItems(self) -> None:  # noqa: N802 - QGIS API
        super().refreshItems()
        if self.dialogType not in (DIALOG_STANDARD, DIALOG_BATCH):
            return
        if self.parameterDefinition().allowMultiple() or self._layer is None:
            return
        preferred = preferred_value_field(self._layer)
        if preferred:
            self.widget.setField(preferred)
