"""Search spaces: round trips, bounds, TOML parsing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.hpo.spaces import (
    IntUniform,
    Log,
    Logit,
    Pow2,
    SearchSpace,
    Uniform,
    space_from_dict,
)

CONTINUOUS = [Uniform(-3.0, 5.0), Log(1e-5, 1e-1), Logit(0.9, 0.9999)]


@pytest.mark.parametrize("space", CONTINUOUS, ids=lambda s: type(s).__name__)
def test_continuous_round_trip(space):
    for z in np.linspace(-1, 1, 41):
        value = space.denormalize(z)
        assert space.min <= value <= space.max
        assert space.normalize(value) == pytest.approx(z, abs=1e-9)
    for value in np.linspace(space.min, space.max, 17):
        assert space.denormalize(space.normalize(value)) == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("space", CONTINUOUS, ids=lambda s: type(s).__name__)
def test_bounds_map_to_minus_one_and_one(space):
    assert space.normalize(space.min) == pytest.approx(-1.0)
    assert space.normalize(space.max) == pytest.approx(1.0)
    assert space.normalize(space.max * 10 if space.max > 0 else 100) == 1.0  # clipped
    assert space.denormalize(5.0) == pytest.approx(space.max)


def test_int_uniform_round_trip_exact():
    space = IntUniform(1, 10)
    for value in range(1, 11):
        assert space.denormalize(space.normalize(value)) == value
    values = {space.denormalize(z) for z in np.linspace(-1, 1, 101)}
    assert values == set(range(1, 11))
    assert all(isinstance(v, int) for v in values)


def test_pow2_round_trip_exact():
    space = Pow2(8, 1024)
    powers = [8, 16, 32, 64, 128, 256, 512, 1024]
    for value in powers:
        assert space.denormalize(space.normalize(value)) == value
    assert {space.denormalize(z) for z in np.linspace(-1, 1, 101)} == set(powers)


def test_log_and_logit_are_uniform_in_their_transform():
    assert Log(1e-4, 1e-2).denormalize(0.0) == pytest.approx(1e-3)
    assert Logit(0.9, 0.999).denormalize(0.0) == pytest.approx(0.99)
    # logit spreads values near 1: half the range is above 0.99
    assert Logit(0.9, 0.999).normalize(0.99) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("cls", "low", "high", "match"),
    [
        (Uniform, 1.0, 1.0, "smaller"),
        (Log, 0.0, 1.0, "min must be > 0"),
        (Pow2, 3, 64, "powers of two"),
        (Logit, 0.5, 1.0, r"\(0, 1\)"),
    ],
)
def test_bad_ranges_raise(cls, low, high, match):
    with pytest.raises(APIUsageError, match=match):
        cls(low, high)


def test_search_space_round_trip_and_budget():
    space = SearchSpace(
        {
            "lr": Log(1e-4, 1e-2),
            "gamma": Logit(0.9, 0.999),
            "epochs": IntUniform(1, 8),
            "batch": Pow2(16, 256),
            "clip": Uniform(0.1, 0.3),
        },
        budget="epochs",
    )
    assert space.dim == 5 and space.budget_index == 2
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = space.from_unit(rng.uniform(-1, 1, 5))
        again = space.from_unit(space.to_unit(params))
        assert again["epochs"] == params["epochs"] and again["batch"] == params["batch"]
        for key in ("lr", "gamma", "clip"):
            assert math.isclose(again[key], params[key], rel_tol=1e-9)
    key = space.key(params, without_budget=True)
    assert len(key) == 4


def test_search_space_errors():
    with pytest.raises(APIUsageError, match="at least one"):
        SearchSpace({})
    with pytest.raises(APIUsageError, match="budget"):
        SearchSpace({"x": Uniform(0, 1)}, budget="y")
    space = SearchSpace({"x": Uniform(0, 1)})
    with pytest.raises(APIUsageError, match="lack"):
        space.to_unit({})
    with pytest.raises(APIUsageError, match="coordinates"):
        space.from_unit(np.zeros(3))


def test_from_dict_parses_preset_table():
    space = SearchSpace.from_dict(
        {
            "budget": "train.total_timesteps",
            "parameters": {
                "ppo.gamma": {"distribution": "logit", "min": 0.9, "max": 0.999},
                "train.num_steps": {"distribution": "pow2", "min": 16, "max": 256},
                "train.total_timesteps": {"distribution": "log", "min": 1e4, "max": 1e6},
            },
        }
    )
    assert isinstance(space.spaces["ppo.gamma"], Logit)
    assert isinstance(space.spaces["train.num_steps"], Pow2)
    assert space.budget == "train.total_timesteps"
    assert "SearchSpace" in repr(space)


def test_from_dict_errors():
    with pytest.raises(APIUsageError, match=r"\[sweep.parameters\]"):
        SearchSpace.from_dict({})
    with pytest.raises(APIUsageError, match="unknown distribution"):
        space_from_dict({"distribution": "normal", "min": 0, "max": 1})
    with pytest.raises(APIUsageError, match="needs 'min' and 'max'"):
        space_from_dict({"distribution": "log", "min": 1})


def test_shipped_presets_parse():
    from fugu.train.experiment import ExperimentConfig

    for env in ("cartpole-v1",):
        config = ExperimentConfig.from_preset(env)
        space = SearchSpace.from_dict(config.sweep)
        assert space.budget is not None and space.dim >= 2
