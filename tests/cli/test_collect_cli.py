"""`fugu collect` -> `fugu train --algo dt|bc --dataset` -> `fugu eval --target-return`: tiny runs
end to end, and the mistakes a user makes on the way."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main
from fugu.data import TrajectoryDataset

TINY = ["--env.num-envs", "2", "--train.total-timesteps", "64", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("collect") / "random"
    code = main(
        ["collect", "cartpole-v1", "--random", "--episodes", "6", "--num-envs", "3",
         "--output", str(path), "--quiet"]
    )  # fmt: skip
    assert code == 0
    return path


def test_collect_random_writes_whole_episodes(dataset, capsys, tmp_path, monkeypatch):
    data = TrajectoryDataset.load(dataset)
    assert data.num_episodes == 6
    assert data.metadata.env_id == "cartpole-v1" and data.metadata.policy == "random"
    assert data.metadata.composition["sources"][0]["episodes"] == 6
    # cartpole pays 1 per step, so each return is its episode's length
    assert data.episode_returns.tolist() == data.episode_lengths.tolist()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    code = main(
        ["collect", "cartpole-v1", "--random", "--episodes", "2", "--output",
         str(tmp_path / "again"), "--minari-id", "fugu/cartpole-random-v0", "--json", "--quiet"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["num_episodes"] == 2 and report["minari_id"] == "fugu/cartpole-random-v0"
    assert (tmp_path / "minari" / "fugu" / "cartpole-random-v0").is_dir()


@pytest.mark.parametrize("algo", ["dt", "bc"])
def test_train_offline_then_eval_with_a_checkpoint_as_collector(dataset, tmp_path, capsys, algo):
    run = tmp_path / "run"
    extra = ["--dt.batch-size", "8", "--dt.context-length", "4", "--dt.embed-dim", "16"]
    if algo == "bc":
        extra = ["--bc.batch-size", "8", "--bc.top-fraction", "0.5"]
    code = main(
        ["train", "cartpole-v1", "--algo", algo, "--dataset", str(dataset), *TINY,
         "--run-dir", str(run), *extra]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    target = ["--target-return", "30"] if algo == "dt" else []
    code = main(["eval", "--checkpoint", str(run), "--episodes", "2", "--json", *target])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["algo"] == algo and report["episodes"] == 2
    if algo == "dt":
        assert report["target_return"] == 30
        # the trained agent records a dataset in turn, with epsilon noise
        out = tmp_path / "from-dt"
        code = main(
            ["collect", "cartpole-v1", "--checkpoint", str(run), "--epsilon", "0.5",
             "--episodes", "2", "--num-envs", "2", "--output", str(out), "--quiet"]
        )  # fmt: skip
        assert code == 0
        assert TrajectoryDataset.load(out).num_episodes == 2
    else:
        code = main(["eval", "--checkpoint", str(run), "--episodes", "1", "--target-return", "3"])
        assert code == 2 and "not return-conditioned" in capsys.readouterr().err


def test_user_mistakes_are_clear_errors(dataset, tmp_path, capsys):
    code = main(["train", "cartpole-v1", "--algo", "dt", "--dataset", str(tmp_path / "nope"),
                 *TINY, "--run-dir", str(tmp_path / "r1")])  # fmt: skip
    assert code == 2 and "no such file" in capsys.readouterr().err
    code = main(["train", "cartpole-v1", "--algo", "dt", *TINY, "--run-dir", str(tmp_path / "r2")])
    assert code == 2 and "--dataset PATH" in capsys.readouterr().err
    code = main(["train", "cartpole-v1", "--dataset", str(dataset), *TINY])
    assert code == 2 and "does not train on a dataset" in capsys.readouterr().err
    code = main(["train", "pendulum-v1", "--algo", "bc", "--dataset", str(dataset), *TINY,
                 "--run-dir", str(tmp_path / "r3")])  # fmt: skip
    assert code == 2 and "shape" in capsys.readouterr().err
    code = main(["collect", "cartpole-v1", "--episodes", "1", "--output", str(tmp_path / "x")])
    assert code == 2 and "--random" in capsys.readouterr().err
    code = main(["collect", "cartpole-v1", "--random", "--output", str(dataset)])
    assert code == 2 and "exists" in capsys.readouterr().err
