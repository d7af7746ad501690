"""``fugu bench env`` runs tiny and prints what it measured."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main


def test_one_env_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "env", "probe-constant-v1", "--num-envs", "4", "--seconds", "0.001"]
    assert main([*argv, "--repeats", "1", "--json"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["env"] == "probe-constant-v1" and record["num_envs"] == 4


def test_cartpole_with_peers_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "env", "cartpole-v1", "--num-envs", "4", "--seconds", "0.001", "--peers"]
    assert main([*argv, "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "gymnasium_vector" in out and "envpool" in out and "ratio_vs_envpool" in out


def test_suite_without_starts(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "env", "probe-delayed-v1", "--suite", "--sizes", "2", "--no-starts"]
    assert main([*argv, "--seconds", "0.001", "--repeats", "1"]) == 0
    assert "probe-delayed-v1" in capsys.readouterr().out


def test_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "env"]) == 2
    assert "cartpole-v1" in capsys.readouterr().out
    assert main(["bench", "env", "cartpole-v9", "--seconds", "0.001"]) == 2
    assert "unknown env id" in capsys.readouterr().out


def test_start_line_format() -> None:
    from fugu.cli.bench_env import _line

    assert "1.50 s" in _line({"impl": "cold_start", "env": "all", "seconds": 1.5})
