"""The plugin loads in QGIS, registers the provider and cleans up after itself."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

from qgis.core import QgsApplication

REPO = Path(__file__).resolve().parents[2]
ALGORITHMS = ("fitvariogram", "ordinarykriging", "krigingexternaldrift", "crossvalidate",
              "trainhybrid", "predicthybrid", "hybridinterpolation", "gaussiansimulation")


class MenuRecorder:
    """The pytest-qgis iface stub has no removePluginMenu; record menu calls instead."""

    def __init__(self, iface):
        self.added, self.removed = [], []
        iface.addPluginToMenu = lambda menu, action: self.added.append((menu, action))
        iface.removePluginMenu = lambda menu, action: self.removed.append((menu, action))


def test_class_factory_registers_provider_and_actions(qgis_iface, no_provider):
    import gcnn_rnn

    menus = MenuRecorder(qgis_iface)
    plugin = gcnn_rnn.classFactory(qgis_iface)
    plugin.initProcessing()
    plugin.initGui()
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("gcnnrnn")
    try:
        assert provider is not None
        assert provider.name() == "GCNN-RNN"
        assert not provider.icon().isNull()
        ids = {alg.id() for alg in provider.algorithms()}
        assert ids == {f"gcnnrnn:{a}" for a in ALGORITHMS}
        texts = [action.text() for _, action in menus.added]
        assert texts == ["Set up engine…", "Variogram explorer…"]
        assert all(menu == "&GCNN-RNN" for menu, _ in menus.added)
        assert [a.text() for a in plugin.toolbar.actions()] == texts
        for action, key in zip(plugin.actions, ("setup", "explorer")):
            action.trigger()
            assert plugin._dialogs[key].isVisible()
        assert "GCNN-RNN" in plugin._dialogs["setup"].windowTitle()
    finally:
        plugin.unload()
    assert registry.providerById("gcnnrnn") is None
    assert [a for _, a in menus.removed] == [a for _, a in menus.added]


def test_class_factory_without_iface_registers_only_the_provider(no_provider):
    """Under qgis_process ``iface`` is None: only initProcessing runs."""
    import gcnn_rnn

    plugin = gcnn_rnn.classFactory(None)
    plugin.initProcessing()
    plugin.initGui()  # must not touch the missing iface
    try:
        assert QgsApplication.processingRegistry().providerById("gcnnrnn") is not None
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("gcnnrnn") is None


def test_a_second_registration_is_refused_cleanly(provider):
    """Loading the plugin while a gcnnrnn provider exists must not break unload."""
    import gcnn_rnn

    plugin = gcnn_rnn.classFactory(None)
    plugin.initProcessing()
    assert plugin.provider is None
    plugin.unload()
    assert QgsApplication.processingRegistry().providerById("gcnnrnn") is provider


def test_algorithms_have_metadata(provider):
    for alg in provider.algorithms():
        assert alg.group() and alg.groupId()
        assert len(alg.tags()) >= 4
        assert not alg.icon().isNull()
        help_text = alg.shortHelpString()
        assert "Anvari" in help_text and "Benndorf" in help_text
        for param in alg.parameterDefinitions():
            assert param.name().isupper(), param.name()
            assert param.help(), f"{alg.id()} {param.name()} has no help"
            assert param.name() in help_text


def test_metadata_is_complete():
    meta = configparser.ConfigParser()
    meta.read(REPO / "metadata.txt", encoding="utf-8")
    g = meta["general"]
    assert g["name"] == "GCNN-RNN"
    assert g["qgisMinimumVersion"] == "3.22"
    assert g["qgisMaximumVersion"] == "4.99"
    assert g["hasProcessingProvider"] == "yes"
    assert g["version"] == "0.1.0"
    for key in ("description", "about", "author", "email", "tracker", "repository", "homepage",
                "icon"):
        assert g[key].strip(), key
    assert (REPO / g["icon"]).is_file()
    for dep in ("numpy", "scipy", "geopandas", "rasterio", "TensorFlow"):
        assert dep in g["about"]


def test_qgis_process_lists_the_provider(qgis_process_env):
    exe, env = qgis_process_env
    plugins = subprocess.run([exe, "plugins"], env=env, capture_output=True, text=True,
                             timeout=180)
    assert "gcnn_rnn" in plugins.stdout
    proc = subprocess.run([exe, "list"], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "GCNN-RNN" in proc.stdout
    for alg in ALGORITHMS:
        assert f"gcnnrnn:{alg}" in proc.stdout
