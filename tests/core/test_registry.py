"""The env registry: versioned ids, lazy entry points, Gymnasium fallback, helpful errors."""

from __future__ import annotations

import pytest

import fugu
from fugu.core import APIUsageError, Registry, UnknownEnvError
from fugu.core.errors import MissingDependencyError, missing_dependency


def make_thing(size: int = 1, scale: float = 1.0) -> tuple[int, float]:
    return size, scale


def test_register_and_make_with_default_and_override_kwargs():
    reg = Registry()
    reg.register("thing-v0", f"{__name__}:make_thing", size=3)
    assert "thing-v0" in reg
    assert reg.make("thing-v0") == (3, 1.0)
    assert reg.make("thing-v0", scale=2.0) == (3, 2.0)
    reg.register("thing-v1", make_thing)
    assert reg.make("thing-v1", size=5) == (5, 1.0)


def test_ids_must_be_versioned_and_unique():
    reg = Registry()
    with pytest.raises(APIUsageError, match="not versioned"):
        reg.register("Thing", make_thing)
    reg.register("thing-v0", make_thing)
    with pytest.raises(APIUsageError, match="already registered"):
        reg.register("thing-v0", make_thing)
    reg.register("thing-v0", make_thing, overwrite=True, size=2)
    assert reg.make("thing-v0") == (2, 1.0)


def test_unknown_id_suggests_a_close_match():
    reg = Registry()
    reg.register("thing-v0", make_thing)
    with pytest.raises(UnknownEnvError, match="did you mean 'thing-v0'"):
        reg.make("thing-v9")
    with pytest.raises(UnknownEnvError, match="Gymnasium id works too"):
        reg.make("nothing-like-it-v0")


def test_builtin_ids_are_versioned_and_importable_lazily():
    for env_id in fugu.registered_ids():
        spec = fugu.core.registry.default_registry.spec(env_id)
        assert callable(spec.load()), env_id


def test_missing_dependency_names_the_extra():
    err = missing_dependency("wandb", "wandb")
    assert isinstance(err, MissingDependencyError) and isinstance(err, ImportError)
    assert "fugu-rl[wandb]" in str(err)


def test_top_level_lazy_names():
    assert fugu.PufferEnv is fugu.core.PufferEnv
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = fugu.nope
    assert "make" in dir(fugu)
