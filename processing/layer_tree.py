"""One layer-tree group per run, its layers in a fixed reading order (prediction on top).

Processing adds each loaded output at the top of the layer tree in no particular order, so a
variance raster can hide the prediction, and two runs give two indistinguishable "Kriging
estimate" layers. The styling post-processor hands each loaded layer to the run's
:class:`RunGroup`, which moves it into a group named after the run and its time, sorted by
:data:`LAYER_ORDER`.
"""

from __future__ import annotations

import time
import uuid

from qgis.core import QgsLayerTreeGroup, QgsProject

#: Output parameter names from top to bottom of a run's group: what the run is for first,
#: then the bounds and probabilities, the uncertainty rasters last.
LAYER_ORDER = ("PREDICTION", "ESTIMATE", "KRIGING_ESTIMATE", "EXCEEDANCE", "INTERVAL_LOWER",
               "INTERVAL_UPPER", "PREDICTION_STD", "STD", "VARIANCE", "KRIGING_VARIANCE")

RUN_KEY = "gcnn_rnn/run"
ORDER_KEY = "gcnn_rnn/order"


def layer_rank(output_name: str) -> int:
    """Position of an output in :data:`LAYER_ORDER` (unknown names go last)."""
    return LAYER_ORDER.index(output_name) if output_name in LAYER_ORDER else len(LAYER_ORDER)


class RunGroup:
    """The layer-tree group of one algorithm run (created when its first layer arrives)."""

    def __init__(self, title: str) -> None:
        self.title = f"{title} — {time.strftime('%H:%M:%S')}"
        self.key = uuid.uuid4().hex

    def place(self, layer, rank: int, project: QgsProject | None = None) -> None:
        """Move ``layer``'s tree node into this run's group, sorted by ``rank``."""
        project = project or QgsProject.instance()
        root = project.layerTreeRoot()
        node = root.findLayer(layer.id())
        if node is None:
            return
        parent = node.parent() if isinstance(node.parent(), QgsLayerTreeGroup) else root
        group = self._group(root) or self._new_group(parent)
        index = sum(1 for child in group.children()
                    if int(child.customProperty(ORDER_KEY, 0) or 0) <= rank)
        clone = node.clone()
        clone.setCustomProperty(ORDER_KEY, rank)
        group.insertChildNode(index, clone)
        node.parent().removeChildNode(node)

    def _group(self, root):
        for group in root.findGroups(True) if hasattr(root, "findGroups") else []:
            if group.customProperty(RUN_KEY) == self.key:
                return group
        return None

    def _new_group(self, parent):
        group = parent.insertGroup(0, self.title)
        group.setCustomProperty(RUN_KEY, self.key)
        return group
