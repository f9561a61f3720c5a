"""GCNN-RNN engine: QGIS-free geostatistics and hybrid deep-learning mapping.

Nothing here imports ``qgis``; the QGIS plugin talks to this package through its
command-line interface (``gcnn-rnn``) and a JSON-lines protocol.
"""

__version__ = "0.1.0"
