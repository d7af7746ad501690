"""``fugu train ... --explore.method`` trains with the hook, logs it and saves its state."""

from __future__ import annotations

import json

import pytest

from fugu.checkpoint import load_checkpoint
from fugu.cli.main import main


@pytest.mark.parametrize(("algo", "method"), [("ppo_rnd", "rnd"), ("ppo", "icm")])
def test_train_with_an_exploration_hook(tmp_path, algo: str, method: str) -> None:
    run = tmp_path / "run"
    code = main([
        "train", "deep-sea-v1", "--algo", algo, "--explore.method", method,
        "--env.kwargs", '{"size": 4}', "--train.total-timesteps", "512",
        "--run-dir", str(run), "--quiet",
    ])  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*(row.get("metrics", row) for row in rows))
    assert f"explore/{method}_raw_mean" in keys
    assert ("loss/intrinsic_value" in keys) == (algo == "ppo_rnd")
    (checkpoint,) = (run / "checkpoints").glob("step-*")  # best/ is kept beside them
    state = load_checkpoint(checkpoint).state["trainer"]
    assert len(state["reward_hooks"]) == 1
