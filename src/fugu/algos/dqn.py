"""Deep Q-Networks: double and dueling options, target networks, epsilon-greedy schedules.

Read top to bottom: :class:`DQNConfig` (every knob), :class:`QNetwork` (an MLP with an
optional dueling head), then :class:`DQN`, a ``replay`` algorithm of the
:class:`~fugu.algos.base.Algorithm` protocol. It builds its own ring (:meth:`DQN.make_replay`:
uniform or prioritized, n-step returns, hindsight relabelling for goal envs), acts
epsilon-greedily (never choosing an action the env's ``action_masks`` forbids) and updates on
sampled batches with the Huber loss of the TD error:

``target = r + discount * (1 - terminal) * Q_target(s', argmax_a' Q(s', a'))`` (double) or
``max_a' Q_target(s', a')`` (plain), where ``discount`` is ``gamma`` or, with n-step returns,
``gamma ** k``. Truncated transitions bootstrap from their final observation.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models.policy import PolicyConfig
    >>> algo = DQN.build(DQNConfig(hidden_sizes=(16,)), spaces.Box(-1, 1, (4,)),
    ...                  spaces.Discrete(3), PolicyConfig())
    >>> algo.act(torch.zeros(5, 4), None, {}).actions.shape
    torch.Size([5])
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.nn import functional as F

from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.algos.offpolicy import (
    ACTIVATIONS,
    ReplayAlgorithm,
    check_replay_config,
    discounts,
    flat_size,
    mlp,
    polyak_update,
)
from fugu.buffers import Batch, PolicyState, ReplayBuffer
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.optim import SCHEDULES, Optimizer
from fugu.models.policy import PolicyConfig

__all__ = ["DQN", "DQNConfig", "QNetwork", "epsilon_at"]


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of DQN.

    Example:
        >>> DQNConfig(double_q=False).target_update_interval
        1000
    """

    learning_rate: float = 1e-4
    """Adam step size at the start of training."""
    lr_schedule: str = "constant"
    """``"constant"``, ``"linear"`` or ``"cosine"`` over the run's env steps."""
    gamma: float = 0.99
    """Discount factor."""
    buffer_size: int = 100_000
    """Transitions the replay ring keeps (memory: this many rows of every stored field)."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Transitions stored before the first update (actions are uniformly random until then,
    since epsilon starts at ``exploration_initial_eps``)."""
    gradient_steps: int = 1
    """Gradient steps after each collection of ``train.num_steps`` steps of every row: the
    update-to-data ratio is ``gradient_steps / (env.num_envs * train.num_steps)``."""
    target_update_interval: int = 1_000
    """Gradient steps between target-network updates."""
    tau: float = 1.0
    """Target update rate: 1 copies the network (hard update), less is Polyak averaging."""
    exploration_fraction: float = 0.1
    """Fraction of the run (in env steps) over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.05
    """Epsilon after ``exploration_fraction`` of the run."""
    double_q: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    dueling: bool = False
    """Dueling head: ``Q = V + A - mean(A)``."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the Q-network's hidden layers."""
    activation: str = "relu"
    """Hidden activation: ``"relu"``, ``"tanh"`` or ``"gelu"``."""
    loss: str = "huber"
    """TD loss: ``"huber"`` (smooth L1) or ``"mse"``."""
    max_grad_norm: float = 10.0
    """Clip of the global gradient norm (``<= 0`` disables it)."""
    n_step: int = 1
    """Rewards summed per target (``gamma ** k`` bootstraps after ``k <= n_step`` steps)."""
    prioritized: bool = False
    """Prioritized replay (proportional, sum-tree) with importance weights."""
    per_alpha: float = 0.6
    """Priority exponent of prioritized replay."""
    per_beta: float = 0.4
    """Importance-weight exponent at the start (annealed to ``per_beta_end``)."""
    per_beta_end: float = 1.0
    """Importance-weight exponent at the end of the run."""
    her_strategy: str = "none"
    """Hindsight relabelling on goal envs: ``"none"``, ``"future"``, ``"final"`` or
    ``"episode"`` (see :mod:`fugu.buffers.her`)."""
    her_k: int = 4
    """Relabelled goals per real one (a fraction ``k / (k + 1)`` of each batch)."""
    checkpoint_replay: bool = True
    """Save the replay ring in checkpoints (without it, resume refills it first)."""
    seed: int = 0
    """Seed of the exploration generator."""

    def __post_init__(self) -> None:
        check_replay_config(self, "DQNConfig")
        if self.lr_schedule not in SCHEDULES:
            raise APIUsageError(f"DQNConfig.lr_schedule must be one of {SCHEDULES}")
        if not 0.0 < self.tau <= 1.0:
            raise APIUsageError(f"DQNConfig.tau must lie in (0, 1], got {self.tau}")
        if self.target_update_interval < 1:
            raise APIUsageError("DQNConfig.target_update_interval must be >= 1")
        if self.loss not in ("huber", "mse"):
            raise APIUsageError(f"DQNConfig.loss must be 'huber' or 'mse', got {self.loss!r}")
        if not 0.0 <= self.exploration_fraction <= 1.0:
            raise APIUsageError("DQNConfig.exploration_fraction must lie in [0, 1]")


def epsilon_at(config: DQNConfig, progress: float) -> float:
    """Epsilon at training ``progress``: linear from the initial to the final value over
    ``exploration_fraction`` of the run, then constant.

    Example:
        >>> cfg = DQNConfig(exploration_fraction=0.5, exploration_final_eps=0.0)
        >>> epsilon_at(cfg, 0.0), epsilon_at(cfg, 0.25), epsilon_at(cfg, 0.9)
        (1.0, 0.5, 0.0)
    """
    if config.exploration_fraction <= 0:
        return config.exploration_final_eps
    frac = min(max(progress, 0.0) / config.exploration_fraction, 1.0)
    start, end = config.exploration_initial_eps, config.exploration_final_eps
    return start + frac * (end - start)


class QNetwork(nn.Module):
    """Action values ``[B, num_actions]`` of flat observations, optionally with a dueling head.

    Args:
        obs_size: Values per observation (observations are flattened).
        num_actions: Discrete actions.
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
        dueling: Separate value and advantage streams after the trunk.
    """

    def __init__(
        self,
        obs_size: int,
        num_actions: int,
        hidden_sizes: tuple[int, ...],
        activation: str,
        dueling: bool,
    ) -> None:
        super().__init__()
        self.dueling = dueling
        if dueling:
            if not hidden_sizes:
                raise APIUsageError("a dueling Q-network needs at least one hidden layer")
            trunk = mlp(obs_size, hidden_sizes[:-1], hidden_sizes[-1], activation)
            self.trunk = nn.Sequential(trunk, ACTIVATIONS[activation]())
            self.value = nn.Linear(hidden_sizes[-1], 1)
            self.advantage = nn.Linear(hidden_sizes[-1], num_actions)
        else:
            self.q = mlp(obs_size, hidden_sizes, num_actions, activation)

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values of ``obs [B, ...]``."""
        x = obs.reshape(obs.shape[0], -1).float()
        if not self.dueling:
            return self.q(x)  # type: ignore[no-any-return]
        h = self.trunk(x)
        adv = self.advantage(h)
        return self.value(h) + adv - adv.mean(-1, keepdim=True)  # type: ignore[no-any-return]


class DQN(ReplayAlgorithm):
    """Deep Q-learning on Discrete (optionally action-masked) actions.

    Args:
        q_network: The online Q-network (its target copy is made here).
        config: Hyperparameters.
        device: Where the networks and the update run.
    """

    name: ClassVar[str] = "dqn"
    config_type: ClassVar[type] = DQNConfig
    collection: ClassVar[Collection] = "replay"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete",)
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/td",
        "loss/q_mean",
        "train/epsilon",
        "train/replay_size",
        "train/learning_rate",
    )

    def __init__(
        self,
        q_network: QNetwork,
        config: DQNConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config = config or DQNConfig()
        self.device = torch.device(device)
        self.q = q_network.to(self.device)
        self.q_target = copy.deepcopy(self.q)  # never in an optimizer; used under no_grad
        self.optimizer = Optimizer(
            self.q.parameters(),
            learning_rate=config.learning_rate,
            lr_schedule=config.lr_schedule,
            max_grad_norm=config.max_grad_norm,
            device=self.device,
            foreach=True,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.num_updates = 0
        self.progress = 0.0
        self.replay: ReplayBuffer | None = None

    @classmethod
    def build(
        cls,
        config: DQNConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> DQN:
        """A DQN with a new Q-network for these spaces (``[dqn]`` sets its architecture;
        the ``[policy]`` section is not used)."""
        check_action_space(cls, action_space)
        assert isinstance(action_space, spaces.Discrete)
        net = QNetwork(
            flat_size(observation_space.shape),
            int(action_space.n),
            tuple(config.hidden_sizes),
            config.activation,
            config.dueling,
        )
        return cls(net, config, device)

    # -- the protocol -----------------------------------------------------------------------
    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """The env's ``action_masks`` when it declares them."""
        return {"action_masks": env_fields["action_masks"]} if "action_masks" in env_fields else {}

    def modules(self) -> dict[str, nn.Module]:
        """``{"q": online network, "q_target": target network}``."""
        return {"q": self.q, "q_target": self.q_target}

    @property
    def epsilon(self) -> float:
        """Exploration rate at the progress of the last update."""
        return epsilon_at(self.config, self.progress)

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Greedy actions, replaced by uniformly random legal ones with probability epsilon
        (never when ``deterministic``); ``action_masks`` (false: illegal) are respected."""
        masks = extras.get("action_masks")
        with torch.inference_mode():
            q = self.q(obs.to(self.device))
            if masks is not None:
                masks = masks.to(self.device)
                q = q.masked_fill(~masks, float("-inf"))
            actions = q.argmax(-1)
            if not deterministic and self.epsilon > 0:
                n = len(obs)
                explore = torch.rand(n, generator=self.generator, device=self.device)
                explore = explore < self.epsilon
                if masks is None:
                    random = torch.randint(
                        0, q.shape[-1], (n,), generator=self.generator, device=self.device
                    )
                else:
                    random = torch.multinomial(masks.float(), 1, generator=self.generator)
                    random = random.squeeze(-1)
                actions = torch.where(explore, random, actions)
        return ActOutput(actions, {}, state)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Greedy values ``max_a Q(obs, a)`` (the trainer does not call it for replay)."""
        with torch.inference_mode():
            return self.q(obs.to(self.device)).max(-1).values

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """One gradient step on a sampled batch; updates the target network on schedule."""
        c = self.config
        self.progress = progress
        lr = self.optimizer.set_progress(progress)
        if self.replay is not None:
            self.replay.progress = progress
        obs, nxt = batch["observations"], batch["next_observations"]
        actions = batch["actions"].long().reshape(-1, 1)
        n = obs.shape[0]
        if c.double_q:  # one forward of the online network over s and s'
            q_both = self.q(torch.cat([obs, nxt]))
            q_all, q_online_next = q_both[:n], q_both[n:].detach()
        else:
            q_all = self.q(obs)
        with torch.no_grad():
            q_next_target = self.q_target(nxt)
            if c.double_q:
                next_actions = q_online_next.argmax(-1, keepdim=True)
                q_next = q_next_target.gather(-1, next_actions).squeeze(-1)
            else:
                q_next = q_next_target.max(-1).values
            not_done = (~batch["terminals"]).float()
            target = batch["rewards"].float() + discounts(batch, c.gamma) * not_done * q_next
        q = q_all.gather(-1, actions).squeeze(-1)
        td = q - target
        if c.loss == "huber":
            per_sample = F.smooth_l1_loss(q, target, reduction="none")
        else:
            per_sample = td.pow(2)
        if "weights" in batch:
            loss = (per_sample * batch["weights"]).mean()
        else:
            loss = per_sample.mean()
        self.optimizer.backward(loss)
        self.optimizer.step()
        if self.replay is not None and "indices" in batch.info:
            self.replay.update_priorities(batch.info["indices"], td.detach())
        self.num_updates += 1
        if self.num_updates % c.target_update_interval == 0:
            polyak_update(self.q_target, self.q, c.tau)
        return {
            "loss/td": float(loss.detach()),
            "loss/q_mean": float(q.detach().mean()),
            "train/epsilon": self.epsilon,
            "train/learning_rate": lr,
        }

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, exploration generator, update count and progress."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
            "progress": self.progress,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])
        self.progress = float(state["progress"])
