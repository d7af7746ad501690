"""fugu plan: a tiny true-model run, a PETS run that saves, a horizon sweep PNG, bad env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fugu.cli.main import main


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _last_json(out: str) -> dict:
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def test_plan_true_model_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "pendulum-v1", "--horizon", "5", "--population", "16", "--steps", "12"]
    assert main([*argv, "--planner", "rs"]) == 0
    row = _last_json(capsys.readouterr().out)
    assert row["model"] == "true" and row["steps"] == 12 and row["plan_ms_per_step"] > 0


def test_plan_pets_tiny_saves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pets.pt"
    argv = [
        "plan", "pendulum-v1", "--model", "pets", "--horizon", "4", "--population", "16",
        "--iterations", "2", "--steps", "60", "--warmup", "30", "--train-every", "30",
        "--fit-steps", "5", "--quiet", "--save", str(path),
    ]  # fmt: skip
    assert main(argv) == 0
    row = _last_json(capsys.readouterr().out)
    assert row["model"] == "pets" and row["fits"] == 2
    state = torch.load(path, weights_only=False)
    assert state["steps"] == 60


def test_plan_sweep_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "sweep.png"
    argv = [
        "plan", "pendulum-v1", "--sweep-horizons", "2,4", "--population", "8", "--steps", "6",
        "--png", str(png), "--quiet", "--planner", "rs",
    ]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [r["horizon"] for r in rows] == [2, 4]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_discrete_env_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "cartpole-v1", "--steps", "2", "--quiet"]) == 2
    assert "Box" in capsys.readouterr().err


def test_plan_gymnasium_env_needs_pets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "Pendulum-v1", "--steps", "2", "--quiet"]) == 2
    assert "--model pets" in capsys.readouterr().err
    argv = [
        "plan", "Pendulum-v1", "--model", "pets", "--horizon", "3", "--population", "8",
        "--iterations", "1", "--steps", "25", "--warmup", "20", "--fit-steps", "3", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert _last_json(capsys.readouterr().out)["fits"] == 1
