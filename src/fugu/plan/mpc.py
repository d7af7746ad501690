"""Model predictive control: plan, execute the first action, repeat; and PETS as an agent.

A planning *model* is anything with ``set_root(env, observation)`` (where to plan from) and
``returns(actions)`` (``[population, horizon, action_dim]`` sequences to ``[population]``
returns): :class:`fugu.plan.true_model.TrueModel` (clones of a native env) and
:class:`fugu.plan.pets.PETSModel` (a learned ensemble) both are.

:class:`MPC` joins a planner and a model; :func:`run_mpc` drives a one-row fugu env with it
and reports each step. :class:`PETSAgent` is the model-based agent: it collects with MPC over
its ensemble (random actions until the first fit), keeps every transition in a
:class:`fugu.buffers.ReplayBuffer`, and refits the ensemble from the replay every
``train_every`` env steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from gymnasium import spaces

from fugu.buffers.replay import ReplayBuffer
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.plan.pets import PETSModel
from fugu.plan.planners import Planner

__all__ = ["MPC", "PETSAgent", "PlanningModel", "StepReport", "run_mpc"]


class PlanningModel(Protocol):
    """What a planner plans over (see the module docstring)."""

    def set_root(self, env: Any, observation: np.ndarray) -> None:
        """Plan from this env state / observation."""

    def returns(self, actions: np.ndarray) -> np.ndarray:
        """``[population, horizon, action_dim]`` sequences -> ``[population]`` returns."""
        ...


@dataclass
class MPC:
    """A planner over a model: :meth:`act` plans from the env's row 0 and returns an action."""

    planner: Planner
    model: PlanningModel

    def act(self, env: Any, observation: np.ndarray) -> np.ndarray:
        """Replan from ``env`` / ``observation``; the first action, ``[action_dim]``."""
        self.model.set_root(env, observation)
        return self.planner.act(self.model.returns)

    def reset(self) -> None:
        """Forget the planner's warm start (a new episode)."""
        self.planner.reset()


@dataclass
class StepReport:
    """One env step of an MPC run (what :func:`run_mpc`'s callback receives)."""

    step: int
    reward: float
    episode_return: float
    plan_ms: float
    done: bool
    returns: list[float] = field(default_factory=list)
    """Returns of the episodes finished so far."""


def _box(env: Any) -> spaces.Box:
    space = env.single_action_space
    if not isinstance(space, spaces.Box):
        raise APIUsageError(f"planning needs a Box action space, got {space}")
    if env.num_agents != 1:
        raise APIUsageError(f"MPC drives a one-row env (num_envs=1), got {env.num_agents} rows")
    return space


def run_mpc(
    env: Any,
    controller: Callable[[Any, np.ndarray], np.ndarray],
    steps: int,
    *,
    on_step: Callable[[StepReport], None] | None = None,
    on_reset: Callable[[], None] | None = None,
    plan_ms: Callable[[], float] | None = None,
) -> list[float]:
    """Step a one-row env ``steps`` times with ``controller(env, obs)``; finished returns.

    The env must be reset already. ``on_reset`` runs when an episode ends (e.g.
    :meth:`MPC.reset`).
    """
    _box(env)
    returns: list[float] = []
    episode_return = 0.0
    for t in range(steps):
        action = controller(env, env.observations[0].copy())
        _, rewards, terminals, truncations, _ = env.step(action.reshape(env.actions.shape))
        reward = float(rewards[0])
        episode_return += reward
        done = bool(terminals[0] or truncations[0])
        if done:
            returns.append(episode_return)
        if on_step is not None:
            ms = plan_ms() if plan_ms is not None else 0.0
            on_step(StepReport(t + 1, reward, episode_return, ms, done, list(returns)))
        if done:
            episode_return = 0.0
            if on_reset is not None:
                on_reset()
    return returns


class PETSAgent:
    """PETS: MPC over a probabilistic ensemble, refitted from replay as data comes in.

    Args:
        env: A one-row fugu env with a Box action space (native or Gymnasium-bridged).
        planner: The planner (its bounds should be the action space's).
        model: The ensemble (built from the env's sizes when ``None``).
        warmup: Random-action steps before the first fit.
        train_every: Env steps between refits.
        fit_steps: Adam steps per refit.
        capacity: Replay capacity.
        seed: Seed of the random warm-up actions and the replay sampler.
    """

    def __init__(
        self,
        env: Any,
        planner: Planner,
        model: PETSModel | None = None,
        *,
        warmup: int = 200,
        train_every: int = 200,
        fit_steps: int = 300,
        capacity: int = 100_000,
        seed: int = 0,
    ) -> None:
        box = _box(env)
        obs_dim = int(np.prod(env.single_observation_space.shape))
        action_dim = int(np.prod(box.shape))
        self.env = env
        self.planner = planner
        self.model = model or PETSModel(obs_dim, action_dim, seed=seed)
        self.warmup = int(warmup)
        self.train_every = int(train_every)
        self.fit_steps = int(fit_steps)
        self.rng = np.random.default_rng(seed)
        self.low, self.high = box.low.astype(np.float64), box.high.astype(np.float64)
        fields = {
            "observations": Field("observations", (obs_dim,), np.float32),
            "actions": Field("actions", (action_dim,), np.float32),
            "rewards": Field("rewards", (), np.float32),
        }
        self.replay = ReplayBuffer(fields, capacity, seed=seed)
        self.steps = 0
        self.fits = 0
        self.last_loss = float("nan")
        self.fit_s = 0.0

    def act(self, env: Any, observation: np.ndarray) -> np.ndarray:
        """A random action before the first fit, then the planner's."""
        if not self.model.trained:
            return self.rng.uniform(self.low, self.high).astype(np.float32)
        self.model.set_root(env, observation)
        return self.planner.act(self.model.returns)

    def fit(self) -> float:
        """Refit the ensemble on everything in replay; the final NLL."""
        n = len(self.replay)
        t = self.replay.tensors
        start = time.perf_counter()
        self.last_loss = self.model.fit(
            t["observations"][:n].numpy(),
            t["actions"][:n].numpy(),
            t["next_observations"][:n].numpy(),
            t["rewards"][:n].numpy(),
            steps=self.fit_steps,
        )
        self.fit_s += time.perf_counter() - start
        self.fits += 1
        return self.last_loss

    def learn(self, steps: int, on_step: Callable[[StepReport], None] | None = None) -> list[float]:
        """Collect ``steps`` env steps (planning, storing, refitting); finished returns."""
        env = self.env
        returns: list[float] = []
        episode_return = 0.0
        for t in range(steps):
            obs = env.observations[0].copy()
            action = self.act(env, obs)
            _, rewards, terminals, truncations, _ = env.step(action.reshape(env.actions.shape))
            done = bool(terminals[0] or truncations[0])
            nxt = env.final_observations[0] if done else env.observations[0]
            self.replay.add(
                {
                    "observations": torch.as_tensor(obs[None]),
                    "actions": torch.as_tensor(action.reshape(1, -1)),
                    "rewards": torch.as_tensor(rewards[:1].astype(np.float32)),
                    "next_observations": torch.as_tensor(np.array(nxt, np.float32)[None]),
                }
            )
            self.steps += 1
            episode_return += float(rewards[0])
            if done:
                returns.append(episode_return)
                episode_return = 0.0
                self.planner.reset()
            if self.steps >= self.warmup and (
                not self.model.trained or self.steps % self.train_every == 0
            ):
                self.fit()
            if on_step is not None:
                report = StepReport(
                    t + 1, float(rewards[0]), episode_return, self.planner.last_ms, done,
                    list(returns),
                )  # fmt: skip
                on_step(report)
        return returns

    def state_dict(self) -> dict[str, Any]:
        """Model, replay and counters."""
        return {
            "model": self.model.state_dict(),
            "replay": self.replay.state_dict(),
            "steps": self.steps,
            "fits": self.fits,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.replay.load_state_dict(state["replay"])
        self.steps = int(state["steps"])
        self.fits = int(state["fits"])
