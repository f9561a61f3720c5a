"""The NumPy forward pass against the Keras model it replaces at prediction time.

The grouped Keras layers are checked against Keras' own Conv1D/LSTM/Dense in
``test_layers.py``; here the whole network of :func:`build_model`, with random weights large
enough to drive every gate and ReLU through its range, must give the same member outputs.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gcnn_rnn.core.model.build import build_model
from gcnn_rnn.core.model.config import ModelConfig
from gcnn_rnn.core.model.forward import BLOCK_ROWS, EnsembleForward

ARCHITECTURES = [
    ModelConfig(),  # the default: 5 members, Conv1D(32, 3, stride 2), BiLSTM(24), head 48
    ModelConfig(members=1, conv_filters=(), lstm_units=4, static_units=3, head_units=()),
    ModelConfig(members=3, conv_filters=(6, 5), kernel_size=2, conv_strides=1, lstm_units=7,
                static_units=4, head_units=(9, 5), linear_skip=True),
    ModelConfig(members=2, conv_filters=(8,), kernel_size=4, conv_strides=3, lstm_units=5,
                static_units=6, head_units=(4,)),
]


def _randomised(model: keras.Model, rng: np.random.Generator) -> list[np.ndarray]:
    weights = [rng.normal(0.0, 0.6, w.shape).astype("float32") for w in model.weights]
    model.set_weights(weights)
    return weights


@pytest.mark.parametrize("cfg", ARCHITECTURES, ids=lambda c: f"m{c.members}-conv{c.conv_filters}")
@pytest.mark.parametrize("steps", [16, 7])
def test_forward_equals_the_keras_model(cfg: ModelConfig, steps: int):
    rng = np.random.default_rng(steps)
    n_seq, n_static, rows = 5, 4, 300
    model = build_model(cfg, steps, n_seq, n_static)
    weights = _randomised(model, rng)
    inputs = {"sequence": rng.normal(size=(rows, steps, n_seq)).astype("float32"),
              "static": rng.normal(size=(rows, n_static)).astype("float32")}
    ref = np.asarray(model(inputs, training=False))
    out = EnsembleForward(cfg, weights, steps, n_seq, n_static)(inputs)
    assert out.shape == (rows, cfg.members) and out.dtype == np.float32
    # float32 rounding of differently ordered sums, relative to the outputs' size
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5 * max(1.0, np.abs(ref).max()))
    assert np.abs(ref).max() > 0.5  # the weights really drove the network


def test_threads_and_blocks_do_not_change_the_floats():
    cfg = ModelConfig(members=2, lstm_units=6, static_units=4, head_units=(5,))
    rng = np.random.default_rng(3)
    model = build_model(cfg, 16, 3, 2)
    fwd = EnsembleForward(cfg, _randomised(model, rng), 16, 3, 2)
    rows = 2 * BLOCK_ROWS + 17  # three blocks, the last one short
    inputs = {"sequence": rng.normal(size=(rows, 16, 3)).astype("float32"),
              "static": rng.normal(size=(rows, 2)).astype("float32")}
    one = fwd(inputs, threads=1)
    np.testing.assert_array_equal(fwd(inputs, threads=2), one)
    # a row's output depends only on that row, whatever block it falls in
    part = {k: v[BLOCK_ROWS - 5 : BLOCK_ROWS + 5] for k, v in inputs.items()}
    np.testing.assert_allclose(fwd(part), one[BLOCK_ROWS - 5 : BLOCK_ROWS + 5], rtol=0,
                               atol=1e-6)


def test_weights_of_another_architecture_are_refused():
    cfg = ModelConfig(members=2, lstm_units=6)
    weights = build_model(cfg, 8, 3, 2).get_weights()
    with pytest.raises(ValueError):
        EnsembleForward(ModelConfig(members=2, lstm_units=6, linear_skip=True), weights, 8, 3, 2)
    with pytest.raises(ValueError):
        EnsembleForward(ModelConfig(members=2, lstm_units=5), weights, 8, 3, 2)
    fwd = EnsembleForward(cfg, weights, 8, 3, 2)
    with pytest.raises(ValueError, match="input shapes"):
        fwd({"sequence": np.zeros((4, 9, 3), "float32"), "static": np.zeros((4, 2), "float32")})
