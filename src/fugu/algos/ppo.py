"""Proximal Policy Optimization (clipped surrogate), with V-trace-clipped advantages as an option.

Read top to bottom: :class:`PPOConfig` (every knob, documented), :class:`PPOBatch` (what a
rollout hands over), :class:`PPO` (``act`` for rollouts, ``update`` for learning, and the
state needed to resume exactly). The maths lives in :mod:`fugu.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fugu import ops
from fugu.core.errors import APIUsageError
from fugu.models.policy import Policy, PolicyState

__all__ = ["PPO", "PPOBatch", "PPOConfig"]

_SCHEDULES = ("constant", "linear", "cosine")
_AMP = ("none", "bf16", "fp16")


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of PPO.

    Example:
        >>> PPOConfig(learning_rate=1e-3).num_minibatches
        4
    """

    learning_rate: float = 2.5e-4
    """Adam step size at the start of training."""
    lr_schedule: str = "linear"
    """``"constant"``, ``"linear"`` (to 0 at the last update) or ``"cosine"`` (to 0)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE / V-trace trace decay."""
    vtrace_rho_clip: float | None = None
    """Clip of the importance ratios weighting TD errors; with ``vtrace_c_clip`` set, the
    advantages of epochs after the first are recomputed with the ratios of the previous epoch
    (V-trace-clipped GAE). ``None``: plain GAE computed once."""
    vtrace_c_clip: float | None = None
    """Clip of the importance ratios cutting the traces (V-trace's c-bar); see above."""
    clip_coef: float = 0.2
    """Clip range of the surrogate's probability ratio."""
    clip_vloss: bool = True
    """Clip value updates around the rollout's values (by ``clip_coef``)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Clip of the global gradient norm (``<= 0`` disables it)."""
    update_epochs: int = 4
    """Passes over the rollout per update."""
    num_minibatches: int = 4
    """Minibatches per epoch (sequences for recurrent policies, samples otherwise)."""
    max_minibatch_size: int | None = None
    """Largest chunk run through the network at once; bigger minibatches are split and their
    gradients accumulated (the step equals the full-minibatch step). ``None``: no split."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    target_kl: float | None = None
    """Stop the epochs of an update early once an epoch's approximate KL exceeds this."""
    amp: str = "none"
    """Mixed precision: ``"none"``, ``"bf16"`` (autocast, CPU and CUDA) or ``"fp16"`` (autocast
    with a gradient scaler, CUDA only)."""
    compile: bool = False
    """``torch.compile`` the policy's forward passes (slow to start; measure before enabling)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam betas."""
    weight_decay: float = 0.0
    """Adam(W) weight decay."""
    seed: int = 0
    """Seed of the generator that samples actions and shuffles minibatches."""

    def __post_init__(self) -> None:
        if self.lr_schedule not in _SCHEDULES:
            raise APIUsageError(
                f"PPOConfig.lr_schedule must be one of {_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if self.amp not in _AMP:
            raise APIUsageError(f"PPOConfig.amp must be one of {_AMP}, got {self.amp!r}")
        if self.update_epochs < 1 or self.num_minibatches < 1:
            raise APIUsageError("PPOConfig needs update_epochs >= 1 and num_minibatches >= 1")
        if (self.vtrace_rho_clip is None) != (self.vtrace_c_clip is None):
            raise APIUsageError(
                "set both vtrace_rho_clip and vtrace_c_clip (V-trace) or neither (plain GAE)"
            )
        if self.max_minibatch_size is not None and self.max_minibatch_size < 1:
            raise APIUsageError("PPOConfig.max_minibatch_size must be >= 1 or None")

    @property
    def uses_vtrace(self) -> bool:
        """Whether advantages are V-trace clipped."""
        return self.vtrace_rho_clip is not None


@dataclass
class PPOBatch:
    """One rollout, time-major ``[T, N, ...]`` (horizon by env rows).

    ``next_values[t, n]`` is the value of the state step ``t`` led to: the next step's value,
    the value of the final observation on truncated steps, anything on terminated ones (see
    :func:`fugu.ops.gae`). ``starts[t, n]`` flags steps whose observation begins an episode
    (recurrent policies reset their state there); ``initial_state`` is the recurrent state
    before step 0. ``masks`` (live agents: dead rows are left out of the losses; feed-forward
    policies only, recurrent ones train on every row) and ``action_masks`` (``[T, N, logits]``,
    false for illegal actions) are optional.
    """

    observations: Tensor
    actions: Tensor
    logprobs: Tensor
    values: Tensor
    rewards: Tensor
    terminals: Tensor
    truncations: Tensor
    next_values: Tensor
    starts: Tensor | None = None
    initial_state: PolicyState = None
    masks: Tensor | None = None
    action_masks: Tensor | None = None


class PPO:
    """PPO over a :class:`~fugu.models.Policy`.

    Args:
        policy: The policy to train (moved to ``device``).
        config: Hyperparameters.
        total_updates: Number of :meth:`update` calls planned (sets the learning-rate schedule).
        device: Where the policy and the update run.
    """

    def __init__(
        self,
        policy: Policy,
        config: PPOConfig | None = None,
        total_updates: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config = config or PPOConfig()
        self.device = torch.device(device)
        if config.amp == "fp16" and self.device.type != "cuda":
            raise APIUsageError(
                "amp='fp16' needs a CUDA device (it uses a gradient scaler); "
                "use amp='bf16' on CPU or amp='none'"
            )
        self.policy = policy.to(self.device)
        self.total_updates = max(int(total_updates), 1)
        self.optimizer = torch.optim.AdamW(
            self.policy.parameters(),
            lr=config.learning_rate,
            eps=config.adam_eps,
            betas=config.adam_betas,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16")
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self._cpu_generator = torch.Generator().manual_seed(config.seed + 1)
        self._autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
        self._forward_eval: Callable[..., Any] = self.policy.forward_eval
        self._forward_train: Callable[..., Any] = self.policy.forward_train
        if config.compile:
            self._forward_eval = torch.compile(self.policy.forward_eval)
            self._forward_train = torch.compile(self.policy.forward_train)
        self.num_updates = 0

    # -- schedules and precision ------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        progress = min(step / self.total_updates, 1.0)
        if self.config.lr_schedule == "linear":
            return 1.0 - progress
        if self.config.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    def _autocast(self) -> AbstractContextManager[Any]:
        if self._autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast_dtype)

    # -- acting -----------------------------------------------------------------------------
    def act(
        self, obs: Tensor, state: PolicyState = None, action_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, PolicyState]:
        """Sample actions for a batch of observations (under ``torch.inference_mode``).

        Args:
            obs: ``[B, *obs_shape]`` observations on the algorithm's device.
            state: Recurrent state (``None`` for feed-forward policies or zeros).
            action_mask: Optional ``[B, num_logits]`` bool, false for illegal actions.

        Returns:
            ``(actions, logprobs [B], values [B], state)``.
        """
        with torch.inference_mode(), self._autocast():
            params, values, state = self._forward_eval(obs, state)
            params = _to_float(params)
            dist = self.policy.distribution
            if action_mask is not None:
                params = dist.mask(params, action_mask)
            actions, logprobs = dist.sample_with_log_prob(params, self.generator)
        return actions, logprobs, values.float(), state

    def value(self, obs: Tensor, state: PolicyState = None) -> Tensor:
        """Values ``[B]`` of observations (inference mode), e.g. to bootstrap truncations."""
        with torch.inference_mode(), self._autocast():
            _, values, _ = self._forward_eval(obs, state)
        return values.float()

    # -- learning ---------------------------------------------------------------------------
    def advantages(self, batch: PPOBatch, ratios: Tensor | None = None) -> Tensor:
        """``[T, N]`` advantages of a batch (V-trace clipped when configured and ``ratios``)."""
        c = self.config
        args = (batch.rewards, batch.values, batch.next_values, batch.terminals, batch.truncations)
        if c.uses_vtrace and ratios is not None:
            assert c.vtrace_rho_clip is not None and c.vtrace_c_clip is not None
            return ops.vtrace(
                *args, ratios, c.gamma, c.gae_lambda, c.vtrace_rho_clip, c.vtrace_c_clip
            )
        return ops.gae(*args, c.gamma, c.gae_lambda)

    def update(self, batch: PPOBatch) -> dict[str, float]:
        """Run the PPO epochs over one rollout and step the learning-rate schedule.

        Returns:
            Metrics: ``loss/policy``, ``loss/value``, ``loss/entropy``, ``loss/approx_kl``,
            ``loss/clipfrac``, ``loss/explained_variance``, ``train/learning_rate``,
            ``train/epochs`` (run, fewer with ``target_kl``), ``train/grad_norm``.
        """
        c = self.config
        recurrent = self.policy.is_recurrent
        steps, rows = batch.rewards.shape
        with torch.no_grad():
            advantages = self.advantages(batch)
            returns = advantages + batch.values
        # Recurrent policies train on sequences: sequence-major [N, T, ...]. Feed-forward ones
        # flatten the time-major [T, N, ...] tensors to T * N samples (views, no copies).
        seq: dict[str, Tensor] = {
            "observations": batch.observations,
            "actions": batch.actions,
            "logprobs": batch.logprobs,
            "values": batch.values,
            "returns": returns,
            "advantages": advantages,
        }
        if batch.action_masks is not None:
            seq["action_masks"] = batch.action_masks
        if recurrent and batch.starts is not None:
            seq["starts"] = batch.starts
        if recurrent:
            seq = {k: v.transpose(0, 1) for k, v in seq.items()}
        else:
            seq = {k: v.reshape(steps * rows, *v.shape[2:]) for k, v in seq.items()}
        live: Tensor | None = None
        if batch.masks is not None and not recurrent:
            live = batch.masks.reshape(-1).nonzero().squeeze(-1)
        num_units = rows if recurrent else (rows * steps if live is None else int(live.numel()))
        mb_units = max(num_units // c.num_minibatches, 1)
        stats = torch.zeros(6, device=self.device)  # pg, v, ent, kl, clipfrac, count
        grad_norm = torch.zeros((), device=self.device)
        # V-trace: the learner's log-probabilities seen in the last epoch (ratio 1 where unseen).
        new_logprobs = seq["logprobs"].clone() if c.uses_vtrace else None
        epochs_run = 0
        for epoch in range(c.update_epochs):
            if epoch > 0 and new_logprobs is not None:
                ratios = torch.exp(new_logprobs - seq["logprobs"])
                with torch.no_grad():
                    if recurrent:
                        adv = self.advantages(batch, ratios.transpose(0, 1)).transpose(0, 1)
                    else:
                        adv = self.advantages(batch, ratios.reshape(steps, rows)).reshape(-1)
                seq["advantages"] = adv
            order = torch.randperm(num_units, generator=self._cpu_generator).to(self.device)
            if live is not None:
                order = live[order]
            epoch_kl = torch.zeros((), device=self.device)
            for start in range(0, num_units - mb_units + 1, mb_units):
                idx = order[start : start + mb_units]
                epoch_kl += self._minibatch(seq, idx, batch.initial_state, stats, new_logprobs)
                if c.max_grad_norm > 0:
                    self.scaler.unscale_(self.optimizer)
                    grad_norm = torch.nn.utils.clip_grad_norm_(
                        self.policy.parameters(), c.max_grad_norm
                    )
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            epochs_run += 1
            if c.target_kl is not None:
                per_mb = epoch_kl.item() / max(num_units // mb_units, 1)
                if per_mb > c.target_kl:
                    break
        learning_rate = float(self.optimizer.param_groups[0]["lr"])
        self.scheduler.step()
        self.num_updates += 1
        with torch.no_grad():
            explained = ops.explained_variance(batch.values.flatten(), returns.flatten())
        totals = (stats[:5] / stats[5].clamp(min=1)).tolist()
        return {
            "loss/policy": totals[0],
            "loss/value": totals[1],
            "loss/entropy": totals[2],
            "loss/approx_kl": totals[3],
            "loss/clipfrac": totals[4],
            "loss/explained_variance": float(explained),
            "train/learning_rate": learning_rate,
            "train/epochs": float(epochs_run),
            "train/grad_norm": float(grad_norm),
        }

    def _minibatch(
        self,
        seq: dict[str, Tensor],
        idx: Tensor,
        initial_state: PolicyState,
        stats: Tensor,
        new_logprobs: Tensor | None,
    ) -> Tensor:
        """Accumulate the gradients of one minibatch (split into chunks); returns its KL."""
        c = self.config
        recurrent = self.policy.is_recurrent
        adv_all = seq["advantages"][idx]
        if c.norm_adv:
            adv_all = ops.normalize_advantages(adv_all)
        size = int(idx.numel())
        chunk = size
        if c.max_minibatch_size is not None:
            chunk = c.max_minibatch_size
            if recurrent:  # chunks are whole sequences
                chunk = max(chunk // max(int(seq["logprobs"].shape[1]), 1), 1)
        kl_sum = torch.zeros((), device=self.device)
        for lo in range(0, size, chunk):
            part = idx[lo : lo + chunk]
            weight = part.numel() / size
            mb = {k: v[part] for k, v in seq.items()}
            adv = adv_all[lo : lo + chunk]
            state: PolicyState = None
            with self._autocast():
                if recurrent:
                    if initial_state is not None:
                        state = (initial_state[0][part], initial_state[1][part])
                    params, values, _ = self._forward_train(
                        mb["observations"], state, mb.get("starts")
                    )
                    mb = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()}
                    adv = adv.reshape(-1)
                else:
                    params, values, _ = self._forward_train(mb["observations"], None)
                params = _to_float(params)
                values = values.float()
                dist = self.policy.distribution
                if "action_masks" in mb:
                    params = dist.mask(params, mb["action_masks"])
                logprobs = dist.log_prob(params, mb["actions"])
                entropy = dist.entropy(params).mean()
                pg_loss = ops.ppo_policy_loss(logprobs, mb["logprobs"], adv, c.clip_coef)
                v_loss = ops.ppo_value_loss(
                    values, mb["values"], mb["returns"], c.clip_coef if c.clip_vloss else None
                )
                loss = pg_loss - c.ent_coef * entropy + c.vf_coef * v_loss
            self.scaler.scale(loss * weight).backward()
            with torch.no_grad():
                logratio = logprobs - mb["logprobs"]
                kl = ops.approx_kl(logratio)
                stats[0] += pg_loss.detach() * weight
                stats[1] += v_loss.detach() * weight
                stats[2] += entropy.detach() * weight
                stats[3] += kl * weight
                stats[4] += ops.clip_fraction(logratio, c.clip_coef) * weight
                kl_sum += kl * weight
                if new_logprobs is not None:
                    new_logprobs[part] = logprobs.detach().reshape(new_logprobs[part].shape)
        stats[5] += 1
        return kl_sum

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: policy, optimizer, scheduler, scaler, generators."""
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "cpu_generator": self._cpu_generator.get_state(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self._cpu_generator.set_state(state["cpu_generator"])
        self.num_updates = int(state["num_updates"])


def _to_float(params: Any) -> Any:
    if isinstance(params, tuple):
        return tuple(p.float() for p in params)
    return params.float()
