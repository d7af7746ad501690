"""Actor-critic policies: MLP, CNN and LSTM cores over a shared trunk with fused heads.

A :class:`Policy` maps observations to distribution parameters and values.
``forward_eval(obs, state)`` serves rollouts (one step, ``obs [B, *obs_shape]``);
``forward_train(obs, state)`` serves updates (for recurrent policies ``obs [B, T, *obs_shape]``
with the episode starts in the state, see :meth:`Policy.forward_train`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.nn import functional as F

from fugu.core.errors import APIUsageError
from fugu.models.distributions import (
    ActionDistribution,
    DistParams,
    GaussianDistribution,
    make_distribution,
)
from fugu.models.normalize import RunningNorm
from fugu.ops.activations import fast_tanh

__all__ = ["Policy", "PolicyConfig", "PolicyState", "make_policy"]

PolicyState = Any
"""Recurrent state: ``None`` for feed-forward policies, ``(h, c)`` for LSTM ones."""

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of a policy.

    Example:
        >>> PolicyConfig(kind="lstm", hidden_size=32).kind
        'lstm'
    """

    kind: str = "mlp"
    """``"mlp"``, ``"cnn"`` (observations ``[C, H, W]``) or ``"lstm"`` (an MLP or CNN encoder,
    chosen by the observation rank, followed by an LSTM core)."""
    hidden_size: int = 64
    """Width of hidden layers, of the CNN's last layer and of the LSTM state."""
    num_layers: int = 2
    """Hidden layers of the MLP encoder."""
    activation: str = "tanh"
    """``"tanh"`` (computed as ``2 sigmoid(2x) - 1`` in MLPs, faster on CPU), ``"relu"`` or
    ``"gelu"``."""
    cnn_channels: tuple[int, ...] = (32, 64, 64)
    """Channels of the convolutions (Nature-CNN strides for images of side >= 36, else 3x3
    stride-1 convolutions)."""
    obs_scale: float | None = None
    """Multiply observations by this before encoding; ``None``: ``1/255`` for uint8, else 1."""
    init_log_std: float = 0.0
    """Initial log standard deviation of Box actions."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt(2) hidden, 0.01 actor, 1 critic)."""
    separate_critic: bool = False
    """Give the critic its own encoder (MLP or CNN policies): actor and critic share no
    weights, so value gradients never move the policy's features."""
    norm_obs: bool = False
    """Normalise observations by running mean and std (after ``obs_scale``); the statistics
    are buffers of the policy, so checkpoints, ``fugu eval`` and exports carry them. The
    algorithm updates them (PPO: after each update, from the rollout's live samples)."""
    obs_clip: float = 10.0
    """Clip normalised observations to ``[-obs_clip, obs_clip]`` (with ``norm_obs``)."""

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "cnn", "lstm"):
            raise APIUsageError(
                f"PolicyConfig.kind must be 'mlp', 'cnn' or 'lstm', got {self.kind!r}"
            )
        if self.activation not in _ACTIVATIONS:
            raise APIUsageError(
                f"PolicyConfig.activation must be one of {sorted(_ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        if self.hidden_size < 1 or self.num_layers < 0:
            raise APIUsageError("PolicyConfig needs hidden_size >= 1 and num_layers >= 0")
        if self.separate_critic and self.kind == "lstm":
            raise APIUsageError(
                "PolicyConfig.separate_critic is for 'mlp' and 'cnn' policies; an LSTM policy "
                "shares its core between actor and critic"
            )
        if self.obs_clip <= 0:
            raise APIUsageError("PolicyConfig.obs_clip must be > 0")


class Policy(nn.Module):
    """An actor-critic: encoder, optional LSTM core, and one fused actor+critic head (or, with
    ``separate_critic``, an actor and a critic that share nothing).

    Build with :func:`make_policy`. ``distribution`` samples and scores the head's parameters.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        config: PolicyConfig,
    ) -> None:
        super().__init__()
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.distribution: ActionDistribution = make_distribution(action_space)
        obs_shape = tuple(observation_space.shape)
        scale = config.obs_scale
        if scale is None:
            scale = 1.0 / 255.0 if observation_space.dtype == np.uint8 else 1.0
        self.obs_scale = float(scale)
        act = _ACTIVATIONS[config.activation]
        use_cnn = config.kind == "cnn" or (config.kind == "lstm" and len(obs_shape) == 3)
        if use_cnn and len(obs_shape) != 3:
            raise APIUsageError(f"a CNN policy needs [C, H, W] observations, got shape {obs_shape}")

        def make_encoder() -> tuple[nn.Module, int]:
            if use_cnn:
                return _cnn(obs_shape, config, act)
            return _mlp(int(np.prod(obs_shape)), config, act)

        self.encoder, width = make_encoder()
        self.critic_encoder: nn.Module | None = None
        if config.separate_critic:
            self.critic_encoder, _ = make_encoder()
        self.obs_norm: RunningNorm | None = None
        if config.norm_obs:
            self.obs_norm = RunningNorm(obs_shape, clip=config.obs_clip)
        self.obs_ndim = len(obs_shape)
        self._act_fn = {"tanh": fast_tanh, "relu": torch.relu, "gelu": F.gelu}[config.activation]
        self._mlp_layers: list[nn.Linear] | None = None
        self._critic_layers: list[nn.Linear] | None = None
        if not use_cnn:
            self._mlp_layers = [m for m in self.encoder.modules() if isinstance(m, nn.Linear)]
            if self.critic_encoder is not None:
                self._critic_layers = [
                    m for m in self.critic_encoder.modules() if isinstance(m, nn.Linear)
                ]
        self.lstm: nn.LSTMCell | None = None
        if config.kind == "lstm":
            self.lstm = nn.LSTMCell(width, config.hidden_size)
            width = config.hidden_size
        self.num_params = self.distribution.num_params
        self.head = nn.Linear(width, self.num_params + 1)
        self.log_std: nn.Parameter | None = None
        if isinstance(self.distribution, GaussianDistribution):
            shape = self.distribution.action_shape
            self.log_std = nn.Parameter(torch.full(shape, float(config.init_log_std)))
        if config.ortho_init:
            self._init_weights()

    def _init_weights(self) -> None:
        encoders = [self.encoder, *([self.critic_encoder] if self.critic_encoder else [])]
        for encoder in encoders:
            for module in encoder.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.init.orthogonal_(module.weight, math.sqrt(2.0))
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
        with torch.no_grad():
            nn.init.orthogonal_(self.head.weight[: self.num_params], 0.01)
            nn.init.orthogonal_(self.head.weight[self.num_params :], 1.0)
            nn.init.zeros_(self.head.bias)

    @property
    def is_recurrent(self) -> bool:
        """Whether the policy carries state between steps."""
        return self.lstm is not None

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> PolicyState:
        """Zero state for ``batch_size`` rows (``None`` for feed-forward policies)."""
        if self.lstm is None:
            return None
        size = (batch_size, self.lstm.hidden_size)
        return (torch.zeros(size, device=device), torch.zeros(size, device=device))

    @staticmethod
    def reset_state(state: PolicyState, starts: Tensor) -> PolicyState:
        """Zero the state of rows whose episode starts now (``starts [B]`` bool)."""
        if state is None:
            return None
        keep = (~starts).to(state[0].dtype).unsqueeze(-1)
        return (state[0] * keep, state[1] * keep)

    def preprocess(self, obs: Tensor) -> Tensor:
        """Observations as the encoders see them: float32, scaled, normalised if configured."""
        x = obs.float() if obs.dtype != torch.float32 else obs
        if self.obs_scale != 1.0:
            x = x * self.obs_scale
        if self.obs_norm is not None:
            x = self.obs_norm(x)
        return x

    @torch.no_grad()
    def update_obs_norm(self, obs: Tensor) -> None:
        """Merge observations ``[n, *obs_shape]`` into the running statistics (if any)."""
        if self.obs_norm is not None:
            x = obs.float() * self.obs_scale if self.obs_scale != 1.0 else obs.float()
            self.obs_norm.update(x)

    def _run_encoder(self, x: Tensor, encoder: nn.Module, layers: list[nn.Linear] | None) -> Tensor:
        if layers is not None:  # fast path: no module-call overhead
            x = x.reshape(x.shape[0], -1)
            for layer in layers:
                x = self._act_fn(F.linear(x, layer.weight, layer.bias))
            return x
        return encoder(x)  # type: ignore[no-any-return]

    def encode(self, obs: Tensor) -> Tensor:
        """Observations ``[B, *obs_shape]`` to features ``[B, width]``."""
        return self._run_encoder(self.preprocess(obs), self.encoder, self._mlp_layers)

    def decode(
        self, hidden: Tensor, critic_hidden: Tensor | None = None
    ) -> tuple[DistParams, Tensor]:
        """Features to ``(distribution parameters, values [B])``; with a separate critic the
        values come from ``critic_hidden``."""
        if critic_hidden is None:
            out = F.linear(hidden, self.head.weight, self.head.bias)
            params, values = out[:, : self.num_params], out[:, self.num_params]
        else:
            n = self.num_params
            params = F.linear(hidden, self.head.weight[:n], self.head.bias[:n])
            values = F.linear(critic_hidden, self.head.weight[n:], self.head.bias[n:])[:, 0]
        if self.log_std is not None:
            return (params, self.log_std), values
        return params, values

    def _critic_features(self, x: Tensor) -> Tensor | None:
        """The separate critic's features of preprocessed observations (``None`` if shared)."""
        if self.critic_encoder is None:
            return None
        return self._run_encoder(x, self.critic_encoder, self._critic_layers)

    def forward_eval(
        self, obs: Tensor, state: PolicyState = None
    ) -> tuple[DistParams, Tensor, PolicyState]:
        """One step: ``obs [B, *obs_shape]`` -> ``(params, values [B], state)``.

        Recurrent policies take the state of the previous step, already reset where episodes
        started (:meth:`reset_state`); ``None`` means zeros.
        """
        x = self.preprocess(obs)
        hidden = self._run_encoder(x, self.encoder, self._mlp_layers)
        if self.lstm is not None:
            if state is None:
                state = self.initial_state(obs.shape[0], obs.device)
            h, c = self.lstm(hidden, state)
            state = (h, c)
            hidden = h
        params, values = self.decode(hidden, self._critic_features(x))
        return params, values, state

    def forward_train(
        self, obs: Tensor, state: PolicyState = None, starts: Tensor | None = None
    ) -> tuple[DistParams, Tensor, PolicyState]:
        """The update pass.

        Feed-forward: same as :meth:`forward_eval` on a flat batch. Recurrent: ``obs [B, T,
        *obs_shape]`` sequences, ``state`` the state before their first step and ``starts [B, T]``
        flags steps that begin a new episode (the state is zeroed before them). Outputs are
        flattened to ``B * T`` rows in row-major ``(b, t)`` order.
        """
        if self.lstm is None:
            return self.forward_eval(obs, None)
        if obs.ndim != self.obs_ndim + 2:
            raise APIUsageError(
                "a recurrent policy's forward_train takes obs [B, T, *obs_shape]; "
                f"got shape {tuple(obs.shape)}"
            )
        batch, steps = obs.shape[:2]
        hidden = self.encode(obs.reshape(batch * steps, *obs.shape[2:])).reshape(batch, steps, -1)
        if state is None:
            state = self.initial_state(batch, obs.device)
        outputs = []
        for t in range(steps):
            if starts is not None:
                state = self.reset_state(state, starts[:, t])
            state = self.lstm(hidden[:, t], state)
            outputs.append(state[0])
        core = torch.stack(outputs, dim=1).reshape(batch * steps, -1)
        params, values = self.decode(core)
        return params, values, state


def _mlp(in_size: int, config: PolicyConfig, act: type[nn.Module]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_size
    for _ in range(config.num_layers):
        layers += [nn.Linear(width, config.hidden_size), act()]
        width = config.hidden_size
    return nn.Sequential(*layers), width


def _cnn(
    obs_shape: tuple[int, ...], config: PolicyConfig, act: type[nn.Module]
) -> tuple[nn.Module, int]:
    channels, height, width = obs_shape
    layers: list[nn.Module] = []
    in_ch = channels
    big = min(height, width) >= 36
    specs = [(8, 4, 0), (4, 2, 0), (3, 1, 0)] if big else [(3, 1, 1)] * 3
    for out_ch, (kernel, stride, pad) in zip(config.cnn_channels, specs):
        layers += [nn.Conv2d(in_ch, out_ch, kernel, stride, pad), act()]
        in_ch = out_ch
    layers.append(nn.Flatten())
    conv = nn.Sequential(*layers)
    with torch.no_grad():
        flat = int(conv(torch.zeros(1, *obs_shape)).shape[1])
    return nn.Sequential(conv, nn.Linear(flat, config.hidden_size), act()), config.hidden_size


def make_policy(
    observation_space: spaces.Space, action_space: spaces.Space, config: PolicyConfig | None = None
) -> Policy:
    """Build the policy described by ``config`` for one row's spaces.

    Args:
        observation_space: A ``Box`` (the env's ``single_observation_space``).
        action_space: ``Discrete``, ``MultiDiscrete`` or ``Box``.
        config: Architecture; defaults to a 64x64 tanh MLP.

    Returns:
        A :class:`Policy`.

    Example:
        >>> p = make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2))
        >>> logits, values, state = p.forward_eval(torch.zeros(3, 4))
        >>> logits.shape, values.shape, state
        (torch.Size([3, 2]), torch.Size([3]), None)
    """
    if not isinstance(observation_space, spaces.Box):
        raise APIUsageError(
            f"policies take a Box observation space, got {observation_space!r}; "
            "wrap structured spaces with fugu.core.emulation"
        )
    return Policy(observation_space, action_space, config or PolicyConfig())
