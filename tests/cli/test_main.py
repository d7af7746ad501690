"""The `fugu` entry point: help, version, the envs listing."""

from __future__ import annotations

import json

import pytest

import fugu
from fugu.cli.main import COMMANDS, build_parser, main


def test_every_command_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert name in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert fugu.__version__ in capsys.readouterr().out


def test_missing_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_envs_lists_registered_ids(capsys):
    assert main(["envs"]) == 0
    assert capsys.readouterr().out.split() == fugu.registered_ids()
    assert main(["envs", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["id"] for row in rows] == fugu.registered_ids()
