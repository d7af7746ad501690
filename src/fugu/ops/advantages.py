"""Advantage estimators: GAE and its importance-weighted (V-trace clipped) generalisation.

All tensors are time-major, ``[T, N]`` (horizon by env rows). Step ``t`` of row ``n`` took the
observation whose value is ``values[t, n]``, received ``rewards[t, n]`` and ended with the flags
``terminals[t, n]`` / ``truncations[t, n]``. ``next_values[t, n]`` is the value of the state
reached by that step: ``values[t + 1, n]`` when the episode goes on, the value of the final
observation when it was truncated (time limits are not deaths: the trainer evaluates
``final_observations``), anything when it terminated (it is multiplied by zero).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gae", "next_values_from", "vtrace"]


def next_values_from(
    values: Tensor, last_values: Tensor, truncations: Tensor, final_values: Tensor
) -> Tensor:
    """Build ``next_values`` for :func:`gae` from per-step values.

    Args:
        values: ``[T, N]`` values of the observations each step acted on.
        last_values: ``[N]`` values of the observations after the last step.
        truncations: ``[T, N]`` bool, the step ended its episode by a time limit.
        final_values: ``[T, N]`` values of the final observations (read where truncated).

    Returns:
        ``[T, N]``: ``values`` shifted by one step, ``final_values`` on truncated rows.

    Example:
        >>> v = torch.tensor([[1.0], [2.0]])
        >>> next_values_from(v, torch.tensor([3.0]), torch.tensor([[True], [False]]),
        ...                  torch.tensor([[9.0], [0.0]])).flatten().tolist()
        [9.0, 3.0]
    """
    shifted = torch.cat((values[1:], last_values.unsqueeze(0)), dim=0)
    return torch.where(truncations, final_values, shifted)


def _discounted_sum(deltas: Tensor, decay: Tensor) -> Tensor:
    """``A_t = deltas_t + decay_t * A_{t+1}`` backwards in time, one fused op per step."""
    advantages = torch.empty_like(deltas)
    rows_out, rows_delta, rows_decay = advantages.unbind(0), deltas.unbind(0), decay.unbind(0)
    last = torch.zeros_like(rows_delta[0])
    for t in range(len(rows_out) - 1, -1, -1):
        last = torch.addcmul(rows_delta[t], rows_decay[t], last, out=rows_out[t])
    return advantages


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminals: Tensor,
    truncations: Tensor,
    gamma: float,
    gae_lambda: float,
) -> Tensor:
    """Generalized advantage estimation, aware of truncation.

    ``delta_t = r_t + gamma * (1 - terminal_t) * next_values_t - values_t`` and
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`` with
    ``done = terminal | truncation``: a terminated step bootstraps nothing, a truncated one
    bootstraps ``gamma * V(final_obs)`` (put in ``next_values``) and both cut the trace.

    Args:
        rewards: ``[T, N]`` rewards.
        values: ``[T, N]`` values of the observations acted on.
        next_values: ``[T, N]`` values of the states reached (see the module docstring).
        terminals: ``[T, N]`` bool.
        truncations: ``[T, N]`` bool.
        gamma: Discount factor.
        gae_lambda: GAE lambda (1 gives Monte Carlo returns minus values, 0 one-step TD).

    Returns:
        ``[T, N]`` advantages; returns are ``advantages + values``.

    Example:
        >>> r = torch.ones(3, 1)
        >>> z = torch.zeros(3, 1)
        >>> no = torch.zeros(3, 1, dtype=torch.bool)
        >>> gae(r, z, z, no, no, gamma=0.5, gae_lambda=1.0).flatten().tolist()
        [1.75, 1.5, 1.0]
    """
    not_terminal = (~terminals).to(values.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    decay = (gamma * gae_lambda) * (~(terminals | truncations)).to(values.dtype)
    return _discounted_sum(deltas, decay)


def vtrace(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminals: Tensor,
    truncations: Tensor,
    ratios: Tensor,
    gamma: float,
    gae_lambda: float,
    rho_clip: float = 1.0,
    c_clip: float = 1.0,
) -> Tensor:
    """V-trace-clipped GAE: advantages ``v_s - V`` of IMPALA's V-trace with a lambda.

    With ``rho_t = min(rho_clip, ratio_t)`` and ``c_t = min(c_clip, ratio_t)``:
    ``delta_t = rho_t * (r_t + gamma * (1 - terminal_t) * next_values_t - values_t)`` and
    ``A_t = delta_t + gamma * lambda * c_t * (1 - done_t) * A_{t+1}``. When every ratio is 1
    (on-policy data) and both clips are at least 1 this is exactly :func:`gae`; with
    ``gae_lambda = 1`` it is IMPALA's ``v_s - V(x_s)``.

    Args:
        rewards: ``[T, N]`` rewards.
        values: ``[T, N]`` values of the observations acted on.
        next_values: ``[T, N]`` values of the states reached (truncated rows: ``V(final_obs)``).
        terminals: ``[T, N]`` bool.
        truncations: ``[T, N]`` bool.
        ratios: ``[T, N]`` importance ratios ``pi(a|s) / mu(a|s)`` of the learner to the
            behaviour policy.
        gamma: Discount factor.
        gae_lambda: Trace decay.
        rho_clip: Clip of the ratios weighting the TD errors (rho-bar).
        c_clip: Clip of the ratios cutting the traces (c-bar).

    Returns:
        ``[T, N]`` advantages.

    Example:
        >>> r, z = torch.ones(2, 1), torch.zeros(2, 1)
        >>> no = torch.zeros(2, 1, dtype=torch.bool)
        >>> vtrace(r, z, z, no, no, torch.full((2, 1), 0.5), 1.0, 1.0).flatten().tolist()
        [0.75, 0.5]
    """
    rho = torch.clamp(ratios, max=rho_clip).to(values.dtype)
    c = torch.clamp(ratios, max=c_clip).to(values.dtype)
    not_terminal = (~terminals).to(values.dtype)
    deltas = rho * (rewards + gamma * not_terminal * next_values - values)
    decay = (gamma * gae_lambda) * c * (~(terminals | truncations)).to(values.dtype)
    return _discounted_sum(deltas, decay)
