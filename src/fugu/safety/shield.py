"""Shields: vec-env wrappers that keep unsafe actions from reaching the env.

:class:`ShieldedVecEnv` wraps any vec env with a Discrete action space and a
:class:`~fugu.safety.spec.SafetySpec`, in one of three modes:

- ``"preemptive"``: before each action the shield writes the safe actions of every row into
  the declared ``action_masks`` field (:func:`fugu.core.schema.action_masks_field`, combined
  with the env's own masks when it has them), which a masking policy (PPO, DQN) samples from.
  An action that is unsafe anyway (a policy that ignores masks) is still replaced.
- ``"postposed"``: the policy acts freely; an unsafe action is replaced by the spec's fallback
  before the env sees it, optionally with a reward ``penalty`` for the row.
- ``"monitor"``: nothing is changed; unsafe actions are only counted (to measure an
  unshielded learner with the same yardstick).

Every intervention is counted. :meth:`ShieldedVecEnv.pop_metrics` returns the counts since
the last call, under ``safety/...`` keys, which the trainer logs every epoch:

- ``safety/interventions``: row-steps where the shield changed something: an action replaced,
  or (preemptive) at least one action masked out;
- ``safety/unsafe_actions``: unsafe actions the policy chose (replaced unless monitoring);
- ``safety/violations``: the env's summed ``costs`` (when it declares them);
- ``safety/intervention_rate``: interventions per row-step; and ``..._total`` running sums.

Example:
    >>> import fugu
    >>> from fugu.safety.water_tank import water_tank_spec
    >>> env = ShieldedVecEnv(fugu.make("water-tank-v1", num_envs=2, seed=0), water_tank_spec())
    >>> obs, _ = env.reset()
    >>> env.extras["action_masks"].shape
    (2, 2)
    >>> _ = env.step(np.ones(2, dtype=np.int64))
    >>> sorted(env.pop_metrics())[:2]
    ['safety/intervention_rate', 'safety/interventions']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.env import write_actions
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field, action_masks_field
from fugu.core.vec import VecBatch, VecEnv
from fugu.safety.spec import SafetySpec

__all__ = ["SHIELD_MODES", "ShieldedVecEnv"]

SHIELD_MODES = ("preemptive", "postposed", "monitor")
"""The modes of :class:`ShieldedVecEnv`."""

_STATE_KEY = "shield_spec_state"


class ShieldedVecEnv:
    """A vec env whose unsafe actions are masked (preemptive) or replaced (post-posed).

    The wrapper shares the env's buffers (observations, rewards, flags, extras) and owns its
    own ``actions`` buffer (what the policy chose); the env's buffer receives the shielded
    actions. Attributes it does not define are the env's.

    Args:
        env: A vec env with a ``Discrete`` single action space.
        spec: The safety specification (``spec.num_actions`` must match the action space).
        mode: ``"preemptive"``, ``"postposed"`` or ``"monitor"``.
        penalty: Subtracted from a row's reward on a step whose action was replaced
            (post-posed shields; 0 keeps the reward as the env gave it).
    """

    def __init__(
        self, env: VecEnv, spec: SafetySpec, mode: str = "preemptive", penalty: float = 0.0
    ) -> None:
        if mode not in SHIELD_MODES:
            raise APIUsageError(f"shield mode must be one of {SHIELD_MODES}, got {mode!r}")
        space = env.single_action_space
        if not isinstance(space, spaces.Discrete):
            raise APIUsageError(
                f"shields need a Discrete action space, got {space!r}; for continuous actions "
                "verify the policy (fugu.verify) or discretise the actions"
            )
        if int(space.n) != spec.num_actions:
            raise APIUsageError(
                f"the spec has {spec.num_actions} actions, the env {int(space.n)}; "
                "build the spec for this env"
            )
        self.env = env
        self.spec = spec
        self.mode = mode
        self.penalty = float(penalty)
        self.single_observation_space = env.single_observation_space
        self.single_action_space = space
        self.num_agents = int(env.num_agents)
        self.observations = env.observations
        self.rewards = env.rewards
        self.terminals = env.terminals
        self.truncations = env.truncations
        self.masks = env.masks
        self.final_observations = env.final_observations
        self.actions = np.zeros_like(env.actions)
        self._inner_masks: np.ndarray | None = env.extras.get("action_masks")
        self._allowed = np.ones((self.num_agents, spec.num_actions), dtype=bool)
        fields: dict[str, Field] = dict(env.extra_fields)
        extras: dict[str, np.ndarray] = dict(env.extras)
        if mode == "preemptive":
            fields["action_masks"] = action_masks_field(spec.num_actions)
            self.action_masks = fields["action_masks"].allocate(self.num_agents)
            extras["action_masks"] = self.action_masks
        self.extra_fields: Mapping[str, Field] = fields
        self.extras: Mapping[str, np.ndarray] = extras
        self._pending: slice | None = None
        self._sent: slice | None = None
        self._replaced = np.zeros(0, dtype=bool)
        self._counts = np.zeros(4, dtype=np.float64)  # interventions, unsafe, violations, steps
        self._totals = np.zeros(4, dtype=np.float64)

    # -- the contract -------------------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        """The env's ``num_envs``."""
        return int(self.env.num_envs)

    @property
    def agents_per_batch(self) -> int:
        """The env's rows per :meth:`recv`."""
        return int(self.env.agents_per_batch)

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Reset the env and the spec's states; compute the first safe actions."""
        obs, infos = self.env.reset(seed=seed)
        self.spec.reset(self.num_agents)
        self._observe(slice(0, self.num_agents))
        return obs, infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Shield ``actions``, step the env, then compute the next safe actions."""
        every = slice(0, self.num_agents)
        write_actions(self.actions, actions)
        replaced = self._shield(every)
        result = self.env.step(self.env.actions)
        self._after_step(every, replaced)
        return result

    def async_reset(self, seed: int | None = None) -> None:
        """Reset asynchronously; the next :meth:`recv` returns the first batch."""
        self.env.async_reset(seed)
        self.spec.reset(self.num_agents)

    def send(self, actions: np.ndarray) -> None:
        """Shield the actions of the rows of the last :meth:`recv` and send them on."""
        if self._pending is None:
            raise APIUsageError("send() called before recv(); call async_reset() and recv()")
        rows, self._pending = self._pending, None
        write_actions(self.actions[rows], actions)
        self._replaced = self._shield(rows)
        self._sent = rows
        self.env.send(self.env.actions[rows])

    def recv(self) -> VecBatch:
        """The env's next batch, with its ``action_masks`` rows (preemptive)."""
        batch = self.env.recv()
        ids = np.asarray(batch.env_ids)
        rows = slice(int(ids[0]), int(ids[-1]) + 1) if len(ids) else slice(0, 0)
        if len(ids) and (rows.stop - rows.start != len(ids)):
            raise APIUsageError("shields need backends whose batches are contiguous rows")
        if self._sent is not None and self._sent == rows:
            self._after_step(rows, self._replaced)
            self._sent = None
        else:
            self._observe(rows)
        self._pending = rows
        if self.mode != "preemptive":
            return batch
        return batch._replace(extras={**batch.extras, "action_masks": self.action_masks[rows]})

    def close(self) -> None:
        """Close the env. Idempotent."""
        self.env.close()

    # -- state and metrics --------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """The env's state plus the spec's (automaton) states."""
        state = dict(self.env.get_state())  # type: ignore[attr-defined]
        state[_STATE_KEY] = self.spec.get_state()
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`."""
        state = dict(state)
        spec_state = state.pop(_STATE_KEY, None)
        self.env.set_state(state)  # type: ignore[attr-defined]
        if spec_state is not None:
            self.spec.set_state(spec_state)
        self._observe(slice(0, self.num_agents), reset_done=False)

    def pop_metrics(self) -> dict[str, float]:
        """Counts since the last call (``safety/...``; see the module docstring)."""
        counts, self._counts = self._counts, np.zeros(4, dtype=np.float64)
        self._totals += counts
        interventions, unsafe, violations, steps = counts
        metrics = {
            "safety/interventions": float(interventions),
            "safety/unsafe_actions": float(unsafe),
            "safety/intervention_rate": float(interventions / max(steps, 1.0)),
            "safety/interventions_total": float(self._totals[0]),
            "safety/unsafe_actions_total": float(self._totals[1]),
        }
        if "costs" in self.env.extras:
            metrics["safety/violations"] = float(violations)
            metrics["safety/violations_total"] = float(self._totals[2])
        return metrics

    @property
    def interventions_total(self) -> int:
        """Interventions since the wrapper was built."""
        return int(self._totals[0] + self._counts[0])

    # -- helpers ------------------------------------------------------------------------------
    def _shield(self, rows: slice) -> np.ndarray:
        """Check the chosen actions of ``rows``; write the shielded ones to the env's buffer.

        Returns the rows (local to ``rows``) whose action was replaced."""
        chosen = self.actions[rows].astype(np.int64)
        allowed = self._allowed[rows]
        valid = (chosen >= 0) & (chosen < self.spec.num_actions)
        index = np.where(valid, chosen, 0)
        live = self.masks[rows]
        unsafe = live & ~(valid & allowed[np.arange(len(chosen)), index])
        target = self.env.actions[rows]
        target[...] = self.actions[rows]
        replaced = unsafe if self.mode != "monitor" else np.zeros_like(unsafe)
        if replaced.any():
            target[replaced] = self.spec.fallback(allowed[replaced])
        counts = self._counts
        counts[1] += int(unsafe.sum())
        if self.mode == "preemptive":
            counts[0] += int((live & ~allowed.all(axis=1) | replaced).sum())
        else:
            counts[0] += int(replaced.sum())
        counts[3] += int(live.sum())
        return replaced  # type: ignore[no-any-return]

    def _after_step(self, rows: slice, replaced: np.ndarray) -> None:
        if self.penalty and replaced.any():
            self.rewards[rows][replaced] -= self.penalty
        costs = self.env.extras.get("costs")
        if costs is not None:
            self._counts[2] += float(costs[rows].sum())
        # the spec saw the pre-step observations in _observe; advance with the taken actions
        self.spec.advance(self._last_obs[rows], self.env.actions[rows], rows)
        self._observe(rows)

    def _observe(self, rows: slice, reset_done: bool = True) -> None:
        """Reset ended rows' spec states; compute (and publish) the rows' safe actions."""
        if reset_done:
            done = self.terminals[rows] | self.truncations[rows]
            if done.any():
                self.spec.reset_rows(done, rows)
        if not hasattr(self, "_last_obs"):
            self._last_obs = np.zeros_like(self.observations)
        self._last_obs[rows] = self.observations[rows]
        allowed = self.spec.allowed(self.observations[rows], rows)
        self._allowed[rows] = allowed
        if self.mode == "preemptive":
            masks = self.action_masks[rows]
            masks[...] = allowed
            if self._inner_masks is not None:
                masks &= self._inner_masks[rows]
            dead = ~masks.any(axis=1)
            if dead.any():  # no safe action: allow the fallback alone (never an empty mask)
                masks[dead] = False
                masks[dead, self.spec.fallback(allowed[dead])] = True
