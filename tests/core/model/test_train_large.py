"""The large-data training schedule, batched validation losses, the memory refusal and a
cancel inside an epoch (issue 14: ``train`` at 1e5 samples)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gcnn_rnn.core.errors import Cancelled, InputDataError
from gcnn_rnn.core.model import train as T
from gcnn_rnn.core.model.config import ModelConfig, TrainConfig

MCFG = ModelConfig(members=3, conv_filters=(8,), lstm_units=6, static_units=8, head_units=(8,))


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.normal(size=(n, 8, 4)).astype("float32")
    static = rng.normal(size=(n, 3)).astype("float32")
    y = (np.tanh(seq[:, 0, 0]) + 0.5 * static[:, 0]).astype("float32")
    coords = rng.random((n, 2)) * 1000.0
    return {"sequence": seq, "static": static}, y, coords


def test_small_data_keep_the_configured_schedule():
    cfg = TrainConfig()
    plan = T.schedule(cfg.large_n, cfg)  # at the threshold: as configured
    assert (plan.batch, plan.patience, plan.lr_patience, plan.min_delta) == (64, 12, 6, 0.0)
    np.testing.assert_array_equal(plan.validation_rows, np.arange(cfg.large_n))
    assert not plan.large


def test_large_data_schedule():
    cfg = TrainConfig(seed=3)
    n = 100_000
    plan = T.schedule(n, cfg)
    assert plan.large and plan.batch == math.ceil(n / 256) == 391
    assert math.ceil(n / plan.batch) <= 256  # at most max_steps steps an epoch
    assert (plan.patience, plan.lr_patience, plan.min_delta) == (6, 3, 1e-3)
    rows = plan.validation_rows
    assert len(rows) == 16384 == len(np.unique(rows)) and rows.max() < n
    np.testing.assert_array_equal(rows, T.schedule(n, cfg).validation_rows)  # seeded
    assert not np.array_equal(rows, T.schedule(n, TrainConfig(seed=4)).validation_rows)
    assert not T.schedule(n, TrainConfig(large_n=0)).large  # 0: never


def test_batched_validation_losses_equal_one_call(monkeypatch):
    inputs, y, coords = _data(300)
    rt = T.get_runtime(MCFG, 8, 4, 3)
    rt.reset(1e-3)
    groups = T.spatial_groups(coords, 3, seed=0)
    rows = np.arange(300)
    mask = T._member_mask(groups, np.arange(3) % 3)
    whole = T._validation_losses(rt, inputs["sequence"], inputs["static"], y[:, None], rows,
                                 mask)
    monkeypatch.setattr(T, "VALIDATION_BATCH", 64)
    batched = T._validation_losses(rt, inputs["sequence"], inputs["static"], y[:, None], rows,
                                   mask)
    np.testing.assert_allclose(batched, whole, rtol=1e-5)
    # by hand: the summed elementwise Huber (delta 1) of each member over its own group
    pred = rt.predict(inputs)
    err = np.abs(pred - y[:, None])
    huber = np.where(err <= 1.0, 0.5 * err**2, err - 0.5)
    np.testing.assert_allclose(whole, (huber * mask).sum(axis=0), rtol=1e-4)


def test_large_schedule_trains_reproducibly_and_stops_on_stalls():
    inputs, y, coords = _data(400)
    groups = T.spatial_groups(coords, 3, seed=0)
    tcfg = TrainConfig(epochs=60, seed=1, validation_folds=3, learning_rate=1e-2, large_n=200,
                       max_steps=4, validation_rows=150, min_delta=0.05)
    a, wa = T.train_ensemble(inputs, y, groups, MCFG, tcfg)
    b, wb = T.train_ensemble(inputs, y, groups, MCFG, tcfg)
    for x, z in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, z)
    # a 5 % improvement is needed to keep going: far fewer than 60 epochs
    assert a.epochs < 60
    np.testing.assert_array_equal(np.sort(np.unique(a.validation_member)), [0, 1, 2])


def test_cancel_inside_an_epoch():
    inputs, y, coords = _data(400)
    groups = T.spatial_groups(coords, 3, seed=0)
    epochs_done = []
    tcfg = TrainConfig(epochs=5, batch_size=2, validation_folds=3)  # 200 steps an epoch
    with pytest.raises(Cancelled):
        T.train_ensemble(inputs, y, groups, MCFG, tcfg, should_stop=lambda: True,
                         progress=lambda f, t: epochs_done.append(f))
    assert epochs_done == []  # stopped within the first epoch


def test_a_training_set_that_does_not_fit_is_refused_with_what_it_needs():
    n, f, k = 1_000_000, 130, 32
    need = T.training_bytes(n, f, k)
    T.check_training_memory(n, f, k, available=need)  # fits exactly
    T.check_training_memory(n, f, k, available=None)  # unknown: not refused
    with pytest.raises(InputDataError, match=r"needs about \d+\.\d GiB") as info:
        T.check_training_memory(n, f, k, available=need // 2)
    fit = int(str(info.value).split("about ")[2].split(" rows")[0].replace(",", ""))
    assert T.training_bytes(fit, f, k) <= need // 2 < T.training_bytes(fit + 1, f, k)


def test_the_auto_variogram_stage_is_cancellable():
    """The first stage of ``train`` (the ``auto`` variogram: 30+ s at 1e5 samples) polls the
    cancel: at the start, in the pair pass and before each candidate's cross-validation."""
    from gcnn_rnn.core.variogram.fit import auto_variogram

    rng = np.random.default_rng(0)
    xy = rng.random((300, 2)) * 1000.0
    z = np.sin(xy[:, 0] / 200.0) + rng.normal(0, 0.1, 300)
    with pytest.raises(Cancelled):
        auto_variogram(xy, z, should_stop=lambda: True)
    calls = []
    fitted = auto_variogram(xy, z, ("sph", "exp", "gau"), should_stop=lambda: calls.append(1))
    assert len(calls) >= 1 + 3  # start + one per candidate (+ the pair pass)
    plain = auto_variogram(xy, z, ("sph", "exp", "gau"))
    assert fitted.model.to_text() == plain.model.to_text()  # polling changes nothing
