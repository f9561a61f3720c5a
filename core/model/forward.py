"""The trained ensemble's forward pass in NumPy, for prediction.

Training needs TensorFlow (gradients, the optimizer); prediction does not. Evaluating the
grouped Conv1D/BiLSTM ensemble of :func:`~.build.build_model` through Keras costs a graph
call per batch and runs its element-wise ops (the LSTM gates are most of them) through
kernels built without AVX-512. Here the same arithmetic runs as float32 NumPy in a layout
chosen for it: features on the middle axis and the rows of a block on the last, so every
matrix product is one BLAS call per member and every gate is a contiguous slab:

* activations are ``(members, features, rows)``; a weight ``(members, in, out)`` is applied
  as ``W^T @ X``;
* the LSTM gates are reordered i, f, o, g and the rows of the three sigmoid gates are scaled
  by 1/2 in the weights (exact: a power of two), so one ``tanh`` over all four gates gives
  ``tanh(g)`` and, through ``sigmoid(x) = (1 + tanh(x / 2)) / 2``, the other three;
* a step of the LSTM is one product per member and direction, ``[W | b | U] @ [x_t; 1;
  h]``: projecting the whole sequence first stores and re-reads gates of every step, larger
  than a core's L2 cache (measured: the LSTM 1.5x faster this way with AVX-512 kernels);
* row blocks run on ``threads`` threads (NumPy and BLAS release the GIL); every block is
  computed the same way whatever the number of threads, so the floats do not depend on it.

The result equals the Keras model's to float32 rounding (about 1e-7 of the output;
``tests/core/model/test_forward.py`` compares both on every architecture option).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .config import ModelConfig

#: Rows per block: the LSTM's gates of a block (2 × members × 4 units × rows float32, 1 MB
#: for the default network) stay in a core's L2 cache (measured: 256 rows 30 % faster than
#: 1,024, no gain below).
BLOCK_ROWS = 256


def _t(kernel: np.ndarray) -> np.ndarray:
    """``(members, in, out)`` → contiguous float32 ``(members, out, in)``."""
    return np.ascontiguousarray(np.asarray(kernel, dtype=np.float32).transpose(0, 2, 1))


def _col(bias: np.ndarray) -> np.ndarray:
    """``(members, out)`` → float32 ``(members, out, 1)``."""
    return np.asarray(bias, dtype=np.float32)[:, :, None]


def weight_shapes(config: ModelConfig, n_steps: int, n_sequence: int,
                  n_static: int) -> list[tuple[int, ...]]:
    """The shapes of the weights of :func:`~.build.build_model`'s network, in
    ``keras.Model.weights`` order."""
    m, u, su = int(config.members), int(config.lstm_units), int(config.static_units)
    shapes: list[tuple[int, ...]] = []
    n_in = int(n_sequence)
    for filters in config.conv_filters:
        shapes += [(m, int(config.kernel_size) * n_in, int(filters)), (m, int(filters))]
        n_in = int(filters)
    for _ in ("forward", "backward"):
        shapes += [(m, n_in, 4 * u), (m, u, 4 * u), (m, 4 * u)]
    shapes += [(m, int(n_static), su), (m, su)]
    n_in = 2 * u + su
    for units in config.head_units:
        shapes += [(m, n_in, int(units)), (m, int(units))]
        n_in = int(units)
    shapes += [(m, n_in, 1), (m, 1)]
    if config.linear_skip:
        shapes += [(m, int(n_static), 1), (m, 1)]
    return shapes


@dataclass(frozen=True)
class _Conv:
    kernel: np.ndarray  # (m, filters, ks * in)
    bias: np.ndarray  # (m, filters, 1)
    size: int
    stride: int


class EnsembleForward:
    """Member outputs ``(n, members)`` of a trained ensemble for scaled inputs.

    Parameters
    ----------
    config : ModelConfig
        The architecture (as trained).
    weights : list of ndarray
        The model's weights in ``keras.Model.weights`` order (``HybridRegressor.weights_``).
    n_steps, n_sequence, n_static : int
        Input shapes: sequence length, features per neighbour, static features.
    """

    def __init__(self, config: ModelConfig, weights: list[np.ndarray], n_steps: int,
                 n_sequence: int, n_static: int):
        self.members = int(config.members)
        self.units = int(config.lstm_units)
        self.shapes = (int(n_steps), int(n_sequence), int(n_static))
        want = weight_shapes(config, *self.shapes)
        got = [tuple(np.shape(w)) for w in weights]
        if got != want:
            raise ValueError(f"the weights (shapes {got}) do not match the architecture "
                             f"{config} (shapes {want})")
        self._unpack(config, list(weights))

    def _unpack(self, config: ModelConfig, weights: list[np.ndarray]) -> None:
        u = self.units
        it = iter(weights)
        self.convs = []
        for _ in config.conv_filters:
            kernel, bias = next(it), next(it)
            self.convs.append(_Conv(_t(kernel), _col(bias), int(config.kernel_size),
                                    int(config.conv_strides)))
        # gates i, f, g, o → i, f, o, g; the sigmoid gates' rows halved (see the module doc)
        order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
        half = np.r_[np.full(3 * u, 0.5), np.ones(u)].astype(np.float32)
        lstm = []
        for _ in ("forward", "backward"):
            kernel, recurrent, bias = next(it), next(it), next(it)
            lstm.append((_t(np.asarray(kernel)[:, :, order] * half),
                         _t(np.asarray(recurrent)[:, :, order] * half),
                         _col(np.asarray(bias)[:, order] * half)))
        # one product per step and direction: [input kernel | bias | recurrent kernel] applied
        # to [x_t; 1; h_(t-1)], so no projection of the whole sequence is stored and re-read
        self.lstm_step = np.stack([np.concatenate([k, b, r], axis=2) for k, r, b in lstm])
        self.static = (_t(next(it)), _col(next(it)))
        self.heads = [(_t(next(it)), _col(next(it))) for _ in config.head_units]
        self.output = (_t(next(it)), _col(next(it)))
        self.linear = (_t(next(it)), _col(next(it))) if config.linear_skip else None

    def __call__(self, inputs: dict[str, np.ndarray], threads: int = 1) -> np.ndarray:
        seq = np.asarray(inputs["sequence"], dtype=np.float32)
        sta = np.asarray(inputs["static"], dtype=np.float32)
        n = len(sta)
        if seq.shape[1:] != self.shapes[:2] or sta.shape[1:] != self.shapes[2:]:
            raise ValueError(f"inputs of shapes {seq.shape}, {sta.shape} for a network of "
                             f"input shapes {self.shapes}")
        out = np.empty((n, self.members), dtype=np.float32)
        starts = range(0, n, BLOCK_ROWS)

        def block(s: int) -> None:
            out[s : s + BLOCK_ROWS] = self._block(seq[s : s + BLOCK_ROWS],
                                                  sta[s : s + BLOCK_ROWS]).T

        # one BLAS thread per block: the blocks are the parallelism, and BLAS threads on
        # top of them would only compete for the same cores
        with threadpool_limits(1, user_api="blas"):
            if threads > 1 and n > BLOCK_ROWS:
                with ThreadPoolExecutor(int(threads)) as pool:
                    list(pool.map(block, starts))
            else:
                for s in starts:
                    block(s)
        return out

    # ------------------------------------------------------------------ one block of rows
    def _block(self, seq: np.ndarray, sta: np.ndarray) -> np.ndarray:
        """``(members, rows)`` for one block."""
        rows = len(sta)
        x = seq.transpose(1, 2, 0)[None]  # (1, steps, f, rows): shared by the members
        for conv in self.convs:
            x = self._conv(x, conv)
        h = self._bilstm(x)  # (m, 2u, rows)
        kernel, bias = self.static
        s = np.matmul(kernel, sta.T) + bias
        np.maximum(s, 0.0, out=s)
        z = np.concatenate([h, s], axis=1)
        for kernel, bias in self.heads:
            z = np.matmul(kernel, z) + bias
            np.maximum(z, 0.0, out=z)
        kernel, bias = self.output
        y = (np.matmul(kernel, z) + bias)[:, 0, :]
        if self.linear is not None:
            kernel, bias = self.linear
            y = y + (np.matmul(kernel, sta.T) + bias)[:, 0, :]
        assert y.shape == (self.members, rows)
        return y

    @staticmethod
    def _conv(x: np.ndarray, conv: _Conv) -> np.ndarray:
        """'same'-padded strided convolution with ReLU: ``(g, steps, in, rows)`` (g = 1 when
        shared by the members, else m) → ``(m, out_steps, filters, rows)``."""
        g, steps, n_in, rows = x.shape
        ks, stride = conv.size, conv.stride
        left = (ks - 1) // 2
        out_steps = -(-steps // stride)
        padded = np.zeros((g, steps + ks - 1, n_in, rows), dtype=np.float32)
        padded[:, left : left + steps] = x
        # window of output step t: padded steps t * stride + j, j < ks, stacked j-major
        window = np.empty((g, out_steps, ks, n_in, rows), dtype=np.float32)
        for j in range(ks):
            window[:, :, j] = padded[:, j : j + steps : stride][:, :out_steps]
        window = window.reshape(g, out_steps, ks * n_in, rows)
        y = np.matmul(conv.kernel[:, None], window) + conv.bias[:, None]
        np.maximum(y, 0.0, out=y)
        return y

    def _bilstm(self, x: np.ndarray) -> np.ndarray:
        """Final hidden states, forward then backward per member: ``(m, 2u, rows)``."""
        m, u = self.members, self.units
        g, steps, n_in, rows = x.shape
        # the operand of a step, both directions: [x_t; 1; h] per member, (2, m, in + 1 + u,
        # rows); h is written in place by the step before, x_t copied in (the backward pass
        # reads the reversed sequence)
        xh = np.zeros((2, m, n_in + 1 + u, rows), dtype=np.float32)
        xh[:, :, n_in] = 1.0
        h = xh[:, :, n_in + 1:]
        z = np.empty((2, m, 4 * u, rows), dtype=np.float32)
        c = np.zeros((2, m, u, rows), dtype=np.float32)
        tmp = np.empty_like(c)
        for t in range(steps):
            xh[0, :, :n_in] = x[:, t]
            xh[1, :, :n_in] = x[:, steps - 1 - t]
            np.matmul(self.lstm_step, xh, out=z)
            np.tanh(z, out=z)
            sig = z[:, :, : 3 * u]
            sig *= 0.5
            sig += 0.5
            np.multiply(z[:, :, u : 2 * u], c, out=c)  # f * c
            np.multiply(z[:, :, :u], z[:, :, 3 * u :], out=tmp)  # i * g
            c += tmp
            np.tanh(c, out=tmp)
            np.multiply(tmp, z[:, :, 2 * u : 3 * u], out=h)  # o * tanh(c)
        return h.transpose(1, 0, 2, 3).reshape(m, 2 * u, rows)
