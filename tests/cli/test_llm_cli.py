"""`fugu llm sft|grpo|reward-model` on tiny budgets: they run, print progress and accuracy,
and the saved policy round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from fugu.cli.main import main


def test_sft_then_grpo_then_reward_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lm"
    small = ["--layers", "1", "--d-model", "16", "--heads", "2"]
    common = ["--digits", "1", "--eval-size", "20", "--threads", "1"]
    assert (
        main(
            ["llm", "sft", "--steps", "3", "--batch-size", "8", *small, *common, "--out", str(out)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "sft 3/3" in text and "held-out accuracy" in text
    assert (out / "model.safetensors").exists()
    assert (
        main(
            [
                "llm",
                "grpo",
                "--init",
                str(out),
                "--steps",
                "2",
                "--group-size",
                "2",
                "--prompts",
                "2",
                "--dapo",
                *common,
                "--out",
                str(tmp_path / "rl"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "grpo 2/2" in text and "before" in text and "after" in text
    assert main(["llm", "reward-model", "--steps", "2", "--pairs", "16", *common]) == 0
    assert "pairwise accuracy" in capsys.readouterr().out


def test_grpo_needs_init() -> None:
    with pytest.raises(SystemExit):
        main(["llm", "grpo"])
