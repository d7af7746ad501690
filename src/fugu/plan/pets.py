"""PETS: an ensemble of probabilistic MLPs as a learned model for planning.

Chua et al. (2018), "Deep Reinforcement Learning in a Handful of Trials using Probabilistic
Dynamics Models". Each of ``members`` MLPs maps a normalised ``(observation, action)`` to a
Gaussian over the normalised ``(next_observation - observation, reward)`` with a soft-bounded
log-variance, and is trained by Gaussian negative log-likelihood on its own bootstrap of the
replay data. The members are stored as stacked weights and run together with batched matrix
products.

Planning uses trajectory sampling (TS-inf): each candidate sequence is rolled out once per
member, each particle staying with its member for the whole horizon and drawing its next state
from that member's Gaussian; the candidate's return is the mean over particles of the
(discounted) predicted rewards.

Example:
    >>> import numpy as np
    >>> model = PETSModel(obs_dim=1, action_dim=1, members=2, hidden=16, seed=0)
    >>> obs = np.random.default_rng(0).normal(size=(64, 1)).astype(np.float32)
    >>> act = np.zeros((64, 1), np.float32)
    >>> loss = model.fit(obs, act, obs + 0.1, obs[:, 0], steps=5)
    >>> model.set_root(None, obs[0])
    >>> model.returns(np.zeros((4, 3, 1))).shape
    (4,)
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fugu.core.errors import APIUsageError

__all__ = ["PETSModel", "ProbabilisticEnsemble"]


class ProbabilisticEnsemble(nn.Module):
    """``members`` MLPs with stacked weights: ``[E, N, in] -> (mean, logvar) [E, N, out]``.

    Args:
        in_dim: Input size.
        out_dim: Output size (the Gaussian's dimension).
        members: Ensemble size ``E``.
        hidden: Width of each hidden layer.
        layers: Hidden layers.
        generator: Generator of the initial weights.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        members: int = 5,
        hidden: int = 64,
        layers: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [in_dim] + [hidden] * layers + [2 * out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(a)
            w = (torch.rand(members, a, b, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(members, 1, b)))
        self.max_logvar = nn.Parameter(torch.full((1, 1, out_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, out_dim), -10.0))
        self.members = members
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and soft-bounded log-variance for ``x`` of shape ``[E, N, in]``."""
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k < last:
                h = torch.nn.functional.silu(h)
        mean, raw = h.split(self.out_dim, dim=-1)
        logvar = self.max_logvar - torch.nn.functional.softplus(self.max_logvar - raw)
        logvar = self.min_logvar + torch.nn.functional.softplus(logvar - self.min_logvar)
        return mean, logvar


class PETSModel:
    """A probabilistic ensemble of dynamics and reward, with TS-inf rollouts for planners.

    Args:
        obs_dim: Observation size (flat).
        action_dim: Action size.
        members: Ensemble members (also the particles per candidate sequence).
        hidden: Hidden width.
        layers: Hidden layers.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        gamma: Discount of predicted rewards over the horizon.
        seed: Seed of the weights, bootstraps and sampling noise.
    """

    name = "pets"

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        *,
        members: int = 5,
        hidden: int = 64,
        layers: int = 3,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        gamma: float = 1.0,
        seed: int = 0,
    ) -> None:
        if members < 1:
            raise APIUsageError(f"members must be >= 1, got {members}")
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        self.gamma = float(gamma)
        self.generator = torch.Generator().manual_seed(seed)
        self.net = ProbabilisticEnsemble(
            obs_dim + action_dim, obs_dim + 1, members, hidden, layers, self.generator
        )
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        d_in, d_out = obs_dim + action_dim, obs_dim + 1
        self.in_mean, self.in_std = torch.zeros(d_in), torch.ones(d_in)
        self.out_mean, self.out_std = torch.zeros(d_out), torch.ones(d_out)
        self.trained = False
        self._root: Tensor | None = None
        self.steps_simulated = 0

    @property
    def members(self) -> int:
        """Ensemble size."""
        return self.net.members

    # -- training ---------------------------------------------------------------------------
    def fit(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        next_observations: np.ndarray,
        rewards: np.ndarray,
        *,
        steps: int = 200,
        batch_size: int = 256,
    ) -> float:
        """Refit the normalisers and take ``steps`` Adam steps of Gaussian NLL.

        Each member trains on its own bootstrap of the ``N`` transitions. Returns the mean
        loss over the last tenth of the steps.
        """
        obs = torch.as_tensor(np.asarray(observations, np.float32).reshape(-1, self.obs_dim))
        act = torch.as_tensor(np.asarray(actions, np.float32).reshape(-1, self.action_dim))
        nxt = torch.as_tensor(np.asarray(next_observations, np.float32).reshape(obs.shape))
        rew = torch.as_tensor(np.asarray(rewards, np.float32).reshape(-1, 1))
        n = obs.shape[0]
        if n < 2 or not (act.shape[0] == nxt.shape[0] == rew.shape[0] == n):
            raise APIUsageError(f"fit needs >= 2 aligned transitions, got {n}")
        inputs = torch.cat([obs, act], dim=1)
        targets = torch.cat([nxt - obs, rew], dim=1)
        self.in_mean, self.in_std = inputs.mean(0), inputs.std(0).clamp_min(1e-6)
        self.out_mean, self.out_std = targets.mean(0), targets.std(0).clamp_min(1e-6)
        x = (inputs - self.in_mean) / self.in_std
        y = (targets - self.out_mean) / self.out_std
        members = self.members
        boot = torch.randint(0, n, (members, n), generator=self.generator)
        batch = min(batch_size, n)
        losses = []
        for _ in range(steps):
            pick = torch.randint(0, n, (members, batch), generator=self.generator)
            idx = torch.gather(boot, 1, pick)
            mean, logvar = self.net(x[idx])
            nll = ((mean - y[idx]) ** 2 * torch.exp(-logvar) + logvar).mean()
            bound = 0.01 * (self.net.max_logvar.sum() - self.net.min_logvar.sum())
            loss = nll + bound
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(nll.detach()))
        self.trained = True
        tail = losses[-max(1, steps // 10) :]
        return float(np.mean(tail))

    @torch.no_grad()
    def predict(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-member next observations (sampled), their means and rewards.

        ``observations`` and ``actions`` are ``[E, N, ...]``; returns ``(sampled_next,
        mean_next, reward)`` with shapes ``[E, N, obs]``, ``[E, N, obs]``, ``[E, N]``.
        """
        x = (torch.cat([observations, actions], dim=-1) - self.in_mean) / self.in_std
        mean, logvar = self.net(x)
        std = torch.exp(0.5 * logvar)
        noise = torch.randn(mean.shape, generator=self.generator)
        sample = (mean + std * noise) * self.out_std + self.out_mean
        mean = mean * self.out_std + self.out_mean
        return (
            observations + sample[..., : self.obs_dim],
            observations + mean[..., : self.obs_dim],
            mean[..., self.obs_dim],
        )

    # -- the planner's model protocol -----------------------------------------------------------
    def set_root(self, env: Any, observation: np.ndarray) -> None:
        """Plan from ``observation`` (``env`` is unused: the model predicts from observations)."""
        self._root = torch.as_tensor(np.asarray(observation, np.float32).reshape(self.obs_dim))

    @torch.no_grad()
    def returns(self, actions: np.ndarray) -> np.ndarray:
        """Mean over particles (one per member) of discounted predicted reward sums."""
        if self._root is None:
            raise APIUsageError("call set_root(env, observation) before returns()")
        population, horizon = actions.shape[:2]
        members = self.members
        acts = torch.as_tensor(np.asarray(actions, np.float32)).reshape(
            population, horizon, self.action_dim
        )
        state = self._root.expand(members, population, self.obs_dim)
        total = torch.zeros(members, population)
        discount = 1.0
        for t in range(horizon):
            a = acts[:, t].expand(members, population, self.action_dim)
            state, _, reward = self.predict(state, a)
            total += discount * reward
            discount *= self.gamma
        self.steps_simulated += members * population * horizon
        out = total.mean(0).double().numpy()
        return np.asarray(out)

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser, normalisers and generator state."""
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "norm": [self.in_mean, self.in_std, self.out_mean, self.out_std],
            "generator": self.generator.get_state(),
            "trained": self.trained,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.in_mean, self.in_std, self.out_mean, self.out_std = state["norm"]
        self.generator.set_state(state["generator"])
        self.trained = bool(state["trained"])
