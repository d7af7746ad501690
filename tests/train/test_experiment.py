"""ExperimentConfig: presets, layering, overrides from Python and the command line, errors."""

from __future__ import annotations

import json

import pytest

from fugu.core.errors import APIUsageError
from fugu.train.experiment import (
    BASE_SECTIONS,
    CheckpointConfig,
    EnvConfig,
    ExperimentConfig,
    LoggingConfig,
    describe_options,
    dumps_toml,
    field_help,
    load_preset,
    parse_override_args,
    preset_names,
    valid_sections,
)
from fugu.train.fields import coerce


def test_cartpole_preset_layers_over_default():
    config = ExperimentConfig.from_preset("cartpole-v1")
    raw = load_preset("cartpole-v1")
    assert config.env.id == "cartpole-v1"
    assert config.env.solve_threshold == 475.0 == config.solve_threshold
    assert config.train.total_timesteps == raw["train"]["total_timesteps"]
    assert config.ppo.learning_rate == raw["ppo"]["learning_rate"]
    # keys only in default.toml still apply
    assert config.logging.tensorboard is True
    # the env's [sweep] replaces the default one
    assert config.sweep == raw["sweep"]
    assert config.algo == "ppo"


def test_envs_without_a_preset_use_the_default():
    config = ExperimentConfig.from_preset("CartPole-v1")
    default = load_preset("default")
    assert config.env.id == "CartPole-v1"
    assert config.train.num_steps == default["train"]["num_steps"]
    assert config.env.solve_threshold is None
    assert config.solve_threshold == float("inf")
    assert config.sweep == default["sweep"]
    assert {"default", "cartpole-v1"} <= set(preset_names())


def test_preset_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[ppo]\nlearning_rate = 0.5\n[env]\nnum_envs = 3\n")
    config = ExperimentConfig.from_preset("cartpole-v1", preset=path)
    assert (config.ppo.learning_rate, config.env.num_envs) == (0.5, 3)
    bad = tmp_path / "bad.toml"
    bad.write_text("[ppo\n")
    with pytest.raises(APIUsageError, match="not valid TOML"):
        ExperimentConfig.from_preset("cartpole-v1", preset=bad)
    with pytest.raises(APIUsageError, match="does not exist"):
        load_preset(tmp_path / "missing.toml")
    with pytest.raises(APIUsageError, match="no preset named 'nope'"):
        load_preset("nope")


def test_overrides_from_python_and_argv():
    base = ExperimentConfig.from_preset("cartpole-v1")
    config = base.with_overrides(
        {"ppo.learning_rate": "1e-3", "train.total_timesteps": 2e4, "env.kwargs": '{"a": 1}'}
    )
    assert config.ppo.learning_rate == 0.001
    assert config.train.total_timesteps == 20000 and isinstance(config.train.total_timesteps, int)
    assert config.env.kwargs == {"a": 1}
    assert base.ppo.learning_rate != 0.001  # frozen: a copy was made
    config = base.with_overrides(
        [
            "--train.total-timesteps",
            "1e6",
            "--ppo.ent-coef=-0.01",
            "--logging.wandb",
            "--policy.cnn-channels",
            "16,32",
            "--ppo.target-kl",
            "none",
            "--ppo.adam-betas",
            "[0.8, 0.9]",
        ]
    )
    assert config.train.total_timesteps == 1_000_000
    assert config.ppo.ent_coef == -0.01
    assert config.logging.wandb is True
    assert config.policy.cnn_channels == (16, 32)
    assert config.ppo.target_kl is None
    assert config.ppo.adam_betas == (0.8, 0.9)
    assert ExperimentConfig.from_preset("cartpole-v1", ["--seed-like.x", "1"][:0]) == base


def test_unknown_keys_list_the_valid_ones():
    config = ExperimentConfig()
    with pytest.raises(APIUsageError) as error:
        config.with_overrides(["--ppo.learnig-rate", "1"])
    message = str(error.value)
    assert "did you mean --ppo.learning-rate?" in message
    assert "--ppo.clip-coef" in message and "valid ppo options" in message
    sections = "SECTION one of " + ", ".join(valid_sections()[:-1])
    with pytest.raises(APIUsageError, match=sections):
        config.with_overrides({"optimizer.lr": 1})
    with pytest.raises(APIUsageError, match="SECTION"):
        parse_override_args(["--nodot", "1"])
    with pytest.raises(APIUsageError, match=r"expected --SECTION.KEY"):
        parse_override_args(["value"])
    with pytest.raises(APIUsageError, match="unknown config section \\[optim\\]"):
        ExperimentConfig.from_dict({"optim": {}})
    with pytest.raises(APIUsageError, match=r"unknown key 'env.num_env'; valid keys of \[env\]"):
        ExperimentConfig.from_dict({"env": {"num_env": 2}})


def test_bad_values_name_the_field():
    config = ExperimentConfig()
    with pytest.raises(APIUsageError, match=r"train.total_timesteps: '1.5' is not an integer"):
        config.with_overrides({"train.total_timesteps": "1.5"})
    with pytest.raises(APIUsageError, match=r"logging.tensorboard: 'maybe' is not a boolean"):
        config.with_overrides({"logging.tensorboard": "maybe"})
    with pytest.raises(APIUsageError, match=r"logging.wandb_mode: 'cloud' is not one of"):
        config.with_overrides({"logging.wandb_mode": "cloud"})
    with pytest.raises(APIUsageError, match="lr_schedule"):
        config.with_overrides({"ppo.lr_schedule": "sometimes"})  # the config's own check
    with pytest.raises(APIUsageError, match="num_envs"):
        config.with_overrides({"env.num_envs": 0})
    with pytest.raises(APIUsageError, match=r"\[sweep\] must be a table"):
        ExperimentConfig.from_dict({"sweep": 3})
    with pytest.raises(APIUsageError, match=r"\[env\] must be a table"):
        ExperimentConfig.from_dict({"env": 3})


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        ("3", int, 3),
        ("1_000", int, 1000),
        (2.0, int, 2),
        (True, bool, True),
        ("yes", bool, True),
        ("off", bool, False),
        (1, float, 1.0),
        ("x", str, "x"),
        ("none", int | None, None),
        (None, float | None, None),
        ("[1, 2]", list[int], [1, 2]),
        ((1, "2"), tuple[int, int], (1, 2)),
        ("1", int | str, 1),
    ],
)
def test_coerce(value, tp, expected):
    assert coerce(value, tp) == expected


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        (1.5, int, "not an integer"),
        (True, int, "not int"),
        ("a", float, "could not convert"),
        ([1], float, "not a number"),
        (1, bool, "not a boolean"),
        (1, str, "not a string"),
        ((1, 2, 3), tuple[int, int], "needs 2 items"),
        (5, list[int], "not a sequence"),
        ("[1", list[int], "x: "),
        ([1], dict, "not a table"),
        ("none", int, "not an integer"),
    ],
)
def test_coerce_errors(value, tp, message):
    with pytest.raises(APIUsageError, match=message):
        coerce(value, tp, "x")


def test_round_trips(tmp_path):
    config = ExperimentConfig.from_preset(
        "cartpole-v1", {"ppo.target_kl": 0.02, "env.kwargs": {"length": 3}}
    )
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    toml_path, json_path = config.save(tmp_path / "run")
    assert ExperimentConfig.load(tmp_path / "run") == config
    assert ExperimentConfig.load(toml_path) == config
    assert json.loads(json_path.read_text())["ppo"]["target_kl"] == 0.02
    assert "[ppo]" in toml_path.read_text()


def test_diff():
    a = ExperimentConfig()
    b = a.with_overrides({"ppo.gamma": 0.9, "logging.wandb": True})
    assert a.diff(b) == ["ppo.gamma: 0.99 != 0.9", "logging.wandb: False != True"]
    assert a.diff(b, ["env", "ppo"]) == ["ppo.gamma: 0.99 != 0.9"]


def test_toml_writer_handles_special_values():
    text = dumps_toml({"a": {"inf": float("inf"), "ninf": -float("inf"), "s": 'q"x', "k": {}}})
    assert "inf = inf" in text and "ninf = -inf" in text and 's = "q\\"x"' in text
    assert "nan" in dumps_toml({"a": {"n": float("nan")}})
    assert '"a.b" = 1' in dumps_toml({"t": {"a.b": 1}})
    assert "{ x = 1 }" in dumps_toml({"t": {"kwargs": {"x": 1, "y": None}}})
    with pytest.raises(TypeError):
        dumps_toml({"t": {"x": object()}})


def test_section_checks():
    with pytest.raises(APIUsageError):
        EnvConfig(num_envs=0)
    with pytest.raises(APIUsageError):
        LoggingConfig(video_length=0)
    with pytest.raises(APIUsageError):
        CheckpointConfig(interval=-1)


def test_help_describes_every_field():
    rows = describe_options()
    flags = {row[0] for row in rows}
    assert "--ppo.learning-rate" in flags and "--env.num-envs" in flags
    sections = [*BASE_SECTIONS.values(), ExperimentConfig().ppo.__class__]
    assert len(rows) == sum(len(field_help(cls)) for cls in sections)
    assert all(text for _, _, text, _ in rows)


def test_sweep_table_feeds_the_hpo_search_space():
    from fugu.hpo.spaces import SearchSpace

    config = ExperimentConfig.from_preset("cartpole-v1")
    space = SearchSpace.from_dict(config.sweep)
    assert "ppo.learning_rate" in space.names
    assert space.budget == "train.total_timesteps"
    for name in space.names:  # every searched key is a valid override
        config.with_overrides({name: space.spaces[name].min})
