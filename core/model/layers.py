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


def _member_matmul(x, kernel):
    """Per-member product: ``x (members, rows, in) @ kernel (members, in, out)``."""
    return ops.matmul(x, kernel)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MemberTile(keras.layers.Layer):
    """Give every member its own copy of the input features.

    Input ``(batch, ..., f)`` → output ``(batch, ..., members * f)``, member-major.
    """

    def __init__(self, members: int, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)

    def call(self, x):
        reps = [1] * (len(x.shape) - 1) + [self.members]
        return ops.tile(x, reps)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.members * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "members": self.members}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedDense(keras.layers.Layer):
    """A dense layer with separate weights per member.

    Input ``(batch, members * in)`` → output ``(batch, members * units)`` (member-major);
    kernel ``(members, in, units)``, bias ``(members, units)``. Computed as one batched
    matrix product over the member axis.
    """

    def __init__(self, members: int, units: int, activation=None, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.l2 = float(l2)

    def build(self, input_shape):
        self._n_in = int(input_shape[-1]) // self.members
        self.kernel = self.add_weight(
            name="kernel", shape=(self.members, self._n_in, self.units),
            initializer=_GroupedGlorot(), regularizer=_regulariser(self.l2),
        )
        self.bias = self.add_weight(name="bias", shape=(self.members, self.units),
                                    initializer="zeros")

    def call(self, x):
        m = self.members
        xm = ops.transpose(ops.reshape(x, (-1, m, self._n_in)), (1, 0, 2))  # (m, b, in)
        y = _member_matmul(xm, self.kernel) + self.bias[:, None, :]
        y = ops.reshape(ops.transpose(y, (1, 0, 2)), (-1, m * self.units))
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members * self.units)

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
    """A 1-D convolution over the neighbour axis with separate weights per member.

    Input ``(batch, steps, members * in)`` → output ``(batch, ceil(steps / strides),
    members * filters)`` ('same' padding); kernel ``(members, kernel_size * in, filters)``
    acting on the stacked window of ``kernel_size`` neighbours.
    """

    def __init__(self, members: int, filters: int, kernel_size: int = 3, strides: int = 1,
                 activation="relu", l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.activation = keras.activations.get(activation)
        self.l2 = float(l2)

    def build(self, input_shape):
        self._n_in = int(input_shape[-1]) // self.members
        self.kernel = self.add_weight(
            name="kernel", shape=(self.members, self.kernel_size * self._n_in, self.filters),
            initializer=_GroupedGlorot(), regularizer=_regulariser(self.l2),
        )
        self.bias = self.add_weight(name="bias", shape=(self.members, self.filters),
                                    initializer="zeros")

    def call(self, x):
        ks, m, n_in = self.kernel_size, self.members, self._n_in
        left = (ks - 1) // 2
        steps = x.shape[1]
        padded = ops.pad(x, [[0, 0], [left, ks - 1 - left], [0, 0]])
        shifted = [padded[:, i : i + steps : self.strides, :] for i in range(ks)]
        out_steps = shifted[0].shape[1]
        # (batch, out_steps, m, ks, in) → (m, batch * out_steps, ks * in)
        window = ops.stack([ops.reshape(t, (-1, out_steps, m, n_in)) for t in shifted], axis=3)
        window = ops.transpose(window, (2, 0, 1, 3, 4))
        window = ops.reshape(window, (m, -1, ks * n_in))
        y = _member_matmul(window, self.kernel) + self.bias[:, None, :]  # (m, b*os, f)
        y = ops.reshape(y, (m, -1, out_steps, self.filters))
        y = ops.reshape(ops.transpose(y, (1, 2, 0, 3)), (-1, out_steps, m * self.filters))
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else -(-input_shape[1] // self.strides)
        return (input_shape[0], steps, self.members * self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "members": self.members,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "activation": keras.activations.serialize(self.activation),
            "l2": self.l2,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedBiLSTM(keras.layers.Layer):
    """A bidirectional LSTM over the neighbour sequence with separate weights per member.

    Input ``(batch, steps, members * in)`` → output ``(batch, members * 2 * units)``: per
    member the final hidden state of the forward pass (nearest → farthest) followed by that of
    the backward pass. Weights per direction: kernel ``(members, in, 4 units)``, recurrent
    kernel ``(members, units, 4 units)``, bias ``(members, 4 units)``; gate order i, f, g, o
    and forget-gate bias one, as in Keras' LSTM.

    Both directions of all members advance together as ``2 * members`` groups (the backward
    groups read the reversed sequence); each step is one batched matrix product, and the short,
    fixed sequence is unrolled, which keeps the number of (slow, small) CPU ops low.
    """

    def __init__(self, members: int, units: int, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)
        self.units = int(units)
        self.l2 = float(l2)

    def build(self, input_shape):
        self._n_in = int(input_shape[-1]) // self.members
        m, u = self.members, self.units
        self.directions = []
        for direction in ("forward", "backward"):
            w = self.add_weight(name=f"{direction}_kernel", shape=(m, self._n_in, 4 * u),
                                initializer=_GroupedGlorot(), regularizer=_regulariser(self.l2))
            r = self.add_weight(name=f"{direction}_recurrent", shape=(m, u, 4 * u),
                                initializer=_GroupedOrthogonal())
            b = self.add_weight(name=f"{direction}_bias", shape=(m, 4 * u),
                                initializer=_ForgetBias(u))
            self.directions.append((w, r, b))

    def call(self, x):
        m, u, n_in = self.members, self.units, self._n_in
        steps = x.shape[1]
        (wf, rf, bf), (wb, rb, bb) = self.directions
        xm = ops.transpose(ops.reshape(x, (-1, steps, m, n_in)), (2, 0, 1, 3))  # (m,b,k,in)
        both = ops.concatenate([xm, ops.flip(xm, axis=2)], axis=0)  # (2m, b, k, in)
        w = ops.concatenate([wf, wb], axis=0)
        r = ops.concatenate([rf, rb], axis=0)
        bias = ops.concatenate([bf, bb], axis=0)[:, None, :]
        proj = _member_matmul(ops.reshape(both, (2 * m, -1, n_in)), w) + bias
        proj = ops.reshape(proj, (2 * m, -1, steps, 4 * u))
        h = c = None
        for t, z in enumerate(ops.unstack(proj, axis=2)):
            if t:
                z = z + _member_matmul(h, r)
            i, f, g, o = ops.split(z, 4, axis=-1)
            i, g, o = ops.sigmoid(i), ops.tanh(g), ops.sigmoid(o)
            c = i * g if c is None else ops.sigmoid(f) * c + i * g
            h = o * ops.tanh(c)
        # (direction, member, batch, unit) → (batch, member, direction, unit)
        h = ops.transpose(ops.reshape(h, (2, m, -1, u)), (2, 1, 0, 3))
        return ops.reshape(h, (-1, m * 2 * u))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members * 2 * self.units)

    def get_config(self):
        return {**super().get_config(), "members": self.members, "units": self.units,
                "l2": self.l2}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedConcatenate(keras.layers.Layer):
    """Concatenate member-major feature blocks member by member.

    Inputs ``(batch, members * c_i)`` → output ``(batch, members * sum(c_i))`` with each
    member's features kept together.
    """

    def __init__(self, members: int, **kwargs):
        super().__init__(**kwargs)
        self.members = int(members)

    def call(self, inputs):
        m = self.members
        parts = [ops.reshape(t, (-1, m, t.shape[-1] // m)) for t in inputs]
        joined = ops.concatenate(parts, axis=-1)
        return ops.reshape(joined, (-1, joined.shape[1] * joined.shape[2]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], sum(int(s[-1]) for s in input_shape))

    def get_config(self):
        return {**super().get_config(), "members": self.members}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupedDropout(keras.layers.Layer):
    """Dropout whose mask is drawn independently for every member's features."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self._gen = keras.random.SeedGenerator(seed) if seed is not None else None
        self._initial_state = (None if self._gen is None
                               else ops.convert_to_numpy(self._gen.state.value).copy())

    def reset_seed(self) -> None:
        """Restart the dropout masks' random stream (for a reproducible refit)."""
        if self._gen is not None:
            self._gen.state.assign(self._initial_state)

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
    for cls in (MemberTile, GroupedDense, GroupedConv1D, GroupedBiLSTM, GroupedConcatenate,
                GroupedDropout,
                _GroupedGlorot, _GroupedOrthogonal, _ForgetBias)
}
