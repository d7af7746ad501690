"""The training loop for any registered algorithm: collect, update, repeat.

:class:`Trainer` composes env shards, an :class:`~fugu.algos.base.Algorithm`, the
:class:`~fugu.train.collect.Collector`, reward hooks and (for several policies on one vec env)
a :class:`~fugu.train.policy_map.RowPolicyMap`. What happens after each collection depends
only on the algorithm's ``collection``:

* ``rollout``: the storage becomes a :class:`~fugu.buffers.Batch`, reward hooks add their
  rewards, and the algorithm updates once;
* ``replay``: the live transitions go into a :class:`~fugu.buffers.ReplayBuffer`, and the
  algorithm updates on sampled batches (its ``replay_settings()``);
* ``offline``: no env is stepped; each epoch feeds the next batch of a dataset.

Logging, checkpoint files and run directories are the job of :mod:`fugu.train.run`; the
trainer only proves its state complete (:meth:`Trainer.state_dict`). It names no algorithm.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch

from fugu.algos.base import Algorithm, ReplaySettings
from fugu.buffers import Batch, ReplayBuffer
from fugu.core.errors import APIUsageError
from fugu.core.vec import VecEnv
from fugu.train.collect import Collector
from fugu.train.config import TrainConfig
from fugu.train.episodes import EpisodeTracker, add_infos
from fugu.train.hooks import RewardHook, apply_reward_hooks, hooks_need_next_observations
from fugu.train.policy_map import RowPolicyMap
from fugu.train.shards import Shard, make_train_envs, shard_seeds

__all__ = ["Trainer", "make_train_envs"]

_REPLAY_FIELDS = ("observations", "actions", "rewards", "terminals", "truncations")
"""Rollout fields every replay transition keeps (plus ``next_observations`` and the
algorithm's declared fields)."""
_STORAGE_ONLY = frozenset({"masks", "starts"})
"""Rollout fields that a replay ring does not keep (it stores live transitions only)."""


class Trainer:
    """Collect with env shards, update the algorithm, one :meth:`train_epoch` each.

    Args:
        vecenv: A vec env, or a sequence of env shards (their rows are concatenated; two
            shards enable double buffering, see :func:`make_train_envs`).
        algo: The algorithm (any :class:`~fugu.algos.base.Algorithm`).
        config: Horizon, budget, seed, device and collection options.
        policy_map: Other actors acting on some rows; only the learner's rows are stored.
        reward_hooks: Intrinsic or learned rewards added to rollouts before ``update``.
        dataset: Batches of an ``offline`` algorithm (default: ``algo.dataset()``).

    Attributes:
        global_step: Env steps collected so far, summed over stored rows (offline: samples).
        epoch: Completed epochs (collection + update).
        episodes: The exact returns and lengths of the most recent episodes.
        episode_costs: For envs that declare ``costs``: the summed cost of the most recent
            episodes (in its ``returns``); ``env/cost`` is the mean over the episodes that
            ended in an epoch, ``env/cost_window`` over the window.
    """

    def __init__(
        self,
        vecenv: VecEnv | Sequence[VecEnv],
        algo: Algorithm,
        config: TrainConfig | None = None,
        *,
        policy_map: RowPolicyMap | None = None,
        reward_hooks: Sequence[RewardHook] = (),
        dataset: Iterable[Batch] | None = None,
    ) -> None:
        self.config = config = config or TrainConfig()
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        envs = [vecenv] if not isinstance(vecenv, Sequence) else list(vecenv)
        if not envs:
            raise APIUsageError("Trainer needs at least one env")
        self.envs = envs
        self.algo = algo
        self.device = algo.device
        self.reward_hooks = list(reward_hooks)
        self.shards: list[Shard] = []
        lo = 0
        for env in envs:
            self.shards.append(Shard(env, lo, self.device))
            lo += int(env.num_agents)
        self.num_rows = lo
        self.collection = algo.collection
        self.collector = Collector(
            self.shards,
            algo,
            config.num_steps,
            self.device,
            config.double_buffer,
            policy_map,
            store_next_observations=self.collection == "replay"
            or hooks_need_next_observations(self.reward_hooks)
            or bool(getattr(algo, "needs_next_observations", False)),
        )
        self.num_stored = self.collector.num_stored
        self.replay: ReplayBuffer | None = None
        self.replay_settings: ReplaySettings | None = None
        if self.collection == "replay":
            self.replay_settings = algo.replay_settings()  # type: ignore[attr-defined]
            fields = self.collector.storage.fields
            names = [*_REPLAY_FIELDS, *(n for n in fields if n not in _STORAGE_ONLY)]
            replay_fields = {n: fields[n] for n in dict.fromkeys(names)}
            make_replay = getattr(algo, "make_replay", None)  # an algorithm may own its ring
            self.replay = (
                make_replay(replay_fields, self.num_stored, envs[0], config.seed)
                if make_replay is not None
                else ReplayBuffer(
                    replay_fields, self.replay_settings.capacity, self.device, seed=config.seed
                )
            )
        self._dataset: Iterator[Batch] | None = None
        if self.collection == "offline":
            source = dataset if dataset is not None else algo.dataset()  # type: ignore[attr-defined]
            self._dataset = (
                itertools.cycle(source) if isinstance(source, Sequence) else iter(source)
            )
        self.global_step = 0
        self.epoch = 0
        self.episodes = EpisodeTracker(self.num_stored, config.episode_window)
        # Envs that declare ``costs``: each episode's summed cost, tracked like its return.
        self.episode_costs: EpisodeTracker | None = None
        if "costs" in self.collector.storage.fields:
            self.episode_costs = EpisodeTracker(self.num_stored, config.episode_window)
        self._epoch_costs: list[float] = []
        for shard, seed in zip(self.shards, shard_seeds(envs, config.seed)):
            shard.env.reset(seed=seed)
        self.collector.reset_states()

    # -- properties -------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Env steps per epoch (stored rows x ``num_steps``)."""
        return self.num_stored * self.config.num_steps

    @property
    def done(self) -> bool:
        """Whether ``total_timesteps`` have been collected."""
        return self.global_step >= self.config.total_timesteps

    @property
    def progress(self) -> float:
        """Fraction of ``total_timesteps`` collected, in ``[0, 1]``."""
        return min(self.global_step / self.config.total_timesteps, 1.0)

    @property
    def episode_returns(self) -> Sequence[float]:
        """Returns of the most recent episodes, oldest first (``config.episode_window``)."""
        return self.episodes.returns

    @property
    def mean_return(self) -> float:
        """Mean of :attr:`episode_returns` (NaN before the first episode ends)."""
        return self.episodes.mean_return()

    # -- an epoch ---------------------------------------------------------------------------
    def collect(self) -> Batch:
        """Collect ``num_steps`` steps of every row and count them; returns the batch."""
        self._reset_to_seeds()
        storage = self.collector.collect()
        tensors = storage.tensors
        dones = tensors["terminals"] | tensors["truncations"]
        self.episodes.add_rollout(tensors["rewards"], dones)
        if self.episode_costs is not None:
            ended = self.episode_costs.add_rollout(tensors["costs"], dones)
            if ended:
                self._epoch_costs.extend(list(self.episode_costs.returns)[-ended:])
        self.global_step += self.batch_size
        return storage.batch()

    def _reset_to_seeds(self) -> None:
        """Reset every env copy to the seed the algorithm asks for, if it asks (an algorithm
        with ``reset_seeds(num_copies, num_rows) -> seeds`` wants each collection to start
        from fresh episodes with those per-copy seeds, e.g. GRPO's seed groups). Episodes cut
        by the reset are not counted."""
        reset_seeds = getattr(self.algo, "reset_seeds", None)
        if reset_seeds is None:
            return
        if self.num_stored != self.num_rows:
            raise APIUsageError(
                f"{self.algo.name} resets env copies to seeds and needs every row stored; "
                "train it without a policy map"
            )
        copies = [int(getattr(env, "num_copies", env.num_agents)) for env in self.envs]
        seeds = [int(s) for s in reset_seeds(sum(copies), self.num_rows)]
        lo = 0
        for shard, count in zip(self.shards, copies):
            shard.flush_infos()
            shard.env.reset(seed=seeds[lo : lo + count])  # type: ignore[arg-type]
            lo += count
        self.collector.dones.fill_(True)
        self.collector.reset_states()
        self.episodes.running_return.zero_()
        self.episodes.running_length.zero_()

    def _update_replay(self, batch: Batch, progress: float) -> dict[str, float]:
        assert self.replay is not None and self.replay_settings is not None
        self.replay.add_rollout(batch)
        settings = self.replay_settings
        if len(self.replay) < settings.learning_starts:
            return {"train/replay_size": float(len(self.replay))}
        totals: dict[str, float] = {}
        for _ in range(settings.gradient_steps):
            for key, value in self.algo.update(
                self.replay.sample(settings.batch_size), progress
            ).items():
                totals[key] = totals.get(key, 0.0) + value
        metrics = {key: value / settings.gradient_steps for key, value in totals.items()}
        metrics["train/replay_size"] = float(len(self.replay))
        return metrics

    def train_epoch(self) -> dict[str, float]:
        """One collection and the algorithm's update(s); returns metrics (``env/``, ``perf/``,
        ``loss/``, ``train/``...)."""
        start = time.perf_counter()
        progress = self.progress
        metrics: dict[str, float] = {}
        if self.collection == "offline":
            assert self._dataset is not None
            batch = next(self._dataset)
            mid = time.perf_counter()
            metrics.update(self.algo.update(batch, progress))
            self.global_step += batch.num_steps
            samples = batch.num_steps
        else:
            batch = self.collect()
            mid = time.perf_counter()
            if self.collection == "replay":
                metrics.update(self._update_replay(batch, progress))
            else:
                metrics.update(apply_reward_hooks(self.reward_hooks, batch))
                metrics.update(self.algo.update(batch, progress))
            samples = self.batch_size
        end = time.perf_counter()
        self.epoch += 1
        metrics.update(self._env_metrics())
        metrics.update(self._wrapper_metrics())
        metrics["perf/rollout_s"] = mid - start
        metrics["perf/update_s"] = end - mid
        metrics["perf/sps"] = samples / max(end - start, 1e-9)
        metrics["perf/rollout_sps"] = samples / max(mid - start, 1e-9)
        metrics["train/global_step"] = float(self.global_step)
        metrics["train/epoch"] = float(self.epoch)
        metrics["train/progress"] = self.progress
        if self.episodes.returns:
            metrics["env/mean_return_window"] = self.mean_return
        if self._epoch_costs:  # mean summed cost of the episodes that ended this epoch
            metrics["env/cost"] = sum(self._epoch_costs) / len(self._epoch_costs)
            self._epoch_costs = []
        if self.episode_costs is not None and self.episode_costs.returns:
            metrics["env/cost_window"] = self.episode_costs.mean_return()
        return metrics

    def _env_metrics(self) -> dict[str, float]:
        """The envs' aggregated infos since the last epoch, weighted by episodes."""
        sums: dict[str, float] = {}
        count = 0
        for shard in self.shards:
            count += add_infos(shard.infos, sums)
            shard.infos = []
        if count == 0:
            return {}
        metrics = {f"env/{key}": value / count for key, value in sums.items()}
        metrics["env/num_episodes"] = float(count)
        return metrics

    def _wrapper_metrics(self) -> dict[str, float]:
        """Counters of env wrappers that keep them (``pop_metrics()``, e.g. a shield's
        ``safety/interventions``), summed over shards (rates averaged)."""
        sums: dict[str, float] = {}
        pops = [pop() for env in self.envs if (pop := getattr(env, "pop_metrics", None))]
        for metrics in pops:
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value
        for key in sums:
            if key.endswith("_rate"):
                sums[key] /= len(pops)
        return sums

    def train(self) -> dict[str, float]:
        """Run :meth:`train_epoch` until :attr:`done`; returns the last epoch's metrics."""
        metrics: dict[str, float] = {}
        while not self.done:
            metrics = self.train_epoch()
        return metrics

    def close(self) -> None:
        """Stop the collection thread and close the envs. Idempotent."""
        self.collector.close()
        for env in self.envs:
            env.close()

    # -- state ------------------------------------------------------------------------------
    def state_dict(self, include_modules: bool = True) -> dict[str, Any]:
        """The full training state: the algorithm's modules (``include_modules``; checkpoints
        keep them in safetensors instead) and other state, counters, envs, collector,
        episodes and the replay ring. The global RNGs are not part of it: nothing in training
        draws from them (every generator is the algorithm's or an env's own)."""
        envs = []
        for env in self.envs:
            get_state = getattr(env, "get_state", None)
            envs.append(get_state() if get_state is not None else None)
        state: dict[str, Any] = {
            "algo": self.algo.state_dict(),
            "global_step": self.global_step,
            "epoch": self.epoch,
            "envs": envs,
            "collector": self.collector.state_dict(),
            "episodes": self.episodes.state_dict(),
        }
        if self.episode_costs is not None:
            state["episode_costs"] = self.episode_costs.state_dict()
        settings = self.replay_settings
        if self.replay is not None and settings is not None and settings.checkpoint_replay:
            state["replay"] = self.replay.state_dict()
        hook_states = [getattr(h, "state_dict", lambda: None)() for h in self.reward_hooks]
        if any(s is not None for s in hook_states):
            state["reward_hooks"] = hook_states
        if include_modules:
            state["modules"] = {
                name: module.state_dict() for name, module in self.algo.modules().items()
            }
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` into a trainer built with the same envs and config
        (module weights too when the state has them)."""
        for name, module in self.algo.modules().items():
            if name in state.get("modules", {}):
                module.load_state_dict(state["modules"][name])
        self.algo.load_state_dict(state["algo"])
        self.global_step = int(state["global_step"])
        self.epoch = int(state["epoch"])
        if len(state["envs"]) != len(self.envs):
            raise APIUsageError(
                f"state has {len(state['envs'])} env shards, this trainer {len(self.envs)}; "
                "build the trainer with the same env layout (double_buffer, num_envs)"
            )
        for env, env_state in zip(self.envs, state["envs"]):
            if env_state is not None:
                env.set_state(env_state)  # type: ignore[attr-defined]
        self.collector.load_state_dict(state["collector"])
        self.episodes.load_state_dict(state["episodes"])
        if self.episode_costs is not None and "episode_costs" in state:
            self.episode_costs.load_state_dict(state["episode_costs"])
        if self.replay is not None and "replay" in state:
            self.replay.load_state_dict(state["replay"])
        for hook, hook_state in zip(self.reward_hooks, state.get("reward_hooks", [])):
            if hook_state is not None:
                hook.load_state_dict(hook_state)  # type: ignore[attr-defined]
