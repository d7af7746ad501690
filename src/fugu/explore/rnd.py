"""Random network distillation (Burda et al. 2018) as a reward hook.

A fixed, randomly initialised *target* network embeds each observation; a *predictor*
network is trained to match it on the observations the agent visits. The prediction error is
small on familiar observations and large on novel ones: that error is the intrinsic reward.
As in the paper, observations are normalised by running statistics and clipped before both
networks, and the rewards are divided by the running spread of their (non-episodic)
discounted sums (:class:`~fugu.explore.base.IntrinsicRewards`). The reward of step ``t``
measures the novelty of the observation it reached (``next_observations``, which the trainer
stores because the hook asks for them).

Two ways to use it:

* with any rollout algorithm (``target="rewards"``, the default): the bonus is added to the
  env's reward (an episodic mixture of both);
* with ``ppo_rnd`` (``target="intrinsic_rewards"``): the bonus goes to a separate intrinsic
  critic with its own discount and non-episodic returns, as in the paper
  (:mod:`fugu.algos.ppo_rnd`).

Example:
    >>> from gymnasium import spaces
    >>> from fugu.buffers import Batch
    >>> hook = RND(spaces.Box(0, 1, (4,)), RNDConfig(seed=0))
    >>> obs = torch.eye(4)[torch.tensor([[0, 0], [0, 3]])]  # [T=2, N=2, 4]
    >>> no = torch.zeros(2, 2, dtype=torch.bool)
    >>> batch = Batch({"observations": obs, "next_observations": obs, "terminals": no,
    ...                "truncations": no, "masks": ~no, "rewards": torch.zeros(2, 2)})
    >>> r = hook.rewards(batch)
    >>> bool(r[1, 1] > r[0, 0])  # the one visit to cell 3 is the novel one
    True
    >>> sorted(hook.update(batch))[:2]
    ['explore/rnd_loss', 'explore/rnd_raw_mean']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor

from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.explore.base import IntrinsicRewards, flat_size, minibatch_indices, mlp
from fugu.explore.normalize import RunningMeanStd
from fugu.models.optim import Optimizer

__all__ = ["RND", "RNDConfig"]


@dataclass(frozen=True)
class RNDConfig:
    """Hyperparameters of :class:`RND`."""

    coef: float = 1.0
    """Scale of the normalised intrinsic reward."""
    learning_rate: float = 3e-4
    """Adam step size of the predictor. A slower predictor keeps novelty alive longer: on
    DeepSea-20, 1e-3 training on every sample solved one seed of four within 4k episodes,
    3e-4 on a quarter of the samples two of three within 10k (``docs/exploration.md``)."""
    hidden_size: int = 128
    """Width of the hidden layers of both networks."""
    feature_size: int = 64
    """Size of the embedding the predictor learns to match."""
    update_epochs: int = 4
    """Passes of predictor training over each rollout."""
    num_minibatches: int = 4
    """Minibatches per pass."""
    update_proportion: float = 0.25
    """Fraction of each rollout's samples the predictor trains on (the paper's 0.25, which
    keeps the predictor from learning too fast)."""
    gamma: float = 0.99
    """Discount of the intrinsic returns whose spread normalises the rewards."""
    normalize_observations: bool = True
    """Normalise observations by running mean and standard deviation."""
    normalize_rewards: bool = True
    norm_horizon: float | None = None
    """Samples over which the spread of the intrinsic returns is measured (older ones are
    forgotten); ``None``: all of them, as in the paper (the rewards fade as novelty does)."""
    """Divide rewards by the spread of the running intrinsic returns."""
    obs_clip: float = 5.0
    """Clip of the normalised observations."""
    seed: int = 0
    """Seed of the networks' initialisation and of the minibatch shuffling."""

    def __post_init__(self) -> None:
        if not 0.0 < self.update_proportion <= 1.0:
            raise APIUsageError(
                f"RNDConfig.update_proportion must be in (0, 1], got {self.update_proportion}"
            )
        if self.update_epochs < 1 or self.num_minibatches < 1:
            raise APIUsageError("RNDConfig needs update_epochs >= 1 and num_minibatches >= 1")


class RND:
    """Random network distillation reward hook (see the module docstring).

    Args:
        observation_space: The env's single observation space (a Box; flattened).
        config: Hyperparameters.
        target: Batch entry the rewards are added to: ``"rewards"`` or ``"intrinsic_rewards"``
            (for ``ppo_rnd``'s intrinsic critic).
        device: Where the networks run (the algorithm's device).
    """

    name = "rnd"
    needs_next_observations = True

    def __init__(
        self,
        observation_space: spaces.Box,
        config: RNDConfig | None = None,
        *,
        target: str = "rewards",
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = c = config or RNDConfig()
        self.target = target
        self.device = torch.device(device)
        size = flat_size(observation_space.shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            gain = 2.0**0.5
            self.target_network = mlp([size, c.hidden_size, c.feature_size], gain=gain)
            self.predictor = mlp([size, c.hidden_size, c.hidden_size, c.feature_size], gain=gain)
        self.target_network.to(self.device)
        self.predictor.to(self.device)
        self.target_network.requires_grad_(False)
        self.optimizer = Optimizer(
            self.predictor.parameters(),
            learning_rate=c.learning_rate,
            device=self.device,
            foreach=True,  # many small steps on a small net: the multi-tensor Adam pays off
        )
        self.obs_stats = RunningMeanStd((size,), self.device)
        self.intrinsic = IntrinsicRewards(
            self.name, c.coef, c.gamma, c.normalize_rewards, c.norm_horizon
        )
        self.generator = torch.Generator().manual_seed(c.seed + 1)
        self._inputs: Tensor | None = None
        self._targets: Tensor | None = None

    def normalize(self, observations: Tensor) -> Tensor:
        """Flattened observations ``[B, size]``, normalised and clipped (when configured)."""
        x = observations.reshape(observations.shape[0], -1).float()
        if not self.config.normalize_observations:
            return x
        mean = self.obs_stats.mean.float()
        std = self.obs_stats.std.float()
        clip = self.config.obs_clip
        return ((x - mean) / (std + 1e-8)).clamp(-clip, clip)

    def novelty(self, observations: Tensor) -> Tensor:
        """Raw prediction errors ``[B]`` of observations ``[B, *obs_shape]`` (no stats update).

        For heatmaps and analysis: call it on every cell of a grid env to see what the
        predictor has not learned yet.
        """
        with torch.no_grad():
            x = self.normalize(observations.to(self.device))
            return (self.predictor(x) - self.target_network(x)).pow(2).mean(-1)

    @torch.no_grad()
    def rewards(self, batch: Batch) -> Tensor:
        """``[T, N]`` intrinsic rewards: the normalised novelty of each step's next observation."""
        if "next_observations" not in batch:
            raise APIUsageError(
                "RND needs next_observations in the batch; the Trainer stores them for hooks "
                "with needs_next_observations (pass the hook as reward_hooks=[...])"
            )
        nxt = batch["next_observations"]
        steps, rows = nxt.shape[:2]
        flat = nxt.reshape(steps * rows, *nxt.shape[2:])
        masks = batch.get("masks")
        if self.config.normalize_observations:
            live = flat if masks is None else flat[masks.reshape(-1)]
            self.obs_stats.update(live.reshape(live.shape[0], -1))
        x = self.normalize(flat)
        targets = self.target_network(x)
        raw = (self.predictor(x) - targets).pow(2).mean(-1).reshape(steps, rows)
        # the target is fixed: its embeddings of this rollout serve the predictor's training too
        live_rows = None if masks is None else masks.reshape(-1)
        self._inputs = x if live_rows is None else x[live_rows]
        self._targets = targets if live_rows is None else targets[live_rows]
        return self.intrinsic(raw, batch)

    def update(self, batch: Batch) -> dict[str, float]:
        """Train the predictor on the rollout's (normalised, live) next observations."""
        c = self.config
        x, targets = self._inputs, self._targets
        if x is None or targets is None:  # update without rewards: embed the observations
            x = self.normalize(batch["observations"])
            with torch.no_grad():
                targets = self.target_network(x)
        self._inputs = self._targets = None
        total, count = torch.zeros((), device=self.device), 0
        for _ in range(c.update_epochs):
            for idx in minibatch_indices(
                x.shape[0], c.num_minibatches, self.generator, c.update_proportion
            ):
                idx = idx.to(x.device)
                with self.optimizer.autocast():
                    loss = (self.predictor(x[idx]) - targets[idx]).pow(2).mean()
                self.optimizer.backward(loss)
                self.optimizer.step()
                total += loss.detach()
                count += 1
        loss_mean = float(total) / max(count, 1)
        return {f"explore/{self.name}_loss": loss_mean, **self.intrinsic.metrics()}

    def state_dict(self) -> dict[str, Any]:
        """Both networks, the optimizer, the statistics and the generator."""
        return {
            "target_network": self.target_network.state_dict(),
            "predictor": self.predictor.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_stats": self.obs_stats.state_dict(),
            "intrinsic": self.intrinsic.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.target_network.load_state_dict(state["target_network"])
        self.predictor.load_state_dict(state["predictor"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_stats.load_state_dict(state["obs_stats"])
        self.intrinsic.load_state_dict(state["intrinsic"])
        self.generator.set_state(state["generator"])
