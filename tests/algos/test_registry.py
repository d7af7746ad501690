"""The algorithm registry: built-ins, Python registration, entry-point discovery, errors."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest

from fugu.algos import registry
from fugu.core.errors import APIUsageError

BUILTIN = list(registry._BUILTIN)

FAKE_MODULE = '''
class Fake:
    """A fake algorithm advertised by an installed package."""

    name = "fake"
    collection = "replay"
    action_spaces = ("box",)
    dashboard_metrics = ()
'''


@pytest.fixture
def fresh_registry(monkeypatch):
    """A private copy of the registry, not yet discovered (restored after the test)."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_discovered", False)
    return registry


def fake_entry_points(monkeypatch, *pairs: tuple[str, str]) -> list[str]:
    """Make ``importlib.metadata.entry_points`` advertise ``(name, value)`` algorithms; returns
    a list that records each group asked for."""
    real = importlib.metadata.entry_points
    asked: list[str] = []

    def entry_points(**kwargs):
        if kwargs.get("group") != registry.ENTRY_POINT_GROUP:
            return real(**kwargs)
        asked.append(kwargs["group"])
        return importlib.metadata.EntryPoints(
            importlib.metadata.EntryPoint(name, value, registry.ENTRY_POINT_GROUP)
            for name, value in pairs
        )

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return asked


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An importable module ``fugu_fake_algos`` holding the class ``Fake``."""
    (tmp_path / "fugu_fake_algos.py").write_text(textwrap.dedent(FAKE_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fugu_fake_algos"
    sys.modules.pop("fugu_fake_algos", None)


def test_entry_points_are_discovered_once_lazily_and_imported_on_use(
    fresh_registry, fake_package, monkeypatch
):
    asked = fake_entry_points(monkeypatch, ("fake", "fugu_fake_algos:Fake [extra]"))
    assert asked == []  # nothing read before the first use
    assert fresh_registry.algorithm_names() == sorted(["fake", *BUILTIN])
    assert fake_package not in sys.modules  # listed, not imported
    cls = fresh_registry.get_algorithm("fake")
    assert cls.__name__ == "Fake" and cls.collection == "replay"
    assert fake_package in sys.modules
    fresh_registry.algorithm_names()
    fresh_registry.get_algorithm("fake")
    assert len(asked) == 1  # read once


def test_first_lookup_of_an_unknown_name_discovers(fresh_registry, fake_package, monkeypatch):
    asked = fake_entry_points(monkeypatch, ("fake", "fugu_fake_algos:Fake"))
    assert fresh_registry.get_algorithm("ppo").__name__ == "PPO"
    assert asked == []  # a known name needs no discovery
    assert fresh_registry.get_algorithm("fake").__name__ == "Fake"
    assert len(asked) == 1


def test_registered_names_win_and_bad_entry_points_are_skipped(
    fresh_registry, fake_package, monkeypatch
):
    class Mine:
        pass

    fresh_registry.register_algorithm("fake", Mine)
    fake_entry_points(
        monkeypatch,
        ("fake", "fugu_fake_algos:Fake"),
        ("ppo", "fugu_fake_algos:Fake"),
        ("Bad-Name", "fugu_fake_algos:Fake"),
    )
    assert fresh_registry.algorithm_names() == sorted(["fake", *BUILTIN])
    assert fresh_registry.get_algorithm("fake") is Mine
    assert fresh_registry.get_algorithm("ppo").__name__ == "PPO"


def test_discover_algorithms_again_finds_newly_installed_ones(
    fresh_registry, fake_package, monkeypatch
):
    fake_entry_points(monkeypatch)
    assert fresh_registry.algorithm_names() == sorted(BUILTIN)
    fake_entry_points(monkeypatch, ("fake", "fugu_fake_algos:Fake"))
    assert fresh_registry.algorithm_names() == sorted(BUILTIN)  # discovery is cached
    assert fresh_registry.discover_algorithms() == ["fake"]
    assert fresh_registry.algorithm_names() == sorted(["fake", *BUILTIN])


def test_broken_entry_points_are_clear_errors(fresh_registry, fake_package, monkeypatch):
    fake_entry_points(
        monkeypatch,
        ("missing", "fugu_no_such_module:Algo"),
        ("noattr", "fugu_fake_algos:Nope"),
        ("noclass", "fugu_fake_algos"),
    )
    with pytest.raises(APIUsageError, match=r"'missing'.*cannot be imported.*fugu_no_such"):
        fresh_registry.get_algorithm("missing")
    with pytest.raises(APIUsageError, match=r"'noattr'.*cannot be imported.*Nope"):
        fresh_registry.get_algorithm("noattr")
    with pytest.raises(APIUsageError, match="expected 'module:Class'"):
        fresh_registry.get_algorithm("noclass")


def test_register_unregister_and_unknown_names(fresh_registry, monkeypatch):
    fake_entry_points(monkeypatch)

    class Algo:
        pass

    fresh_registry.register_algorithm("mine", Algo)
    fresh_registry.register_algorithm("mine", Algo)  # the same registration again is fine
    with pytest.raises(APIUsageError, match="already registered"):
        fresh_registry.register_algorithm("mine", "somewhere:Else")
    fresh_registry.register_algorithm("mine", "fugu.algos.ppo:PPO", replace=True)
    assert fresh_registry.get_algorithm("mine").__name__ == "PPO"
    with pytest.raises(APIUsageError, match="lowercase identifiers"):
        fresh_registry.register_algorithm("My-Algo", Algo)
    fresh_registry.unregister_algorithm("mine")
    with pytest.raises(APIUsageError, match=r"unknown algorithm 'mine' \(registered: ppo[,)]"):
        fresh_registry.get_algorithm("mine")
    with pytest.raises(APIUsageError, match="unknown algorithm 'ppx'; did you mean 'ppo'"):
        fresh_registry.get_algorithm("ppx")
    assert fresh_registry.algorithm_names() == sorted(BUILTIN)
