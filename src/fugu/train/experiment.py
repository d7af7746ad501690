"""The experiment config: typed, frozen section configs composed into one, presets and overrides.

An :class:`ExperimentConfig` holds one frozen dataclass per section: ``env``
(:class:`EnvConfig`), ``train`` (:class:`~fugu.train.config.TrainConfig`, whose ``algo`` names
the registered algorithm to train), ``policy`` (:class:`~fugu.models.PolicyConfig`),
``logging`` (:class:`LoggingConfig`), ``checkpoint`` (:class:`CheckpointConfig`) and
``explore`` (:class:`~fugu.explore.config.ExploreConfig`, exploration reward hooks), one
section per algorithm named after it (``[ppo]`` holds :class:`~fugu.algos.ppo.PPOConfig`; the
trained algorithm's section is always there, other algorithms' only when given), plus the
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

from fugu.algos.registry import algorithm_names, get_algorithm
from fugu.core.errors import APIUsageError
from fugu.explore.config import ExploreConfig
from fugu.models import PolicyConfig
from fugu.safety.config import ShieldConfig
from fugu.train.config import TrainConfig
from fugu.train.fields import coerce, field_types, from_dict, to_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

__all__ = [
    "BASE_SECTIONS",
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
    "section_type",
    "valid_sections",
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
    backend: Literal["auto", "native", "serial", "multiprocessing", "remote", "ray"] = "auto"
    """``auto``: a native fugu env is used as is, other envs through ``fugu.vector.make``;
    ``remote``: a ``fugu serve`` at ``env.address``; ``ray``: ``env.threads`` Ray actors."""
    solve_threshold: float | None = None
    """The mean of ``solve_metric`` over the last 100 episodes that counts as solved
    (``None``: never)."""
    solve_metric: str = "episode_return"
    """What ``solve_threshold`` is compared with: the episode return, or a score the env
    reports in its infos for each episode (``success``, ``win``, ``bricks``: see the env's
    page)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the env constructor (JSON on the command line)."""
    address: str | None = None
    """``backend="remote"``: ``host:port`` of ``fugu serve`` (token: ``$FUGU_SERVE_TOKEN``);
    ``backend="ray"``: the Ray cluster (``None``: a running or new local one)."""

    def __post_init__(self) -> None:
        if self.num_envs < 1 or self.threads < 1:
            raise APIUsageError("env.num_envs and env.threads must be >= 1")
        if not self.solve_metric.isidentifier():
            raise APIUsageError(
                f"env.solve_metric must be 'episode_return' or an info key such as 'success', "
                f"got {self.solve_metric!r}"
            )


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
    heatmap_interval: int = 0
    """Log a novelty heatmap of each exploration hook (``explore/<hook>_novelty``, an image)
    every this many epochs, on envs with grid cells (``deep-sea-v1``) (0: never)."""

    def __post_init__(self) -> None:
        intervals = (self.histogram_interval, self.video_interval, self.heatmap_interval)
        if min(intervals) < 0 or self.video_length < 1:
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


BASE_SECTIONS: dict[str, type] = {
    "env": EnvConfig,
    "train": TrainConfig,
    "policy": PolicyConfig,
    "logging": LoggingConfig,
    "checkpoint": CheckpointConfig,
    "explore": ExploreConfig,
    "shield": ShieldConfig,
}
"""The sections of every experiment, by name; algorithm sections come from the registry."""


def section_type(name: str) -> type:
    """The config class of section ``name``: a base section or a registered algorithm's.

    Raises:
        APIUsageError: No such section (the message lists the valid ones).

    Example:
        >>> section_type("ppo").__name__, section_type("env").__name__
        ('PPOConfig', 'EnvConfig')
    """
    if name in BASE_SECTIONS:
        return BASE_SECTIONS[name]
    if name in algorithm_names():
        return get_algorithm(name).config_type  # type: ignore[no-any-return]
    raise APIUsageError(
        f"unknown config section [{name}]; valid sections: {', '.join(valid_sections())}"
    )


def valid_sections() -> list[str]:
    """Base sections, then one per registered algorithm, then ``sweep``."""
    return [*BASE_SECTIONS, *algorithm_names(), "sweep"]


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs, one frozen section per component.

    Build it with :meth:`from_preset` (defaults + presets + overrides) or :meth:`from_dict`.
    An algorithm's section is reachable as an attribute of its name (``config.ppo``) and the
    trained one as :attr:`algo_config`.
    """

    env: EnvConfig = field(default_factory=EnvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    explore: ExploreConfig = field(default_factory=ExploreConfig)
    shield: ShieldConfig = field(default_factory=ShieldConfig)
    algos: dict[str, Any] = field(default_factory=dict)
    """Algorithm sections by algorithm name; the trained algorithm's is added when missing."""
    sweep: dict[str, Any] = field(default_factory=dict)
    """The preset's ``[sweep]`` table (search ranges for :mod:`fugu.hpo`), kept as written."""

    def __post_init__(self) -> None:
        algos = dict(self.algos)
        if self.train.algo not in algos:
            algos[self.train.algo] = section_type(self.train.algo)()
        for name, value in algos.items():
            expected = section_type(name)
            if not isinstance(value, expected):
                raise APIUsageError(f"[{name}] must be a {expected.__name__}, got {value!r}")
        object.__setattr__(self, "algos", algos)

    def __getattr__(self, name: str) -> Any:
        algos = self.__dict__.get("algos", {})
        if name in algos:
            return algos[name]
        raise AttributeError(f"{type(self).__name__} has no section {name!r}")

    # -- derived values --------------------------------------------------------------------
    @property
    def algo(self) -> str:
        """The trained algorithm's name (``train.algo``)."""
        return self.train.algo

    @property
    def algo_config(self) -> Any:
        """The trained algorithm's config section."""
        return self.algos[self.train.algo]

    @property
    def solve_threshold(self) -> float:
        """The solve threshold, ``inf`` when the env has none."""
        threshold = self.env.solve_threshold
        return math.inf if threshold is None else float(threshold)

    def section(self, name: str) -> Any:
        """The config object of section ``name`` (a base or an algorithm section)."""
        if name in BASE_SECTIONS:
            return getattr(self, name)
        if name in self.algos:
            return self.algos[name]
        return section_type(name)()

    def section_names(self) -> list[str]:
        """Sections in file order: env, train, the algorithms', policy, logging, checkpoint,
        explore, shield."""
        algos = [self.train.algo, *(name for name in self.algos if name != self.train.algo)]
        return ["env", "train", *algos, "policy", "logging", "checkpoint", "explore", "shield"]

    @property
    def compared_sections(self) -> tuple[str, ...]:
        """Sections a resumed run must share with its checkpoint."""
        return ("env", "train", self.train.algo, "policy", "explore", "shield")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from nested plain values (``{"ppo": {"learning_rate": 1e-3}, ...}``).

        Missing sections and keys keep their defaults.

        Raises:
            APIUsageError: An unknown section or key (the message lists the valid ones), or a
                value that does not fit its field's type.
        """
        for key in data:
            if key != "sweep":
                section_type(key)  # raises for unknown sections
        sections: dict[str, Any] = {
            name: from_dict(kind, data.get(name, {}), name) for name, kind in BASE_SECTIONS.items()
        }
        algos: dict[str, Any] = {
            name: from_dict(section_type(name), value, name)
            for name, value in data.items()
            if name not in BASE_SECTIONS and name != "sweep"
        }
        sweep = data.get("sweep", {})
        if not isinstance(sweep, Mapping):
            raise APIUsageError(f"[sweep] must be a table, got {sweep!r}")
        return cls(**sections, algos=algos, sweep=dict(sweep))

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
            coerce(value, field_types(section_type(section))[key], f"{section}.{key}")
            data.setdefault(section, {})[key] = value
        return type(self).from_dict(data)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain values (JSON/TOML ready); ``from_dict(to_dict())`` round-trips."""
        result: dict[str, Any] = {
            name: to_dict(self.section(name)) for name in self.section_names()
        }
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

    def diff(self, other: ExperimentConfig, sections: Iterable[str] | None = None) -> list[str]:
        """``section.key: mine != theirs`` for every differing field of ``sections`` (default:
        every section either config has)."""
        if sections is None:
            sections = dict.fromkeys([*self.section_names(), *other.section_names()])
        result = []
        for name in sections:
            mine, theirs = to_dict(self.section(name)), to_dict(other.section(name))
            result += [
                f"{name}.{key}: {mine[key]!r} != {theirs[key]!r}"
                for key in mine
                if mine[key] != theirs[key]
            ]
        return result


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
    sections = valid_sections()[:-1]
    if not dot or section not in sections:
        raise APIUsageError(
            f"unknown option {raw_key!r}: overrides look like --SECTION.KEY VALUE with SECTION "
            f"one of {', '.join(sections)} (search ranges live in the preset's [sweep] table)"
        )
    names = list(field_types(section_type(section)))
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
    """The attribute docstrings of dataclass ``cls``'s fields (for ``--help``), by field name
    (inherited fields keep their base class's docstrings unless redefined)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[:-1]):
        docs.update(_own_field_help(base))
    return docs


def _own_field_help(cls: type) -> dict[str, str]:
    """The attribute docstrings written in ``cls``'s own body."""
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


def describe_options(algo: str = "ppo") -> list[tuple[str, str, str, Any]]:
    """``(flag, type name, help, default)`` for every overridable field of the base sections
    and of algorithm ``algo``'s section, for ``--help``."""
    from fugu.train.fields import type_name

    rows = []
    sections = {**BASE_SECTIONS, algo: section_type(algo)}
    for section, cls in sections.items():
        docs = field_help(cls)
        defaults = to_dict(cls())
        for name, tp in field_types(cls).items():
            flag = f"--{section}.{name.replace('_', '-')}"
            rows.append((flag, type_name(tp), docs.get(name, ""), defaults.get(name)))
    return rows
