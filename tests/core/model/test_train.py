"""Training loop: spatial validation groups, per-member early stopping, seeds, NaN guard."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.errors import Cancelled, GcnnRnnError
from gcnn_rnn.core.model.config import ModelConfig, TrainConfig
from gcnn_rnn.core.model.train import spatial_groups, train_ensemble

MCFG = ModelConfig(members=3, conv_filters=(8,), lstm_units=6, static_units=8, head_units=(8,))


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.normal(size=(n, 8, 4)).astype("float32")
    static = rng.normal(size=(n, 3)).astype("float32")
    y = (np.tanh(seq[:, 0, 0]) + 0.5 * static[:, 0]).astype("float32")  # learnable
    coords = rng.random((n, 2)) * 1000.0
    return {"sequence": seq, "static": static}, y, coords


def test_spatial_groups_deal_whole_blocks():
    rng = np.random.default_rng(1)
    coords = rng.random((300, 2)) * 500.0
    g = spatial_groups(coords, 5, block_size=100.0, seed=0)
    assert set(np.unique(g)) == set(range(5))
    block = [tuple(b) for b in np.floor((coords - coords.min(0)) / 100.0).astype(int)]
    for b in set(block):  # every block lies in exactly one group
        members = {g[i] for i in range(300) if block[i] == b}
        assert len(members) == 1
    counts = np.bincount(g)
    assert counts.max() - counts.min() <= 30  # balanced as far as blocks allow


def test_spatial_groups_shrink_blocks_for_clustered_data():
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]] * 5) + np.repeat(
        np.arange(5)[:, None] * 0.01, 4, axis=0)
    g = spatial_groups(coords, 2, block_size=1000.0)
    assert set(np.unique(g)) == {0, 1}


def test_training_learns_and_keeps_the_best_members():
    inputs, y, coords = _data()
    groups = spatial_groups(coords, 3, seed=0)
    tcfg = TrainConfig(epochs=40, patience=40, seed=1, validation_folds=3, learning_rate=1e-2)
    result, weights = train_ensemble(inputs, y, groups, MCFG, tcfg)
    assert len(result.history["loss"]) == result.epochs == 40
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    assert all(1 <= e <= 40 for e in result.best_epochs)
    # each member's best validation loss is the minimum of a curve it actually ran
    assert min(result.best_val_losses) <= min(result.history["val_loss"]) * 3
    np.testing.assert_array_equal(np.sort(np.unique(result.validation_member)), [0, 1, 2])
    assert weights[0].shape[0] == 3  # member axis first


def test_same_seed_same_weights_other_seed_other_weights():
    inputs, y, coords = _data(80)
    groups = spatial_groups(coords, 3, seed=0)
    tcfg = TrainConfig(epochs=3, seed=5, validation_folds=3)
    _, w1 = train_ensemble(inputs, y, groups, MCFG, tcfg)
    _, w2 = train_ensemble(inputs, y, groups, MCFG, tcfg)
    _, w3 = train_ensemble(inputs, y, groups, MCFG, TrainConfig(epochs=3, seed=6,
                                                                 validation_folds=3))
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(w1, w3))


def test_nan_target_is_a_clean_error():
    inputs, y, coords = _data(60)
    y[:] = np.nan
    with pytest.raises(GcnnRnnError, match="NaN"):
        train_ensemble(inputs, y, spatial_groups(coords, 3), MCFG,
                       TrainConfig(epochs=3, validation_folds=3))


def test_progress_and_cancel():
    inputs, y, coords = _data(60)
    seen = []
    train_ensemble(inputs, y, spatial_groups(coords, 3), MCFG,
                   TrainConfig(epochs=3, patience=10, validation_folds=3),
                   progress=lambda f, t: seen.append(f))
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    with pytest.raises(Cancelled):
        train_ensemble(inputs, y, spatial_groups(coords, 3), MCFG,
                       TrainConfig(epochs=5, validation_folds=3), should_stop=lambda: True)
