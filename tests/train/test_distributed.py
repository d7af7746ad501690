"""Data-parallel training on CPU with gloo: the gradient all-reduce makes two ranks equal one
process with the combined batch; full runs keep identical parameters, write on rank 0 only and
resume every rank's own state."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from fugu.models.optim import Optimizer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 3, generator=g), torch.randn(64, 2, generator=g)


def _fit(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, minibatch: int) -> None:
    """Four epochs of minibatches in a fixed order, clipped AdamW, through fugu's Optimizer."""
    opt = Optimizer(net.parameters(), learning_rate=1e-2, max_grad_norm=0.5)
    for _ in range(4):
        for lo in range(0, len(x), minibatch):
            loss = (net(x[lo : lo + minibatch]) - y[lo : lo + minibatch]).pow(2).mean()
            opt.backward(loss)
            opt.step()


def _setup(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)


def _optimizer_rank(rank: int, world: int, port: int, out: str) -> None:
    _setup(rank, world, port)
    x, y = _data()
    # rank r holds rows r, r + 2, ...: its minibatch i is the odd or even half of the
    # combined minibatch i of the single process (the same rows, split)
    net = _net()
    _fit(net, x[rank::world], y[rank::world], 8)
    torch.save({k: v.detach() for k, v in net.state_dict().items()}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_gloo_ranks_equal_one_process_with_the_combined_batch(tmp_path: Path) -> None:
    x, y = _data()
    # the single process sees minibatch i = rows of both ranks' minibatch i
    order = torch.cat([torch.arange(64)[r::2].view(-1, 8) for r in range(2)], dim=1).view(-1)
    single = _net()
    _fit(single, x[order], y[order], 16)
    mp.start_processes(
        _optimizer_rank, (2, _free_port(), str(tmp_path)), nprocs=2, start_method="fork"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for key, value in single.state_dict().items():
        assert torch.equal(ranks[0][key], ranks[1][key])  # identical on every rank
        torch.testing.assert_close(ranks[0][key], value, rtol=0, atol=1e-6)
    # and the test can fail: one rank alone drifts away from the combined batch
    alone = _net()
    _fit(alone, x[0::2], y[0::2], 8)
    assert not torch.allclose(alone.state_dict()["0.weight"], single.state_dict()["0.weight"])


def _train_rank(rank: int, world: int, port: int, root: str, epochs: int | None) -> None:
    _setup(rank, world, port)
    from fugu.train.experiment import ExperimentConfig
    from fugu.train.run import train

    config = ExperimentConfig.from_preset(
        "cartpole-v1",
        ["--train.total-timesteps", "512", "--env.num-envs", "8", "--train.num-steps", "16",
         "--logging.tensorboard", "false", "--checkpoint.interval", "2"],
    )  # fmt: skip
    seen: dict[str, object] = {}

    def keep(context) -> None:
        trainer = context.trainer
        seen["weights"] = {
            f"{name}.{key}": value.detach().clone()
            for name, module in trainer.algo.modules().items()
            for key, value in module.state_dict().items()
        }
        seen["obs"] = trainer.envs[0].observations.copy()

    summary = train(
        config, [keep], run_name="ddp", root=f"{root}/runs", quiet=True, max_epochs=epochs
    )
    torch.save(
        {**seen, "steps": summary.timesteps, "resumed": summary.resumed_from is not None},
        f"{root}/rank{rank}-{epochs}.pt",
    )
    torch.distributed.destroy_process_group()


def _ddp(root: Path, epochs: int | None) -> list[dict]:
    mp.start_processes(
        _train_rank, (2, _free_port(), str(root), epochs), nprocs=2, start_method="fork"
    )
    return [torch.load(root / f"rank{r}-{epochs}.pt", weights_only=False) for r in range(2)]


def test_ddp_runs_keep_ranks_identical_write_on_rank_zero_and_resume(tmp_path: Path) -> None:
    first = _ddp(tmp_path, 2)  # 2 of 4 epochs, then stop
    for key, value in first[0]["weights"].items():
        assert torch.equal(value, first[1]["weights"][key]), key
    assert not (first[0]["obs"] == first[1]["obs"]).all()  # each rank its own envs and seeds
    run = tmp_path / "runs" / "ddp"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name != "best")
    assert checkpoints and not any("rank" in name for name in checkpoints)
    assert len([p for p in (tmp_path / "runs").iterdir()]) == 1  # one run dir, rank 0's
    lines = (run / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line).get("train/epoch") for line in lines]
    assert len([e for e in epochs if e is not None]) == len(set(e for e in epochs if e))  # once

    second = _ddp(tmp_path, None)  # resume the same run to its end
    assert second[0]["resumed"] and second[1]["resumed"]
    assert second[0]["steps"] == second[1]["steps"] == 512
    for key, value in second[0]["weights"].items():
        assert torch.equal(value, second[1]["weights"][key]), key
    assert not torch.equal(second[0]["weights"][key], first[0]["weights"][key])
    assert first[0]["steps"] == 256


def test_init_without_a_launcher_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from fugu.core.errors import APIUsageError
    from fugu.train.distributed import init_from_env

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(APIUsageError, match="torchrun"):
        init_from_env()


def test_cli_distributed_without_a_launcher_says_how(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fugu.cli.main import main

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["train", "cartpole-v1", "--distributed", "--quiet"]) == 2
    assert "torchrun --nproc-per-node" in capsys.readouterr().err


def test_target_kl_is_refused_under_ddp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import fugu.train.run as run_module
    from fugu.core.errors import APIUsageError
    from fugu.train.distributed import DistInfo
    from fugu.train.experiment import ExperimentConfig

    monkeypatch.setattr(run_module, "dist_info", lambda: DistInfo(rank=0, world_size=2))
    config = ExperimentConfig.from_preset("cartpole-v1", ["--ppo.target-kl", "0.02"])
    with pytest.raises(APIUsageError, match="target_kl"):
        run_module.train(config, root=tmp_path, quiet=True)
