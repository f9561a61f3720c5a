"""The GCNN-RNN QGIS plugin: Processing provider, menu and toolbar actions."""

from __future__ import annotations

from qgis.core import QgsApplication

try:  # Qt 6 (QGIS 4): QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt 5 (QGIS 3)
    from qgis.PyQt.QtWidgets import QAction

from .processing.provider import GcnnRnnProvider, icon

MENU = "&GCNN-RNN"


class GcnnRnnPlugin:
    """Registers the ``gcnnrnn`` provider; in the desktop adds "Set up engine…" and "Variogram
    explorer…" to the Plugins menu and a toolbar.

    Parameters
    ----------
    iface : QgisInterface or None
        ``None`` under ``qgis_process`` (only :meth:`initProcessing` is called there).
    """

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: GcnnRnnProvider | None = None
        self.actions: list[QAction] = []
        self.toolbar = None
        self._dialogs: dict = {}

    # ------------------------------------------------------------------ Processing
    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        """Register the provider (called by QGIS, also under ``qgis_process``)."""
        if self.provider is None:
            provider = GcnnRnnProvider()
            # a refused provider (duplicate id) is deleted by the registry: keep only ours
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    # ------------------------------------------------------------------ GUI
    def initGui(self) -> None:  # noqa: N802 - QGIS API
        self.initProcessing()
        if self.iface is None:
            return
        parent = self.iface.mainWindow()
        self.toolbar = self.iface.addToolBar("GCNN-RNN")
        self.toolbar.setObjectName("GcnnRnnToolbar")
        for text, icon_name, slot, name in (
            ("Set up engine…", "setup", self.show_setup_dialog, "GcnnRnnSetupEngine"),
            ("Variogram explorer…", "variogram", self.show_variogram_explorer,
             "GcnnRnnVariogramExplorer"),
        ):
            action = QAction(icon(icon_name), text, parent)
            action.setObjectName(name)
            action.triggered.connect(slot)
            self.iface.addPluginToMenu(MENU, action)
            self.toolbar.addAction(action)
            self.actions.append(action)

    def unload(self) -> None:
        for action in self.actions:
            if self.iface is not None:
                self.iface.removePluginMenu(MENU, action)
            action.deleteLater()
        self.actions = []
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        for dialog in self._dialogs.values():
            dialog.close()
            dialog.deleteLater()
        self._dialogs.clear()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    # ------------------------------------------------------------------ dialogs
    def _dialog(self, key: str, factory):
        dialog = self._dialogs.get(key)
        if dialog is None:
            parent = self.iface.mainWindow() if self.iface is not None else None
            dialog = factory(parent)
            self._dialogs[key] = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def show_setup_dialog(self):
        from .ui.setup_dialog import SetupDialog

        return self._dialog("setup", SetupDialog)

    def show_variogram_explorer(self):
        from .ui.variogram_explorer import VariogramExplorer

        return self._dialog("explorer", lambda parent: VariogramExplorer(parent, self.iface))
