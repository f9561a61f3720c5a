"""Grouped ("batched ensemble") Keras layers: M independent members inside one model.

Every tensor between these layers carries a member axis right after the batch axis, and every
weight has the member axis first, so the M members of an ensemble share nothing but the
computation graph. Training M members then costs about one larger model's step instead of M
separate ``fit`` calls (what makes the 60-second demo possible on two CPU cores), and member
``m`` can be cut out of (or put back into) the weights by indexing the leading axis
(:func:`member_weights`, :func:`stack_member_weights`).

All layers create their weights in ``build()`` and implement ``get_config`` so a saved
``.keras`` file reloads without this module having to be imported by hand.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "gcnn_rnn"


def _regulariser(l2: float):
    return keras.regularizers.L2(l2) if l2 > 0 else None


@keras.saving.register_keras_serializable(package=PACKAGE)
class MemberTile(keras.layers.Layer):
    """Repeat an input for every member.

    Input shape ``(batch, *rest)`` → output ``(batch, members, *rest)``.
    """

    def __init__(self, members: int, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)

    def call(self, x):
        x = ops.expand_dims(x, 1)
        reps = [1, self.members] + [1] * (len(x.shape) - 2)
        return ops.tile(x, reps)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "members": self.members}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedDense(keras.layers.Layer):
    """A dense layer with separate weights per member.

    Input ``(batch, members, ..., in)`` → output ``(batch, members, ..., units)``; kernel
    ``(members, in, units)``, bias ``(members, units)``.
    """

    def __init__(self, members: int, units: int, activation=None, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.l2 = float(l2)

    def build(self, input_shape):
        n_in = int(input_shape[-1])
        self._rank = len(input_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=(self.members, n_in, self.units),
            initializer=_GroupedGlorot(), regularizer=_regulariser(self.l2),
        )
        self.bias = self.add_weight(name="bias", shape=(self.members, self.units),
                                    initializer="zeros")

    def call(self, x):
        if self._rank == 3:
            y = ops.einsum("bmi,mio->bmo", x, self.kernel)
            y = y + self.bias[None]
        else:  # (batch, members, steps, in)
            y = ops.einsum("bmki,mio->bmko", x, self.kernel)
            y = y + self.bias[None, :, None, :]
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "members": self.members,
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "l2": self.l2,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedConv1D(keras.layers.Layer):
    """A 'same'-padded 1-D convolution over the neighbour axis, separate weights per member.

    Input ``(batch, members, steps, in)`` → output ``(batch, members, steps, filters)``;
    kernel ``(members, kernel_size * in, filters)`` acting on the stacked window.
    """

    def __init__(self, members: int, filters: int, kernel_size: int = 3, activation="relu",
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.activation = keras.activations.get(activation)
        self.l2 = float(l2)

    def build(self, input_shape):
        n_in = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(self.members, self.kernel_size * n_in, self.filters),
            initializer=_GroupedGlorot(), regularizer=_regulariser(self.l2),
        )
        self.bias = self.add_weight(name="bias", shape=(self.members, self.filters),
                                    initializer="zeros")

    def call(self, x):
        ks = self.kernel_size
        left = (ks - 1) // 2
        right = ks - 1 - left
        steps = x.shape[2]
        padded = ops.pad(x, [[0, 0], [0, 0], [left, right], [0, 0]])
        window = ops.concatenate([padded[:, :, i : i + steps, :] for i in range(ks)], axis=-1)
        y = ops.einsum("bmki,mio->bmko", window, self.kernel) + self.bias[None, :, None, :]
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "members": self.members,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
            "l2": self.l2,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedBiLSTM(keras.layers.Layer):
    """A bidirectional LSTM over the neighbour sequence, separate weights per member.

    Input ``(batch, members, steps, in)`` → output ``(batch, members, 2 * units)``: the final
    hidden state of the forward pass (nearest → farthest) concatenated with that of the
    backward pass. The short, fixed sequence (the k nearest samples) is unrolled, which is
    faster on a CPU than a symbolic loop. Gates follow Keras' LSTM (i, f, c, o; forget-gate
    bias initialised to one).
    """

    def __init__(self, members: int, units: int, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)
        self.units = int(units)
        self.l2 = float(l2)

    def build(self, input_shape):
        n_in = int(input_shape[-1])
        m, u = self.members, self.units
        self.cells = []
        for direction in ("forward", "backward"):
            w = self.add_weight(name=f"{direction}_kernel", shape=(m, n_in, 4 * u),
                                initializer=_GroupedGlorot(), regularizer=_regulariser(self.l2))
            r = self.add_weight(name=f"{direction}_recurrent", shape=(m, u, 4 * u),
                                initializer=_GroupedOrthogonal())
            b = self.add_weight(name=f"{direction}_bias", shape=(m, 4 * u),
                                initializer=_ForgetBias(u))
            self.cells.append((w, r, b))

    def _run(self, x_proj, recurrent, steps_order):
        u = self.units
        h = c = None
        for t in steps_order:
            z = x_proj[:, :, t, :]
            if h is not None:
                z = z + ops.einsum("bmh,mhg->bmg", h, recurrent)
            i = ops.sigmoid(z[..., :u])
            f = ops.sigmoid(z[..., u : 2 * u])
            g = ops.tanh(z[..., 2 * u : 3 * u])
            o = ops.sigmoid(z[..., 3 * u :])
            c = i * g if c is None else f * c + i * g
            h = o * ops.tanh(c)
        return h

    def call(self, x):
        steps = x.shape[2]
        outs = []
        for (w, r, b), order in zip(self.cells, (range(steps), range(steps - 1, -1, -1))):
            proj = ops.einsum("bmki,mig->bmkg", x, w) + b[None, :, None, :]
            outs.append(self._run(proj, r, order))
        return ops.concatenate(outs, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * self.units)

    def get_config(self):
        return {**super().get_config(), "members": self.members, "units": self.units,
                "l2": self.l2}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedDropout(keras.layers.Layer):
    """Dropout with an independent mask per member (plain ``Dropout`` already is)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self._gen = keras.random.SeedGenerator(seed) if seed is not None else None

    def call(self, x, training=None):
        if not training or self.rate <= 0:
            return x
        return keras.random.dropout(x, self.rate, seed=self._gen)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# --------------------------------------------------------------------------- initialisers
@keras.saving.register_keras_serializable(package=PACKAGE)
class _GroupedGlorot(keras.initializers.Initializer):
    """Glorot-uniform per member for a kernel of shape ``(members, fan_in, fan_out)``."""

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = shape[-2], shape[-1]
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        return keras.random.uniform(shape, -limit, limit, dtype=dtype,
                                    seed=_init_seed())

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package=PACKAGE)
class _GroupedOrthogonal(keras.initializers.Initializer):
    """An orthogonal ``(units, 4 units)`` recurrent kernel per member."""

    def __call__(self, shape, dtype=None):
        ortho = keras.initializers.Orthogonal(seed=_init_seed())
        return ops.stack([ortho(shape[1:], dtype=dtype) for _ in range(shape[0])], axis=0)

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package=PACKAGE)
class _ForgetBias(keras.initializers.Initializer):
    """LSTM bias ``(members, 4 units)``: zeros, ones on the forget gate."""

    def __init__(self, units: int):
        self.units = int(units)

    def __call__(self, shape, dtype=None):
        u = self.units
        row = ops.concatenate([ops.zeros((u,)), ops.ones((u,)), ops.zeros((2 * u,))])
        return ops.cast(ops.tile(row[None], (shape[0], 1)), dtype or "float32")

    def get_config(self):
        return {"units": self.units}


def _init_seed() -> int:
    """A fresh initialiser seed from numpy's global RNG.

    ``keras.utils.set_random_seed`` seeds that RNG, so initialisation is reproducible while
    every weight (and every member) gets its own stream.
    """
    import numpy as np

    return int(np.random.randint(0, 2**31 - 1))


CUSTOM_OBJECTS = {
    cls.__name__: cls
    for cls in (MemberTile, GroupedDense, GroupedConv1D, GroupedBiLSTM, GroupedDropout,
                _GroupedGlorot, _GroupedOrthogonal, _ForgetBias)
}
