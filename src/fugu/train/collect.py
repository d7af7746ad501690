"""The collector: step env shards with an algorithm acting, fill the rollout storage.

One loop serves every algorithm. For each step and shard it copies the observations (and the
env's declared fields describing them, such as ``action_masks``) into the storage, lets the
algorithm act (storing what its :meth:`~fugu.algos.base.Algorithm.act` returns under the names
it declared), lets other actors act on their rows (:class:`~fugu.train.policy_map.RowPolicyMap`),
launches the env step (on a worker thread when double-buffering) and records the outcome
(rewards, flags, step fields such as ``costs``). Truncated rows are bootstrapped through
:meth:`~fugu.algos.base.Algorithm.bootstrap` when the algorithm stores ``values``; for replay
algorithms the next observations (the final ones of ended episodes) are stored instead.

Env buffers are wrapped as tensors once (``torch.from_numpy``) and storage views are sliced
once per step and shard, so the hot loop allocates nothing but the algorithm's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fugu.algos.base import Algorithm
from fugu.buffers import RolloutStorage, rollout_fields
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.train.policy_map import RowPolicyMap
from fugu.train.shards import STEP_FIELDS, Shard, action_bounds, env_extra_fields

__all__ = ["Collector"]


class _Other:
    """Another actor on some of a shard's rows, with its recurrent state and done flags."""

    def __init__(self, actor: Any, rows: np.ndarray) -> None:
        self.actor = actor
        self.rows = torch.from_numpy(rows)
        self.state = actor.initial_state(len(rows))
        self.dones = torch.zeros(len(rows), dtype=torch.bool)


class Collector:
    """Fills a :class:`~fugu.buffers.RolloutStorage` of ``num_steps`` steps from env shards.

    Args:
        shards: The env shards (their rows are concatenated).
        algo: The acting algorithm.
        num_steps: Horizon of one collection.
        device: The algorithm's device.
        double_buffer: Step one shard on a worker thread while acting on the other.
        policy_map: Other actors' rows (``None``: the learner acts on every row).
        store_next_observations: Store ``next_observations`` (replay algorithms).
    """

    def __init__(
        self,
        shards: Sequence[Shard],
        algo: Algorithm,
        num_steps: int,
        device: torch.device,
        double_buffer: bool = False,
        policy_map: RowPolicyMap | None = None,
        store_next_observations: bool = False,
    ) -> None:
        self.shards = list(shards)
        self.algo = algo
        self.num_steps = int(num_steps)
        self.device = device
        env = self.shards[0].env
        num_rows = sum(shard.num_rows for shard in self.shards)
        self.others: list[list[_Other]] = [[] for _ in self.shards]
        stored = 0
        for k, shard in enumerate(self.shards):
            if policy_map is not None:
                policy_map.check(num_rows)
                learner, others = policy_map.local(shard.lo, shard.hi)
                if len(learner) < shard.num_rows:
                    shard.learner_rows = torch.from_numpy(learner)
                self.others[k] = [_Other(actor, rows) for actor, rows in others if len(rows)]
            count = shard.num_rows if shard.learner_rows is None else len(shard.learner_rows)
            shard.columns = (stored, stored + count)
            stored += count
        self.num_stored = stored
        env_fields = env_extra_fields(env)
        wanted = dict(algo.storage_fields(env_fields))
        if "costs" in env_fields:  # every learner's rollouts carry the env's costs (env/cost)
            wanted.setdefault("costs", env_fields["costs"])
        fields: dict[str, Field] = rollout_fields(
            env.single_observation_space, env.single_action_space
        )
        fields.update(wanted)
        if store_next_observations:
            obs = fields["observations"]
            fields["next_observations"] = Field("next_observations", obs.shape, obs.dtype)
        self.storage = RolloutStorage(fields, num_steps, stored, device)
        self._act_fields = [n for n in wanted if n not in env_fields]
        self._env_obs_fields = [n for n in wanted if n in env_fields and n not in STEP_FIELDS]
        self._env_step_fields = [n for n in wanted if n in env_fields and n in STEP_FIELDS]
        self.bounds = action_bounds(env.single_action_space)
        self.bootstraps = self.storage.has_values
        self._whole_rows = bool(getattr(algo, "bootstrap_whole_rows", False))
        self.store_next_observations = store_next_observations
        self._pool: ThreadPoolExecutor | None = None
        if double_buffer and len(self.shards) > 1:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="fugu-collect")
        self.dones = torch.ones(stored, dtype=torch.bool, device=device)
        self._shard_dones = [self.dones[sh.columns[0] : sh.columns[1]] for sh in self.shards]
        tensors = self.storage.tensors
        # Per-step, per-shard views of the storage, sliced once (indexing costs in a hot loop).
        self._views = [
            [{name: tensor[t, sh.columns[0] : sh.columns[1]] for name, tensor in tensors.items()}
             for sh in self.shards]
            for t in range(num_steps)
        ]  # fmt: skip
        self._final_values = [
            [self.storage.final_values[t, sh.columns[0] : sh.columns[1]] for sh in self.shards]
            for t in range(num_steps)
        ]
        self._initial_states: list[Any] = []

    # -- one step of one shard ------------------------------------------------------------------
    def _act(self, k: int, t: int) -> None:
        shard, views = self.shards[k], self._views[t][k]
        idx = shard.learner_rows
        starts = self._shard_dones[k]
        views["starts"].copy_(starts)
        state = shard.state
        if state is not None:
            if t == 0:
                self._initial_states.append(state)
            state = self.algo.reset_state(state, starts)
        obs = views["observations"]
        if idx is None:
            obs.copy_(shard.obs_on(self.device), non_blocking=True)
            views["masks"].copy_(shard.masks, non_blocking=True)
            extras: dict[str, Tensor] = shard.obs_extras
        else:
            obs.copy_(shard.obs[idx])
            views["masks"].copy_(shard.masks[idx])
            extras = {name: value[idx] for name, value in shard.obs_extras.items()}
        if self._env_obs_fields:
            extras = dict(extras)
            for name in self._env_obs_fields:
                views[name].copy_(extras[name])
                extras[name] = views[name]
        out = self.algo.act(obs, state, extras)
        views["actions"].copy_(out.actions)
        for name in self._act_fields:
            views[name].copy_(out.fields[name])
        shard.state = out.state
        env_actions = out.actions
        if self.bounds is not None:  # Box actions: the env gets them clipped to its bounds
            env_actions = torch.clamp(env_actions.cpu(), *self.bounds)
        if idx is None:
            shard.actions.copy_(env_actions)
        else:
            shard.actions[idx] = env_actions.to("cpu", shard.actions.dtype)
        for other in self.others[k]:
            rows = other.rows
            other_state = other.actor.reset_state(other.state, other.dones)
            other_extras = {name: value[rows] for name, value in shard.obs_extras.items()}
            acted = other.actor.act(shard.obs[rows], other_state, other_extras)
            shard.actions[rows] = acted.actions.to("cpu", shard.actions.dtype)
            other.state = acted.state

    def _record(self, k: int, t: int) -> None:
        shard, views = self.shards[k], self._views[t][k]
        if shard.future is not None:
            shard.future.result()
            shard.future = None
        idx = shard.learner_rows
        if idx is None:
            views["rewards"].copy_(shard.rewards, non_blocking=True)
            views["terminals"].copy_(shard.terminals, non_blocking=True)
            views["truncations"].copy_(shard.truncations, non_blocking=True)
            for name in self._env_step_fields:
                views[name].copy_(shard.extras[name], non_blocking=True)
        else:
            views["rewards"].copy_(shard.rewards[idx])
            views["terminals"].copy_(shard.terminals[idx])
            views["truncations"].copy_(shard.truncations[idx])
            for name in self._env_step_fields:
                views[name].copy_(shard.extras[name][idx])
        torch.logical_or(views["terminals"], views["truncations"], out=self._shard_dones[k])
        for other in self.others[k]:
            torch.logical_or(shard.terminals[other.rows], shard.truncations[other.rows],
                             out=other.dones)  # fmt: skip
        if self.store_next_observations:
            final = shard.final_obs if idx is None else shard.final_obs[idx]
            current = shard.obs if idx is None else shard.obs[idx]
            done = self._shard_dones[k].cpu().view(-1, *([1] * (current.dim() - 1)))
            views["next_observations"].copy_(torch.where(done, final, current))
        if self.bootstraps:
            truncated = views["truncations"]
            # numpy's any() on the env's own flags is cheaper than a torch reduction
            if shard.env.truncations.any() if idx is None else bool(truncated.any()):
                rows = truncated.nonzero().squeeze(-1)
                if self._whole_rows:  # e.g. a team critic: every stored row, final where cut
                    self._final_values[t][k][rows] = self._bootstrap_whole(shard, truncated)[rows]
                    return
                state = shard.state
                if state is not None:
                    state = (state[0][rows], state[1][rows])
                env_rows = rows.cpu() if idx is None else idx[rows.cpu()]
                final = shard.final_obs[env_rows].to(self.device)
                self._final_values[t][k][rows] = self.algo.bootstrap(final, state)

    def _bootstrap_whole(self, shard: Shard, truncated: Tensor) -> Tensor:
        """Values of all the shard's stored rows: final observations where ``truncated``,
        current ones elsewhere (:attr:`~fugu.algos.base.Algorithm.bootstrap_whole_rows`)."""
        idx = shard.learner_rows
        final = shard.final_obs if idx is None else shard.final_obs[idx]
        current = shard.obs if idx is None else shard.obs[idx]
        cut = truncated.cpu().view(-1, *([1] * (current.dim() - 1)))
        obs = torch.where(cut, final, current).to(self.device)
        return self.algo.bootstrap(obs, shard.state)

    def _launch(self, shard: Shard) -> None:
        if self._pool is None:
            shard.step()
        else:
            shard.future = self._pool.submit(shard.step)

    # -- a whole collection -----------------------------------------------------------------
    def collect(self) -> RolloutStorage:
        """Fill the storage with ``num_steps`` steps of every row; returns it."""
        s = self.storage
        self._initial_states = []
        for t in range(self.num_steps):
            for k, shard in enumerate(self.shards):
                if t > 0:
                    self._record(k, t - 1)
                self._act(k, t)
                self._launch(shard)
        last = self.num_steps - 1
        for k, shard in enumerate(self.shards):
            self._record(k, last)
            if self.bootstraps:
                cols = slice(*shard.columns)
                state = self.algo.reset_state(shard.state, self.dones[cols])
                obs = shard.obs_on(self.device)
                if shard.learner_rows is not None:
                    obs = obs[shard.learner_rows]
                s.last_values[cols] = self.algo.bootstrap(
                    obs.to(self.device, non_blocking=True), state
                )
            shard.flush_infos()
        s.initial_state = None
        if self._initial_states:
            s.initial_state = (
                torch.cat([st[0] for st in self._initial_states]),
                torch.cat([st[1] for st in self._initial_states]),
            )
        return s

    def reset_states(self) -> None:
        """Initial recurrent states for every shard's learner rows and other actors."""
        for shard in self.shards:
            shard.state = self.algo.initial_state(shard.columns[1] - shard.columns[0])

    def set_policy_map(self, policy_map: RowPolicyMap) -> None:
        """Swap the other actors (same rows), e.g. a new opponent sampled from a pool."""
        for k, shard in enumerate(self.shards):
            _, others = policy_map.local(shard.lo, shard.hi)
            others = [(a, r) for a, r in others if len(r)]
            if len(others) != len(self.others[k]):
                raise APIUsageError("set_policy_map: the rows of the other actors must not change")
            for other, (actor, rows) in zip(self.others[k], others):
                if not np.array_equal(other.rows.numpy(), rows):
                    raise APIUsageError(
                        "set_policy_map: the rows of the other actors must not change"
                    )
                if other.actor is not actor:
                    other.actor = actor
                    other.state = actor.initial_state(len(rows))

    def close(self) -> None:
        """Stop the collection thread. Idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Done flags and recurrent states (of the learner and the other actors)."""
        return {
            "dones": self.dones.cpu().clone(),
            "policy_states": [shard.state for shard in self.shards],
            "other_states": [
                [(o.state, o.dones.clone()) for o in others] for others in self.others
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.dones.copy_(state["dones"])
        for shard, shard_state in zip(self.shards, state["policy_states"]):
            shard.state = shard_state
        for others, saved in zip(self.others, state.get("other_states", [])):
            for other, (other_state, dones) in zip(others, saved):
                other.state = other_state
                other.dones.copy_(dones)
