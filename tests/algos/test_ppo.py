"""PPO: accumulation equivalence, schedules by progress, masks, AMP, V-trace, state, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos import PPO, PPOConfig
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig, make_policy

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine

OBS = spaces.Box(-1, 1, (4,), np.float32)


def _batch(policy, steps=8, rows=16, seed=0, action_space=None, recurrent=False) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(steps, rows, 4, generator=g)
    algo = PPO(copy.deepcopy(policy), PPOConfig(seed=seed))
    acts, logps, vals = [], [], []
    state = algo.initial_state(rows)
    for t in range(steps):
        out = algo.act(obs[t], state, {})
        state = out.state
        acts.append(out.actions.clone())
        logps.append(out.fields["logprobs"].clone())
        vals.append(out.fields["values"].clone())
    terminals = torch.rand(steps, rows, generator=g) < 0.1
    truncations = (torch.rand(steps, rows, generator=g) < 0.05) & ~terminals
    starts = torch.zeros(steps, rows, dtype=torch.bool)
    starts[1:] = terminals[:-1] | truncations[:-1]
    data = {
        "observations": obs,
        "actions": torch.stack(acts),
        "logprobs": torch.stack(logps),
        "values": torch.stack(vals),
        "rewards": torch.randn(steps, rows, generator=g),
        "terminals": terminals,
        "truncations": truncations,
        "next_values": torch.randn(steps, rows, generator=g),
        "starts": starts,
        "masks": torch.ones(steps, rows, dtype=torch.bool),
    }
    return Batch(data, algo.initial_state(rows) if recurrent else None)


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
def test_lr_schedules_follow_progress(schedule, last):
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy, steps=2, rows=4)
    algo = PPO(policy, PPOConfig(lr_schedule=schedule, update_epochs=1))
    assert algo.update(batch, progress=0.0)["train/learning_rate"] == pytest.approx(2.5e-4)
    assert algo.update(batch, progress=1.0)["train/learning_rate"] == pytest.approx(2.5e-4 * last)
    if schedule == "linear":
        assert algo.update(batch, progress=0.5)["train/learning_rate"] == pytest.approx(1.25e-4)


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
    ones = torch.ones_like(batch["rewards"])
    torch.testing.assert_close(algo.advantages(batch, ones), algo.advantages(batch))


def _scrambled_dead_rows(batch: Batch, masks: torch.Tensor, seed: int = 9) -> Batch:
    """The batch with everything at non-live samples replaced by garbage."""
    g = torch.Generator().manual_seed(seed)
    data = {}
    for key, value in batch.data.items():
        if key in ("masks", "starts", "terminals", "truncations"):
            data[key] = value
            continue
        noise = torch.randn(value.shape, generator=g).to(value.dtype) * 100
        if key == "actions":
            noise = torch.randint(0, 2, value.shape, generator=g)
        where = masks.reshape(*masks.shape, *([1] * (value.dim() - 2)))
        data[key] = torch.where(where, value, noise)
    data["masks"] = masks
    return Batch(data, batch.initial_state)


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_non_live_samples_never_reach_the_update(kind):
    torch.manual_seed(0)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(kind=kind, hidden_size=8))
    batch = _batch(policy, recurrent=kind == "lstm")
    masks = torch.ones_like(batch["terminals"])
    masks[5:, :3] = False  # three rows die at step 5 (no later step of theirs is live)
    masks[2, 7] = False
    clean = _scrambled_dead_rows(batch, masks, seed=1)
    dirty = _scrambled_dead_rows(batch, masks, seed=2)
    runs = []
    for b in (clean, dirty):
        algo = PPO(copy.deepcopy(policy), PPOConfig(num_minibatches=2, update_epochs=2))
        metrics = algo.update(b)
        runs.append((_params(algo), metrics))
    for a, b in zip(runs[0][0], runs[1][0]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for key in ("loss/value", "loss/policy", "loss/explained_variance"):
        assert runs[0][1][key] == pytest.approx(runs[1][1][key], rel=1e-4, abs=1e-6)


def test_every_sample_is_used_each_epoch_and_grad_norm_is_the_mean():
    torch.manual_seed(0)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy, steps=5, rows=3)  # 15 samples, 4 minibatches: 4+4+4+3
    algo = PPO(copy.deepcopy(policy), PPOConfig(num_minibatches=4, update_epochs=1))
    seen = []
    original = algo._minibatch

    def spy(seq, idx, *args):
        seen.append(idx.clone())
        return original(seq, idx, *args)

    algo._minibatch = spy
    norms = []
    step = algo.optimizer.step

    def spy_step():
        norm = step()
        norms.append(float(norm))
        return norm

    algo.optimizer.step = spy_step
    metrics = algo.update(batch)
    assert sorted(torch.cat(seen).tolist()) == list(range(15))
    assert [len(i) for i in seen] == [4, 4, 4, 3]
    assert metrics["train/grad_norm"] == pytest.approx(np.mean(norms), rel=1e-5)


def test_action_masks_are_respected_when_acting_and_learning():
    policy = make_policy(OBS, spaces.Discrete(3), PolicyConfig(hidden_size=8))
    algo = PPO(policy, PPOConfig(seed=0))
    legal = torch.tensor([[False, True, False]] * 64)
    out = algo.act(torch.randn(64, 4), None, {"action_masks": legal})
    assert out.actions.eq(1).all() and torch.allclose(out.fields["logprobs"], torch.zeros(64))
    two = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(two)
    batch.data["action_masks"] = torch.ones(*batch["terminals"].shape, 2, dtype=torch.bool)
    assert np.isfinite(PPO(copy.deepcopy(two), PPOConfig()).update(batch)["loss/policy"])


def test_bf16_on_cpu_runs_and_stays_finite():
    torch.manual_seed(0)
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=16))
    batch = _batch(policy)
    algo = PPO(policy, PPOConfig(amp="bf16"))
    fields = algo.act(torch.randn(5, 4), None, {}).fields
    assert fields["logprobs"].dtype == torch.float32 and fields["values"].dtype == torch.float32
    for _ in range(3):
        metrics = algo.update(batch)
    assert all(np.isfinite(v) for v in metrics.values())
    assert all(torch.isfinite(p).all() for p in policy.parameters())


def test_state_dict_round_trip():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy)
    a = PPO(copy.deepcopy(policy), PPOConfig())
    a.update(batch, 0.1)
    b = PPO(copy.deepcopy(policy), PPOConfig())
    b.policy.load_state_dict(a.policy.state_dict())
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    a.update(batch, 0.2)
    b.update(batch, 0.2)
    for x, y in zip(_params(a), _params(b)):
        assert torch.equal(x, y)
    assert a.num_updates == b.num_updates == 2
    obs = torch.randn(6, 4)
    assert torch.equal(a.act(obs, None, {}).actions, b.act(obs, None, {}).actions)
    assert set(a.modules()) == {"policy"} and "policy" not in a.state_dict()


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
    batch = Batch({k: v.cuda() for k, v in batch.data.items()})
    algo = PPO(policy, PPOConfig(amp="fp16"), device="cuda")
    metrics = algo.update(batch)
    assert np.isfinite(metrics["loss/policy"])
    assert "scale" in algo.state_dict()["optimizer"]["scaler"]


def test_recurrent_box_policy_with_non_live_samples():
    # a Gaussian's log_std is shared by every sample: selecting live samples keeps it whole
    torch.manual_seed(0)
    box = spaces.Box(-1, 1, (2,))
    policy = make_policy(OBS, box, PolicyConfig(kind="lstm", hidden_size=8))
    batch = _batch(policy, steps=4, rows=3, recurrent=True)
    batch.data["masks"][1, 2] = False
    metrics = PPO(copy.deepcopy(policy), PPOConfig(num_minibatches=1)).update(batch)
    assert all(np.isfinite(v) for v in metrics.values())
