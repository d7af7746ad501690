"""`fugu algos`: every registered algorithm, built in, registered in Python or advertised by an
installed package's entry point, in text and JSON."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

from fugu.algos import registry
from fugu.cli.main import main

BUILTIN = list(registry._BUILTIN)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "a2c.py"
PACKAGE = '''
from dataclasses import dataclass


@dataclass(frozen=True)
class FakeConfig:
    """Settings of the fake algorithm."""


class Fake:
    """A fake replay algorithm from an installed package."""

    name = "fake"
    config_type = FakeConfig
    collection = "replay"
    action_spaces = ("box",)
    dashboard_metrics = ()
'''


@pytest.fixture
def algorithms(tmp_path, monkeypatch):
    """The built-ins, the A2C example registered in Python and ``fake`` from an entry point."""
    spec = importlib.util.spec_from_file_location("fugu_example_a2c_cli", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)
    spec.loader.exec_module(example)
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_discovered", False)
    registry.register_algorithm("a2c", example.A2C)

    (tmp_path / "fugu_fake_package.py").write_text(textwrap.dedent(PACKAGE))
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") != registry.ENTRY_POINT_GROUP:
            return real(**kwargs)
        return importlib.metadata.EntryPoints(
            [importlib.metadata.EntryPoint("fake", "fugu_fake_package:Fake", kwargs["group"])]
        )

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    yield
    sys.modules.pop("fugu_fake_package", None)


def test_algos_json_lists_every_algorithm(algorithms, capsys):
    assert main(["algos", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["name"] for row in rows] == sorted(["a2c", "fake", *registry._BUILTIN])
    by_name = {row["name"]: row for row in rows}
    assert by_name["a2c"] == {
        "name": "a2c",
        "collection": "rollout",
        "action_spaces": ["discrete", "multi_discrete", "box"],
        "config": "[a2c] A2CConfig",
        "summary": "Advantage actor-critic: one gradient step per rollout.",
    }
    assert by_name["fake"]["collection"] == "replay"
    assert by_name["fake"]["action_spaces"] == ["box"]
    assert by_name["fake"]["config"] == "[fake] FakeConfig"
    assert by_name["ppo"]["config"] == "[ppo] PPOConfig"


def test_algos_text_lists_every_algorithm(algorithms, capsys):
    assert main(["algos"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "collection", "action", "spaces", "summary"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert sorted(rows) == sorted(["a2c", "fake", *registry._BUILTIN])
    assert rows["a2c"].split()[:2] == ["a2c", "rollout"]
    assert "discrete, multi_discrete, box" in rows["a2c"]
    assert rows["a2c"].endswith("Advantage actor-critic: one gradient step per rollout.")
    assert rows["ppo"].endswith("Proximal Policy Optimization: clipped surrogate, GAE or "
                                "V-trace, MLP, CNN or LSTM.")  # fmt: skip
    assert rows["fake"].split()[:3] == ["fake", "replay", "box"]
    assert "--algo NAME" in lines[-1]


def test_a_broken_plugin_is_listed_as_unavailable(capsys):
    registry.register_algorithm("broken", "fugu_no_such_module:Algo")
    try:
        assert main(["algos"]) == 0
    finally:
        registry.unregister_algorithm("broken")
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert "unavailable" in rows["broken"] and rows["ppo"].split()[1] == "rollout"
