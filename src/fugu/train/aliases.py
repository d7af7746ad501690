"""Short names for the common options, and close-match suggestions across every section.

``fugu train ENV --lr 1e-3 --total-timesteps 1e5 --num-envs 64 --device cpu`` and
``fugu.train("cartpole-v1", lr=1e-3, total_timesteps=100_000)`` use the short names of
:data:`ALIASES`; any other option is ``section.key`` (``--ppo.clip-coef 0.1`` on the command
line, ``ppo__clip_coef=0.1`` or ``{"ppo.clip_coef": 0.1}`` in Python).

Example:
    >>> resolve_key("lr", "ppo"), resolve_key("--total-timesteps", "ppo")
    ('ppo.learning_rate', 'train.total_timesteps')
    >>> resolve_key("ppo__clip_coef", "ppo")
    'ppo.clip_coef'
    >>> resolve_key("--ppo.lr", "ppo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fugu.core.errors.APIUsageError: unknown option '--ppo.lr'; did you mean --ppo.learning-rate ...
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from fugu.core.errors import APIUsageError
from fugu.train.experiment import BASE_SECTIONS, section_type, valid_sections
from fugu.train.fields import field_types

__all__ = ["ALIASES", "all_option_keys", "normalize_overrides", "resolve_key"]

ALIASES: dict[str, str] = {
    "total_timesteps": "train.total_timesteps",
    "timesteps": "train.total_timesteps",
    "num_envs": "env.num_envs",
    "device": "train.device",
    "num_steps": "train.num_steps",
    "learning_rate": "{algo}.learning_rate",
    "lr": "{algo}.learning_rate",
    "gamma": "{algo}.gamma",
    "shield": "shield.mode",
}
"""Short option names and the ``section.key`` each stands for (``{algo}``: the trained one)."""


_HELP = " ('fugu train ENV --help' lists every option)"


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def all_option_keys() -> list[str]:
    """Every ``section.key`` of every section (base sections and every registered algorithm)."""
    keys = []
    for section in valid_sections():
        if section == "sweep":
            continue
        try:
            names = field_types(section_type(section))
        except Exception:  # a broken plugin must not break suggestions
            continue
        keys += [f"{section}.{name}" for name in names]
    return keys


def _suggestion(key: str, algo: str) -> str:
    section, dot, name = key.partition(".")
    keys = all_option_keys()
    # an alias used as a key of a section: --ppo.lr
    if dot and name in ALIASES:
        target = ALIASES[name].format(algo=section if section in valid_sections() else algo)
        if target in keys:
            return f"did you mean {_flag(target)} (or --{name.replace('_', '-')})?"
    # a right key in the wrong section: --train.learning-rate
    leaf = name if dot else key
    owners = [candidate for candidate in keys if candidate.partition(".")[2] == leaf]
    owners.sort(key=lambda candidate: not candidate.startswith(f"{algo}."))
    if owners:
        return f"did you mean {' or '.join(_flag(owner) for owner in owners[:3])}?"
    # other algorithms' sections only when nothing of the trained run's sections is close
    algorithm_sections = set(valid_sections()) - set(BASE_SECTIONS) - {algo}
    own = [k for k in keys if k.partition(".")[0] not in algorithm_sections]
    close = difflib.get_close_matches(key, [*own, *ALIASES], n=3, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key, [*keys, *ALIASES], n=3, cutoff=0.6)
    if not close:
        leaves = {k.partition(".")[2]: k for k in keys}
        close = [leaves[match] for match in difflib.get_close_matches(leaf, list(leaves), n=3)]
    if close:
        return f"did you mean {' or '.join(_flag(c) for c in close)}?"
    return "no option is close to it"


def resolve_key(raw: str, algo: str) -> str:
    """The ``section.key`` that ``raw`` names: an alias, ``section.key`` (dashes, underscores
    or ``section__key`` accepted), checked to exist.

    Raises:
        APIUsageError: No such option (the message suggests the closest ones, across every
            section and the aliases).
    """
    key = raw.lstrip("-").replace("-", "_").replace("__", ".")
    if "." not in key:
        if key in ALIASES:
            return ALIASES[key].format(algo=algo)
        raise APIUsageError(f"unknown option {raw!r}; {_suggestion(key, algo)}{_HELP}")
    if key in all_option_keys():
        return key
    raise APIUsageError(f"unknown option {raw!r}; {_suggestion(key, algo)}{_HELP}")


def normalize_overrides(overrides: Mapping[str, Any], algo: str) -> dict[str, Any]:
    """``{alias or section.key: value}`` as ``{section.key: value}`` (checked).

    Example:
        >>> normalize_overrides({"lr": 1e-3, "env.num-envs": 4}, "ppo")
        {'ppo.learning_rate': 0.001, 'env.num_envs': 4}
    """
    result: dict[str, Any] = {}
    for raw, value in overrides.items():
        result[resolve_key(raw, algo)] = value
    return result
