"""The cost side of a constrained learner: a cost value head, cost GAE, episode costs.

Constrained algorithms (:mod:`fugu.algos.ppo_lag`, :mod:`fugu.algos.cpo`) learn a second value
function ``V_c`` of the env's per-step ``costs`` (the declared extra field
:data:`fugu.core.schema.COSTS`) next to the reward critic, estimate cost advantages with GAE
(truncation-aware: the final observation of a truncated episode is bootstrapped, as for
rewards), and follow the mean summed cost of recent episodes ``J_c`` to compare with the cost
limit. :class:`CostCritic` owns all of that, so each algorithm composes one instead of
repeating it:

* ``net``: an MLP on the policy's preprocessed observations (its scaling and running
  normalisation) to ``V_c [B]``, trained by its own Adam on the cost returns;
* :meth:`CostCritic.targets`: ``V_c``, cost advantages and cost returns ``[T, N]`` of a rollout
  batch, from ``batch["costs"]`` and ``batch["next_observations"]`` (the next observation of
  each step, the final one where an episode ended; an algorithm with a cost critic sets
  ``needs_next_observations`` so the trainer stores them);
* :meth:`CostCritic.observe`: the running per-row episode cost, and the window of the most
  recent finished episodes whose mean is :attr:`CostCritic.episode_cost`.

Example:
    >>> import torch
    >>> critic = CostCritic(4)
    >>> critic.values(torch.zeros(3, 4)).shape
    torch.Size([3])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from fugu import ops
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.optim import Optimizer

__all__ = ["CostCritic", "CostCriticSettings", "cost_fields"]


class CostCriticSettings(Protocol):
    """The config fields a constrained algorithm passes to its :class:`CostCritic`."""

    @property
    def cost_hidden_size(self) -> int: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def lr_schedule(self) -> str: ...
    @property
    def max_grad_norm(self) -> float: ...
    @property
    def cost_window(self) -> int: ...


def cost_fields(algo_name: str, env_fields: Mapping[str, Field]) -> dict[str, Field]:
    """The env's ``costs`` field as a storage field, refused when the env declares none.

    Args:
        algo_name: The algorithm asking, named in the error.
        env_fields: The extra fields the env declares.

    Returns:
        ``{"costs": env_fields["costs"]}``.

    Raises:
        APIUsageError: The env declares no ``costs`` field.

    Example:
        >>> from fugu.core.schema import COSTS
        >>> list(cost_fields("ppo_lag", {"costs": COSTS}))
        ['costs']
    """
    if "costs" not in env_fields:
        raise APIUsageError(
            f"{algo_name} needs an env that declares the 'costs' field (such as "
            "hazard-nav-v1 or safe-hopper-velocity-v1); this env declares "
            f"{sorted(env_fields) or 'no extra fields'}"
        )
    return {"costs": env_fields["costs"]}


class CostCritic:
    """A cost value function with its optimizer and the episode-cost window.

    Args:
        obs_size: Flattened observation size.
        hidden_size: Width of the two hidden layers (tanh).
        learning_rate: Adam step size (scheduled like the policy's by ``lr_schedule``).
        lr_schedule: ``"constant"``, ``"linear"`` or ``"cosine"``.
        max_grad_norm: Global gradient-norm clip.
        cost_window: Finished episodes whose mean summed cost is :attr:`episode_cost`.
        device: Where it runs.
    """

    @classmethod
    def for_obs(
        cls, obs_size: int, settings: CostCriticSettings, device: torch.device | str = "cpu"
    ) -> CostCritic:
        """A cost critic sized for ``obs_size`` with an algorithm config's settings."""
        return cls(
            obs_size, settings.cost_hidden_size, settings.learning_rate, settings.lr_schedule,
            settings.max_grad_norm, settings.cost_window, device,
        )  # fmt: skip

    def __init__(
        self,
        obs_size: int,
        hidden_size: int = 64,
        learning_rate: float = 3e-4,
        lr_schedule: str = "constant",
        max_grad_norm: float = 0.5,
        cost_window: int = 20,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(int(obs_size), hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, 1),
        ).to(self.device)
        self.optimizer = Optimizer(
            self.net.parameters(),
            learning_rate=learning_rate,
            lr_schedule=lr_schedule,
            adam_eps=1e-5,
            max_grad_norm=max_grad_norm,
            device=self.device,
        )
        self.recent: deque[float] = deque(maxlen=int(cost_window))
        self.num_episodes = 0
        self._running: Tensor | None = None

    # -- values and advantages ------------------------------------------------------------
    def values(self, features: Tensor) -> Tensor:
        """``V_c [B]`` of preprocessed observations ``[B, *obs_shape]`` (with grad)."""
        return self.net(features.float()).squeeze(-1)  # type: ignore[no-any-return]

    def _values_of(self, preprocess: Callable[[Tensor], Tensor], obs: Tensor) -> Tensor:
        lead = obs.shape[:2]
        flat = obs.reshape(lead[0] * lead[1], *obs.shape[2:])
        with torch.no_grad():
            return self.values(preprocess(flat)).reshape(lead)

    def targets(
        self,
        batch: Mapping[str, Tensor],
        preprocess: Callable[[Tensor], Tensor],
        gamma: float,
        gae_lambda: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Cost values, advantages and returns ``[T, N]`` of a rollout batch (no grad).

        Args:
            batch: Holds ``observations``, ``next_observations``, ``costs``, ``terminals``,
                ``truncations`` (and ``masks``).
            preprocess: The policy's observation preprocessing (``Policy.preprocess``).
            gamma: Cost discount.
            gae_lambda: Cost GAE lambda.
        """
        values = self._values_of(preprocess, batch["observations"])
        next_values = self._values_of(preprocess, batch["next_observations"])
        masks = batch.get("masks")
        if masks is not None and bool(masks.all()):
            masks = None
        advantages = ops.gae(
            batch["costs"].float(),
            values,
            next_values,
            batch["terminals"],
            batch["truncations"],
            gamma,
            gae_lambda,
            masks=masks,
        )
        return values, advantages, advantages + values

    def fit(
        self,
        features: Tensor,
        returns: Tensor,
        epochs: int,
        num_minibatches: int,
        generator: torch.Generator,
        progress: float,
    ) -> float:
        """Regress ``V_c`` on ``returns [n]`` of preprocessed observations ``[n, ...]``;
        returns the mean squared-error loss (halved)."""
        self.optimizer.set_progress(progress)
        count = int(returns.shape[0])
        total, steps = 0.0, 0
        for _ in range(epochs):
            order = torch.randperm(count, generator=generator).to(self.device)
            for idx in torch.tensor_split(order, num_minibatches):
                if not idx.numel():
                    continue
                loss = 0.5 * (self.values(features[idx]) - returns[idx]).pow(2).mean()
                self.optimizer.backward(loss)
                self.optimizer.step()
                total += float(loss.detach())
                steps += 1
        self.optimizer.pop_grad_norm()
        return total / max(steps, 1)

    # -- episode costs ----------------------------------------------------------------------
    def observe(self, batch: Mapping[str, Tensor]) -> int:
        """Add a rollout's ``costs`` to the running episode sums; returns how many episodes
        ended in it (their costs join :attr:`recent`)."""
        costs = batch["costs"]
        rows = costs.shape[1]
        if self._running is None or self._running.shape[0] != rows:
            self._running = torch.zeros(rows, dtype=torch.float64, device=costs.device)
        masks = batch.get("masks")
        ended, self._running = ops.episode_sums(
            costs, batch["terminals"] | batch["truncations"], self._running, masks
        )
        self.recent.extend(ended.tolist())
        self.num_episodes += int(ended.numel())
        return int(ended.numel())

    @property
    def episode_cost(self) -> float:
        """Mean summed cost of the most recent finished episodes (NaN before the first)."""
        return sum(self.recent) / len(self.recent) if self.recent else float("nan")

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, running sums and the episode window (the weights are ``net``'s)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "recent": list(self.recent),
            "num_episodes": self.num_episodes,
            "running": None if self._running is None else self._running.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.recent.clear()
        self.recent.extend(float(v) for v in state["recent"])
        self.num_episodes = int(state["num_episodes"])
        running = state["running"]
        self._running = None if running is None else running.to(self.device)
