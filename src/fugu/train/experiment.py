"""The experiment config: typed, frozen section configs composed into one, presets and overrides.

An :class:`ExperimentConfig` holds one frozen dataclass per section: ``env``
(:class:`EnvConfig`), ``train`` (:class:`~fugu.train.config.TrainConfig`), ``ppo``
(:class:`~fugu.algos.ppo.PPOConfig`), ``policy`` (:class:`~fugu.models.PolicyConfig`),
``logging`` (:class:`LoggingConfig`) and ``checkpoint`` (:class:`CheckpointConfig`), plus the
raw ``[sweep]`` table that the HPO helpers read.

Values are resolved in this order, later ones winning:

1. the dataclass defaults;
2. the ``default`` preset (``src/fugu/presets/default.toml``);
3. the env's preset (``src/fugu/presets/<env-id>.toml``) when there is one;
4. overrides: ``{"ppo.learning_rate": 3e-4}`` in Python, ``--ppo.learning-rate 3e-4`` on the
   command line.

Derived values (batch sizes, the solve threshold) are properties, never written back.

Example:
    >>> config = ExperimentConfig.from_preset("cartpole-v1", {"ppo.learning_rate": "1e-3"})
    >>> config.ppo.learning_rate, config.env.id
    (0.001, 'cartpole-v1')
    >>> config.with_overrides(["--train.total-timesteps", "2e4"]).train.total_timesteps
    20000
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fugu.algos.ppo import PPOConfig
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.fields import coerce, field_types, from_dict, to_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

__all__ = [
    "SECTIONS",
    "CheckpointConfig",
    "EnvConfig",
    "ExperimentConfig",
    "LoggingConfig",
    "describe_options",
    "dumps_toml",
    "field_help",
    "load_preset",
    "parse_override_args",
    "preset_names",
]


@dataclass(frozen=True)
class EnvConfig:
    """Which env to train on and how to vectorize it."""

    id: str = "cartpole-v1"
    """A fugu env id (``fugu envs`` lists them) or a Gymnasium id."""
    num_envs: int = 8
    """Env copies stepped together (rows of the batch)."""
    threads: int = 1
    """Threads stepping a native env (or worker processes for a Gymnasium env)."""
    backend: Literal["auto", "native", "serial", "multiprocessing"] = "auto"
    """``auto``: a native fugu env is used as is, other envs through ``fugu.vector.make``."""
    solve_threshold: float | None = None
    """Mean return over the last 100 episodes that counts as solved (``None``: never)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the env constructor (JSON on the command line)."""

    def __post_init__(self) -> None:
        if self.num_envs < 1 or self.threads < 1:
            raise APIUsageError("env.num_envs and env.threads must be >= 1")


@dataclass(frozen=True)
class LoggingConfig:
    """Where metrics go. ``metrics.jsonl`` and TensorBoard events live in the run dir."""

    jsonl: bool = True
    """Write ``metrics.jsonl`` in the run dir."""
    tensorboard: bool = True
    """Write TensorBoard events in the run dir (``tensorboard --logdir runs``)."""
    wandb: bool = False
    """Log to Weights & Biases."""
    wandb_project: str = "fugu"
    """W&B project."""
    wandb_mode: Literal["online", "offline"] = "offline"
    """``offline`` needs no API key (``wandb sync`` later); ``online`` streams."""
    wandb_group: str | None = None
    """W&B group (sweeps put every trial in one group)."""
    histogram_interval: int = 0
    """Log weight, gradient and action histograms every this many epochs (0: never)."""
    video_interval: int = 0
    """Record an episode video from ``env.render`` every this many epochs (0: never)."""
    video_length: int = 500
    """Most frames of a recorded episode."""

    def __post_init__(self) -> None:
        if min(self.histogram_interval, self.video_interval) < 0 or self.video_length < 1:
            raise APIUsageError("logging intervals must be >= 0 and video_length >= 1")


@dataclass(frozen=True)
class CheckpointConfig:
    """When checkpoints are written and which run is resumed."""

    interval: int = 50
    """Write a checkpoint every this many epochs (0: only at the end and on interrupt)."""
    keep_last: int = 3
    """Keep the newest this many checkpoints (0: keep all)."""
    resume: str = "auto"
    """``auto``: resume the run dir's latest valid checkpoint when there is one (only a
    stable run dir, named by ``--run-name``/``--run-dir``, can have one); ``latest``: resume
    it and fail when there is none; ``never``: start fresh; or a checkpoint/run dir path."""

    def __post_init__(self) -> None:
        if self.interval < 0 or self.keep_last < 0:
            raise APIUsageError("checkpoint.interval and checkpoint.keep_last must be >= 0")


SECTIONS: dict[str, type] = {
    "env": EnvConfig,
    "train": TrainConfig,
    "ppo": PPOConfig,
    "policy": PolicyConfig,
    "logging": LoggingConfig,
    "checkpoint": CheckpointConfig,
}
"""Section name -> its config class, in file order."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs, one frozen section per component.

    Build it with :meth:`from_preset` (defaults + presets + overrides) or :meth:`from_dict`.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    sweep: dict[str, Any] = field(default_factory=dict)
    """The preset's ``[sweep]`` table (search ranges for :mod:`fugu.hpo`), kept as written."""

    # -- derived values --------------------------------------------------------------------
    @property
    def algo(self) -> str:
        """The algorithm's name (``"ppo"``)."""
        return "ppo"

    @property
    def solve_threshold(self) -> float:
        """The solve threshold, ``inf`` when the env has none."""
        threshold = self.env.solve_threshold
        return math.inf if threshold is None else float(threshold)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from nested plain values (``{"ppo": {"learning_rate": 1e-3}, ...}``).

        Missing sections and keys keep their defaults.

        Raises:
            APIUsageError: An unknown section or key (the message lists the valid ones), or a
                value that does not fit its field's type.
        """
        unknown = [key for key in data if key not in SECTIONS and key != "sweep"]
        if unknown:
            raise APIUsageError(
                f"unknown config section [{unknown[0]}]; valid sections: "
                + ", ".join([*SECTIONS, "sweep"])
            )
        sections: dict[str, Any] = {
            name: from_dict(SECTIONS[name], data.get(name, {}), name) for name in SECTIONS
        }
        sweep = data.get("sweep", {})
        if not isinstance(sweep, Mapping):
            raise APIUsageError(f"[sweep] must be a table, got {sweep!r}")
        return cls(**sections, sweep=dict(sweep))

    @classmethod
    def from_preset(
        cls,
        env_id: str,
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        preset: str | Path | None = None,
    ) -> ExperimentConfig:
        """Defaults, then the ``default`` preset, then ``env_id``'s preset, then ``overrides``.

        Args:
            env_id: The env to train on; its preset is used when fugu ships one.
            overrides: ``{"section.key": value}`` or command-line style
                ``["--section.key", "value", ...]``.
            preset: A TOML file to use instead of the env's shipped preset.
        """
        data = load_preset("default")
        env_preset = load_preset(preset) if preset is not None else _try_preset(env_id)
        if env_preset and "sweep" in env_preset:
            data.pop("sweep", None)  # an env's search ranges replace the default ones
        data = _merge(data, env_preset or {})
        data = _merge(data, {"env": {"id": env_id}})
        config = cls.from_dict(data)
        return config.with_overrides(overrides) if overrides else config

    def with_overrides(self, overrides: Mapping[str, Any] | Sequence[str]) -> ExperimentConfig:
        """A copy with ``{"section.key": value}`` (or ``["--section.key", "value"]``) applied.

        Keys may use dashes or underscores. Values are parsed from the field's type.

        Raises:
            APIUsageError: An unknown key (with a suggestion and the valid keys) or a bad value.
        """
        if not isinstance(overrides, Mapping):
            overrides = parse_override_args(overrides)
        data = self.to_dict()
        for raw_key, value in overrides.items():
            section, key = _split_key(raw_key)
            coerce(value, field_types(SECTIONS[section])[key], f"{section}.{key}")
            data[section][key] = value
        return type(self).from_dict(data)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain values (JSON/TOML ready); ``from_dict(to_dict())`` round-trips."""
        result: dict[str, Any] = {name: to_dict(getattr(self, name)) for name in SECTIONS}
        result["sweep"] = to_dict(self.sweep)
        return result

    def save(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``config.toml`` (readable, reusable as ``--preset``) and ``config.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        toml_path, json_path = directory / "config.toml", directory / "config.json"
        toml_path.write_text(dumps_toml(data), "utf-8")
        json_path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        return toml_path, json_path

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        """Load a config saved by :meth:`save` (a run dir, ``config.json`` or a TOML file)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if path.suffix == ".json":
            return cls.from_dict(json.loads(path.read_text("utf-8")))
        return cls.from_dict(_read_toml(path))

    def diff(self, other: ExperimentConfig, sections: Iterable[str] = SECTIONS) -> list[str]:
        """``section.key: mine != theirs`` for every differing field of ``sections``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{name}.{key}: {mine[name][key]!r} != {theirs[name][key]!r}"
            for name in sections
            for key in mine[name]
            if mine[name][key] != theirs[name][key]
        ]


# -- presets -------------------------------------------------------------------------------
def _preset_dir() -> Any:
    return resources.files("fugu") / "presets"


def preset_names() -> list[str]:
    """Names of the presets fugu ships (env ids, plus ``default``).

    Example:
        >>> "default" in preset_names() and "cartpole-v1" in preset_names()
        True
    """
    return sorted(
        entry.name[: -len(".toml")]
        for entry in _preset_dir().iterdir()
        if entry.name.endswith(".toml")
    )


def load_preset(name: str | Path) -> dict[str, Any]:
    """The raw table of a shipped preset (by name) or of a TOML file (by path).

    Raises:
        APIUsageError: No such preset (the message lists the shipped ones).
    """
    if isinstance(name, Path) or str(name).endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise APIUsageError(f"preset file {path} does not exist")
        return _read_toml(path)
    entry = _preset_dir() / f"{name}.toml"
    if not entry.is_file():
        raise APIUsageError(f"no preset named {name!r}; shipped presets: {preset_names()}")
    return _parse_toml(entry.read_text("utf-8"), str(name))


def _try_preset(env_id: str) -> dict[str, Any] | None:
    entry = _preset_dir() / f"{env_id}.toml"
    return _parse_toml(entry.read_text("utf-8"), env_id) if entry.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    return _parse_toml(path.read_text("utf-8"), str(path))


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise APIUsageError(f"preset {origin} is not valid TOML: {error}") from None


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key != "kwargs":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- overrides -----------------------------------------------------------------------------
def _split_key(raw_key: str) -> tuple[str, str]:
    key = raw_key.lstrip("-").replace("-", "_")
    section, dot, name = key.partition(".")
    if not dot or section not in SECTIONS:
        raise APIUsageError(
            f"unknown option {raw_key!r}: overrides look like --SECTION.KEY VALUE with SECTION "
            f"one of {', '.join(SECTIONS)} (search ranges live in the preset's [sweep] table)"
        )
    names = list(field_types(SECTIONS[section]))
    if name not in names:
        flags = [f"--{section}.{n.replace('_', '-')}" for n in names]
        wanted = f"--{section}.{name.replace('_', '-')}"
        close = difflib.get_close_matches(wanted, flags, n=1)
        hint = f" did you mean {close[0]}?" if close else ""
        raise APIUsageError(
            f"unknown option {raw_key!r};{hint} valid {section} options: {', '.join(flags)}"
        )
    return section, name


def parse_override_args(args: Sequence[str]) -> dict[str, str]:
    """Parse ``["--ppo.learning-rate", "3e-4", "--logging.wandb", ...]`` into a dict.

    ``--key=value`` works too; a flag followed by another flag (or nothing) means ``true``.
    Keys are normalised to ``section.field_name`` and checked.

    Example:
        >>> parse_override_args(["--ppo.learning-rate", "3e-4", "--logging.wandb"])
        {'ppo.learning_rate': '3e-4', 'logging.wandb': 'true'}
    """
    result: dict[str, str] = {}
    index = 0
    while index < len(args):
        token = args[index]
        if not token.startswith("--"):
            raise APIUsageError(f"expected --SECTION.KEY, got {token!r}")
        key, eq, value = token.partition("=")
        if not eq:
            has_value = index + 1 < len(args) and not args[index + 1].startswith("--")
            value = args[index + 1] if has_value else "true"
            index += 1 + int(has_value)
        else:
            index += 1
        section, name = _split_key(key)
        result[f"{section}.{name}"] = value
    return result


# -- TOML writing (a small subset: tables, scalars, arrays) ---------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + ", ".join(items) + " }" if value else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def dumps_toml(data: Mapping[str, Any], _prefix: str = "") -> str:
    """Write nested dicts as TOML (``None`` values are omitted: TOML has no null).

    Example:
        >>> print(dumps_toml({"ppo": {"learning_rate": 0.001, "norm": None}, "a": {"b": {"c": 1}}}))
        [ppo]
        learning_rate = 0.001
        <BLANKLINE>
        [a.b]
        c = 1
        <BLANKLINE>
        <BLANKLINE>
    """
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and value and key != "kwargs":
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = ""
    if lines:
        out += (f"[{_prefix}]\n" if _prefix else "") + "\n".join(lines) + "\n\n"
    for key, table in tables:
        out += dumps_toml(table, f"{_prefix}.{_toml_key(key)}" if _prefix else _toml_key(key))
    return out


def field_help(cls: type) -> dict[str, str]:
    """The attribute docstrings of dataclass ``cls``'s fields (for ``--help``), by field name."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # pragma: no cover - source unavailable
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def describe_options() -> list[tuple[str, str, str, Any]]:
    """``(flag, type name, help, default)`` for every overridable field, for ``--help``."""
    from fugu.train.fields import type_name

    rows = []
    for section, cls in SECTIONS.items():
        docs = field_help(cls)
        defaults = to_dict(cls())
        for name, tp in field_types(cls).items():
            flag = f"--{section}.{name.replace('_', '-')}"
            rows.append((flag, type_name(tp), docs.get(name, ""), defaults.get(name)))
    return rows
