"""``fugu bench vector``: JSON lines and the table."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "vector", "--num-envs", "2", "--num-workers", "1", "--steps", "32",
            "--repeats", "1", "--impls", "gymnasium-sync,fugu-serial", "--json"]  # fmt: skip
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["impl"] for line in lines] == ["gymnasium-sync", "fugu-serial"]
    assert lines[1]["num_envs"] == 2 and lines[1]["ratio_vs_gymnasium_sync"] > 0


def test_table_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "vector", "--num-envs", "2", "--num-workers", "1", "--steps", "32",
            "--repeats", "1", "--impls", "fugu-serial,fugu-mp-sync",
            "--context", "fork"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fugu-mp-sync" in out and "steps/s" in out
    assert main(["bench", "vector", "--impls", "nope"]) == 2
    assert "unknown implementations" in capsys.readouterr().out


@pytest.mark.parametrize(("flag", "expected"), [("auto", None), ("on", True), ("off", False)])
def test_pin_workers_reaches_the_workers(
    flag: str, expected: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fugu.vector import backends, multiproc

    asked: list[bool | None] = []

    class Recording(multiproc.Multiprocessing):
        def __init__(self, *args: object, pin_workers: bool | None = None, **kwargs: object):
            asked.append(pin_workers)
            super().__init__(*args, pin_workers=pin_workers, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backends, "Multiprocessing", Recording)
    argv = ["bench", "vector", "--num-envs", "2", "--num-workers", "1", "--steps", "16",
            "--repeats", "1", "--impls", "fugu-mp-sync", "--context", "fork",
            "--pin-workers", flag, "--json"]  # fmt: skip
    assert main(argv) == 0
    assert asked == [expected]
