"""Importing fugu's env side is cheap: no torch, no optional dependency; `fugu --help` runs.

Each check runs in a fresh interpreter, since this test process has torch loaded already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ENV_SIDE = [
    "fugu",
    "fugu.core",
    "fugu.vector",
    "fugu.envs",
    "fugu.bridges",
    "fugu.bridges.gymnasium_vector",
    "fugu.bridges.sb3",
]
HEAVY = ["torch", "stable_baselines3", "wandb", "optuna", "gpytorch", "tensorboard"]


def _loaded_after(code: str, cwd) -> dict[str, bool]:
    probe = (
        f"import json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=cwd
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("module", ENV_SIDE)
def test_env_side_imports_no_torch(module, tmp_path):
    loaded = _loaded_after(f"import {module}", tmp_path)
    assert not any(loaded.values()), f"import {module} loaded {loaded}"


def test_building_the_cli_parser_imports_no_torch(tmp_path):
    """`fugu --help` builds every subcommand's parser: add_arguments() must stay light."""
    from fugu.cli.main import COMMANDS

    build = "from fugu.cli.main import build_parser\nbuild_parser()"
    if not _loaded_after(build, tmp_path)["torch"]:
        return
    culprits = []  # find which subcommands, for the message
    for name, (module, _) in COMMANDS.items():
        code = (
            f"import argparse, importlib\nmodule = importlib.import_module({module!r})\n"
            "module.add_arguments(argparse.ArgumentParser())"
        )
        if _loaded_after(code, tmp_path)["torch"]:
            culprits.append(name)
    pytest.fail(
        f"building the parser of `fugu {' / '.join(culprits) or '...'}` imports torch: move "
        "heavy imports from module level and add_arguments() into run()"
    )


def test_fugu_help_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "fugu.cli.main", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "usage: fugu" in out.stdout and "COMMAND" in out.stdout
