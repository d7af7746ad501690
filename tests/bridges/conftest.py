"""A small deterministic chain env, as a fugu PufferEnv and as a Gymnasium env, for the bridges.

Each row walks on positions 0..goal: action 1 moves right, action 0 moves left (not below 0).
Reaching ``goal`` terminates with reward 1 (every other step pays 0); an episode that has not
ended after ``horizon`` steps is truncated. The observation is ``[position / goal, t / horizon]``.
Reset with a seed starts row ``i`` at ``(seed + i) % 2``; autoreset and unseeded resets start
at 0. Rows listed in ``dead`` are masked: they never move, pay nothing and never end.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from fugu.core import PufferEnv

GOAL = 4
HORIZON = 8


class Chain(PufferEnv):
    """The chain as a fugu env with ``num_agents`` rows."""

    def __init__(
        self,
        num_agents: int = 4,
        goal: int = GOAL,
        horizon: int = HORIZON,
        dead: Sequence[int] = (),
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            spaces.Box(0.0, 1.0, (2,), np.float32), spaces.Discrete(2), num_agents, None
        )
        self.goal, self.horizon = goal, horizon
        self.render_mode = render_mode
        self.pos = np.zeros(num_agents, dtype=np.int64)
        self.t = np.zeros(num_agents, dtype=np.int64)
        self.masks[list(dead)] = False
        self.reset_seeds: list[object] = []

    def _observe(self, out: np.ndarray) -> None:
        out[:, 0] = self.pos / self.goal
        out[:, 1] = self.t / self.horizon
        out[~self.masks] = 0.0

    def reset(self, seed=None):
        self.reset_seeds.append(seed)
        if seed is None:
            self.pos[:] = 0
        elif isinstance(seed, int):
            self.pos[:] = (seed + np.arange(self.num_agents)) % 2
        else:
            self.pos[:] = np.asarray(seed) % 2
        self.t[:] = 0
        self._observe(self.observations)
        return self.observations, []

    def step(self, actions):
        actions = self._write_actions(actions)
        live = self.masks
        move = np.where(actions == 1, 1, -1)
        self.pos[live] = np.maximum(self.pos[live] + move[live], 0)
        self.t[live] += 1
        term = live & (self.pos >= self.goal)
        trunc = live & ~term & (self.t >= self.horizon)
        self.rewards[:] = term
        self.terminals[:] = term
        self.truncations[:] = trunc
        done = term | trunc
        self._observe(self.final_observations)
        self.pos[done] = 0
        self.t[done] = 0
        self._observe(self.observations)
        infos = [{"num_episodes": int(done.sum())}] if done.any() else []
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def render(self, row: int = 0) -> np.ndarray:
        frame = np.zeros((1, self.goal + 1, 3), dtype=np.uint8)
        frame[0, self.pos[row]] = 255
        return frame


class ChainGym(gymnasium.Env):
    """The same chain as a single Gymnasium env (the reference for the bridges)."""

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, goal: int = GOAL, horizon: int = HORIZON) -> None:
        self.goal, self.horizon = goal, horizon
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.pos = self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.pos / self.goal, self.t / self.horizon], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0 if seed is None else seed % 2
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(self.pos + (1 if int(action) == 1 else -1), 0)
        self.t += 1
        term = self.pos >= self.goal
        trunc = not term and self.t >= self.horizon
        return self._obs(), float(term), bool(term), bool(trunc), {}


@pytest.fixture
def chain_cls() -> type[Chain]:
    return Chain


@pytest.fixture
def chain_gym_cls() -> type[ChainGym]:
    return ChainGym
