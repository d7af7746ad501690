"""The "true model": plan by stepping clones of a native env in batch.

:class:`TrueModel` answers a planner's ``evaluate`` (see :mod:`fugu.plan.planners`) by cloning
the current state of one row of a live native env into ``population`` copies
(:func:`fugu.envs.clone.clone_rows`) and stepping all of them with the candidate sequences in
the env's own kernel: the return of a sequence is the (discounted) sum of its rewards over the
horizon. Numba envs step millions of rows per second, so planning with the real dynamics costs
little more than the Python loop over the horizon.

Example:
    >>> import numpy as np
    >>> from fugu.envs.pendulum import Pendulum
    >>> env = Pendulum(num_envs=1, seed=0)
    >>> _ = env.reset()
    >>> model = TrueModel()
    >>> model.set_root(env, env.observations[0])
    >>> model.returns(np.zeros((8, 5, 1))).shape
    (8,)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.envs.clone import clone_rows, make_copies
from fugu.envs.native import NativeEnv

__all__ = ["TrueModel"]


class TrueModel:
    """Rollouts in clones of a native env's row.

    Args:
        gamma: Discount of rewards over the horizon (1: plain sum).
        row: The live env's row being controlled.
    """

    name = "true"

    def __init__(self, gamma: float = 1.0, row: int = 0) -> None:
        self.gamma = float(gamma)
        self.row = int(row)
        self._source: NativeEnv | None = None
        self._copies: NativeEnv | None = None
        self.steps_simulated = 0

    def set_root(self, env: Any, observation: np.ndarray) -> None:
        """Plan from ``env``'s current state (``observation`` is unused: the state is exact)."""
        if not isinstance(env, NativeEnv):
            raise APIUsageError(
                "the true model clones native fugu envs only; plan a Gymnasium env with "
                "--model pets"
            )
        self._source = env

    def returns(self, actions: np.ndarray) -> np.ndarray:
        """The (discounted) reward sums of ``[population, horizon, action_dim]`` sequences."""
        if self._source is None:
            raise APIUsageError("call set_root(env, observation) before returns()")
        population, horizon = actions.shape[:2]
        if self._copies is None or self._copies.num_copies != population:
            if self._copies is not None:
                self._copies.close()
            self._copies = make_copies(self._source, population)
        copies = self._copies
        clone_rows(self._source, copies, self.row)
        total = np.zeros(population, dtype=np.float64)
        buf = copies.actions
        alive = np.ones(population, dtype=np.float64)  # 0 after a copy's episode terminates
        discount = 1.0
        for t in range(horizon):
            buf[...] = actions[:, t].reshape(buf.shape)
            _, rewards, terminals, _, _ = copies.step(buf)
            total += discount * alive * rewards
            alive *= ~terminals
            discount *= self.gamma
        self.steps_simulated += population * horizon
        return total

    def close(self) -> None:
        """Close the clone env."""
        if self._copies is not None:
            self._copies.close()
            self._copies = None
