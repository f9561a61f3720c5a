"""The hybrid GCNN-RNN model: kriging features → batched Conv1D/BiLSTM ensemble.

Modules (import them directly; importing this package does not import TensorFlow):

* :mod:`.config` — ``ModelConfig``, ``TrainConfig`` (frozen, JSON round-trip)
* :mod:`.layers`, :mod:`.build` — grouped Keras layers and ``build_model``
* :mod:`.train` — spatial validation groups, the training loop, the compiled ``Runtime``
* :mod:`.conformal` — split-conformal intervals and exceedance probabilities
* :mod:`.estimator` — ``HybridRegressor`` (scikit-learn compatible)
* :mod:`.bundle` — ``save_bundle`` / ``load_bundle`` (the model directory)
* :mod:`.outputs` — GeoTIFF / GeoPackage prediction outputs
* :mod:`.cv_methods` — ``linear`` and ``hybrid`` for :mod:`gcnn_rnn.core.cv`
* :mod:`.options` — the command-line flags shared by ``train``, ``cv`` and ``run``
"""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature lists) is noise on a user's
# terminal and in the QGIS log; real errors still show. A user's own setting wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
