"""The fast training loop: collect a rollout (double-buffered), run one PPO update, repeat.

:class:`Trainer` composes vec envs, a policy and :class:`~fugu.algos.ppo.PPO`. Env buffers are
wrapped as tensors once (``torch.from_numpy``), so observations and rewards reach the rollout
storage without intermediate copies. Given two env shards (see :func:`make_train_envs`), one
shard steps on a worker thread while the policy acts on the other: native envs release the GIL,
so the two overlap on two cores. Logging, checkpoint files and run directories are the job of
:mod:`fugu.train.run`; the trainer only proves its state complete (:meth:`Trainer.state_dict`).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fugu.algos.ppo import PPO
from fugu.core.errors import APIUsageError
from fugu.core.registry import make
from fugu.core.vec import VecEnv
from fugu.models.policy import Policy, PolicyState
from fugu.train.config import TrainConfig
from fugu.train.rollout import RolloutStorage

__all__ = ["Trainer", "make_train_envs"]


def make_train_envs(
    env_id: str, num_envs: int, seed: int = 0, double_buffer: bool = True, **kwargs: Any
) -> list[VecEnv]:
    """Build the env shards a :class:`Trainer` steps: two halves when double-buffering.

    Shard ``k`` gets ``seed`` offset by the rows before it, so a native env's rows are seeded
    exactly as one env of ``num_envs`` rows would be.

    Example:
        >>> shards = make_train_envs("cartpole-v1", 8, seed=1)
        >>> [s.num_agents for s in shards]
        [4, 4]
    """
    if num_envs < 1:
        raise APIUsageError(f"num_envs must be >= 1, got {num_envs}")
    sizes = (
        [num_envs // 2, num_envs - num_envs // 2] if double_buffer and num_envs > 1 else [num_envs]
    )
    shards, offset = [], 0
    for size in sizes:
        shards.append(make(env_id, num_envs=size, seed=seed + offset, **kwargs))
        offset += size
    return shards


class _Shard:
    """One env and the tensor views of its buffers, owning columns ``[lo, hi)`` of storage."""

    def __init__(self, env: VecEnv, lo: int, device: torch.device) -> None:
        self.env = env
        self.lo, self.hi = lo, lo + int(env.num_agents)
        self.obs = torch.from_numpy(env.observations)
        self.final_obs = torch.from_numpy(env.final_observations)
        self.rewards = torch.from_numpy(env.rewards)
        self.terminals = torch.from_numpy(env.terminals)
        self.truncations = torch.from_numpy(env.truncations)
        self.actions = torch.from_numpy(env.actions)
        self.masks = torch.from_numpy(env.masks)
        self.pinned: Tensor | None = None
        if device.type == "cuda":
            self.pinned = torch.empty_like(self.obs).pin_memory()
        self.future: Future[Any] | None = None
        self.state: PolicyState = None
        self.infos: list[dict[str, Any]] = []

    def obs_on(self, device: torch.device) -> Tensor:
        """The current observations, staged in pinned memory for a non-blocking copy on CUDA.

        The staging buffer is reused: the caller's copy to the device is ordered before the
        next call because acting waits for the actions on the host.
        """
        if self.pinned is None:
            return self.obs
        self.pinned.copy_(self.obs)
        return self.pinned

    def step(self) -> None:
        """Step the env with its action buffer, keeping the infos."""
        *_, infos = self.env.step(self.env.actions)
        if infos:
            self.infos.extend(infos)


class _StepViews:
    """Views of the storage tensors for one step and one shard's columns."""

    def __init__(self, storage: RolloutStorage, t: int, lo: int, hi: int) -> None:
        self.observations = storage.observations[t, lo:hi]
        self.actions = storage.actions[t, lo:hi]
        self.logprobs = storage.logprobs[t, lo:hi]
        self.values = storage.values[t, lo:hi]
        self.rewards = storage.rewards[t, lo:hi]
        self.terminals = storage.terminals[t, lo:hi]
        self.truncations = storage.truncations[t, lo:hi]
        self.final_values = storage.final_values[t, lo:hi]
        self.starts = storage.starts[t, lo:hi]
        self.masks = storage.masks[t, lo:hi]


class Trainer:
    """Collect with a vec env (or two shards), update with PPO, one :meth:`train_epoch` each.

    Args:
        vecenv: A vec env, or a sequence of env shards (their rows are concatenated;
            two shards enable double buffering, see :func:`make_train_envs`).
        policy: The policy (``algo.policy``; checked to be the same object).
        algo: The PPO instance, built with ``total_updates = config.num_updates(rows)``.
        config: Horizon, budget, seed, device and collection options.

    Attributes:
        global_step: Env steps collected so far (summed over rows).
        epoch: Completed epochs (rollout + update).
        episode_returns: The returns of the most recent episodes (``config.episode_window``).
        episode_lengths: Their lengths.
    """

    def __init__(
        self,
        vecenv: VecEnv | Sequence[VecEnv],
        policy: Policy,
        algo: PPO,
        config: TrainConfig | None = None,
    ) -> None:
        self.config = config = config or TrainConfig()
        if algo.policy is not policy:
            raise APIUsageError("Trainer: pass the policy that the PPO instance trains")
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        envs = [vecenv] if not isinstance(vecenv, Sequence) else list(vecenv)
        if not envs:
            raise APIUsageError("Trainer needs at least one env")
        self.envs = envs
        self.policy = policy
        self.algo = algo
        self.device = algo.device
        self.shards: list[_Shard] = []
        lo = 0
        for env in envs:
            self.shards.append(_Shard(env, lo, self.device))
            lo += int(env.num_agents)
        self.num_rows = lo
        self.storage = RolloutStorage(
            envs[0].single_observation_space,
            envs[0].single_action_space,
            config.num_steps,
            self.num_rows,
            self.device,
        )
        self._pool: ThreadPoolExecutor | None = None
        if config.double_buffer and len(self.shards) > 1:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="fugu-collect")
        self._dones = torch.ones(self.num_rows, dtype=torch.bool, device=self.device)
        # Per-step, per-shard views of the storage, sliced once (indexing costs in a hot loop).
        self._views = [
            [_StepViews(self.storage, t, sh.lo, sh.hi) for sh in self.shards]
            for t in range(config.num_steps)
        ]
        self._shard_dones = [self._dones[sh.lo : sh.hi] for sh in self.shards]
        self.global_step = 0
        self.epoch = 0
        self.episode_returns: deque[float] = deque(maxlen=config.episode_window)
        self.episode_lengths: deque[float] = deque(maxlen=config.episode_window)
        offset = 0
        for shard in self.shards:
            shard.env.reset(seed=config.seed + offset)
            shard.state = policy.initial_state(shard.hi - shard.lo, self.device)
            offset += shard.hi - shard.lo

    # -- properties -------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Samples per epoch (``rows * num_steps``)."""
        return self.config.batch_size(self.num_rows)

    @property
    def done(self) -> bool:
        """Whether ``total_timesteps`` have been collected."""
        return self.global_step >= self.config.total_timesteps

    @property
    def mean_return(self) -> float:
        """Mean of :attr:`episode_returns` (NaN before the first episode ends)."""
        return float(np.mean(self.episode_returns)) if self.episode_returns else float("nan")

    # -- collection -------------------------------------------------------------------------
    def _act(self, k: int, t: int) -> None:
        shard, views = self.shards[k], self._views[t][k]
        starts = self._shard_dones[k]
        views.starts.copy_(starts)
        state = shard.state
        if state is not None:
            if t == 0:
                self._initial_states.append(state)
            state = self.policy.reset_state(state, starts)
        obs = views.observations
        obs.copy_(shard.obs_on(self.device), non_blocking=True)
        views.masks.copy_(shard.masks, non_blocking=True)
        actions, logprobs, values, shard.state = self.algo.act(obs, state)
        views.actions.copy_(actions)
        views.logprobs.copy_(logprobs)
        views.values.copy_(values)
        shard.actions.copy_(actions)

    def _record(self, k: int, t: int) -> None:
        shard, views = self.shards[k], self._views[t][k]
        if shard.future is not None:
            shard.future.result()
            shard.future = None
        views.rewards.copy_(shard.rewards, non_blocking=True)
        views.terminals.copy_(shard.terminals, non_blocking=True)
        views.truncations.copy_(shard.truncations, non_blocking=True)
        torch.logical_or(views.terminals, views.truncations, out=self._shard_dones[k])
        truncated = shard.env.truncations
        if truncated.any():
            rows = torch.from_numpy(np.flatnonzero(truncated))
            state = shard.state
            if state is not None:
                state = (state[0][rows.to(self.device)], state[1][rows.to(self.device)])
            final = shard.final_obs[rows].to(self.device)
            views.final_values[rows.to(self.device)] = self.algo.value(final, state)

    def _launch(self, shard: _Shard) -> None:
        if self._pool is None:
            shard.step()
        else:
            shard.future = self._pool.submit(shard.step)

    def collect(self) -> None:
        """Fill the rollout storage with ``num_steps`` steps of every row."""
        s = self.storage
        self._initial_states: list[Any] = []
        for t in range(self.config.num_steps):
            for k, shard in enumerate(self.shards):
                if t > 0:
                    self._record(k, t - 1)
                self._act(k, t)
                self._launch(shard)
        last = self.config.num_steps - 1
        for k, shard in enumerate(self.shards):
            self._record(k, last)
            cols = slice(shard.lo, shard.hi)
            state = self.policy.reset_state(shard.state, self._dones[cols])
            obs = shard.obs_on(self.device).to(self.device, non_blocking=True)
            s.last_values[cols] = self.algo.value(obs, state)
            flush = getattr(shard.env, "flush_infos", None)
            if flush is not None:
                shard.infos.extend(flush())
        if self._initial_states:
            s.initial_state = (
                torch.cat([st[0] for st in self._initial_states]),
                torch.cat([st[1] for st in self._initial_states]),
            )
        self.global_step += self.batch_size

    def _episode_metrics(self) -> dict[str, float]:
        sums: dict[str, float] = {}
        count = 0
        for shard in self.shards:
            for info in shard.infos:
                n = int(info.get("num_episodes", 1))
                if n <= 0:
                    continue
                count += n
                for key, value in info.items():
                    if key != "num_episodes" and isinstance(value, (int, float)):
                        sums[key] = sums.get(key, 0.0) + float(value) * n
                if "episode_return" in info:
                    reps = min(n, self.config.episode_window)
                    self.episode_returns.extend([float(info["episode_return"])] * reps)
                    self.episode_lengths.extend([float(info.get("episode_length", 0.0))] * reps)
            shard.infos = []
        if count == 0:
            return {}
        metrics = {f"env/{key}": value / count for key, value in sums.items()}
        metrics["env/num_episodes"] = float(count)
        return metrics

    def train_epoch(self) -> dict[str, float]:
        """One rollout and one PPO update; returns metrics (``env/``, ``perf/``, ``loss/``...)."""
        start = time.perf_counter()
        self.collect()
        mid = time.perf_counter()
        metrics = self.algo.update(self.storage.batch())
        end = time.perf_counter()
        self.epoch += 1
        metrics.update(self._episode_metrics())
        metrics["perf/rollout_s"] = mid - start
        metrics["perf/update_s"] = end - mid
        metrics["perf/sps"] = self.batch_size / max(end - start, 1e-9)
        metrics["perf/rollout_sps"] = self.batch_size / max(mid - start, 1e-9)
        metrics["train/global_step"] = float(self.global_step)
        metrics["train/epoch"] = float(self.epoch)
        if self.episode_returns:
            metrics["env/mean_return_window"] = self.mean_return
        return metrics

    def train(self) -> dict[str, float]:
        """Run :meth:`train_epoch` until :attr:`done`; returns the last epoch's metrics."""
        metrics: dict[str, float] = {}
        while not self.done:
            metrics = self.train_epoch()
        return metrics

    def close(self) -> None:
        """Stop the collection thread and close the envs. Idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for env in self.envs:
            env.close()

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full training state: algo, counters, every RNG, envs, recurrent state, stats."""
        envs = []
        for env in self.envs:
            get_state = getattr(env, "get_state", None)
            envs.append(get_state() if get_state is not None else None)
        return {
            "algo": self.algo.state_dict(),
            "global_step": self.global_step,
            "epoch": self.epoch,
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
            "envs": envs,
            "dones": self._dones.cpu().clone(),
            "policy_states": [shard.state for shard in self.shards],
            "episode_returns": list(self.episode_returns),
            "episode_lengths": list(self.episode_lengths),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into a trainer built with the same envs and config."""
        self.algo.load_state_dict(state["algo"])
        self.global_step = int(state["global_step"])
        self.epoch = int(state["epoch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        if len(state["envs"]) != len(self.envs):
            raise APIUsageError(
                f"state has {len(state['envs'])} env shards, this trainer {len(self.envs)}; "
                "build the trainer with the same env layout (double_buffer, num_envs)"
            )
        for env, env_state in zip(self.envs, state["envs"]):
            if env_state is not None:
                env.set_state(env_state)  # type: ignore[attr-defined]
        self._dones.copy_(state["dones"])
        for shard, shard_state in zip(self.shards, state["policy_states"]):
            shard.state = shard_state
        self.episode_returns.clear()
        self.episode_returns.extend(state["episode_returns"])
        self.episode_lengths.clear()
        self.episode_lengths.extend(state["episode_lengths"])
