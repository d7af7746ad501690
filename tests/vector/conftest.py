"""Fixtures of the vector tests: the test envs' module, importable by spawn workers too."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def envs_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``_vector_envs`` imported by plain name from a directory put on ``sys.path``."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("_vector_envs")
