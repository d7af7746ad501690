"""GRPO on envs: group-relative advantages from seed groups, no critic; DAPO as its switches.

Each collection starts fresh episodes: the trainer resets every env copy to the seed that
:meth:`GRPO.reset_seeds` hands out, the same seed for the ``group_size`` copies of a group, so
the rows of a group start from identical states and differ only by the actions sampled. An
episode's advantage is its return scored against its group (:func:`fugu.ops.group
.group_advantages`: minus the group mean, over the group std), and every step of the episode
carries it. No value function is learned or used.

By default only each row's first episode of a collection is learned from (the one that starts
from the group seed). ``use_later_episodes`` also groups a row's ``k``-th later episodes by
``k``: exact seed groups for envs that draw randomness only when they reset (CartPole), an
approximation elsewhere.

DAPO's techniques are switches of :class:`GRPOConfig`, each on its own:

* decoupled clip (``clip_high``): the ratio is clipped to ``[1 - clip_low, 1 + clip_high]``;
* dynamic sampling (``dynamic_sampling``): groups whose returns are all equal are dropped and
  the update waits for more collections until the kept groups fill a batch (at least as many
  groups as one collection has seed groups); ``train/refill_rounds`` and
  ``train/refill_steps`` report the cost;
* step-level loss averaging (``step_level_loss``): one mean over every step of the batch
  instead of a mean per episode, then over episodes (DAPO's token-level loss);
* overlong filtering (``overlong_filter``): episodes cut by the env's time limit or by the
  rollout horizon count in their group's statistics but not in the loss; soft overlong
  punishment (``overlong_buffer``) lowers the returns of episodes longer than
  ``max_episode_steps - overlong_buffer`` linearly, by up to ``overlong_penalty_coef``.

:class:`DAPO` (registry ``dapo``) is GRPO with those four switches on and no KL.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu import ops
from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.optim import SCHEDULES, Optimizer
from fugu.models.policy import Policy, PolicyConfig, PolicyState, make_policy
from fugu.ops.group import (
    group_advantages,
    group_has_signal,
    grouped_clip_loss,
    kl_to_reference,
    soft_overlong_penalty,
)

__all__ = ["DAPO", "GRPO", "DAPOConfig", "GRPOConfig", "seed_group_episodes"]


@dataclass(frozen=True)
class GRPOConfig:
    """Hyperparameters of GRPO on envs (DAPO's techniques are switches here).

    Example:
        >>> GRPOConfig(group_size=4).clip_high is None
        True
    """

    learning_rate: float = 3e-3
    """Adam step size at the start of training."""
    lr_schedule: str = "constant"
    """``"constant"``, ``"linear"`` or ``"cosine"`` by training progress."""
    group_size: int = 8
    """Env copies per seed group (``G``); the copies of a collection must be a multiple."""
    scale_advantages: bool = True
    """Divide by the group's return std (GRPO); ``False`` only centres (Dr. GRPO)."""
    use_later_episodes: bool = False
    """Learn from later episodes of each row too, grouped by their index in the row."""
    update_epochs: int = 2
    """Passes over the kept episodes per update."""
    num_minibatches: int = 2
    """Minibatches of episodes per epoch."""
    clip_low: float = 0.2
    """Lower clip width of the probability ratio."""
    clip_high: float | None = None
    """Upper clip width (DAPO's clip-higher, e.g. 0.28); ``None``: ``clip_low``."""
    step_level_loss: bool = False
    """Average the loss over all steps of the batch (DAPO), not per episode then over
    episodes (GRPO)."""
    dynamic_sampling: bool = False
    """Drop groups whose returns are all equal and refill the batch with more collections."""
    max_refill_rounds: int = 8
    """Dynamic sampling: extra collections at most before updating on what was kept."""
    overlong_filter: bool = False
    """Leave episodes cut by a time limit or by the horizon out of the loss."""
    overlong_buffer: int = 0
    """Soft overlong punishment over the last this many steps before ``max_episode_steps``
    (``0``: off)."""
    overlong_penalty_coef: float = 1.0
    """Largest soft overlong punishment (subtracted from the return)."""
    max_episode_steps: int | None = None
    """Length budget of the soft punishment (``None``: the rollout horizon)."""
    kl_coef: float = 0.0
    """Weight of the k3 KL penalty to a frozen reference policy (``0``: none)."""
    ref_update_interval: int = 0
    """Copy the policy into the reference every this many updates (``0``: the initial policy
    forever)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Clip of the global gradient norm (``<= 0`` disables it)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    seed: int = 0
    """Seed of the action sampler, the minibatch shuffles and the group seeds."""

    def __post_init__(self) -> None:
        if self.lr_schedule not in SCHEDULES:
            raise APIUsageError(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        if self.group_size < 2:
            raise APIUsageError(f"GRPO needs group_size >= 2, got {self.group_size}")
        if self.update_epochs < 1 or self.num_minibatches < 1 or self.max_refill_rounds < 0:
            raise APIUsageError(
                "GRPO needs update_epochs >= 1, num_minibatches >= 1, max_refill_rounds >= 0"
            )
        if not self.learning_rate > 0 or self.clip_low < 0 or (self.clip_high or 0.0) < 0:
            raise APIUsageError("GRPO needs learning_rate > 0 and clip widths >= 0")
        if self.overlong_buffer < 0 or self.kl_coef < 0 or self.ref_update_interval < 0:
            raise APIUsageError(
                "GRPO needs overlong_buffer >= 0, kl_coef >= 0, ref_update_interval >= 0"
            )
        if self.max_episode_steps is not None and self.overlong_buffer > self.max_episode_steps:
            raise APIUsageError("overlong_buffer must not exceed max_episode_steps")


@dataclass(frozen=True)
class DAPOConfig(GRPOConfig):
    """GRPO with DAPO's four techniques on: clip-higher, dynamic sampling, step-level loss
    and overlong filtering (soft punishment needs a length budget: set ``overlong_buffer``)."""

    clip_high: float | None = 0.28
    """Upper clip width (clip-higher)."""
    dynamic_sampling: bool = True
    """Drop groups without signal and refill."""
    step_level_loss: bool = True
    """Step-level loss averaging."""
    overlong_filter: bool = True
    """Overlong filtering."""


def seed_group_episodes(
    batch: Mapping[str, Tensor], group_of_row: Tensor, later_episodes: bool = False
) -> dict[str, Tensor]:
    """Split a ``[T, N]`` rollout that started fresh episodes into episodes and their groups.

    Args:
        batch: ``rewards``, ``terminals``, ``truncations`` (and optionally ``masks``), ``[T, N]``.
        group_of_row: ``[N]`` the seed group of each row.
        later_episodes: Keep the later episodes of each row too (grouped by index in the row);
            unfinished later episodes are always dropped.

    Returns:
        ``steps`` (flat ``t * N + n`` indices of the kept steps), ``episode`` (each kept
        step's episode, ``0..E-1``), ``position`` (its step within the episode), and per
        episode ``returns``, ``lengths``, ``groups``, ``overlong`` (cut by a time limit or
        unfinished at the horizon).

    Example:
        >>> done = torch.tensor([[False, True], [True, False], [False, False]])
        >>> never = torch.zeros(3, 2, dtype=torch.bool)
        >>> batch = {"rewards": torch.ones(3, 2), "terminals": done, "truncations": never}
        >>> out = seed_group_episodes(batch, torch.tensor([0, 0]))
        >>> out["returns"].tolist(), out["overlong"].tolist()
        ([2.0, 1.0], [False, False])
    """
    rewards, terminals, truncations = batch["rewards"], batch["terminals"], batch["truncations"]
    steps, rows = rewards.shape
    dones = terminals | truncations
    index = (torch.cumsum(dones.long(), 0) - dones.long()).cpu()  # episodes ended before t
    total = dones.long().sum(0).cpu()
    finished = index < total.unsqueeze(0)
    keep = ((index == 0) | finished) if later_episodes else index == 0
    masks = batch.get("masks")
    if masks is not None:
        keep &= masks.cpu()
    flat = keep.reshape(-1).nonzero().squeeze(-1)
    row = flat % rows
    time = flat // rows
    k = index.reshape(-1)[flat]
    key = row * (steps + 1) + k
    uniq, episode = torch.unique(key, return_inverse=True)
    num = int(uniq.numel())
    ep_row = uniq // (steps + 1)
    ep_k = uniq % (steps + 1)
    ep_returns = torch.zeros(num, dtype=torch.float64).index_add_(
        0, episode, rewards.reshape(-1).cpu()[flat].double()
    )
    ep_lengths = torch.zeros(num, dtype=torch.long).index_add_(0, episode, torch.ones_like(flat))
    ep_start = torch.full((num,), steps, dtype=torch.long).scatter_reduce(
        0, episode, time, reduce="amin"
    )
    truncated = torch.zeros(num, dtype=torch.bool).index_put_(
        (episode,), truncations.reshape(-1).cpu()[flat], accumulate=True
    )
    ended = torch.zeros(num, dtype=torch.bool).index_put_(
        (episode,), dones.reshape(-1).cpu()[flat], accumulate=True
    )
    groups = group_of_row.cpu().long()[ep_row] * (steps + 1) + ep_k
    return {
        "steps": flat,
        "episode": episode,
        "position": time - ep_start[episode],
        "returns": ep_returns.float(),
        "lengths": ep_lengths,
        "groups": groups,
        "overlong": truncated | ~ended,
    }


class GRPO:
    """Group Relative Policy Optimization on envs (see the module docstring).

    Trains a :class:`~fugu.models.Policy`; its value head is never used.

    Args:
        policy: The policy to train (moved to ``device``).
        config: Hyperparameters.
        device: Where the policy and the update run.

    Example:
        >>> from fugu.models import make_policy
        >>> algo = GRPO(make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2)),
        ...             GRPOConfig(group_size=2))
        >>> algo.reset_seeds(4, 4)[0] == algo.reset_seeds(4, 4)[0]
        False
    """

    name: ClassVar[str] = "grpo"
    config_type: ClassVar[type] = GRPOConfig
    collection: ClassVar[Collection] = "rollout"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "multi_discrete", "box")
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/policy",
        "loss/entropy",
        "loss/approx_kl",
        "loss/clipfrac",
        "train/kept_groups",
        "train/refill_rounds",
        "train/learning_rate",
    )

    def __init__(
        self, policy: Policy, config: GRPOConfig | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.config = config = config or self.config_type()
        if policy.is_recurrent:
            raise APIUsageError(f"{self.name} supports feed-forward policies only")
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.optimizer = Optimizer(
            self.policy.parameters(),
            learning_rate=config.learning_rate,
            lr_schedule=config.lr_schedule,
            adam_eps=config.adam_eps,
            max_grad_norm=config.max_grad_norm,
            device=self.device,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self._cpu_generator = torch.Generator().manual_seed(config.seed + 1)
        self._seeds = np.random.Generator(np.random.PCG64(config.seed + 2))
        self.reference: Policy | None = None
        if config.kl_coef > 0:
            self.reference = copy.deepcopy(self.policy).requires_grad_(False)
        self.num_updates = 0
        self.rows_per_copy = 1
        self._pending: list[dict[str, Tensor]] = []
        self._pending_steps = 0
        self._dropped = 0

    @classmethod
    def build(
        cls,
        config: GRPOConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> GRPO:
        """A GRPO with a new policy for these spaces (see :meth:`Algorithm.build`)."""
        check_action_space(cls, action_space)
        return cls(make_policy(observation_space, action_space, policy_config), config, device)

    # -- seed groups ------------------------------------------------------------------------
    def reset_seeds(self, num_copies: int, num_rows: int) -> list[int]:
        """Per-copy reset seeds of the next collection: one fresh seed per group of
        ``group_size`` consecutive copies (the trainer calls this before each collection)."""
        size = self.config.group_size
        if num_copies % size or num_rows % num_copies:
            raise APIUsageError(
                f"{self.name}: {num_copies} env copies do not split into groups of "
                f"{size}; use a num_envs that is a multiple of group_size"
            )
        self.rows_per_copy = num_rows // num_copies
        seeds = self._seeds.integers(0, 2**31 - 1, size=num_copies // size)
        return np.repeat(seeds, size).tolist()  # type: ignore[no-any-return]

    def group_of_rows(self, num_rows: int) -> Tensor:
        """``[num_rows]`` the seed group of each row (rows of a copy share its group)."""
        copies = torch.arange(num_rows) // self.rows_per_copy
        return copies // self.config.group_size

    # -- the protocol ---------------------------------------------------------------------
    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """``logprobs`` of the acting policy, and the env's ``action_masks`` (no values)."""
        fields = {"logprobs": Field("logprobs", (), np.float32)}
        if "action_masks" in env_fields:
            fields["action_masks"] = env_fields["action_masks"]
        return fields

    def modules(self) -> dict[str, nn.Module]:
        """``{"policy": policy}``, plus ``reference`` with a KL penalty."""
        modules: dict[str, nn.Module] = {"policy": self.policy}
        if self.reference is not None:
            modules["reference"] = self.reference
        return modules

    def initial_state(self, num_rows: int) -> PolicyState:
        """``None``: feed-forward policies only."""
        return None

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """``state`` unchanged (feed-forward)."""
        return state

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Sample (or take the mode of) actions; returns ``{"logprobs": [B]}`` to store."""
        with torch.inference_mode():
            params, _, _ = self.policy.forward_eval(obs, None)
            dist = self.policy.distribution
            action_masks = extras.get("action_masks")
            if action_masks is not None:
                params = dist.mask(params, action_masks.to(self.device))
            if deterministic:
                actions = dist.mode(params)
                logprobs = dist.log_prob(params, actions)
            else:
                actions, logprobs = dist.sample_with_log_prob(params, self.generator)
        return ActOutput(actions, {"logprobs": logprobs}, None)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Zeros ``[B]``: GRPO has no critic (and stores no ``values``, so it is not called)."""
        return torch.zeros(obs.shape[0], device=self.device)

    # -- learning ---------------------------------------------------------------------------
    def _episodes_of(self, batch: Batch) -> tuple[dict[str, Tensor], dict[str, float]]:
        """The batch's episodes with advantages, those of groups without signal dropped when
        dynamic sampling; returns the kept data and statistics."""
        c = self.config
        steps, rows = batch["rewards"].shape
        eps = seed_group_episodes(batch.data, self.group_of_rows(rows), c.use_later_episodes)
        returns = eps["returns"]
        if c.overlong_buffer > 0:
            budget = c.max_episode_steps or steps
            returns = returns + c.overlong_penalty_coef * soft_overlong_penalty(
                eps["lengths"], budget, c.overlong_buffer
            )
        groups = eps["groups"]
        advantages = group_advantages(returns, groups, scale=c.scale_advantages)
        signal = group_has_signal(returns, groups)
        num_groups = int(torch.unique(groups).numel())
        kept_episodes = signal if c.dynamic_sampling else torch.ones_like(signal)
        stats = {
            "train/episodes": float(returns.numel()),
            "train/groups": float(num_groups),
            "train/signal_groups": float(torch.unique(groups[signal]).numel()),
            "train/overlong_frac": float(eps["overlong"].float().mean())
            if returns.numel()
            else 0.0,
            "train/group_return": float(eps["returns"].mean()) if returns.numel() else 0.0,
        }
        loss_mask = kept_episodes & ~eps["overlong"] if c.overlong_filter else kept_episodes
        renumber = torch.cumsum(kept_episodes.long(), 0) - 1
        step_kept = kept_episodes[eps["episode"]]
        flat = eps["steps"][step_kept]
        data: dict[str, Tensor] = {
            name: batch[name].reshape(steps * rows, *batch[name].shape[2:])[flat.to(self.device)]
            for name in ("observations", "actions", "logprobs", "action_masks")
            if name in batch
        }
        data["episode"] = renumber[eps["episode"][step_kept]]
        data["position"] = eps["position"][step_kept]
        data["advantages"] = advantages[kept_episodes]
        data["lengths"] = eps["lengths"][kept_episodes]
        data["loss_mask"] = loss_mask[kept_episodes]
        data["groups"] = groups[kept_episodes]
        return data, stats

    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """Learn from one collection (or, with dynamic sampling, keep its informative groups
        and wait for more until a batch is full).

        Returns:
            Metrics: ``loss/policy``, ``loss/entropy``, ``loss/approx_kl``, ``loss/clipfrac``,
            ``loss/kl_ref``, ``train/learning_rate``, ``train/kept_groups``,
            ``train/refill_rounds`` (extra collections this update waited for),
            ``train/refill_steps`` (their env steps), ``train/updated`` (0 while refilling),
            and statistics of the collection (``train/episodes``, ``train/groups``,
            ``train/signal_groups``, ``train/overlong_frac``, ``train/group_return``).
        """
        c = self.config
        steps, rows = batch["rewards"].shape
        data, stats = self._episodes_of(batch)
        target = rows // self.rows_per_copy // c.group_size
        self._pending.append(data)
        kept = sum(int(torch.unique(d["groups"]).numel()) for d in self._pending)
        rounds = len(self._pending) - 1
        self._pending_steps += steps * rows
        if c.dynamic_sampling and kept < target and rounds < c.max_refill_rounds:
            return {**stats, "train/updated": 0.0, "train/kept_groups": float(kept)}
        merged = _merge(self._pending)
        refill_steps = self._pending_steps - steps * rows
        self._pending, self._pending_steps = [], 0
        metrics = self._learn(merged, progress)
        metrics.update(stats)
        metrics["train/updated"] = 1.0
        metrics["train/kept_groups"] = float(kept)
        metrics["train/refill_rounds"] = float(rounds)
        metrics["train/refill_steps"] = float(refill_steps)
        return metrics

    def _learn(self, data: dict[str, Tensor], progress: float) -> dict[str, float]:
        c = self.config
        learning_rate = self.optimizer.set_progress(progress)
        num_episodes = int(data["lengths"].numel())
        totals = torch.zeros(6, dtype=torch.float64)  # pg, entropy, kl, clipfrac, kl_ref, n
        self.optimizer.pop_grad_norm()
        if num_episodes == 0 or not bool(data["loss_mask"].any()):
            self.num_updates += 1
            return {"train/learning_rate": learning_rate, "train/grad_norm": 0.0}
        longest = int(data["lengths"].max())
        padded = torch.full((num_episodes, longest), -1, dtype=torch.long)
        padded[data["episode"], data["position"]] = torch.arange(data["episode"].numel())
        ref_logprobs: Tensor | None = None
        if self.reference is not None:
            with torch.no_grad():
                ref_logprobs = self._logprobs(self.reference, data, None)[0]
        high = c.clip_low if c.clip_high is None else c.clip_high
        for _ in range(c.update_epochs):
            order = torch.randperm(num_episodes, generator=self._cpu_generator)
            for idx in torch.tensor_split(order, c.num_minibatches):
                if not idx.numel():
                    continue
                index = padded[idx]
                valid = index >= 0
                mask = (valid & data["loss_mask"][idx].unsqueeze(1)).to(self.device)
                if not bool(mask.any()):
                    continue
                flat = index[valid].to(self.device)
                logprobs, entropy = self._logprobs(self.policy, data, flat)
                shape = (int(idx.numel()), longest)
                new = torch.zeros(shape, device=self.device)
                old = torch.zeros(shape, device=self.device)
                new[valid.to(self.device)] = logprobs
                old[valid.to(self.device)] = data["logprobs"][flat]
                adv = data["advantages"][idx].to(self.device)
                pg_loss = grouped_clip_loss(
                    new, old, adv, clip_low=c.clip_low, clip_high=c.clip_high, mask=mask,
                    token_level=c.step_level_loss,
                )  # fmt: skip
                live = mask[valid.to(self.device)]
                ent = entropy[live].mean()
                loss = pg_loss - c.ent_coef * ent
                kl_ref = torch.zeros((), device=self.device)
                if ref_logprobs is not None:
                    kl_ref = kl_to_reference(logprobs, ref_logprobs[flat])[live].mean()
                    loss = loss + c.kl_coef * kl_ref
                self.optimizer.backward(loss)
                self.optimizer.step()
                with torch.no_grad():
                    logratio = (logprobs - data["logprobs"][flat])[live]
                    ratio = torch.exp(logratio)
                    clipped = ((ratio < 1 - c.clip_low) | (ratio > 1 + high)).float().mean()
                    row = [pg_loss, ent, ops.approx_kl(logratio), clipped, kl_ref, torch.ones(())]
                    totals += torch.stack([v.detach().cpu() for v in row]).double()
        self.num_updates += 1
        interval = c.ref_update_interval
        if self.reference is not None and interval and self.num_updates % interval == 0:
            self.reference.load_state_dict(self.policy.state_dict())
        with torch.no_grad():
            self.policy.update_obs_norm(data["observations"])
        mean = (totals[:5] / totals[5].clamp(min=1)).tolist()
        return {
            "loss/policy": mean[0],
            "loss/entropy": mean[1],
            "loss/approx_kl": mean[2],
            "loss/clipfrac": mean[3],
            "loss/kl_ref": mean[4],
            "train/learning_rate": learning_rate,
            "train/grad_norm": self.optimizer.pop_grad_norm(),
        }

    def _logprobs(
        self, policy: Policy, data: Mapping[str, Tensor], flat: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Log-probabilities and entropies of the stored actions (of steps ``flat``)."""
        pick: Callable[[Tensor], Tensor] = (lambda v: v) if flat is None else (lambda v: v[flat])
        params, _, _ = policy.forward_train(pick(data["observations"]), None)
        dist = policy.distribution
        if "action_masks" in data:
            params = dist.mask(params, pick(data["action_masks"]))
        return dist.log_prob(params, pick(data["actions"])), dist.entropy(params)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, generators, counters and the groups kept while refilling."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "cpu_generator": self._cpu_generator.get_state(),
            "seeds": self._seeds.bit_generator.state,
            "num_updates": self.num_updates,
            "rows_per_copy": self.rows_per_copy,
            "pending": [{k: v.clone() for k, v in d.items()} for d in self._pending],
            "pending_steps": self._pending_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self._cpu_generator.set_state(state["cpu_generator"])
        self._seeds.bit_generator.state = state["seeds"]
        self.num_updates = int(state["num_updates"])
        self.rows_per_copy = int(state["rows_per_copy"])
        self._pending = [dict(d) for d in state["pending"]]
        self._pending_steps = int(state["pending_steps"])


class DAPO(GRPO):
    """GRPO configured as DAPO (:class:`DAPOConfig`: clip-higher, dynamic sampling,
    step-level loss, overlong filtering, no KL)."""

    name: ClassVar[str] = "dapo"
    config_type: ClassVar[type] = DAPOConfig


def _merge(parts: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Concatenate kept episodes of several collections (episode ids and groups offset)."""
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, list[Tensor]] = {k: [] for k in parts[0]}
    offset = 0
    group_offset = 0
    for part in parts:
        for key, value in part.items():
            if key == "episode":
                value = value + offset
            elif key == "groups":
                value = value + group_offset
            merged[key].append(value)
        offset += int(part["lengths"].numel())
        group_offset += int(part["groups"].max()) + 1 if part["groups"].numel() else 0
    return {k: torch.cat(v) for k, v in merged.items()}
