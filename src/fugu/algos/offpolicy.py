"""Shared parts of the off-policy algorithms (DQN, SAC, TD3): networks, target updates, replay.

Each algorithm's config repeats the replay knobs (``buffer_size``, ``batch_size``,
``learning_starts``, ``gradient_steps``, ``n_step``, ``prioritized``, ``her_strategy``...), so
every field keeps its own documentation; :func:`make_replay` turns them into a
:class:`~fugu.buffers.ReplayBuffer` for the trainer.

Example:
    >>> net = mlp(4, (8, 8), 2, "relu")
    >>> net(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    >>> target = mlp(4, (8, 8), 2, "relu")
    >>> polyak_update(target, net, tau=1.0)
    >>> all(torch.equal(a, b) for a, b in zip(target.parameters(), net.parameters()))
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fugu.algos.base import ReplaySettings
from fugu.buffers import HER_STRATEGIES, HindsightRelabeler, PolicyState, Prioritized, ReplayBuffer
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field

__all__ = [
    "ACTIVATIONS",
    "ReplayAlgorithm",
    "check_replay_config",
    "make_replay",
    "mlp",
    "polyak_update",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
"""Hidden activations of the off-policy networks, by name."""


def mlp(
    inputs: int, hidden: Sequence[int], outputs: int, activation: str = "relu"
) -> nn.Sequential:
    """A multilayer perceptron ``inputs -> hidden... -> outputs`` (no output activation)."""
    if activation not in ACTIVATIONS:
        raise APIUsageError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    size = inputs
    for width in hidden:
        layers += [nn.Linear(size, int(width)), ACTIVATIONS[activation]()]
        size = int(width)
    layers.append(nn.Linear(size, outputs))
    return nn.Sequential(*layers)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- tau * source + (1 - tau) * target`` for every parameter (``tau=1``: copy).

    Buffers (e.g. running statistics) are copied.
    """
    t_params: list[Tensor] = list(target.parameters())
    s_params: list[Tensor] = list(source.parameters())
    if tau >= 1.0:
        torch._foreach_copy_(t_params, s_params)
    else:
        torch._foreach_lerp_(t_params, s_params, tau)
    for t_buf, s_buf in zip(target.buffers(), source.buffers()):
        t_buf.copy_(s_buf)


def check_replay_config(config: Any, section: str) -> None:
    """Validate the replay knobs shared by the off-policy configs (``section`` names them)."""
    if config.buffer_size < 1 or config.batch_size < 1:
        raise APIUsageError(f"{section} needs buffer_size >= 1 and batch_size >= 1")
    if config.gradient_steps < 1:
        raise APIUsageError(f"{section}.gradient_steps must be >= 1")
    if config.learning_starts < 0:
        raise APIUsageError(f"{section}.learning_starts must be >= 0")
    if config.n_step < 1:
        raise APIUsageError(f"{section}.n_step must be >= 1")
    if config.her_strategy != "none" and config.her_strategy not in HER_STRATEGIES:
        raise APIUsageError(
            f"{section}.her_strategy must be 'none' or one of {HER_STRATEGIES}, "
            f"got {config.her_strategy!r}"
        )
    if config.her_strategy != "none" and config.n_step > 1:
        raise APIUsageError(f"{section}: hindsight relabelling needs n_step = 1")


def make_replay(
    config: Any,
    fields: Mapping[str, Field],
    num_rows: int,
    env: Any,
    seed: int,
    device: torch.device,
) -> ReplayBuffer:
    """The replay ring an off-policy config asks for (uniform, prioritized, n-step, HER).

    Row order (needed by n-step and HER) is kept only when one of them is on, so plain
    uniform replay also accepts rows that are not always live (multi-agent envs).
    """
    relabeler = None
    if config.her_strategy != "none":
        relabeler = HindsightRelabeler.for_env(env, config.her_strategy, config.her_k)
    ordered = config.n_step > 1 or relabeler is not None
    prioritized = (
        Prioritized(config.per_alpha, config.per_beta, config.per_beta_end)
        if config.prioritized
        else None
    )
    return ReplayBuffer(
        fields,
        max(config.buffer_size, num_rows),
        device,
        seed=seed,
        num_rows=num_rows if ordered else None,
        n_step=config.n_step,
        gamma=config.gamma,
        prioritized=prioritized,
        relabeler=relabeler,
        prefetch=min(config.gradient_steps, 64),  # the batches of one update phase at once
    )


def flat_size(shape: Sequence[int]) -> int:
    """Number of values of one observation of ``shape``."""
    size = 1
    for dim in shape:
        size *= int(dim)
    return size


def discounts(batch: Mapping[str, Tensor], gamma: float) -> Tensor | float:
    """The batch's n-step ``discounts`` when present, else ``gamma``."""
    return batch.get("discounts", gamma)


class TwinQ(nn.Module):
    """Two independent critics ``Q(s, a)`` of flat observations and actions in ``[-1, 1]``.

    Example:
        >>> q1, q2 = TwinQ(3, 2, (8,), "relu")(torch.zeros(5, 3), torch.zeros(5, 2))
        >>> q1.shape, q2.shape
        (torch.Size([5]), torch.Size([5]))
    """

    def __init__(
        self, obs_size: int, action_size: int, hidden_sizes: Sequence[int], activation: str
    ) -> None:
        super().__init__()
        self.q1 = mlp(obs_size + action_size, hidden_sizes, 1, activation)
        self.q2 = mlp(obs_size + action_size, hidden_sizes, 1, activation)

    def forward(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Both critics' values ``[B]``."""
        x = torch.cat([obs.reshape(obs.shape[0], -1).float(), actions.float()], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class BoxScale:
    """Maps actions between ``[-1, 1]`` (what the networks see) and a Box's bounds.

    Example:
        >>> from gymnasium import spaces
        >>> scale = BoxScale(spaces.Box(-2.0, 2.0, (1,)), torch.device("cpu"))
        >>> scale.to_env(torch.tensor([[0.5]])).tolist()
        [[1.0]]
        >>> scale.from_env(torch.tensor([[-2.0]])).tolist()
        [[-1.0]]
    """

    def __init__(self, space: Any, device: torch.device) -> None:
        low = torch.as_tensor(space.low, dtype=torch.float32, device=device).reshape(-1)
        high = torch.as_tensor(space.high, dtype=torch.float32, device=device).reshape(-1)
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise APIUsageError(
                f"off-policy Box actions need finite bounds (tanh squashing), got {space}"
            )
        self.center = (high + low) / 2
        self.half = (high - low) / 2
        self.size = int(low.numel())

    def to_env(self, actions: Tensor) -> Tensor:
        """``[-1, 1]`` actions to the Box's bounds."""
        return self.center + self.half * actions

    def from_env(self, actions: Tensor) -> Tensor:
        """Env actions back to ``[-1, 1]``."""
        return (actions.float().reshape(actions.shape[0], -1) - self.center) / self.half


class ReplayAlgorithm:
    """What DQN, SAC and TD3 share as replay algorithms with feed-forward networks: replay
    settings and the ring built from their config, no extra stored fields, no recurrent
    state. Subclasses set ``config`` (a replay config, see :func:`check_replay_config`) and
    ``device``."""

    config: Any
    device: torch.device
    replay: ReplayBuffer | None = None

    def replay_settings(self) -> ReplaySettings:
        """Ring size, batch size, gradient steps and warm-up from the config."""
        c = self.config
        return ReplaySettings(
            c.buffer_size, c.batch_size, c.gradient_steps, c.learning_starts, c.checkpoint_replay
        )

    def make_replay(
        self, fields: Mapping[str, Field], num_rows: int, env: Any, seed: int
    ) -> ReplayBuffer:
        """The replay ring (the trainer calls this once); kept to update priorities."""
        self.replay = make_replay(self.config, fields, num_rows, env, seed, self.device)
        return self.replay

    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """Nothing besides the standard transition."""
        return {}

    def initial_state(self, num_rows: int) -> PolicyState:
        """``None``: the networks are feed-forward."""
        return None

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """``state`` unchanged (feed-forward)."""
        return state
