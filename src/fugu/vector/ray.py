"""Ray backend: env workers as Ray actors, the VecEnv protocol on a Ray cluster.

Each of ``num_workers`` actors builds ``num_envs // num_workers`` env instances (in process,
with :class:`~fugu.vector.serial.Serial`) on whatever node Ray places it. A step sends each
actor its rows of the actions; the actor answers with its rows of every declared field
(standard and extra) as numpy arrays, which Ray's object store hands to the driver without a
copy (on the same node; across nodes Ray moves them once). The driver copies them into its
own buffers, so batches are views as with every fugu backend. Batches group consecutive
actors; :meth:`recv` returns them round-robin while the other actors keep stepping.

Failures. An actor that dies (its node lost, the process killed) or does not answer within
``timeout_s`` is reported as :class:`~fugu.core.errors.WorkerError` (``on_failure="raise"``,
the default), or replaced (``on_failure="restart"``): a new actor is started, reset with a
fresh seed, and its rows come back *truncated* (the cut episodes bootstrap like time limits);
``num_restarts`` counts the replacements, and each batch's infos carry
``{"worker_restarts": n}`` when one happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from fugu.core.env import EnvBuffers, Infos, PufferEnv
from fugu.core.errors import APIUsageError, MissingDependencyError, WorkerError
from fugu.core.schema import schema
from fugu.vector.base import Seed, VecEnvBase, instance_seed, probe_env

__all__ = ["ON_FAILURE", "RayVecEnv"]

ON_FAILURE = ("raise", "restart")
"""What :class:`RayVecEnv` does when an actor dies."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:  # pragma: no cover - ray is in the dev extra
        raise MissingDependencyError(
            "the Ray backend needs ray: pip install 'fugu-rl[ray]'"
        ) from error
    return ray


class EnvWorker:
    """The body of one Ray actor: ``num_envs`` instances stepped in the actor's process."""

    def __init__(self, factory: Callable[..., PufferEnv], num_envs: int) -> None:
        from fugu.vector.serial import Serial

        self.env = Serial(factory, num_envs)
        fields = schema(
            self.env.single_observation_space, self.env.single_action_space, self.env.extra_fields
        )
        arrays = self.env.buffers.arrays()
        self._out = [arrays[name] for name in fields if name != "actions"]

    def reset(self, seed: Seed) -> tuple[list[np.ndarray], Infos]:
        """Reset every instance; the rows of every field but actions, and the infos."""
        _, infos = self.env.reset(seed)
        return self._out, infos

    def step(self, actions: np.ndarray) -> tuple[list[np.ndarray], Infos]:
        """Step with this worker's rows of the actions."""
        *_, infos = self.env.step(actions)
        return self._out, infos

    def pid(self) -> int:
        """The actor's process id (tests kill it)."""
        import os

        return os.getpid()


class RayVecEnv(VecEnvBase):
    """Steps env instances in Ray actors.

    Args:
        factory: Builds one instance (an :class:`~fugu.vector.factory.EnvFactory`); sent to
            the actors, so it must be picklable by Ray (env ids always are).
        num_envs: Number of instances, a multiple of ``num_workers``.
        num_workers: Actors (default: 2, or 1 for a single env).
        batch_size: Instances per :meth:`recv` batch, a multiple of the instances per actor.
        seed: Seed of the first reset that gets none.
        address: Ray cluster to join when Ray is not initialised yet (``None``: a running
            one or a new local one; ``"auto"``: the cluster of this node).
        on_failure: ``"raise"`` (report a dead actor) or ``"restart"`` (replace it).
        timeout_s: An actor that does not answer within this is treated as dead.
        num_cpus: CPUs Ray reserves per actor.
    """

    def __init__(
        self,
        factory: Callable[..., PufferEnv],
        num_envs: int,
        num_workers: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        *,
        address: str | None = None,
        on_failure: str = "raise",
        timeout_s: float = 60.0,
        num_cpus: float = 1.0,
    ) -> None:
        ray = _import_ray()
        num_envs = int(num_envs)
        if on_failure not in ON_FAILURE:
            raise APIUsageError(f"on_failure must be one of {ON_FAILURE}, got {on_failure!r}")
        num_workers = int(num_workers or min(2, num_envs))
        if num_envs < 1 or num_workers < 1 or num_envs % num_workers:
            raise APIUsageError(
                f"num_workers ({num_workers}) must be >= 1 and divide num_envs ({num_envs})"
            )
        per_worker = num_envs // num_workers
        batch_size = num_envs if batch_size is None else int(batch_size)
        if batch_size < 1 or batch_size % per_worker or num_envs % batch_size:
            raise APIUsageError(
                f"batch_size ({batch_size}) must be a multiple of num_envs // num_workers "
                f"({per_worker}) that divides num_envs ({num_envs})"
            )
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        obs_space, act_space, agents, layouts, extra_fields = probe_env(factory)
        buffers = EnvBuffers.allocate(obs_space, act_space, agents * num_envs, extra_fields)
        super().__init__(obs_space, act_space, buffers, num_envs, batch_size, seed)
        self.__dict__.update(layouts)
        fields = schema(obs_space, act_space, extra_fields)
        self._out_names = [name for name in fields if name != "actions"]
        self.num_workers, self.envs_per_worker = num_workers, per_worker
        self.on_failure, self.timeout_s = on_failure, float(timeout_s)
        self.num_restarts = 0
        self._factory, self._num_cpus = factory, float(num_cpus)
        self._actor_class = ray.remote(num_cpus=self._num_cpus)(EnvWorker)
        self.actors: list[Any] = [self._spawn() for _ in range(num_workers)]
        rows = per_worker * agents
        self._worker_rows = [(w * rows, (w + 1) * rows) for w in range(num_workers)]
        self._worker_views = [buffers.rows(lo, hi).arrays() for lo, hi in self._worker_rows]
        per_batch = batch_size // per_worker
        self._batch_workers = [
            range(b * per_batch, (b + 1) * per_batch) for b in range(self.num_batches)
        ]
        self._refs: list[Any] = [None] * num_workers
        self._restarted: list[int] = [0] * num_workers

    def _spawn(self) -> Any:
        return self._actor_class.remote(self._factory, self.envs_per_worker)

    # -- hooks ------------------------------------------------------------------------------
    def _reset_all(self, seed: Seed) -> Infos:
        self._start_reset(seed)
        infos: Infos = []
        for batch in range(self.num_batches):
            infos.extend(self._wait(batch))
        return infos

    def _step_all(self) -> Infos:
        for batch in range(self.num_batches):
            self._start_step(batch)
        infos: Infos = []
        for batch in range(self.num_batches):
            infos.extend(self._wait(batch))
        return infos

    def _start_reset(self, seed: Seed) -> None:
        for worker, (lo, hi) in enumerate(self._worker_rows):
            self._refs[worker] = self.actors[worker].reset.remote(instance_seed(seed, lo, hi))

    def _start_step(self, batch: int) -> None:
        for worker in self._batch_workers[batch]:
            actions = self._worker_views[worker]["actions"]
            self._refs[worker] = self.actors[worker].step.remote(actions)

    def _wait(self, batch: int) -> Infos:
        ray = _import_ray()
        infos: Infos = []
        for worker in self._batch_workers[batch]:
            ref, self._refs[worker] = self._refs[worker], None
            if ref is None:
                continue
            try:
                arrays, worker_infos = ray.get(ref, timeout=self.timeout_s)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as error:
                arrays, worker_infos = self._failed(worker, error)
            rows = self._worker_views[worker]
            for name, array in zip(self._out_names, arrays):
                np.copyto(rows[name], array)
            if self._restarted[worker]:
                rows["truncations"][:] = True
                worker_infos = [*worker_infos, {"worker_restarts": self._restarted[worker]}]
                self._restarted[worker] = 0
            infos.extend(worker_infos)
        return infos

    def _failed(self, worker: int, error: Exception) -> tuple[list[np.ndarray], Infos]:
        ray = _import_ray()
        timed_out = isinstance(error, ray.exceptions.GetTimeoutError)
        what = f"did not answer within {self.timeout_s:g} s" if timed_out else f"died ({error})"
        if self.on_failure == "raise":
            self._error = (
                f"Ray env worker {worker} {what}; its envs are lost: close() this vec env and "
                "make a new one, or pass on_failure='restart'"
            )
            raise WorkerError(self._error) from None
        with contextlib.suppress(Exception):
            ray.kill(self.actors[worker])
        self.actors[worker] = self._spawn()
        self.num_restarts += 1
        self._restarted[worker] += 1
        try:
            return ray.get(self.actors[worker].reset.remote(None), timeout=self.timeout_s)  # type: ignore[no-any-return]
        except Exception as again:
            self._error = f"Ray env worker {worker} {what}, and its replacement failed ({again})"
            raise WorkerError(self._error) from None

    def _close(self) -> None:
        ray = _import_ray()
        for actor in getattr(self, "actors", []):
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self.actors = []

    def worker_pids(self) -> list[int]:
        """Process ids of the actors (same node only; for tests and debugging)."""
        ray = _import_ray()
        return [int(pid) for pid in ray.get([a.pid.remote() for a in self.actors])]
