"""Hindsight Experience Replay: relabel sampled transitions with goals achieved later.

A goal env's flat observation row holds an ``achieved_goal`` and a ``desired_goal`` slice
(:class:`~fugu.envs.goals.GoalLayout`). When a batch is sampled from a row-ordered
:class:`~fugu.buffers.replay.ReplayBuffer`, a fraction ``k / (k + 1)`` of its transitions get
a new desired goal: the goal achieved at a step of the same episode chosen by the strategy

* ``future``: a step from this one to the episode's end (the newest stored step while the
  episode runs on),
* ``final``: the episode's last step,
* ``episode``: any step of the episode,

written into both ``observations`` and ``next_observations``, with the reward recomputed by
the env's vectorized ``compute_reward(achieved_goal, desired_goal)``. Everything is done for
the whole batch at once: the ring records the bounds of every row's episodes as it is filled,
so the choice of steps is three tensor operations and one gather.

Example:
    >>> from fugu.envs.bitflip import BitFlip
    >>> relabeler = HindsightRelabeler.for_env(BitFlip(num_envs=1, n=4), strategy="final")
    >>> relabeler.achieved_goal, relabeler.desired_goal, relabeler.ratio
    (slice(4, 8, None), slice(8, 12, None), 0.8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from fugu.core.errors import APIUsageError

if TYPE_CHECKING:
    from fugu.buffers.replay import ReplayBuffer

__all__ = ["HER_STRATEGIES", "HindsightRelabeler", "find_goal_env"]

HER_STRATEGIES = ("future", "final", "episode")
"""Where relabelled goals come from (see the module docstring)."""

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def find_goal_env(env: Any) -> Any:
    """The goal env behind ``env``: itself or a wrapped env with a ``goal_layout`` and a
    ``compute_reward`` (looked up through ``env``, ``envs[0]`` and ``driver_env``).

    Raises:
        APIUsageError: No goal env found (HER needs one).
    """
    seen: list[Any] = [env]
    while seen:
        candidate = seen.pop(0)
        if hasattr(candidate, "goal_layout") and hasattr(candidate, "compute_reward"):
            return candidate
        for name in ("env", "driver_env", "unwrapped"):
            inner = getattr(candidate, name, None)
            if inner is not None and inner is not candidate:
                seen.append(inner)
        inner_envs = getattr(candidate, "envs", None)
        if isinstance(inner_envs, (list, tuple)) and inner_envs:
            seen.append(inner_envs[0])
    raise APIUsageError(
        f"hindsight relabelling needs a goal env (with goal_layout and compute_reward, like "
        f"bitflip-v1 or pointgoal-v1); {type(env).__name__} is not one: set her_strategy to "
        "'none' or train on a goal env"
    )


class HindsightRelabeler:
    """Relabels sampled transitions of a row-ordered ring with achieved goals.

    Args:
        achieved_goal: Slice of the achieved goal in an observation row.
        desired_goal: Slice of the desired goal.
        compute_reward: The env's ``compute_reward(achieved_goal, desired_goal)`` on numpy
            arrays ``[B, goal_size]``, returning ``[B]`` rewards.
        strategy: One of :data:`HER_STRATEGIES`.
        k: Relabelled goals per real one: a fraction ``k / (k + 1)`` is relabelled.
    """

    def __init__(
        self,
        achieved_goal: slice,
        desired_goal: slice,
        compute_reward: RewardFn,
        strategy: str = "future",
        k: int = 4,
    ) -> None:
        if strategy not in HER_STRATEGIES:
            raise APIUsageError(f"HER strategy must be one of {HER_STRATEGIES}, got {strategy!r}")
        if k < 1:
            raise APIUsageError(f"HER needs k >= 1 relabelled goals per real one, got {k}")
        self.achieved_goal = achieved_goal
        self.desired_goal = desired_goal
        self.compute_reward = compute_reward
        self.strategy = strategy
        self.k = int(k)
        self.ratio = k / (k + 1)

    @classmethod
    def for_env(cls, env: Any, strategy: str = "future", k: int = 4) -> HindsightRelabeler:
        """A relabeler for the goal layout and reward of ``env`` (see :func:`find_goal_env`)."""
        goal_env = find_goal_env(env)
        layout = goal_env.goal_layout
        return cls(layout.achieved_goal, layout.desired_goal, goal_env.compute_reward, strategy, k)

    def relabel(
        self, buffer: ReplayBuffer, idx: Tensor, data: dict[str, Tensor], generator: torch.Generator
    ) -> None:
        """Relabel a fraction of the sampled transitions ``idx`` in ``data`` (in place)."""
        assert buffer.steps is not None and buffer.num_rows is not None
        assert buffer.episode_starts is not None and buffer.episode_ends is not None
        device = idx.device
        chosen = torch.rand(len(idx), generator=generator, device=device) < self.ratio
        if not bool(chosen.any()):
            return
        which = chosen.nonzero().squeeze(-1)
        sel = idx[which]
        rows, slots = buffer.num_rows, len(buffer.steps)
        slot, row = sel // rows, sel % rows
        step = buffer.steps[slot]
        newest = buffer.num_added_steps - 1
        end = buffer.episode_ends[slot, row]
        end = torch.where(end < 0, torch.full_like(end, newest), end)
        if self.strategy == "final":
            target = end
        else:
            first = step
            if self.strategy == "episode":
                oldest = max(buffer.num_added_steps - slots, 0)
                first = buffer.episode_starts[slot, row].clamp(min=oldest)
            u = torch.rand(len(sel), generator=generator, device=device)
            span = (end - first + 1).to(torch.float32)
            target = first + (u * span).long().clamp_(max=(end - first).clamp(min=0))
        source = (target % slots) * rows + row
        next_obs = buffer.tensors["next_observations"]
        goals = next_obs[source][:, self.achieved_goal]
        obs = data["observations"].clone()
        nxt = data["next_observations"].clone()
        obs[which, self.desired_goal] = goals
        nxt[which, self.desired_goal] = goals
        achieved = nxt[which][:, self.achieved_goal]
        rewards = np.asarray(
            self.compute_reward(achieved.cpu().numpy(), goals.cpu().numpy()), dtype=np.float32
        ).reshape(-1)
        new_rewards = data["rewards"].clone()
        new_rewards[which] = torch.from_numpy(rewards).to(device, new_rewards.dtype)
        data["observations"], data["next_observations"] = obs, nxt
        data["rewards"] = new_rewards
