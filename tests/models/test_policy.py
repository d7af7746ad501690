"""Policies and distributions: shapes, masks, log-prob consistency, LSTM resets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig, make_distribution, make_policy

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine

BOX = spaces.Box(-1, 1, (4,), np.float32)


@pytest.mark.parametrize(
    ("action_space", "action_shape"),
    [
        (spaces.Discrete(3), ()),
        (spaces.MultiDiscrete([2, 5]), (2,)),
        (spaces.Box(-1, 1, (2,)), (2,)),
    ],
)
def test_mlp_policy_shapes_and_logprob(action_space, action_shape):
    policy = make_policy(BOX, action_space, PolicyConfig(hidden_size=16))
    obs = torch.randn(7, 4)
    params, values, state = policy.forward_eval(obs, None)
    assert values.shape == (7,) and state is None
    dist = policy.distribution
    g = torch.Generator().manual_seed(0)
    actions = dist.sample(params, g)
    assert actions.shape == (7, *action_shape)
    logp = dist.log_prob(params, actions)
    assert logp.shape == (7,) and torch.isfinite(logp).all()
    assert dist.entropy(params).shape == (7,)
    assert dist.mode(params).shape == (7, *action_shape)
    _, values2, _ = policy.forward_train(obs, None)
    torch.testing.assert_close(values, values2)


def test_multidiscrete_masks_and_torch_reference():
    dist = make_distribution(spaces.MultiDiscrete([3, 2]))
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(500, 5, generator=g)
    mask = torch.tensor([[True, False, True, False, True]]).expand(500, 5)
    masked = dist.mask(logits, mask)
    actions = dist.sample(masked, g)
    assert set(actions[:, 0].tolist()) <= {0, 2} and (actions[:, 1] == 1).all()
    ref0 = torch.distributions.Categorical(logits=masked[:, :3])
    want = ref0.log_prob(actions[:, 0])  # second component has one legal action: log 1 = 0
    torch.testing.assert_close(dist.log_prob(masked, actions), want)
    assert torch.isfinite(dist.entropy(masked)).all()
    # non-uniform nvec path
    dist2 = make_distribution(spaces.MultiDiscrete([2, 3]))
    a = dist2.sample(logits, g)
    assert a.shape == (500, 2) and a[:, 0].max() <= 1 and a[:, 1].max() <= 2


def test_distribution_errors():
    with pytest.raises(APIUsageError, match="Discrete"):
        make_distribution(spaces.Dict({"a": spaces.Discrete(2)}))
    gauss = make_distribution(spaces.Box(-1, 1, (2,)))
    with pytest.raises(APIUsageError, match="action masks"):
        gauss.mask((torch.zeros(1, 2), torch.zeros(2)), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(APIUsageError, match="mean, log_std"):
        gauss.entropy(torch.zeros(1, 2))
    with pytest.raises(APIUsageError, match="logits"):
        make_distribution(spaces.Discrete(2)).entropy((torch.zeros(1, 2), torch.zeros(2)))


def test_cnn_policy_uint8():
    for side in (9, 40):
        obs_space = spaces.Box(0, 255, (3, side, side), np.uint8)
        policy = make_policy(
            obs_space, spaces.Discrete(4), PolicyConfig(kind="cnn", hidden_size=32)
        )
        obs = torch.randint(0, 255, (2, 3, side, side), dtype=torch.uint8)
        logits, values, _ = policy.forward_eval(obs)
        assert logits.shape == (2, 4) and values.shape == (2,)
    with pytest.raises(APIUsageError, match="C, H, W"):
        make_policy(BOX, spaces.Discrete(2), PolicyConfig(kind="cnn"))


def test_config_validation():
    with pytest.raises(APIUsageError, match="kind"):
        PolicyConfig(kind="transformer")
    with pytest.raises(APIUsageError, match="activation"):
        PolicyConfig(activation="swish")
    with pytest.raises(APIUsageError, match="Box"):
        make_policy(spaces.Discrete(3), spaces.Discrete(2))


def test_lstm_train_pass_matches_step_by_step_with_resets():
    torch.manual_seed(0)
    policy = make_policy(BOX, spaces.Discrete(2), PolicyConfig(kind="lstm", hidden_size=8))
    assert policy.is_recurrent
    batch, steps = 3, 5
    obs = torch.randn(steps, batch, 4)
    starts = torch.zeros(steps, batch, dtype=torch.bool)
    starts[2, 1] = True
    starts[4, 0] = True
    state = policy.initial_state(batch)
    step_logits, step_values = [], []
    for t in range(steps):
        state = policy.reset_state(state, starts[t])
        logits, values, state = policy.forward_eval(obs[t], state)
        step_logits.append(logits)
        step_values.append(values)
    want_values = torch.stack(step_values, 1).reshape(-1)
    logits, values, _ = policy.forward_train(
        obs.transpose(0, 1), policy.initial_state(batch), starts.transpose(0, 1)
    )
    torch.testing.assert_close(values, want_values)
    torch.testing.assert_close(logits, torch.stack(step_logits, 1).reshape(batch * steps, -1))
    # a reset really changes the output compared to carrying the state
    _, carried, _ = policy.forward_train(obs.transpose(0, 1), None, None)
    assert not torch.allclose(carried, values)
    with pytest.raises(APIUsageError, match="B, T"):
        policy.forward_train(obs[0])
    assert make_policy(BOX, spaces.Discrete(2)).reset_state(None, starts[0]) is None


def test_lstm_with_cnn_encoder():
    obs_space = spaces.Box(0, 255, (1, 5, 5), np.uint8)
    policy = make_policy(obs_space, spaces.Discrete(2), PolicyConfig(kind="lstm", hidden_size=8))
    obs = torch.zeros(2, 3, 1, 5, 5, dtype=torch.uint8)
    logits, values, state = policy.forward_train(obs, None, torch.zeros(2, 3, dtype=torch.bool))
    assert logits.shape == (6, 2) and values.shape == (6,) and state[0].shape == (2, 8)
