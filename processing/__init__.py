"""QGIS Processing side of GCNN-RNN: provider, algorithms and the engine runner.

Runs inside QGIS's own Python: it never imports ``gcnn_rnn.core`` or the engine's libraries and
talks to the engine through its command line (``python -m gcnn_rnn.core ... --json-progress``).
"""
