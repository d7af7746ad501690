"""Decision Transformer: offline RL as return-conditioned sequence modelling.

Read top to bottom: :class:`DTConfig` (every knob), the model (:class:`DecisionTransformer`: a
small GPT over interleaved return-to-go, state and action tokens with a learned embedding of
each step's timestep), then :class:`DT`, an ``offline`` :class:`~fugu.algos.base.Algorithm`.

Training: context windows of ``context_length`` steps (:func:`fugu.data.sample_windows`, never
crossing episodes, left-padded) are embedded as ``R_1, s_1, a_1, ..., R_K, s_K, a_K``; a causal
transformer reads them and the output at each state token predicts that step's action
(cross-entropy for Discrete actions, mean squared error on ``[-1, 1]``-scaled Box actions).
Padded positions are masked out of attention and of the loss.

Inference is return-conditioned: each row starts an episode with the target return
(``target_return``, by default the best return in the dataset; ``fugu eval --target-return R``
sets it), acts on its last ``context_length`` steps, and subtracts every reward it receives
(:meth:`DT.observe_rewards`) from the return still to go.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from fugu.algos.base import ActOutput, Collection, action_space_kind, check_action_space
from fugu.algos.offline import DatasetStats, OfflineAlgorithm
from fugu.buffers import Batch, PolicyState
from fugu.core.errors import APIUsageError
from fugu.data import TrajectoryDataset, sample_windows
from fugu.models.policy import PolicyConfig

__all__ = ["DT", "DTConfig", "DecisionTransformer"]


@dataclass(frozen=True)
class DTConfig:
    """Hyperparameters of the Decision Transformer.

    Example:
        >>> DTConfig(context_length=10).context_length
        10
    """

    dataset: str = ""
    """The dataset directory (written by ``fugu collect``); ``fugu train --dataset`` sets it."""
    context_length: int = 20
    """Steps per context window (each step is three tokens)."""
    batch_size: int = 64
    """Windows per gradient step."""
    embed_dim: int = 64
    """Width of the token embeddings and the transformer."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 2
    """Attention heads per block (must divide ``embed_dim``)."""
    learning_rate: float = 1e-3
    """AdamW step size after warm-up."""
    warmup_updates: int = 100
    """Updates over which the learning rate rises linearly from 0."""
    weight_decay: float = 1e-4
    """AdamW's decoupled weight decay."""
    max_grad_norm: float = 0.25
    """Clip of the global gradient norm (``<= 0`` disables it)."""
    max_timestep: int = 1024
    """Size of the timestep embedding (later steps share the last one)."""
    rtg_scale: float = 0.0
    """Returns-to-go are divided by it (``0``: the largest absolute episode return)."""
    target_return: float | None = None
    """The return asked for at inference (``None``: the dataset's best episode return)."""
    seed: int = 0
    """Seed of the window sampler and of action sampling."""

    def __post_init__(self) -> None:
        if self.context_length < 1 or self.batch_size < 1 or self.num_layers < 1:
            raise APIUsageError("DTConfig.context_length, batch_size, num_layers must be >= 1")
        if self.embed_dim < 1 or self.num_heads < 1 or self.embed_dim % self.num_heads:
            raise APIUsageError(
                f"DTConfig.num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})"
            )
        if self.max_timestep < 1 or self.rtg_scale < 0 or self.warmup_updates < 0:
            raise APIUsageError(
                "DTConfig.max_timestep must be >= 1, rtg_scale and warmup_updates >= 0"
            )


class _Block(nn.Module):
    """Pre-norm transformer block: masked self-attention and a GELU MLP, both residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(dim, dim=-1)
        shape = (b, length, self.heads, dim // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, length, dim))
        return x + self.mlp(self.norm2(x))


class DecisionTransformer(nn.Module):
    """A causal transformer over ``(R_t, s_t, a_t)`` tokens that predicts ``a_t`` from ``s_t``.

    Args:
        obs_dim: Flat observation size.
        action_dim: Discrete: number of actions; Box: flat action size.
        discrete: Whether actions are Discrete (embedded by index, predicted as logits).
        config: Sizes (``embed_dim``, ``num_layers``, ``num_heads``, ``max_timestep``).
    """

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, config: DTConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.discrete = discrete
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.max_timestep = config.max_timestep
        self.embed_rtg = nn.Linear(1, dim)
        self.embed_obs = nn.Linear(obs_dim, dim)
        self.embed_action: nn.Module = (
            nn.Embedding(action_dim, dim) if discrete else nn.Linear(action_dim, dim)
        )
        self.embed_time = nn.Embedding(config.max_timestep, dim)
        self.embed_norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(_Block(dim, config.num_heads) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, action_dim)

    def forward(
        self, rtg: Tensor, obs: Tensor, actions: Tensor, timesteps: Tensor, masks: Tensor
    ) -> Tensor:
        """Action predictions ``[B, K, action_dim]`` (logits, or ``tanh`` means in [-1, 1]).

        Args:
            rtg: ``[B, K]`` scaled returns-to-go.
            obs: ``[B, K, obs_dim]`` normalised observations.
            actions: ``[B, K]`` int64 indices or ``[B, K, action_dim]`` unit-scaled actions.
            timesteps: ``[B, K]`` int64 step within the episode.
            masks: ``[B, K]`` bool, false on padding.
        """
        b, k = rtg.shape
        time = self.embed_time(timesteps.clamp(0, self.max_timestep - 1))
        tokens = torch.stack(
            [
                self.embed_rtg(rtg.unsqueeze(-1)) + time,
                self.embed_obs(obs) + time,
                self.embed_action(actions) + time,
            ],
            dim=2,
        ).reshape(b, 3 * k, -1)
        x = self.embed_norm(tokens)
        valid = masks.repeat_interleave(3, dim=1)  # [B, 3K]
        causal = torch.ones(3 * k, 3 * k, dtype=torch.bool, device=x.device).tril()
        eye = torch.eye(3 * k, dtype=torch.bool, device=x.device)
        allowed = (causal & valid[:, None, :]) | eye  # a padded query attends to itself only
        allowed = allowed[:, None]  # [B, 1, 3K, 3K], shared by the heads
        for block in self.blocks:
            x = block(x, allowed)
        state_tokens = self.final_norm(x.reshape(b, k, 3, -1)[:, :, 1])
        out = self.head(state_tokens)
        return out if self.discrete else torch.tanh(out)


class DT(OfflineAlgorithm):
    """The Decision Transformer as an ``offline`` algorithm (Discrete or Box actions).

    Args:
        model: The transformer.
        stats: Observation and action statistics (fitted on the dataset, saved with weights).
        config: Hyperparameters.
        action_space: The env's single action space.
        device: Where it runs.
    """

    name: ClassVar[str] = "dt"
    config_type: ClassVar[type] = DTConfig
    collection: ClassVar[Collection] = "offline"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "box")
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/action",
        "train/learning_rate",
        "train/target_return",
    )
    config: DTConfig

    def __init__(
        self,
        model: DecisionTransformer,
        stats: DatasetStats,
        config: DTConfig,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model = model
        super().__init__(config, model, stats, observation_space, action_space, device)
        if config.target_return is not None:
            self.stats.target_return.fill_(config.target_return)

    @classmethod
    def build(
        cls,
        config: DTConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> DT:
        """A new Decision Transformer for these spaces (``[dt]`` sets its size; ``[policy]``
        is not used)."""
        check_action_space(cls, action_space)
        obs_dim = int(np.prod(observation_space.shape))
        if action_space_kind(action_space) == "discrete":
            assert isinstance(action_space, spaces.Discrete)
            action_dim, discrete = int(action_space.n), True
        else:
            action_dim, discrete = int(np.prod(action_space.shape)), False
        model = DecisionTransformer(obs_dim, action_dim, discrete, config)
        stats = DatasetStats(obs_dim, action_space)
        return cls(model, stats, config, observation_space, action_space, device)

    # -- data -------------------------------------------------------------------------------
    def fit_stats(self, data: TrajectoryDataset) -> None:
        """Observation statistics, return-to-go scale and default target from ``data``."""
        self.stats.fit(data)
        returns = data.episode_returns
        scale = self.config.rtg_scale or max(float(np.abs(returns).max()), 1.0)
        self.stats.rtg_scale.fill_(scale)
        if self.config.target_return is None:
            self.stats.target_return.fill_(float(returns.max()))

    def batches(self, data: TrajectoryDataset) -> Iterator[Batch]:
        """Fit the statistics on ``data`` and sample its windows forever."""
        self.fit_stats(data)
        scale = float(self.stats.rtg_scale)
        while True:
            windows = sample_windows(
                data, self.config.batch_size, self.config.context_length, self.np_generator,
                rtg_scale=scale,
            )  # fmt: skip
            yield Batch({k: torch.from_numpy(v).to(self.device) for k, v in windows.items()})

    # -- model inputs -----------------------------------------------------------------------
    def _encode_actions(self, actions: Tensor) -> Tensor:
        if self.discrete:
            return self.action_indices(actions).reshape(actions.shape[:2])
        return self.stats.actions_to_unit(actions.reshape(*actions.shape[:2], -1))

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """One gradient step on a batch of windows (masked action loss)."""
        warm = self.config.warmup_updates
        lr = self.config.learning_rate * min(1.0, (self.num_updates + 1) / max(warm, 1))
        for group in self.optimizer.optimizer.param_groups:
            group["lr"] = lr
        masks = batch["masks"]
        actions = self._encode_actions(batch["actions"])
        preds = self.model(
            batch["returns_to_go"],
            self.stats.normalize(batch["observations"]),
            actions,
            batch["timesteps"],
            masks,
        )
        if self.discrete:
            loss = F.cross_entropy(preds[masks], actions[masks])
        else:
            loss = (preds[masks] - actions[masks]).pow(2).mean()
        self.gradient_step(loss)
        return {
            "loss/action": float(loss.detach()),
            "train/learning_rate": lr,
            "train/target_return": float(self.stats.target_return),
        }

    # -- acting -----------------------------------------------------------------------------
    @property
    def target_return(self) -> float:
        """The return each new episode asks for."""
        return float(self.stats.target_return)

    def set_target_return(self, value: float) -> None:
        """Ask for ``value`` in every episode that starts from now on."""
        if not math.isfinite(value):
            raise APIUsageError(f"target return must be finite, got {value}")
        self.stats.target_return.fill_(float(value))

    def initial_state(self, num_rows: int) -> dict[str, Tensor]:  # type: ignore[override]
        """Empty contexts, the target return to go, timestep 0."""
        k, d = self.config.context_length, self.model.obs_dim
        dev = self.device
        act_shape: tuple[int, ...] = () if self.discrete else (self.model.action_dim,)
        return {
            "rtg": torch.zeros(num_rows, k, device=dev),
            "obs": torch.zeros(num_rows, k, d, device=dev),
            "actions": torch.zeros(
                num_rows, k, *act_shape, device=dev, dtype=torch.long if self.discrete else None
            ),
            "timesteps": torch.zeros(num_rows, k, dtype=torch.long, device=dev),
            "masks": torch.zeros(num_rows, k, dtype=torch.bool, device=dev),
            "to_go": torch.full((num_rows,), self.target_return, device=dev),
            "step": torch.zeros(num_rows, dtype=torch.long, device=dev),
        }

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """Rows that start an episode: empty context, the target return, timestep 0."""
        starts = starts.to(self.device).bool()
        state = {k: v.clone() for k, v in state.items()}
        state["masks"][starts] = False
        state["to_go"][starts] = self.target_return
        state["step"][starts] = 0
        return state

    def observe_rewards(self, rewards: Tensor, state: PolicyState) -> PolicyState:
        """Subtract each row's reward from its return to go and advance its timestep."""
        state = dict(state)
        state["to_go"] = state["to_go"] - rewards.to(self.device).float()
        state["step"] = state["step"] + 1
        return state

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """The next action of every row, conditioned on its context and return to go."""
        if state is None:
            state = self.initial_state(obs.shape[0])
        with torch.inference_mode():
            s = {k: torch.roll(v, -1, dims=1) if v.ndim > 1 else v for k, v in state.items()}
            s = {k: v.clone() for k, v in s.items()}
            s["rtg"][:, -1] = s["to_go"] / self.stats.rtg_scale
            s["obs"][:, -1] = self.stats.normalize(obs.to(self.device))
            s["actions"][:, -1] = 0
            s["timesteps"][:, -1] = s["step"]
            s["masks"][:, -1] = True
            preds = self.model(s["rtg"], s["obs"], s["actions"], s["timesteps"], s["masks"])
            last = preds[:, -1]
            if self.discrete:
                index, actions = self.discrete_actions(last, extras, deterministic)
                s["actions"][:, -1] = index
            else:
                s["actions"][:, -1] = last
                actions = self.box_actions(last)
        return ActOutput(actions, {}, s)

    # -- state ------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The transformer and the dataset statistics (with the target return)."""
        return {"model": self.model, "stats": self.stats}
