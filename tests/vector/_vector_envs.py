"""Small module-level envs for the vector tests (importable by spawn workers via sys.path)."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from fugu.core.env import EnvBuffers, Infos, PufferEnv, StepResult


class GymCartPole(PufferEnv):
    """One Gymnasium CartPole-v1 as one row, same-step autoreset (stand-in for emulation)."""

    def __init__(self, buffers: EnvBuffers | None = None) -> None:
        self.env = gymnasium.make("CartPole-v1")
        super().__init__(self.env.observation_space, self.env.action_space, 1, buffers)
        self.episode_return = 0.0
        self.episode_length = 0

    def reset(self, seed: Any = None) -> tuple[np.ndarray, Infos]:
        self.observations[0] = self.env.reset(seed=seed)[0]
        self.episode_return, self.episode_length = 0.0, 0
        return self.observations, []

    def step(self, actions: np.ndarray) -> StepResult:
        actions = self._write_actions(actions)
        obs, reward, terminal, truncation, _ = self.env.step(int(actions[0]))
        self.rewards[0] = reward
        self.terminals[0] = terminal
        self.truncations[0] = truncation
        self.episode_return += reward
        self.episode_length += 1
        infos: Infos = []
        if terminal or truncation:
            self.final_observations[0] = obs
            infos = [{"episode_return": self.episode_return, "episode_length": self.episode_length,
                      "num_episodes": 1}]  # fmt: skip
            obs = self.env.reset()[0]
            self.episode_return, self.episode_length = 0.0, 0
        self.observations[0] = obs
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def close(self) -> None:
        self.env.close()
        super().close()


class Counter(PufferEnv):
    """``agents`` rows counting up from a seeded start; ends every ``horizon`` steps.

    Row ``k`` observes ``[count, k, seed]`` where ``count`` adds the action each step; the last
    row is masked out on odd steps. Raises on step ``crash_at`` (for robustness tests). Episode
    infos carry ``info_bytes`` bytes of payload (to test infos of any size).
    """

    def __init__(
        self,
        agents: int = 2,
        horizon: int = 3,
        crash_at: int = -1,
        info_bytes: int = 0,
        buffers: EnvBuffers | None = None,
    ) -> None:
        obs_space = spaces.Box(-1e9, 1e9, (3,), np.float32)
        self.info_bytes = info_bytes
        super().__init__(obs_space, spaces.Discrete(3), agents, buffers)
        self.horizon, self.crash_at, self.t, self.steps, self.seed = horizon, crash_at, 0, 0, 0

    def reset(self, seed: Any = None) -> tuple[np.ndarray, Infos]:
        self.seed = 0 if seed is None else int(seed)
        self.t = 0
        self.observations[:, 0] = self.seed
        self.observations[:, 1] = np.arange(self.num_agents)
        self.observations[:, 2] = self.seed
        self.masks[:] = True
        return self.observations, []

    def step(self, actions: np.ndarray) -> StepResult:
        actions = self._write_actions(actions)
        self.steps += 1
        if self.steps == self.crash_at:
            raise ValueError(f"boom at step {self.steps}")
        self.t += 1
        self.observations[:, 0] += actions
        self.rewards[:] = actions
        done = self.t >= self.horizon
        self.terminals[:] = done
        self.truncations[:] = False
        self.masks[:] = True
        self.masks[-1] = self.t % 2 == 0
        infos: Infos = []
        if done:
            self.final_observations[:] = self.observations
            infos = [{"episode_length": float(self.t), "num_episodes": self.num_agents}]
            if self.info_bytes:
                infos[0]["payload"] = bytes([self.steps % 256]) * self.info_bytes
            self.t = 0
            self.observations[:, 0] = self.seed
        return self.observations, self.rewards, self.terminals, self.truncations, infos


class Ignorant(PufferEnv):
    """Ignores the buffers it is given (a contract violation the factory reports)."""

    def __init__(self, buffers: EnvBuffers | None = None) -> None:
        super().__init__(spaces.Box(-1, 1, (2,)), spaces.Discrete(2), 1)


class NativeCounter(Counter):
    """A "native" env: its constructor takes ``num_envs`` and it owns that many rows."""

    def __init__(self, num_envs: int = 1, buffers: EnvBuffers | None = None) -> None:
        super().__init__(agents=num_envs, buffers=buffers)
