"""The worked example of docs/writing-an-algorithm.md (docs/examples/a2c.py) is a complete
algorithm: registered from outside fugu it trains through the CLI, learns a probe, checkpoints
its modules by name, resumes bitwise, evaluates, and is found through an entry point."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from safetensors.torch import load_file

from fugu.algos import registry
from fugu.buffers import Batch
from fugu.cli.main import main
from fugu.models import PolicyConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
ENV = "probe-observation-v1"
TOTAL = 1024  # 32 epochs of 8 rows x 4 steps: solves the probe in about a second
TRAIN = [
    *["--env.num-envs", "8", "--train.num-steps", "4", "--train.total-timesteps", str(TOTAL)],
    *["--a2c.learning-rate", "1e-2", "--checkpoint.interval", "8"],
    *["--logging.tensorboard", "false", "--quiet"],
]


def load_example():
    """Import docs/examples/a2c.py by file path."""
    spec = importlib.util.spec_from_file_location("fugu_example_a2c", EXAMPLES / "a2c.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


a2c = load_example()


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registered():
    """``a2c`` registered the way a user does it, for this module's tests."""
    registry.register_algorithm("a2c", a2c.A2C)
    yield
    registry.unregister_algorithm("a2c")


def train(run_dir: Path, *extra: str) -> dict:
    summary = run_dir.parent / f"{run_dir.name}-summary.json"
    args = ["train", ENV, "--algo", "a2c", "--run-dir", str(run_dir), *TRAIN, *extra]
    assert main([*args, "--summary-json", str(summary)]) == 0
    return json.loads(summary.read_text())


@pytest.fixture(scope="module")
def full_run(registered, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("a2c") / "full"
    return run_dir, train(run_dir)


def test_the_example_imports_nothing_above_the_algorithm_layer():
    tree = ast.parse((EXAMPLES / "a2c.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    assert "fugu.algos.base" in imported  # the parse saw the imports
    above = [m for m in imported if m.split(".")[:2] in (["fugu", "train"], ["fugu", "cli"],
                                                         ["fugu", "checkpoint"])]  # fmt: skip
    assert above == []


def test_trains_through_the_cli_learns_the_probe_and_checkpoints_its_modules(full_run, capsys):
    run_dir, summary = full_run
    assert summary["algo"] == "a2c" and summary["timesteps"] == TOTAL
    assert summary["final_return"] >= 0.9
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["algo"] == "a2c" and config["a2c"]["learning_rate"] == 1e-2

    weights = load_file(Path(summary["checkpoint"]) / "weights.safetensors")
    policy_config = PolicyConfig(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in config["policy"].items()})  # fmt: skip
    algo = a2c.A2C.build(a2c.A2CConfig(), spaces.Box(-1, 1, (1,)), spaces.Discrete(2),
                         policy_config)  # fmt: skip
    assert set(weights) == {f"policy.{key}" for key in algo.policy.state_dict()}

    capsys.readouterr()
    assert main(["eval", ENV, "--checkpoint", str(run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["algo"] == "a2c" and report["episodes"] == 10
    assert len(report["returns"]) == 10 and report["mean_return"] >= 0.9


def test_an_untrained_a2c_does_not_solve_the_probe(registered, tmp_path):
    # The learning test above can fail: at learning rate 0 the same run scores near 0.
    summary = train(tmp_path / "frozen", "--a2c.learning-rate", "0")
    assert summary["final_return"] < 0.5


def test_a_resumed_run_ends_with_the_uninterrupted_runs_weights_bitwise(full_run, tmp_path):
    full_dir, _ = full_run
    split = tmp_path / "split"
    first = train(split, "--epochs", "10")
    assert first["timesteps"] == 320 and first["resumed_from"] is None
    second = train(split)
    assert second["resumed_from"] is not None and second["timesteps"] == TOTAL
    name = f"checkpoints/step-{TOTAL:012d}/weights.safetensors"
    assert (split / name).read_bytes() == (full_dir / name).read_bytes()


def test_cli_trains_an_algorithm_advertised_by_an_entry_point(tmp_path, monkeypatch):
    # A package advertising ``a2c = "a2c:A2C"`` under ``fugu.algorithms``: nothing registered.
    monkeypatch.setattr(registry, "_registry", {k: v for k, v in registry._registry.items()
                                                if k != "a2c"})  # fmt: skip
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") != registry.ENTRY_POINT_GROUP:
            return real(**kwargs)
        return importlib.metadata.EntryPoints(
            [importlib.metadata.EntryPoint("a2c", "a2c:A2C", registry.ENTRY_POINT_GROUP)]
        )

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    try:
        summary = train(tmp_path / "run", "--epochs", "2")
        assert summary["algo"] == "a2c" and summary["timesteps"] == 64
        assert registry.get_algorithm("a2c") is sys.modules["a2c"].A2C
    finally:
        sys.modules.pop("a2c", None)


# -- the algorithm itself -------------------------------------------------------------------
def make_batch(steps: int, rows: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    return {
        "observations": uniform(steps, rows, 3) * 2 - 1,
        "actions": torch.randint(0, 4, (steps, rows), generator=generator),
        "rewards": uniform(steps, rows),
        "values": uniform(steps, rows),
        "next_values": uniform(steps, rows),
        "terminals": uniform(steps, rows) < 0.2,
        "truncations": torch.zeros(steps, rows, dtype=torch.bool),
        "masks": uniform(steps, rows) < 0.6,
        "starts": uniform(steps, rows) < 0.2,
        "action_masks": torch.ones(steps, rows, 4, dtype=torch.bool),
    }


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_non_live_samples_never_reach_the_update(kind):
    generator = torch.Generator().manual_seed(0)
    data = make_batch(6, 5, generator)
    data["action_masks"][..., 3] = False
    data["actions"] = data["actions"].clamp(max=2)  # legal actions where live
    other = {k: v.clone() for k, v in data.items()}
    dead = ~data["masks"]
    other["rewards"][dead] = 100.0
    other["values"][dead] = -50.0
    other["actions"][dead] = 3
    other["action_masks"][dead] = False  # a waiting row may have no legal action at all
    if kind == "mlp":  # a recurrent core sees every step's observation; the losses do not
        other["observations"][dead] = 7.0
    results = []
    for batch in (data, other):
        torch.manual_seed(1)
        algo = a2c.A2C.build(a2c.A2CConfig(), spaces.Box(-1, 1, (3,)), spaces.Discrete(4),
                             PolicyConfig(kind=kind, hidden_size=8))  # fmt: skip
        state = algo.initial_state(5)
        metrics = algo.update(Batch(batch, initial_state=state), progress=0.5)
        assert all(np.isfinite(value) for value in metrics.values()), str(metrics)
        results.append(torch.cat([p.detach().flatten() for p in algo.policy.parameters()]))
    assert torch.equal(results[0], results[1])
    torch.manual_seed(1)
    algo = a2c.A2C.build(a2c.A2CConfig(), spaces.Box(-1, 1, (3,)), spaces.Discrete(4),
                         PolicyConfig(kind=kind, hidden_size=8))  # fmt: skip
    before = torch.cat([p.detach().flatten() for p in algo.policy.parameters()])
    assert not torch.equal(before, results[0])  # the update did learn something


def test_act_respects_action_masks_and_the_generator_is_seeded():
    algo = a2c.A2C.build(a2c.A2CConfig(seed=3), spaces.Box(-1, 1, (3,)), spaces.Discrete(4),
                         PolicyConfig())  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    action_masks = torch.rand(512, 4, generator=generator) < 0.5
    action_masks[torch.arange(512), torch.randint(0, 4, (512,), generator=generator)] = True
    obs = torch.rand(512, 3, generator=generator)
    out = algo.act(obs, None, {"action_masks": action_masks})
    assert bool(action_masks[torch.arange(512), out.actions].all())
    assert out.fields["values"].shape == (512,)
    mode = algo.act(obs, None, {"action_masks": action_masks}, deterministic=True)
    assert bool(action_masks[torch.arange(512), mode.actions].all())
    again = a2c.A2C.build(a2c.A2CConfig(seed=3), spaces.Box(-1, 1, (3,)), spaces.Discrete(4),
                          PolicyConfig())  # fmt: skip
    again.load_state_dict(algo.state_dict())  # the generator's state travels in state_dict
    assert torch.equal(
        again.act(obs, None, {})[0],
        algo.act(obs, None, {})[0],
    )


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_box_actions_learn_with_non_live_samples(kind):
    # A Gaussian's log-std is shared by every sample: selecting live samples keeps it whole.
    generator = torch.Generator().manual_seed(0)
    data = make_batch(6, 5, generator)
    del data["action_masks"]
    data["actions"] = torch.rand(6, 5, 2, generator=generator) * 2 - 1
    torch.manual_seed(1)
    algo = a2c.A2C.build(a2c.A2CConfig(), spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)),
                         PolicyConfig(kind=kind, hidden_size=8))  # fmt: skip
    log_std = algo.policy.log_std.detach().clone()
    metrics = algo.update(Batch(data, initial_state=algo.initial_state(5)), progress=0.0)
    assert all(np.isfinite(value) for value in metrics.values()), str(metrics)
    assert not torch.equal(algo.policy.log_std.detach(), log_std)
    out = algo.act(torch.zeros(4, 3), algo.initial_state(4), {})
    assert out.actions.shape == (4, 2) and out.actions.dtype == torch.float32
