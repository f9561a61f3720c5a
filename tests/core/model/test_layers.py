"""Grouped (batched-ensemble) layers against Keras' own layers with the same weights."""

from __future__ import annotations

import keras
import numpy as np

from gcnn_rnn.core.model.layers import (
    CUSTOM_OBJECTS,
    GroupedBiLSTM,
    GroupedConcatenate,
    GroupedConv1D,
    GroupedDense,
    MemberTile,
)

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.normal(size=shape).astype("float32")


def test_grouped_dense_is_one_dense_per_member():
    m, n_in, units = 3, 4, 5
    layer = GroupedDense(m, units, activation="tanh")
    x = _x(7, m * n_in)
    y = np.asarray(layer(x))
    w, b = (np.asarray(v) for v in (layer.kernel, layer.bias))
    for j in range(m):
        ref = np.tanh(x[:, j * n_in : (j + 1) * n_in] @ w[j] + b[j])
        np.testing.assert_allclose(y[:, j * units : (j + 1) * units], ref, rtol=1e-5, atol=1e-6)


def test_grouped_conv1d_matches_keras_conv1d_per_member():
    m, steps, n_in, filters, ks = 2, 9, 3, 4, 3
    layer = GroupedConv1D(m, filters, ks, activation="relu")
    x = _x(5, steps, n_in)
    y = np.asarray(layer(np.asarray(MemberTile(m)(x))))
    for j in range(m):
        ref_layer = keras.layers.Conv1D(filters, ks, padding="same", activation="relu")
        ref_layer.build((None, steps, n_in))
        kernel = np.asarray(layer.kernel)[j].reshape(ks, n_in, filters)
        ref_layer.set_weights([kernel, np.asarray(layer.bias)[j]])
        ref = np.asarray(ref_layer(x))
        np.testing.assert_allclose(y[..., j * filters : (j + 1) * filters], ref,
                                   rtol=1e-5, atol=1e-5)


def test_grouped_conv1d_stride_halves_the_sequence():
    layer = GroupedConv1D(2, 3, 3, strides=2)
    assert np.asarray(layer(_x(4, 16, 2 * 5))).shape == (4, 8, 2 * 3)


def test_grouped_bilstm_matches_keras_lstm_in_both_directions():
    m, steps, n_in, units = 2, 6, 3, 4
    layer = GroupedBiLSTM(m, units)
    x = _x(5, steps, n_in)
    y = np.asarray(layer(np.asarray(MemberTile(m)(x))))
    assert y.shape == (5, m * 2 * units)
    for j in range(m):
        for d, (w, r, b) in enumerate(layer.directions):
            ref_layer = keras.layers.LSTM(units, go_backwards=bool(d))
            ref_layer.build((None, steps, n_in))
            ref_layer.set_weights([np.asarray(w)[j], np.asarray(r)[j], np.asarray(b)[j]])
            ref = np.asarray(ref_layer(x))
            got = y[:, (2 * j + d) * units : (2 * j + d + 1) * units]
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_members_are_independent():
    m, n_in = 3, 2
    layer = GroupedDense(m, 4)
    x = _x(6, m * n_in)
    before = np.asarray(layer(x))
    kernel = np.asarray(layer.kernel).copy()
    kernel[1] += 1.0
    layer.kernel.assign(kernel)
    after = np.asarray(layer(x))
    np.testing.assert_array_equal(after[:, :4], before[:, :4])
    np.testing.assert_array_equal(after[:, 8:], before[:, 8:])
    assert not np.allclose(after[:, 4:8], before[:, 4:8])


def test_grouped_concatenate_keeps_members_together():
    a = np.arange(2 * 2, dtype="float32").reshape(1, 4)  # members (0, 1), 2 features each
    b = 100 + np.arange(2 * 3, dtype="float32").reshape(1, 6)  # 3 features each
    y = np.asarray(GroupedConcatenate(2)([a, b]))
    np.testing.assert_array_equal(y, [[0, 1, 100, 101, 102, 2, 3, 103, 104, 105]])


def test_model_saves_and_reloads(tmp_path):
    from gcnn_rnn.core.model.build import build_model
    from gcnn_rnn.core.model.config import ModelConfig

    cfg = ModelConfig(members=2, conv_filters=(4,), lstm_units=3, static_units=4,
                      head_units=(4,), conv_strides=2)
    net = build_model(cfg, 8, 5, 3)
    inputs = {"sequence": _x(4, 8, 5), "static": _x(4, 3)}
    path = tmp_path / "m.keras"
    net.save(path)
    again = keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    np.testing.assert_array_equal(np.asarray(net(inputs)), np.asarray(again(inputs)))
    assert np.asarray(net(inputs)).shape == (4, 2)


def test_linear_skip_adds_a_linear_function_of_the_static_features():
    from gcnn_rnn.core.model.build import build_model
    from gcnn_rnn.core.model.config import ModelConfig

    cfg = ModelConfig(members=2, conv_filters=(4,), lstm_units=3, static_units=4,
                      head_units=(4,), linear_skip=True)
    net = build_model(cfg, 8, 5, 3)
    inputs = {"sequence": _x(6, 8, 5), "static": _x(6, 3)}
    deep = net.get_layer("members")
    deep.kernel.assign(np.zeros(deep.kernel.shape))  # silence the deep path: only its bias
    skip = net.get_layer("linear_skip")
    w, b = np.asarray(skip.kernel), np.asarray(skip.bias)
    ref = np.stack([inputs["static"] @ w[j][:, 0] + b[j, 0] for j in range(2)], axis=1)
    ref = ref + np.asarray(deep.bias)[:, 0]
    np.testing.assert_allclose(np.asarray(net(inputs)), ref, rtol=1e-5, atol=1e-6)
