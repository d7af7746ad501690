"""The algorithm protocol: what the trainer needs from an algorithm, and nothing else.

An algorithm is a config dataclass plus one class satisfying :class:`Algorithm`. The trainer
(:mod:`fugu.train`) builds it with :meth:`Algorithm.build`, lets it :meth:`~Algorithm.act` on
env rows, stores the per-step fields it declares (:meth:`~Algorithm.storage_fields`), hands it
a :class:`~fugu.buffers.Batch` in :meth:`~Algorithm.update` with the training progress, and
saves its :meth:`~Algorithm.modules` (weights, by name) and :meth:`~Algorithm.state_dict`
(optimizers, generators, counters) in checkpoints. The CLI, dashboard, loggers, sweeps and
``fugu eval`` work through this protocol only, so a new algorithm is one module registered in
:mod:`fugu.algos.registry`. See ``docs/writing-an-algorithm.md`` for a worked example.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu.buffers import Batch, PolicyState
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.policy import PolicyConfig

__all__ = [
    "ACTION_SPACE_KINDS",
    "ActOutput",
    "Actor",
    "Algorithm",
    "Collection",
    "ReplaySettings",
    "action_space_kind",
    "check_action_space",
]

Collection = Literal["rollout", "replay", "offline"]
"""How an algorithm gets data: on-policy rollouts ``[T, N]``, a replay ring of transitions, or
a fixed dataset (no env stepping)."""

ACTION_SPACE_KINDS = ("discrete", "multi_discrete", "box")
"""Names of the action-space kinds an algorithm may support."""


def action_space_kind(space: spaces.Space) -> str:
    """``"discrete"``, ``"multi_discrete"`` or ``"box"``.

    Example:
        >>> action_space_kind(spaces.Discrete(3)), action_space_kind(spaces.Box(-1, 1, (2,)))
        ('discrete', 'box')
    """
    if isinstance(space, spaces.Discrete):
        return "discrete"
    if isinstance(space, spaces.MultiDiscrete):
        return "multi_discrete"
    if isinstance(space, spaces.Box):
        return "box"
    raise APIUsageError(f"unsupported action space {space}")


def check_action_space(algo: type[Any], space: spaces.Space) -> None:
    """Raise a clear error when ``algo`` does not support ``space``."""
    kind = action_space_kind(space)
    if kind not in algo.action_spaces:
        raise APIUsageError(
            f"{algo.name} does not support {kind} action spaces ({space}); it supports "
            f"{', '.join(algo.action_spaces)} (fugu algos lists every algorithm)"
        )


@dataclass(frozen=True)
class ReplaySettings:
    """How the trainer feeds a replay algorithm (its ``replay_settings()`` returns one).

    Each epoch the trainer collects ``train.num_steps`` steps of every row into the replay
    ring, then, once ``learning_starts`` transitions are stored, calls ``update`` on
    ``gradient_steps`` batches of ``batch_size`` transitions sampled uniformly. The
    update-to-data ratio is ``gradient_steps / (rows * train.num_steps)``.

    An algorithm that defines ``make_replay(fields, num_rows, env, seed)`` builds the ring
    itself (a :class:`~fugu.buffers.ReplayBuffer` with n-step returns, priorities or
    hindsight relabelling); the trainer then adds every rollout to it with ``add_rollout`` and
    samples it with ``sample(batch_size)``.
    """

    capacity: int = 100_000
    """Transitions kept (the oldest are overwritten)."""
    batch_size: int = 256
    """Transitions per sampled batch."""
    gradient_steps: int = 1
    """Updates per epoch."""
    learning_starts: int = 1_000
    """Transitions stored before the first update."""
    checkpoint_replay: bool = True
    """Save the replay ring with the run's state. Without it a resumed run refills the ring
    for ``learning_starts`` transitions before its next update (the weights, optimizers and
    counters resume exactly; the samples drawn afterwards differ)."""


class ActOutput(NamedTuple):
    """What :meth:`Algorithm.act` returns for a batch of rows.

    Attributes:
        actions: ``[B, *action_shape]`` actions (int64 for discrete spaces, float32 for Box).
        fields: Per-step values the algorithm stores (e.g. ``logprobs``, ``values``), each
            ``[B, ...]``, named as in :meth:`Algorithm.storage_fields`.
        state: The next recurrent state (``None`` for feed-forward policies).
    """

    actions: Tensor
    fields: Mapping[str, Tensor]
    state: PolicyState = None


@runtime_checkable
class Actor(Protocol):
    """Anything that acts on env rows: an algorithm, a frozen opponent, a scripted policy."""

    def initial_state(self, num_rows: int) -> PolicyState:
        """The recurrent state of ``num_rows`` new rows (``None`` when feed-forward)."""
        ...

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """``state`` with the rows flagged by ``starts`` (bool ``[B]``) reset."""
        ...

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Actions for ``obs [B, *obs_shape]`` (under inference mode).

        ``extras`` holds the env's declared per-row fields for these rows (for example
        ``action_masks``, false for illegal actions, which an actor must respect).
        """
        ...


@runtime_checkable
class Algorithm(Actor, Protocol):
    """A learning algorithm, as the trainer sees it.

    Class attributes:
        name: The registry name (``"ppo"``); also its config section (``[ppo]``).
        config_type: Its frozen config dataclass.
        collection: How it gets data (:data:`Collection`).
        action_spaces: The action-space kinds it supports (:data:`ACTION_SPACE_KINDS`).
        dashboard_metrics: Metric keys the CLI dashboard shows for it, in order.
    """

    name: ClassVar[str]
    config_type: ClassVar[type]
    collection: ClassVar[Collection]
    action_spaces: ClassVar[tuple[str, ...]]
    dashboard_metrics: ClassVar[tuple[str, ...]]
    device: torch.device

    @classmethod
    def build(
        cls,
        config: Any,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> Algorithm:
        """Build the algorithm and its modules (the caller seeds torch for the weights)."""
        ...

    def storage_fields(self, env_fields: Mapping[str, Field]) -> Mapping[str, Field]:
        """Per-step fields to store besides the standard ones, given the env's declared extras.

        A field that :meth:`act` returns in ``fields`` is stored from there; any other is
        copied from the env's extra field of that name (``action_masks``, ``costs``, ...).
        A rollout algorithm that stores ``values`` gets ``next_values`` in its batch,
        bootstrapped through :meth:`bootstrap` on truncated steps and after the last step.
        The env's ``costs`` are stored for every algorithm (the trainer logs ``env/cost``);
        one with a class attribute ``needs_next_observations = True`` also gets
        ``next_observations`` (the final observation where an episode ended), e.g. to
        bootstrap a cost critic (:mod:`fugu.models.cost_critic`).
        """
        ...

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Values ``[B]`` of observations: final observations of truncated rows, and the
        observations after a rollout's last step (only called when ``values`` is stored).

        An algorithm whose values depend on other rows (a centralised critic reading the
        whole team) sets the optional class attribute ``bootstrap_whole_rows = True``: the
        collector then passes every stored row of a shard, in order, with the final
        observation where a row was truncated and the current one elsewhere, and keeps the
        values of the truncated rows. Without it (the default) only the truncated rows'
        final observations are passed."""
        ...

    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        """Learn from ``batch``; ``progress`` in ``[0, 1]`` is the fraction of the run's env
        steps collected so far (drives schedules). Returns metrics (``loss/...``, ...)."""
        ...

    def modules(self) -> Mapping[str, nn.Module]:
        """The modules it owns, by name; checkpoints save each one's weights."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything else that resuming needs (optimizers, generators, counters)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the modules' weights are loaded separately)."""
        ...
