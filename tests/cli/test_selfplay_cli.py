"""fugu selfplay, fugu match and fugu play, tiny."""

from __future__ import annotations

import io
import json
from argparse import Namespace

from fugu.cli.main import main


def test_selfplay_then_match_and_round_robin(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main([
        "selfplay", "connect4-v1", "--run-dir", str(run_dir), "--quiet",
        "--env.num-envs", "8", "--train.num-steps", "8", "--train.total-timesteps", "240",
        "--policy.hidden-size", "8", "--ppo.update-epochs", "1", "--logging.tensorboard", "false",
        "--selfplay.num-slots", "2", "--selfplay.snapshot-interval", "1",
        "--selfplay.bots", "random,one_ply", "--selfplay.sampling", "pfsp",
        "--summary-json", str(tmp_path / "summary.json"),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "learner" in out and "elo plot" in out
    assert (run_dir / "selfplay" / "elo.png").stat().st_size > 1000
    assert "elo" in json.loads((tmp_path / "summary.json").read_text())
    state = json.loads(sorted((run_dir / "selfplay").glob("state-*.json"))[-1].read_text())
    assert {"bot:random", "bot:one_ply"} <= {e["name"] for e in state["pool"]["entries"]}

    assert main(["match", "connect4-v1", str(run_dir), "random", "--games", "20",
                 "--num-envs", "10", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["games"] == 20 and result["first"]["wins"]["count"] >= 0
    assert main(["match", "connect4-v1", "one_ply", "random", "--games", "20",
                 "--num-envs", "10"]) == 0  # fmt: skip
    assert "one_ply first" in capsys.readouterr().out

    plot = tmp_path / "rr.png"
    assert main(["match", "connect4-v1", "--round-robin", str(run_dir), "--games", "10",
                 "--num-envs", "10", "--bots", "one_ply", "--plot", str(plot)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "round robin" in out and "bot:one_ply" in out and plot.is_file()
    assert main(["match", "connect4-v1", "nonsense-bot", "random"]) == 2


def test_play_a_game_in_the_terminal():
    from fugu.cli.play import run

    moves = io.StringIO("9\n" + "\n".join(["1", "2", "3", "4", "5", "6", "7"] * 6) + "\n")
    out = io.StringIO()
    args = Namespace(env="connect4-v1", checkpoint="alphabeta2", games=1, first=True,
                     stochastic=False, seed=0)  # fmt: skip
    assert run(args, stdin=moves, out=out) == 0
    text = out.getvalue()
    assert "not a legal column: '9'" in text and "O plays" in text
    assert "the agent wins" in text or "you win!" in text or "a draw" in text
    assert "| " in text and "  1 2 3 4 5 6 7" in text
    quit_early = io.StringIO("q\n")
    assert run(args, stdin=quit_early, out=io.StringIO()) == 0


def test_selfplay_drops_the_presets_opponent_but_not_an_asked_for_one(tmp_path, capsys):
    from fugu.cli.selfplay import _two_player
    from fugu.train.experiment import ExperimentConfig

    preset = ExperimentConfig.from_preset("connect4-v1")
    assert preset.env.kwargs == {"opponent": "one_ply"}  # what fugu train plays against
    assert _two_player(preset, []).env.kwargs == {}
    asked = preset.with_overrides({"env.kwargs": {"opponent": "random"}})
    flags = ["--env.kwargs", '{"opponent": "random"}']
    assert _two_player(asked, flags).env.kwargs == {"opponent": "random"}
    code = main(["selfplay", "connect4-v1", "--run-dir", str(tmp_path / "r"), "--quiet", *flags])
    assert code == 2 and "two-player mode" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
