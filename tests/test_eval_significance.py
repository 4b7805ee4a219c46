"""Paired bootstrap: exact means, intervals that include or exclude zero when they should."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.evaluation.significance import paired_bootstrap


def test_means_and_difference_are_exact_and_the_interval_contains_the_difference():
    a = np.array([1, 1, 0, 1, 0, 0, 1, 1, 0, 1])
    b = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 1])
    result = paired_bootstrap(a, b, seed=1)
    assert result.a == pytest.approx(60.0) and result.b == pytest.approx(40.0)
    assert result.difference == pytest.approx(20.0)
    assert result.low <= result.difference <= result.high
    assert result.n_queries == 10
    assert paired_bootstrap(a, b, seed=1) == result  # deterministic


def test_a_clear_win_is_significant_and_a_coin_flip_is_not():
    rng = np.random.default_rng(0)
    b = (rng.random(400) < 0.10).astype(int)
    a = b | (rng.random(400) < 0.25)  # A hits every query B hits, and more
    assert paired_bootstrap(a, b).significant and paired_bootstrap(a, b).low > 0
    same_rate = (rng.random(400) < 0.10).astype(int)
    noise = paired_bootstrap(same_rate, b)
    assert not noise.significant and noise.low < 0 < noise.high


def test_pairing_matters_same_rate_on_other_queries_is_not_the_same_system():
    a = np.array([1, 0] * 100)
    identical = paired_bootstrap(a, a)  # every paired difference is zero
    assert identical.low == identical.high == 0.0 and not identical.significant
    shifted = paired_bootstrap(a, np.roll(a, 1))  # same 50% hit rate, on the other queries
    assert shifted.difference == 0.0 and shifted.high - shifted.low > 10.0


def test_mismatched_queries_are_an_error():
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="no queries"):
        paired_bootstrap(np.ones(0), np.ones(0))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_scipy_bootstrap_gives_the_hand_written_percentile_interval(seed):
    # the formula scipy.stats.bootstrap replaced: resample queries with default_rng(seed), take
    # the percentiles of the mean differences; recorded intervals (benchmarks/) stay as they were
    rng = np.random.default_rng(100 + seed)
    a, b = rng.random(150), (rng.random(150) < 0.4).astype(float)
    diff = (a - b) * 100.0
    picks = np.random.default_rng(seed).integers(0, diff.size, size=(4000, diff.size))
    low, high = np.quantile(diff[picks].mean(axis=1), [0.025, 0.975])
    result = paired_bootstrap(a, b, seed=seed)
    assert result.low == pytest.approx(low, abs=1e-9) and result.high == pytest.approx(high, abs=1e-9)


def test_one_query_resamples_to_itself():
    result = paired_bootstrap(np.array([1.0]), np.array([0.0]))
    assert result.low == result.high == result.difference == 100.0 and result.n_queries == 1
