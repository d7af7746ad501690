"""Serial backend: every env instance in the calling process, writing one shared batch.

Each instance adopts a :meth:`~fugu.core.env.EnvBuffers.rows` slice of one big
:class:`~fugu.core.env.EnvBuffers`, so the batch a trainer reads is the buffer itself: no
concatenation, no copy. ``send`` steps the batch's instances on the spot, ``recv`` hands it back.
"""

from __future__ import annotations

from collections.abc import Callable

from fugu.core.env import EnvBuffers, Infos, PufferEnv
from fugu.core.errors import APIUsageError
from fugu.vector.base import Seed, VecEnvBase, instance_seed, probe_env

__all__ = ["Serial"]


class Serial(VecEnvBase):
    """Steps ``num_envs`` env instances one after the other in the calling process.

    Args:
        factory: Builds one instance; called as ``factory()`` once to learn the spaces, then
            ``factory(buffers=rows)`` per instance (see :class:`fugu.vector.factory.EnvFactory`).
        num_envs: Number of instances.
        batch_size: Instances per :meth:`recv` batch (default: all of them).
        seed: Seed of the first reset when none is given to it.

    Example:
        >>> from fugu.vector.factory import EnvFactory
        >>> env = Serial(EnvFactory("cartpole-v1"), num_envs=3)
        >>> obs, infos = env.reset(seed=0)
        >>> obs.shape, env.num_instances
        ((3, 4), 3)
        >>> env.close()
    """

    def __init__(
        self,
        factory: Callable[..., PufferEnv],
        num_envs: int,
        batch_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        if int(num_envs) < 1:
            raise APIUsageError(f"num_envs must be >= 1, got {num_envs}")
        obs_space, act_space, agents, layouts, extra_fields = probe_env(factory)
        buffers = EnvBuffers.allocate(obs_space, act_space, agents * int(num_envs), extra_fields)
        super().__init__(obs_space, act_space, buffers, int(num_envs), batch_size or num_envs, seed)
        self.__dict__.update(layouts)
        self.envs: list[PufferEnv] = []
        try:
            for i in range(self.num_instances):
                self.envs.append(factory(buffers=buffers.rows(i * agents, (i + 1) * agents)))
        except BaseException:
            self.close()
            raise
        self._offsets = [i * agents for i in range(self.num_instances)]
        per = self.batch_size
        self._batch_envs = [self.envs[b * per : (b + 1) * per] for b in range(self.num_batches)]
        self._pending: list[Infos] = [[] for _ in range(self.num_batches)]

    def _reset_all(self, seed: Seed) -> Infos:
        infos: Infos = []
        agents = self.agents_per_env
        for env, offset in zip(self.envs, self._offsets):
            infos.extend(env.reset(instance_seed(seed, offset, offset + agents))[1])
        self.rewards[:] = 0.0
        self.terminals[:] = False
        self.truncations[:] = False
        return infos

    def _step_all(self) -> Infos:
        infos: Infos = []
        for env in self.envs:
            info = env.step(env.actions)[4]
            if info:
                infos.extend(info)
        return infos

    def _start_reset(self, seed: Seed) -> None:
        self._pending = [[] for _ in range(self.num_batches)]
        self._pending[0] = self._reset_all(seed)

    def _start_step(self, batch: int) -> None:
        infos: Infos = []
        for env in self._batch_envs[batch]:
            info = env.step(env.actions)[4]
            if info:
                infos.extend(info)
        self._pending[batch] = infos

    def _wait(self, batch: int) -> Infos:
        infos = self._pending[batch]
        self._pending[batch] = []
        return infos

    def _close(self) -> None:
        for env in getattr(self, "envs", []):
            env.close()
