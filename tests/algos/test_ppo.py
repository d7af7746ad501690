"""PPO: accumulation equivalence, schedules, AMP, V-trace epochs, state round trip, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos import PPO, PPOBatch, PPOConfig
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig, make_policy

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine

OBS = spaces.Box(-1, 1, (4,), np.float32)


def _batch(policy, steps=8, rows=16, seed=0, action_space=None, recurrent=False) -> PPOBatch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(steps, rows, 4, generator=g)
    algo = PPO(copy.deepcopy(policy), PPOConfig(seed=seed))
    acts, logps, vals = [], [], []
    state = algo.policy.initial_state(rows)
    for t in range(steps):
        a, lp, v, state = algo.act(obs[t], state)
        acts.append(a.clone())
        logps.append(lp.clone())
        vals.append(v.clone())
    terminals = torch.rand(steps, rows, generator=g) < 0.1
    truncations = (torch.rand(steps, rows, generator=g) < 0.05) & ~terminals
    starts = torch.zeros(steps, rows, dtype=torch.bool)
    starts[1:] = terminals[:-1] | truncations[:-1]
    return PPOBatch(
        observations=obs,
        actions=torch.stack(acts),
        logprobs=torch.stack(logps),
        values=torch.stack(vals),
        rewards=torch.randn(steps, rows, generator=g),
        terminals=terminals,
        truncations=truncations,
        next_values=torch.randn(steps, rows, generator=g),
        starts=starts,
        initial_state=algo.policy.initial_state(rows) if recurrent else None,
    )


def _params(algo: PPO) -> list[torch.Tensor]:
    return [p.detach().clone() for p in algo.policy.parameters()]


@pytest.mark.parametrize(
    ("kind", "action_space"),
    [
        ("mlp", spaces.Discrete(3)),
        ("mlp", spaces.MultiDiscrete([2, 3])),
        ("mlp", spaces.Box(-1, 1, (2,))),
        ("lstm", spaces.Discrete(2)),
    ],
)
def test_accumulated_minibatches_equal_full_minibatch(kind, action_space):
    torch.manual_seed(0)
    policy = make_policy(OBS, action_space, PolicyConfig(kind=kind, hidden_size=16))
    batch = _batch(policy, recurrent=kind == "lstm")
    base = dict(num_minibatches=2, update_epochs=2, seed=3, lr_schedule="constant")
    full = PPO(copy.deepcopy(policy), PPOConfig(**base))
    split = PPO(copy.deepcopy(policy), PPOConfig(**base, max_minibatch_size=24))
    m_full = full.update(batch)
    m_split = split.update(batch)
    for a, b in zip(_params(full), _params(split)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert m_full["loss/policy"] == pytest.approx(m_split["loss/policy"], rel=1e-4, abs=1e-6)
    assert set(m_full) >= {
        "loss/policy",
        "loss/value",
        "loss/entropy",
        "loss/approx_kl",
        "loss/clipfrac",
        "loss/explained_variance",
        "train/learning_rate",
    }


def test_update_changes_parameters_and_is_deterministic():
    torch.manual_seed(0)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy)
    runs = []
    for _ in range(2):
        algo = PPO(copy.deepcopy(policy), PPOConfig(seed=5))
        algo.update(batch)
        runs.append(_params(algo))
    for a, b in zip(*runs):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(runs[0], policy.parameters()))


@pytest.mark.parametrize(
    ("schedule", "last"), [("linear", 0.0), ("cosine", 0.0), ("constant", 1.0)]
)
def test_lr_schedules(schedule, last):
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy, steps=2, rows=4)
    algo = PPO(policy, PPOConfig(lr_schedule=schedule, update_epochs=1), total_updates=2)
    first = algo.update(batch)["train/learning_rate"]
    assert first == pytest.approx(2.5e-4)
    algo.update(batch)
    assert algo.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-4 * last)


def test_vtrace_epochs_and_target_kl():
    torch.manual_seed(1)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy)
    cfg = PPOConfig(vtrace_rho_clip=1.0, vtrace_c_clip=1.0, update_epochs=3, learning_rate=1e-2)
    assert cfg.uses_vtrace
    metrics = PPO(copy.deepcopy(policy), cfg).update(batch)
    assert metrics["train/epochs"] == 3 and np.isfinite(metrics["loss/policy"])
    early = PPO(
        copy.deepcopy(policy), PPOConfig(target_kl=0.0, update_epochs=5, learning_rate=1e-2)
    )
    assert early.update(batch)["train/epochs"] == 1
    # on-policy first epoch: V-trace advantages equal GAE
    algo = PPO(copy.deepcopy(policy), cfg)
    ones = torch.ones_like(batch.rewards)
    torch.testing.assert_close(algo.advantages(batch, ones), algo.advantages(batch))


def test_masks_select_live_rows():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy)
    batch.masks = torch.zeros_like(batch.terminals)
    batch.masks[:, :4] = True
    metrics = PPO(copy.deepcopy(policy), PPOConfig(num_minibatches=2)).update(batch)
    assert np.isfinite(metrics["loss/value"])
    batch.action_masks = torch.ones(*batch.terminals.shape, 2, dtype=torch.bool)
    assert np.isfinite(PPO(copy.deepcopy(policy), PPOConfig()).update(batch)["loss/policy"])


def test_bf16_on_cpu_runs_and_stays_finite():
    torch.manual_seed(0)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=16))
    batch = _batch(policy)
    algo = PPO(policy, PPOConfig(amp="bf16"))
    _, logprobs, values, _ = algo.act(torch.randn(5, 4))
    assert logprobs.dtype == torch.float32 and values.dtype == torch.float32
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(np.isfinite(v) for v in metrics.values())
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_state_dict_round_trip():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy)
    a = PPO(copy.deepcopy(policy), PPOConfig(), total_updates=10)
    a.update(batch)
    b = PPO(copy.deepcopy(policy), PPOConfig(), total_updates=10)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    a.update(batch)
    b.update(batch)
    for x, y in zip(_params(a), _params(b)):
        assert torch.equal(x, y)
    assert a.num_updates == b.num_updates == 2
    obs = torch.randn(6, 4)
    assert torch.equal(a.act(obs)[0], b.act(obs)[0])


def test_config_errors():
    with pytest.raises(APIUsageError, match="lr_schedule"):
        PPOConfig(lr_schedule="step")
    with pytest.raises(APIUsageError, match="amp"):
        PPOConfig(amp="int8")
    with pytest.raises(APIUsageError, match="vtrace"):
        PPOConfig(vtrace_rho_clip=1.0)
    with pytest.raises(APIUsageError, match="update_epochs"):
        PPOConfig(update_epochs=0)
    with pytest.raises(APIUsageError, match="max_minibatch_size"):
        PPOConfig(max_minibatch_size=0)
    policy = make_policy(OBS, spaces.Discrete(2))
    if not torch.cuda.is_available():
        with pytest.raises(APIUsageError, match="CUDA"):
            PPO(policy, PPOConfig(amp="fp16"))


@pytest.mark.gpu
def test_fp16_on_cuda():
    torch.manual_seed(0)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=16))
    batch = _batch(policy)
    batch = PPOBatch(
        **{k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in vars(batch).items()}
    )
    algo = PPO(policy, PPOConfig(amp="fp16"), device="cuda")
    metrics = algo.update(batch)
    assert np.isfinite(metrics["loss/policy"])
    assert "scale" in algo.state_dict()["scaler"]
