"""The text-action env interface: text observations, valid actions or free generation.

A :class:`TextEnv` is the language-model counterpart of the array env contract: ``reset``
returns an observation string, :meth:`~TextEnv.valid_actions` lists the admissible action
strings (``None`` means free generation), and ``step`` takes an action string and returns the
next observation, the reward (a verifier's verdict or the env's own) and whether the episode
ended. :class:`TaskEnv` turns any :class:`~fugu.llm.tasks.Task` into a one-turn env;
:class:`TextGridWorld` is a small multi-turn env whose actions are words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.llm.tasks import Problem, Split, Task

__all__ = ["TaskEnv", "TextEnv", "TextGridWorld", "TextStep"]


@dataclass(frozen=True)
class TextStep:
    """What :meth:`TextEnv.step` returns."""

    observation: str
    reward: float
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


class TextEnv(Protocol):
    """A text environment (one episode at a time)."""

    def reset(self, seed: int | None = None) -> str:
        """Start an episode; the first observation."""
        ...

    def valid_actions(self) -> list[str] | None:
        """The admissible action strings now, or ``None`` for free generation."""
        ...

    def step(self, action: str) -> TextStep:
        """Apply ``action``."""
        ...


class TaskEnv:
    """One problem per episode: the prompt is the observation, the verifier the reward.

    Example:
        >>> from fugu.llm.tasks import ArithmeticTask
        >>> env = TaskEnv(ArithmeticTask(max_digits=1))
        >>> obs = env.reset(seed=0)
        >>> env.step(env.problem.solution).reward
        1.0
    """

    def __init__(self, task: Task, split: Split = "train") -> None:
        self.task = task
        self.split = split
        self._rng = np.random.default_rng()
        self._problem: Problem | None = None

    @property
    def problem(self) -> Problem:
        """The current problem (after :meth:`reset`)."""
        if self._problem is None:
            raise APIUsageError("call reset() before using the env")
        return self._problem

    def reset(self, seed: int | None = None) -> str:
        """Draw a problem (seeded when ``seed`` is given)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._problem = self.task.sample(self._rng, 1, self.split)[0]
        return self._problem.prompt

    def valid_actions(self) -> list[str] | None:
        """Free generation."""
        return None

    def step(self, action: str) -> TextStep:
        """Score ``action`` with the verifier; the episode ends."""
        problem = self.problem
        reward = self.task.verify(problem, action)
        self._problem = None
        return TextStep("", reward, True, {"answer": problem.answer})


_MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


class TextGridWorld:
    """Walk to the goal on a small grid described in text.

    The observation draws the grid row by row (``a`` the agent, ``g`` the goal, ``#`` walls,
    ``.`` floor) followed by ``"move?"``; the actions are ``up``, ``down``, ``left``, ``right``.
    Reaching the goal pays 1, every other step ``step_cost`` (negative); the episode is cut at
    ``max_steps``. Start, goal and walls are redrawn from the seed at every reset.

    Args:
        size: grid side.
        num_walls: wall cells placed at random (never on start or goal).
        max_steps: episode length limit.
        step_cost: reward of a step that does not reach the goal.

    Example:
        >>> env = TextGridWorld(size=3, num_walls=0)
        >>> env.reset(seed=0).endswith("move?")
        True
        >>> sorted(env.valid_actions())
        ['down', 'left', 'right', 'up']
    """

    def __init__(
        self, size: int = 4, num_walls: int = 2, max_steps: int = 12, step_cost: float = -0.05
    ) -> None:
        if size < 2 or num_walls < 0 or num_walls > size * size - 2:
            raise ValueError(f"bad grid: size {size}, {num_walls} walls")
        self.size = size
        self.num_walls = num_walls
        self.max_steps = max_steps
        self.step_cost = step_cost
        self._rng = np.random.default_rng()
        self.agent = (0, 0)
        self.goal = (0, 0)
        self.walls: set[tuple[int, int]] = set()
        self.steps = 0
        self._live = False

    def render(self) -> str:
        """The grid as text, one line per row."""
        rows = []
        for r in range(self.size):
            line = []
            for c in range(self.size):
                cell = (r, c)
                line.append(
                    "a"
                    if cell == self.agent
                    else "g"
                    if cell == self.goal
                    else "#"
                    if cell in self.walls
                    else "."
                )
            rows.append("".join(line))
        return "\n".join(rows) + "\nmove?"

    def reset(self, seed: int | None = None) -> str:
        """Draw start, goal and walls."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        cells = self._rng.permutation(self.size * self.size)[: 2 + self.num_walls]
        coords = [(int(i) // self.size, int(i) % self.size) for i in cells]
        self.agent, self.goal = coords[0], coords[1]
        self.walls = set(coords[2:])
        self.steps = 0
        self._live = True
        return self.render()

    def valid_actions(self) -> list[str] | None:
        """The four moves (a move into a wall or the border leaves the agent in place)."""
        return list(_MOVES)

    def shortest_path_length(self) -> int | None:
        """Moves from the agent to the goal avoiding walls (``None`` when unreachable)."""
        frontier, seen, depth = [self.agent], {self.agent}, 0
        while frontier:
            if self.goal in frontier:
                return depth
            nxt = []
            for r, c in frontier:
                for dr, dc in _MOVES.values():
                    cell = (r + dr, c + dc)
                    if self._free(cell) and cell not in seen:
                        seen.add(cell)
                        nxt.append(cell)
            frontier, depth = nxt, depth + 1
        return None

    def _free(self, cell: tuple[int, int]) -> bool:
        r, c = cell
        return 0 <= r < self.size and 0 <= c < self.size and cell not in self.walls

    def step(self, action: str) -> TextStep:
        """Move; unknown actions are an error."""
        if not self._live:
            raise APIUsageError("call reset() before step() (the episode has ended)")
        move = _MOVES.get(action.strip())
        if move is None:
            raise ValueError(f"unknown action {action!r}; valid: {list(_MOVES)}")
        cell = (self.agent[0] + move[0], self.agent[1] + move[1])
        if self._free(cell):
            self.agent = cell
        self.steps += 1
        reached = self.agent == self.goal
        done = reached or self.steps >= self.max_steps
        self._live = not done
        reward = 1.0 if reached else self.step_cost
        return TextStep(self.render(), reward, done, {"reached": reached, "steps": self.steps})
