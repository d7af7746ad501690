"""A replay of per-row timelines, sampled as ``[B, L]`` windows for sequence models.

World models (:mod:`fugu.models.world`) learn from contiguous windows, not from shuffled
transitions. :class:`SequenceReplay` turns the trainer's ``[T, N]`` rollouts into one timeline
per row in which step ``t`` holds observation ``t``, the action taken *before* it (zero at an
episode's first step), the reward that arrived with it, whether it is the episode's first step
and whether the episode continues from it (``0`` at a terminal observation). Where an episode
ended, its final observation becomes a step of its own (the one that carries the last reward
and the terminal flag) before the next episode's first one, so nothing is lost at the seams.
Each row keeps the newest ``capacity // num_rows`` steps in a ring.

Example:
    >>> import torch
    >>> replay = SequenceReplay((2,), torch.float32, 1, capacity=100, num_rows=1, seq_len=3)
    >>> T = 4
    >>> rollout = {
    ...     "observations": torch.arange(8.0).view(T, 1, 2),
    ...     "next_observations": torch.arange(2.0, 10.0).view(T, 1, 2),
    ...     "actions": torch.ones(T, 1, 1), "rewards": torch.ones(T, 1),
    ...     "terminals": torch.tensor([[False], [True], [False], [False]]),
    ...     "truncations": torch.zeros(T, 1, dtype=torch.bool),
    ... }
    >>> replay.add_rollout(rollout)
    >>> len(replay), replay.num_added  # one extra step: the terminal observation
    (5, 4)
    >>> replay.conts[0, :5].tolist(), replay.firsts[0, :5].tolist()
    ([1.0, 1.0, 0.0, 1.0, 1.0], [True, False, False, True, False])
    >>> batch = replay.sample(2)
    >>> batch["observations"].shape, batch["actions"].shape, bool(batch["firsts"][:, 0].all())
    (torch.Size([2, 3, 2]), torch.Size([2, 3, 1]), True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from fugu.buffers.batch import Batch
from fugu.core.errors import APIUsageError

__all__ = ["SequenceReplay"]


class SequenceReplay:
    """Per-row rings of ``(observation, previous action, reward, first, continue)`` steps.

    Args:
        obs_shape: Shape of one observation.
        obs_dtype: Its torch dtype (pixels stay ``uint8``).
        action_size: Values per (flattened) action.
        capacity: Steps kept over all rows.
        num_rows: Rows of the rollouts it will be given.
        seq_len: Steps per sampled window.
        seed: Seed of the window sampler.
        device: Where sampled batches go.
        action_transform: Maps the stored env actions ``[T, N, ...]`` to what the model
            sees (e.g. a Box's bounds to ``[-1, 1]``); identity by default.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_size: int,
        capacity: int,
        num_rows: int,
        seq_len: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
        action_transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if seq_len < 1 or num_rows < 1:
            raise APIUsageError("SequenceReplay needs seq_len >= 1 and num_rows >= 1")
        self.row_capacity = max(capacity // num_rows, seq_len)
        self.num_rows, self.seq_len = num_rows, seq_len
        self.device = torch.device(device)
        self.action_transform = action_transform
        cap = self.row_capacity
        self.obs = torch.zeros(num_rows, cap, *obs_shape, dtype=obs_dtype)
        self.actions = torch.zeros(num_rows, cap, action_size)
        self.rewards = torch.zeros(num_rows, cap)
        self.conts = torch.zeros(num_rows, cap)
        self.firsts = torch.zeros(num_rows, cap, dtype=torch.bool)
        self.position = torch.zeros(num_rows, dtype=torch.long)  # next slot of each row
        self.count = torch.zeros(num_rows, dtype=torch.long)  # steps each row holds
        # what carries over from one rollout to the next, per row
        self.last_action = torch.zeros(num_rows, action_size)
        self.last_reward = torch.zeros(num_rows)
        self.next_first = torch.ones(num_rows, dtype=torch.bool)
        self.num_added = 0
        """Env steps added (final observations are extra steps and not counted)."""
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return int(self.count.sum())

    # -- writing ----------------------------------------------------------------------------
    def add_rollout(self, batch: Mapping[str, Tensor]) -> None:
        """Append a ``[T, N]`` rollout (the trainer calls this with every collection)."""
        obs = batch["observations"].cpu()
        steps, rows = obs.shape[:2]
        if rows != self.num_rows:
            raise APIUsageError(f"SequenceReplay holds {self.num_rows} rows, got {rows}")
        masks = batch.get("masks")
        if masks is not None and not bool(masks.all()):
            raise APIUsageError("SequenceReplay needs every row live on every step")
        actions = batch["actions"].cpu().float()
        if self.action_transform is not None:
            actions = self.action_transform(actions.reshape(steps * rows, -1))
        actions = actions.reshape(steps, rows, -1)
        rewards = batch["rewards"].cpu().float()
        terminals = batch["terminals"].cpu().bool()
        dones = terminals | batch["truncations"].cpu().bool()
        final = batch["next_observations"].cpu()
        for r in range(rows):
            self._add_row(r, obs[:, r], final[:, r], actions[:, r], rewards[:, r],
                          terminals[:, r], dones[:, r])  # fmt: skip
        self.num_added += steps * rows

    def _add_row(self, r: int, obs: Tensor, final: Tensor, actions: Tensor, rewards: Tensor,
                 terminals: Tensor, dones: Tensor) -> None:  # fmt: skip
        steps = obs.shape[0]
        ended = torch.cumsum(dones.long(), 0)
        regular = torch.arange(steps) + ended - dones.long()  # slots of the env's steps
        extra = (torch.arange(steps) + ended)[dones]  # slots of the final observations
        n = steps + int(ended[-1])
        firsts = torch.cat([self.next_first[r : r + 1], dones[:-1]])
        prev_actions = torch.cat([self.last_action[r : r + 1], actions[:-1]])
        prev_rewards = torch.cat([self.last_reward[r : r + 1], rewards[:-1]])
        prev_actions[firsts] = 0.0
        prev_rewards[firsts] = 0.0
        out_obs = torch.empty(n, *obs.shape[1:], dtype=obs.dtype)
        out_actions, out_rewards = torch.empty(n, actions.shape[-1]), torch.empty(n)
        out_conts, out_firsts = torch.ones(n), torch.zeros(n, dtype=torch.bool)
        out_obs[regular], out_obs[extra] = obs, final[dones].to(obs.dtype)
        out_actions[regular], out_actions[extra] = prev_actions, actions[dones]
        out_rewards[regular], out_rewards[extra] = prev_rewards, rewards[dones]
        out_firsts[regular] = firsts
        out_conts[extra] = (~terminals[dones]).float()
        last_done = bool(dones[-1])
        self.next_first[r] = last_done
        self.last_action[r] = 0.0 if last_done else actions[-1]
        self.last_reward[r] = 0.0 if last_done else rewards[-1]
        cap = self.row_capacity
        if n > cap:  # keep the newest
            out_obs, out_actions, out_rewards = (
                out_obs[-cap:],
                out_actions[-cap:],
                out_rewards[-cap:],
            )
            out_conts, out_firsts, n = out_conts[-cap:], out_firsts[-cap:], cap
        slots = (int(self.position[r]) + torch.arange(n)) % cap
        self.obs[r, slots] = out_obs
        self.actions[r, slots] = out_actions
        self.rewards[r, slots] = out_rewards
        self.conts[r, slots] = out_conts
        self.firsts[r, slots] = out_firsts
        self.position[r] = (int(self.position[r]) + n) % cap
        self.count[r] = min(int(self.count[r]) + n, cap)

    # -- reading ----------------------------------------------------------------------------
    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` windows of ``seq_len`` steps (rows drawn in proportion to the
        windows they hold). Each window's first step is flagged ``firsts`` (its model state
        starts from zero). Keys: ``observations``, ``actions`` (the previous ones),
        ``rewards``, ``conts``, ``firsts``, each ``[B, L, ...]``."""
        windows = (self.count - self.seq_len + 1).clamp_min(0)
        if int(windows.sum()) == 0:
            raise APIUsageError(
                f"SequenceReplay holds no window of seq_len={self.seq_len} steps yet"
            )
        g = self.generator
        rows = torch.multinomial(windows.double(), batch_size, replacement=True, generator=g)
        offsets = (torch.rand(batch_size, generator=g, dtype=torch.float64)
                   * windows[rows]).long()  # fmt: skip
        oldest = (self.position[rows] - self.count[rows]) % self.row_capacity
        idx = (oldest + offsets)[:, None] + torch.arange(self.seq_len)[None]
        idx = idx % self.row_capacity
        r = rows[:, None]
        firsts = self.firsts[r, idx].clone()
        firsts[:, 0] = True
        data = {
            "observations": self.obs[r, idx],
            "actions": self.actions[r, idx],
            "rewards": self.rewards[r, idx],
            "conts": self.conts[r, idx],
            "firsts": firsts,
        }
        return Batch({k: v.to(self.device) for k, v in data.items()})

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every stored step, the ring positions, the carried values and the sampler."""
        return {
            "obs": self.obs.clone(),
            "actions": self.actions.clone(),
            "rewards": self.rewards.clone(),
            "conts": self.conts.clone(),
            "firsts": self.firsts.clone(),
            "position": self.position.clone(),
            "count": self.count.clone(),
            "last_action": self.last_action.clone(),
            "last_reward": self.last_reward.clone(),
            "next_first": self.next_first.clone(),
            "num_added": self.num_added,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (into a replay of the same sizes)."""
        for name in ("obs", "actions", "rewards", "conts", "firsts", "position", "count",
                     "last_action", "last_reward", "next_first"):  # fmt: skip
            target = getattr(self, name)
            if target.shape != state[name].shape:
                raise APIUsageError(
                    f"SequenceReplay state has {name} of shape {tuple(state[name].shape)}, "
                    f"this replay {tuple(target.shape)}"
                )
            target.copy_(state[name])
        self.num_added = int(state["num_added"])
        self.generator.set_state(state["generator"])
