"""``build_model(cfg, ...)``: the GCNN-RNN network, read top to bottom.

::

    sequence (k neighbours × f) ─ copy per member ─ Conv1D block(s) ─ BiLSTM ─┐
    static (s)                  ─ copy per member ─ Dense ───────────────────┴─ concat
        ─ [Dropout ─ Dense]× ─ Dense(1) → one output per member, shape (batch, members)

Every layer is a grouped layer (:mod:`.layers`): the ensemble's M members live side by side
in one model and share nothing but the graph.
"""

from __future__ import annotations

import keras

from .config import ModelConfig
from .layers import (
    GroupedBiLSTM,
    GroupedConcatenate,
    GroupedConv1D,
    GroupedDense,
    GroupedDropout,
    MemberTile,
)


def build_model(cfg: ModelConfig, n_steps: int, n_sequence: int, n_static: int,
                seed: int = 0) -> keras.Model:
    """Build the (uncompiled) batched ensemble.

    Parameters
    ----------
    cfg : ModelConfig
    n_steps : int
        Sequence length (number of neighbours k).
    n_sequence : int
        Features per neighbour.
    n_static : int
        Static features per target (at least 1).
    seed : int
        Seed of the dropout masks.

    Returns
    -------
    keras.Model
        Inputs ``{"sequence": (batch, n_steps, n_sequence), "static": (batch, n_static)}``,
        output ``(batch, members)``: each member's prediction of the scaled target.
    """
    m = int(cfg.members)
    seq_in = keras.Input((n_steps, n_sequence), name="sequence")
    static_in = keras.Input((n_static,), name="static")

    x = MemberTile(m, name="tile_sequence")(seq_in)
    for i, filters in enumerate(cfg.conv_filters):
        x = GroupedConv1D(m, filters, cfg.kernel_size, strides=cfg.conv_strides,
                          activation="relu", l2=cfg.l2, name=f"conv{i + 1}")(x)
    x = GroupedBiLSTM(m, cfg.lstm_units, l2=cfg.l2, name="bilstm")(x)

    s = MemberTile(m, name="tile_static")(static_in)
    s = GroupedDense(m, cfg.static_units, activation="relu", l2=cfg.l2, name="static_dense")(s)

    h = GroupedConcatenate(m, name="merge")([x, s])
    for i, units in enumerate(cfg.head_units):
        h = GroupedDropout(cfg.dropout, seed=seed + i, name=f"dropout{i + 1}")(h)
        h = GroupedDense(m, units, activation="relu", l2=cfg.l2, name=f"head{i + 1}")(h)
    out = GroupedDense(m, 1, name="members")(h)
    if cfg.linear_skip:
        wide = MemberTile(m, name="tile_linear")(static_in)
        wide = GroupedDense(m, 1, l2=cfg.l2, name="linear_skip")(wide)
        out = keras.layers.Add(name="members_plus_linear")([out, wide])
    return keras.Model({"sequence": seq_in, "static": static_in}, out, name="gcnn_rnn")
