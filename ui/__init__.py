"""Dialogs of the GCNN-RNN plugin (engine set-up, variogram explorer); QGIS-side only."""
