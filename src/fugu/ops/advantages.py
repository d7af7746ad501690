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

__all__ = [
    "credit_to_live_steps",
    "episode_sums",
    "gae",
    "next_values_from",
    "pending_live_steps",
    "running_returns",
    "vtrace",
]


def next_values_from(
    values: Tensor,
    last_values: Tensor,
    truncations: Tensor,
    final_values: Tensor,
    masks: Tensor | None = None,
) -> Tensor:
    """Build ``next_values`` for :func:`gae` from per-step values.

    Args:
        values: ``[T, N]`` values of the observations each step acted on.
        last_values: ``[N]`` values of the observations after the last step.
        truncations: ``[T, N]`` bool, the step ended its episode by a time limit.
        final_values: ``[T, N]`` values of the final observations (read where truncated).
        masks: Optional ``[T, N]`` bool, the step's row was live (its agent acted). A live
            step's next value is then the value of the row's next *live* step (waiting or
            absent steps in between are skipped), else ``last_values``.

    Returns:
        ``[T, N]``: ``values`` shifted by one (live) step, ``final_values`` on truncated rows.

    Example:
        >>> v = torch.tensor([[1.0], [2.0]])
        >>> next_values_from(v, torch.tensor([3.0]), torch.tensor([[True], [False]]),
        ...                  torch.tensor([[9.0], [0.0]])).flatten().tolist()
        [9.0, 3.0]
        >>> v = torch.tensor([[1.0], [2.0], [4.0]])
        >>> no = torch.zeros(3, 1, dtype=torch.bool)
        >>> live = torch.tensor([[True], [False], [True]])
        >>> next_values_from(v, torch.tensor([3.0]), no, v, live).flatten().tolist()
        [4.0, 4.0, 3.0]
    """
    if masks is None:
        shifted = torch.cat((values[1:], last_values.unsqueeze(0)), dim=0)
        return torch.where(truncations, final_values, shifted)
    shifted = torch.empty_like(values)
    carry = last_values
    for t in range(values.shape[0] - 1, -1, -1):
        shifted[t] = carry
        carry = torch.where(masks[t], values[t], carry)
    return torch.where(truncations, final_values, shifted)


def credit_to_live_steps(
    rewards: Tensor,
    terminals: Tensor,
    truncations: Tensor,
    masks: Tensor,
    final_values: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Move what a row received while not live onto its previous live step.

    In turn-based envs a row waits (``masks`` false) while the others move, and the move that
    ends the game pays the waiting row too (a loss, a draw). That reward and the episode's
    end belong to the waiting row's own last move. Rewards and end flags of non-live steps are
    added to the row's previous live step of the same episode in the rollout (dropped when
    there is none) and zeroed where they were; a truncation's ``final_values`` move with it.

    Args:
        rewards: ``[T, N]`` rewards.
        terminals: ``[T, N]`` bool.
        truncations: ``[T, N]`` bool.
        masks: ``[T, N]`` bool, the step's row was live (its agent acted).
        final_values: Optional ``[T, N]`` values of final observations of truncated steps.

    Returns:
        New ``(rewards, terminals, truncations, final_values)``.

    Example:
        >>> r = torch.tensor([[0.0], [0.0], [-1.0]])
        >>> term = torch.tensor([[False], [False], [True]])
        >>> live = torch.tensor([[True], [False], [False]])
        >>> r2, t2, _, _ = credit_to_live_steps(r, term, torch.zeros_like(term), live)
        >>> r2.flatten().tolist(), t2.flatten().tolist()
        ([-1.0, 0.0, 0.0], [True, False, False])
    """
    rewards, terminals, truncations = rewards.clone(), terminals.clone(), truncations.clone()
    if final_values is not None:
        final_values = final_values.clone()
    steps, rows = rewards.shape
    last = torch.full((rows,), -1, dtype=torch.long, device=rewards.device)
    columns = torch.arange(rows, device=rewards.device)
    for t in range(steps):
        live = masks[t]
        done = terminals[t] | truncations[t]
        waiting = ~live & (last >= 0)
        if bool(waiting.any()):
            cols, at = columns[waiting], last[waiting]
            rewards[at, cols] += rewards[t, cols]
            moved = truncations[t, cols] & ~terminals[at, cols]
            terminals[at, cols] |= terminals[t, cols]
            truncations[at, cols] |= moved
            if final_values is not None:
                final_values[at, cols] = torch.where(
                    moved, final_values[t, cols], final_values[at, cols]
                )
        rewards[t] = torch.where(live, rewards[t], torch.zeros_like(rewards[t]))
        terminals[t] &= live
        truncations[t] &= live
        # The row's last live step, forgotten once its episode ended (live or not).
        last = torch.where(done, -1, torch.where(live, t, last))
    return rewards, terminals, truncations, final_values


def pending_live_steps(masks: Tensor, terminals: Tensor, truncations: Tensor) -> Tensor:
    """Each row's last live step whose outcome lies past the rollout's end, else ``-1``.

    In a turn-based env a row that is waiting at the rollout's last step made its last move
    earlier, and what that move earns (the opponent's reply, the game's end) arrives in the
    next rollout, where no live step of this row can take it. Such a step can neither be
    credited nor bootstrapped from the waiting row's observation (whose value is never
    trained), so the trainer leaves it out of the update and bootstraps the row's earlier
    steps from its value instead, as the last observation of a fully live rollout is used.

    Args:
        masks: ``[T, N]`` bool, the step's row was live.
        terminals: ``[T, N]`` bool, already credited to live steps
            (:func:`credit_to_live_steps`).
        truncations: ``[T, N]`` bool, likewise.

    Returns:
        ``[N]`` long: the step index, or ``-1`` where the row is live at the last step, has no
        live step, or its last live step ended its episode.

    Example:
        >>> live = torch.tensor([[True, True], [False, True], [True, False], [False, False]])
        >>> no = torch.zeros(4, 2, dtype=torch.bool)
        >>> pending_live_steps(live, no, no).tolist()
        [2, 1]
        >>> ended = no.clone()
        >>> ended[1, 1] = True  # row 1's last move ended its game
        >>> pending_live_steps(live, ended, no).tolist()
        [2, -1]
    """
    steps, rows = masks.shape
    index = torch.arange(steps, device=masks.device).unsqueeze(1).expand(steps, rows)
    last = torch.where(masks, index, torch.full_like(index, -1)).amax(dim=0)
    at = last.clamp(min=0)
    columns = torch.arange(rows, device=masks.device)
    ended = terminals[at, columns] | truncations[at, columns]
    pending = (last >= 0) & (last < steps - 1) & ~ended
    return torch.where(pending, last, torch.full_like(last, -1))


def _discounted_sum(deltas: Tensor, decay: Tensor, masks: Tensor | None = None) -> Tensor:
    """``A_t = deltas_t + decay_t * A_{t+1}`` backwards in time, one fused op per step.

    With ``masks``, non-live steps get ``A_t = 0`` and are skipped by the recursion: a live
    step continues from the next live step's advantage.
    """
    advantages = torch.empty_like(deltas)
    rows_out, rows_delta, rows_decay = advantages.unbind(0), deltas.unbind(0), decay.unbind(0)
    last = torch.zeros_like(rows_delta[0])
    if masks is None:
        for t in range(len(rows_out) - 1, -1, -1):
            last = torch.addcmul(rows_delta[t], rows_decay[t], last, out=rows_out[t])
        return advantages
    zero = torch.zeros_like(last)
    for t in range(len(rows_out) - 1, -1, -1):
        live = masks[t]
        last = torch.where(live, torch.addcmul(rows_delta[t], rows_decay[t], last), last)
        rows_out[t].copy_(torch.where(live, last, zero))
    return advantages


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminals: Tensor,
    truncations: Tensor,
    gamma: float,
    gae_lambda: float,
    masks: Tensor | None = None,
) -> Tensor:
    """Generalized advantage estimation, aware of truncation (and of non-live steps).

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
        masks: Optional ``[T, N]`` bool, the step's row was live. Non-live steps (absent or
            waiting agents) get advantage 0 and the trace of a live step continues at the
            row's next live step; build ``next_values`` with the same masks
            (:func:`next_values_from`) and credit their rewards first
            (:func:`credit_to_live_steps`).

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
    return _discounted_sum(deltas, decay, masks)


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
    masks: Tensor | None = None,
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
        masks: Optional ``[T, N]`` bool live steps, as in :func:`gae`.

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
    return _discounted_sum(deltas, decay, masks)


def running_returns(
    rewards: Tensor, dones: Tensor, initial: Tensor, gamma: float
) -> tuple[Tensor, Tensor]:
    """Each row's discounted return so far, ``R_t = gamma * R_{t-1} + r_t``, reset after
    episode ends: what reward scaling divides by the running std of (as SB3's
    ``VecNormalize``).

    Args:
        rewards: ``[T, N]`` rewards.
        dones: ``[T, N]`` bool, the step ended its row's episode (the return restarts after).
        initial: ``[N]`` the returns carried from the previous rollout.
        gamma: Discount factor.

    Returns:
        ``([T, N] returns in float64, [N] the returns to carry into the next rollout)``.

    Example:
        >>> r = torch.ones(3, 1)
        >>> d = torch.tensor([[False], [True], [False]])
        >>> out, carry = running_returns(r, d, torch.zeros(1, dtype=torch.float64), 0.5)
        >>> out.flatten().tolist(), carry.tolist()
        ([1.0, 1.5, 1.0], [1.0])
    """
    returns = torch.empty(rewards.shape, dtype=torch.float64, device=rewards.device)
    carry = initial.to(torch.float64)
    for t in range(rewards.shape[0]):
        carry = carry * gamma + rewards[t].double()
        returns[t] = carry
        carry = torch.where(dones[t], torch.zeros_like(carry), carry)
    return returns, carry


def episode_sums(
    values: Tensor, dones: Tensor, initial: Tensor, masks: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Undiscounted per-episode sums of ``[T, N]`` values (e.g. costs), carried across rollouts.

    Args:
        values: ``[T, N]`` per-step values.
        dones: ``[T, N]`` bool, the step ended its row's episode.
        initial: ``[N]`` the running sums carried from the previous rollout.
        masks: Optional ``[T, N]`` bool live steps (non-live ones add nothing).

    Returns:
        ``(sums of the episodes that ended, in finishing order (by step, then row) [K],
        the running sums to carry [N])``, both float64.

    Example:
        >>> c = torch.ones(3, 2)
        >>> d = torch.tensor([[False, True], [False, False], [True, False]])
        >>> ended, carry = episode_sums(c, d, torch.zeros(2, dtype=torch.float64))
        >>> ended.tolist(), carry.tolist()
        ([1.0, 3.0], [0.0, 2.0])
    """
    carry = initial.to(torch.float64).clone()
    ended = []
    for t in range(values.shape[0]):
        step = values[t].double()
        if masks is not None:
            step = torch.where(masks[t], step, torch.zeros_like(step))
        carry += step
        done = dones[t]
        if bool(done.any()):
            ended.append(carry[done])
            carry = torch.where(done, torch.zeros_like(carry), carry)
    out = torch.cat(ended) if ended else carry.new_zeros(0)
    return out, carry
