"""Split-conformal calibration: the quantile rule by hand, and coverage on known errors."""

from __future__ import annotations

import numpy as np
import pytest

from gcnn_rnn.core.errors import InputDataError
from gcnn_rnn.core.model.conformal import Calibration, calibrate, conformal_quantile


def test_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 20.0)  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores[::-1], 0.1) == 18.0
    assert conformal_quantile(np.arange(1.0, 10.0), 0.5) == 5.0  # ceil(10 * 0.5) = 5


def test_too_few_scores_fall_back_to_the_largest(caplog):
    assert conformal_quantile(np.array([3.0, 1.0, 2.0]), 0.1) == 3.0
    assert "too few" in caplog.text


def test_bad_inputs():
    with pytest.raises(InputDataError):
        conformal_quantile(np.array([1.0]), 1.5)
    with pytest.raises(InputDataError):
        conformal_quantile(np.array([np.nan]), 0.1)


def test_heteroscedastic_errors_get_the_nominal_coverage():
    rng = np.random.default_rng(42)
    n = 4000
    sigma = rng.uniform(0.2, 3.0, 2 * n)
    truth_pred = rng.normal(size=2 * n)
    obs = truth_pred + sigma * 1.7 * rng.normal(size=2 * n)  # sigma understated by 1.7
    cal = calibrate(obs[:n], truth_pred[:n], sigma[:n], alpha=0.1)
    assert cal.quantile == pytest.approx(1.645 * 1.7, rel=0.05)
    assert cal.scale == pytest.approx(1.7, rel=0.05)
    lo, hi = cal.interval(truth_pred[n:], sigma[n:])
    cover = np.mean((obs[n:] >= lo) & (obs[n:] <= hi))
    assert 0.88 <= cover <= 0.92
    # the interval width follows sigma (locally adaptive), not a constant
    assert np.corrcoef(hi - lo, sigma[n:])[0, 1] > 0.999
    p = cal.exceedance(truth_pred[n:], sigma[n:], 0.0)
    assert np.all((p >= 0) & (p <= 1))
    assert cal.exceedance(np.array([2.0]), np.array([1.0]), 2.0)[0] == pytest.approx(0.5)
    assert Calibration.from_dict(cal.to_dict()) == cal
