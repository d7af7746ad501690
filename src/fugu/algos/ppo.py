"""Proximal Policy Optimization (clipped surrogate), with V-trace-clipped advantages as an option.

Read top to bottom: :class:`PPOConfig` (every knob, documented), then :class:`PPO`, the first
implementation of :class:`~fugu.algos.base.Algorithm`: ``act`` for rollouts (respecting the
env's ``action_masks``), ``update`` for learning from a rollout
:class:`~fugu.buffers.Batch`, and the state needed to resume exactly. The maths lives in
:mod:`fugu.ops`; AMP, clipping, schedules and accumulation in
:class:`fugu.models.optim.Optimizer`.

Samples of rows that were not live (absent, dead or waiting agents: ``masks`` false) never
reach the losses, the advantage normalisation or the explained variance, for feed-forward and
recurrent policies alike; their advantages are computed around them (see :func:`fugu.ops.gae`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu import ops
from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.normalize import RunningNorm
from fugu.models.optim import AMP_MODES, SCHEDULES, Optimizer, maybe_compile
from fugu.models.outer import OuterOptimizer
from fugu.models.policy import Policy, PolicyConfig, PolicyState, make_policy

__all__ = ["PPO", "PPOConfig"]


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
    """``"constant"``, ``"linear"`` or ``"cosine"``: decays to 0 over the run's env steps
    (``train.total_timesteps``, counted in rows)."""
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
    norm_reward: bool = False
    """Scale rewards by the running std of each row's discounted return (reset at episode
    ends), as SB3's ``VecNormalize`` does; only the learner sees scaled rewards (episode
    returns stay the env's). The statistics are checkpointed with the weights."""
    clip_reward: float | None = None
    """Clip the (scaled) rewards the learner sees to ``[-clip_reward, clip_reward]``."""
    norm_value: bool = False
    """Learn values in normalised units: the critic's targets are the returns normalised by
    their running mean and std (updated after each update); values handed to GAE and to
    bootstrapping are denormalised."""
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
    outer_lr: float = 1.0
    """Outer-PPO: the update's parameter change (all epochs) is an outer gradient applied with
    this learning rate (:class:`~fugu.models.outer.OuterOptimizer`); ``1`` with no momentum is
    plain PPO."""
    outer_momentum: float = 0.0
    """Outer-PPO: momentum over successive outer gradients, in ``[0, 1)``."""
    outer_nesterov: bool = True
    """Outer-PPO: Nesterov (else heavy-ball) outer momentum."""
    outer_init_coef: float = 0.0
    """Outer-PPO: momentum-biased initialisation; each update's epochs start at
    ``theta - outer_init_coef * momentum`` (``0``: at ``theta``)."""

    def __post_init__(self) -> None:
        if not self.outer_lr > 0 or not 0.0 <= self.outer_momentum < 1.0:
            raise APIUsageError(
                "PPOConfig needs outer_lr > 0 and outer_momentum in [0, 1), got "
                f"{self.outer_lr}, {self.outer_momentum}"
            )
        if self.outer_init_coef < 0:
            raise APIUsageError(
                f"PPOConfig.outer_init_coef must be >= 0, got {self.outer_init_coef}"
            )
        if self.lr_schedule not in SCHEDULES:
            raise APIUsageError(
                f"PPOConfig.lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}"
            )
        if self.amp not in AMP_MODES:
            raise APIUsageError(f"PPOConfig.amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.update_epochs < 1 or self.num_minibatches < 1:
            raise APIUsageError("PPOConfig needs update_epochs >= 1 and num_minibatches >= 1")
        if (self.vtrace_rho_clip is None) != (self.vtrace_c_clip is None):
            raise APIUsageError(
                "set both vtrace_rho_clip and vtrace_c_clip (V-trace) or neither (plain GAE)"
            )
        if self.max_minibatch_size is not None and self.max_minibatch_size < 1:
            raise APIUsageError("PPOConfig.max_minibatch_size must be >= 1 or None")
        if self.clip_reward is not None and self.clip_reward <= 0:
            raise APIUsageError("PPOConfig.clip_reward must be > 0 or None")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
            raise APIUsageError(
                f"PPOConfig.gamma and gae_lambda must be in [0, 1], got gamma={self.gamma}, "
                f"gae_lambda={self.gae_lambda}"
            )
        if not self.learning_rate > 0 or self.clip_coef < 0 or self.max_grad_norm <= 0:
            raise APIUsageError(
                "PPOConfig needs learning_rate > 0, clip_coef >= 0 and max_grad_norm > 0, got "
                f"{self.learning_rate}, {self.clip_coef}, {self.max_grad_norm}"
            )

    @property
    def uses_vtrace(self) -> bool:
        """Whether advantages are V-trace clipped."""
        return self.vtrace_rho_clip is not None

    @property
    def uses_outer(self) -> bool:
        """Whether updates go through an outer optimiser (Outer-PPO)."""
        return self.outer_lr != 1.0 or self.outer_momentum != 0.0 or self.outer_init_coef != 0.0


class PPO:
    """Proximal Policy Optimization: clipped surrogate, GAE or V-trace, MLP, CNN or LSTM.

    Trains a :class:`~fugu.models.Policy` (actor and critic with a shared trunk).

    Args:
        policy: The policy to train (moved to ``device``).
        config: Hyperparameters.
        device: Where the policy and the update run.

    Example:
        >>> from fugu.models import make_policy
        >>> obs_space, act_space = spaces.Box(-1, 1, (4,)), spaces.Discrete(2)
        >>> algo = PPO(make_policy(obs_space, act_space))
        >>> out = algo.act(torch.zeros(3, 4), None, {})
        >>> out.actions.shape, sorted(out.fields)
        (torch.Size([3]), ['logprobs', 'values'])
    """

    name: ClassVar[str] = "ppo"
    config_type: ClassVar[type] = PPOConfig
    collection: ClassVar[Collection] = "rollout"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "multi_discrete", "box")
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/policy",
        "loss/value",
        "loss/entropy",
        "loss/approx_kl",
        "loss/clipfrac",
        "loss/explained_variance",
        "train/learning_rate",
    )

    def __init__(
        self,
        policy: Policy,
        config: PPOConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config = config or PPOConfig()
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.optimizer = Optimizer(
            self.policy.parameters(),
            learning_rate=config.learning_rate,
            lr_schedule=config.lr_schedule,
            adam_eps=config.adam_eps,
            adam_betas=config.adam_betas,
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            amp=config.amp,
            device=self.device,
        )
        self.outer: OuterOptimizer | None = None
        """Outer-PPO's optimiser over each update's parameter change (``None``: plain PPO)."""
        if config.uses_outer:
            self.outer = OuterOptimizer(
                self.policy.parameters(),
                lr=config.outer_lr,
                momentum=config.outer_momentum,
                nesterov=config.outer_nesterov,
                init_coef=config.outer_init_coef,
            )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self._cpu_generator = torch.Generator().manual_seed(config.seed + 1)
        self._forward_eval: Callable[..., Any] = maybe_compile(
            self.policy.forward_eval, config.compile
        )
        self._forward_train: Callable[..., Any] = maybe_compile(
            self.policy.forward_train, config.compile
        )
        self.num_updates = 0
        # Statistics of scaled rewards and normalised values: modules, so they are saved with
        # the weights. Statistics only change after an update (acting and learning from one
        # rollout see the same ones).
        self.reward_norm = (
            RunningNorm((), clip=None).to(self.device) if config.norm_reward else None
        )
        self.value_norm = RunningNorm((), clip=None).to(self.device) if config.norm_value else None
        self._discounted: Tensor | None = None  # per-row discounted return, for norm_reward

    @classmethod
    def build(
        cls,
        config: PPOConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> PPO:
        """A PPO with a new policy for these spaces (see :meth:`Algorithm.build`)."""
        check_action_space(cls, action_space)
        return cls(make_policy(observation_space, action_space, policy_config), config, device)

    # -- the protocol: storage, acting, bootstrapping ------------------------------------------
    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """``logprobs`` and ``values`` of the acting policy, and the env's ``action_masks``."""
        fields = {
            "logprobs": Field("logprobs", (), np.float32),
            "values": Field("values", (), np.float32),
        }
        if "action_masks" in env_fields:
            fields["action_masks"] = env_fields["action_masks"]
        return fields

    def modules(self) -> dict[str, nn.Module]:
        """``{"policy": policy}``, plus ``reward_norm`` / ``value_norm`` when configured."""
        modules: dict[str, nn.Module] = {"policy": self.policy}
        if self.reward_norm is not None:
            modules["reward_norm"] = self.reward_norm
        if self.value_norm is not None:
            modules["value_norm"] = self.value_norm
        return modules

    def initial_state(self, num_rows: int) -> PolicyState:
        """The policy's initial recurrent state (``None`` when feed-forward)."""
        return self.policy.initial_state(num_rows, self.device)

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """Zero the recurrent state of rows that start an episode."""
        return self.policy.reset_state(state, starts)

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Sample (or, ``deterministic``, take the mode of) actions under inference mode.

        Args:
            obs: ``[B, *obs_shape]`` observations on the algorithm's device.
            state: Recurrent state (``None`` for feed-forward policies).
            extras: The env's declared fields of these rows; ``action_masks`` (bool
                ``[B, num_logits]``, false for illegal actions) is respected.
            deterministic: Take the distribution's mode (evaluation).

        Returns:
            ``ActOutput(actions, {"logprobs": [B], "values": [B]}, state)``.
        """
        with torch.inference_mode(), self.optimizer.autocast():
            params, values, state = self._forward_eval(obs, state)
            params = _to_float(params)
            dist = self.policy.distribution
            action_masks = extras.get("action_masks")
            if action_masks is not None:
                params = dist.mask(params, action_masks.to(self.device))
            if deterministic:
                actions = dist.mode(params)
                logprobs = dist.log_prob(params, actions)
            else:
                actions, logprobs = dist.sample_with_log_prob(params, self.generator)
            values = self._denormalized(values.float())
        return ActOutput(actions, {"logprobs": logprobs, "values": values}, state)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Values ``[B]`` of observations (inference mode), e.g. to bootstrap truncations."""
        with torch.inference_mode(), self.optimizer.autocast():
            _, values, _ = self._forward_eval(obs, state)
            return self._denormalized(values.float())

    def _denormalized(self, values: Tensor) -> Tensor:
        return values if self.value_norm is None else self.value_norm.denormalize(values)

    def scaled_rewards(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The rewards the learner sees: scaled by the running std of the discounted return
        (``norm_reward``, statistics updated with this batch first) and clipped
        (``clip_reward``); the batch's own rewards otherwise."""
        c = self.config
        rewards = batch["rewards"]
        if self.reward_norm is not None:
            rows = rewards.shape[1]
            if self._discounted is None or self._discounted.shape[0] != rows:
                self._discounted = torch.zeros(rows, dtype=torch.float64, device=self.device)
            dones = batch["terminals"] | batch["truncations"]
            returns, self._discounted = ops.running_returns(
                rewards, dones, self._discounted, c.gamma
            )
            masks = batch.get("masks")
            self.reward_norm.update(returns[masks] if masks is not None else returns)
            rewards = rewards / self.reward_norm.std
        if c.clip_reward is not None:
            rewards = rewards.clamp(-c.clip_reward, c.clip_reward)
        return rewards

    value = bootstrap

    # -- learning ---------------------------------------------------------------------------
    def advantages(self, batch: Mapping[str, Tensor], ratios: Tensor | None = None) -> Tensor:
        """``[T, N]`` advantages of a batch (V-trace clipped when configured and ``ratios``)."""
        c = self.config
        masks = batch.get("masks")
        if masks is not None and bool(masks.all()):
            masks = None
        args = (
            batch["rewards"],
            batch["values"],
            batch["next_values"],
            batch["terminals"],
            batch["truncations"],
        )
        if c.uses_vtrace and ratios is not None:
            assert c.vtrace_rho_clip is not None and c.vtrace_c_clip is not None
            return ops.vtrace(
                *args, ratios, c.gamma, c.gae_lambda, c.vtrace_rho_clip, c.vtrace_c_clip,
                masks=masks,
            )  # fmt: skip
        return ops.gae(*args, c.gamma, c.gae_lambda, masks=masks)

    def policy_advantages(self, batch: Batch, advantages: Tensor) -> Tensor:
        """The advantages the policy loss uses, given the critic's ``[T, N]`` ones: the same
        here; a subclass with more critics mixes theirs in (:mod:`fugu.algos.ppo_rnd`)."""
        return advantages

    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """Run the PPO epochs over one rollout at the learning rate of ``progress``.

        Every live sample is used once per epoch: the ``num_minibatches`` minibatches of an
        epoch partition all of them (sizes differ by at most one).

        Returns:
            Metrics: ``loss/policy``, ``loss/value``, ``loss/entropy``, ``loss/approx_kl``,
            ``loss/clipfrac``, ``loss/explained_variance``, ``train/learning_rate``,
            ``train/epochs`` (run, fewer with ``target_kl``), ``train/grad_norm`` (mean over
            the update's optimizer steps); ``train/outer_grad_norm`` with Outer-PPO.
        """
        c = self.config
        recurrent = self.policy.is_recurrent
        learning_rate = self.optimizer.set_progress(progress)
        steps, rows = batch["rewards"].shape
        masks = batch.get("masks")
        if masks is not None and bool(masks.all()):
            masks = None
        if self.reward_norm is not None or c.clip_reward is not None:
            batch = Batch({**batch.data, "rewards": self.scaled_rewards(batch)},
                          batch.initial_state, batch.info)  # fmt: skip
        with torch.no_grad():
            advantages = self.advantages(batch)
            returns = advantages + batch["values"]
            policy_advantages = self.policy_advantages(batch, advantages)
        # Recurrent policies train on sequences: sequence-major [N, T, ...]. Feed-forward ones
        # flatten the time-major [T, N, ...] tensors to T * N samples (views, no copies).
        seq: dict[str, Tensor] = {
            "observations": batch["observations"],
            "actions": batch["actions"],
            "logprobs": batch["logprobs"],
            "values": batch["values"],
            "returns": returns,
            "advantages": policy_advantages,
        }
        if "action_masks" in batch:
            seq["action_masks"] = batch["action_masks"]
        if recurrent:
            seq["starts"] = batch["starts"]
            if masks is not None:
                seq["masks"] = masks
            seq = {k: v.transpose(0, 1) for k, v in seq.items()}
        else:
            seq = {k: v.reshape(steps * rows, *v.shape[2:]) for k, v in seq.items()}
        live: Tensor | None = None
        if masks is not None and not recurrent:
            live = masks.reshape(-1).nonzero().squeeze(-1)
        num_units = rows if recurrent else (rows * steps if live is None else int(live.numel()))
        stats = torch.zeros(6, device=self.device)  # pg, v, ent, kl, clipfrac, count
        # V-trace: the learner's log-probabilities seen in the last epoch (ratio 1 where unseen).
        new_logprobs = seq["logprobs"].clone() if c.uses_vtrace else None
        epochs_run = 0
        self.optimizer.pop_grad_norm()
        if self.outer is not None:
            self.outer.begin()
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
            minibatches = [mb for mb in torch.tensor_split(order, c.num_minibatches) if mb.numel()]
            for idx in minibatches:
                epoch_kl += self._minibatch(seq, idx, batch.initial_state, stats, new_logprobs)
                self.optimizer.step()
            epochs_run += 1
            if c.target_kl is not None:
                per_mb = epoch_kl.item() / max(len(minibatches), 1)
                if per_mb > c.target_kl:
                    break
        outer_norm = self.outer.step() if self.outer is not None else None
        self.num_updates += 1
        with torch.no_grad():
            values, targets = batch["values"], returns
            observations = batch["observations"]
            if masks is not None:
                values, targets, observations = values[masks], targets[masks], observations[masks]
            explained = ops.explained_variance(values.flatten(), targets.flatten())
            # The statistics move only now, so this rollout was acted on and learned from
            # with the same ones.
            self.policy.update_obs_norm(
                observations.reshape(-1, *observations.shape[-self.policy.obs_ndim :])
            )
            if self.value_norm is not None:
                self.value_norm.update(targets.flatten())
        totals = (stats[:5] / stats[5].clamp(min=1)).tolist()
        metrics: dict[str, float] = {
            "loss/policy": totals[0],
            "loss/value": totals[1],
            "loss/entropy": totals[2],
            "loss/approx_kl": totals[3],
            "loss/clipfrac": totals[4],
            "loss/explained_variance": float(explained),
            "train/learning_rate": learning_rate,
            "train/epochs": float(epochs_run),
            "train/grad_norm": self.optimizer.pop_grad_norm(),
        }
        if outer_norm is not None:
            metrics["train/outer_grad_norm"] = outer_norm
        return metrics

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
        live_all = seq["masks"][idx] if "masks" in seq else None
        if c.norm_adv:
            adv_all = _normalize(adv_all, live_all)
        size = int(idx.numel())
        chunk = size
        if c.max_minibatch_size is not None:
            chunk = c.max_minibatch_size
            if recurrent:  # chunks are whole sequences
                chunk = max(chunk // max(int(seq["logprobs"].shape[1]), 1), 1)
        total_live = size if live_all is None else max(int(live_all.sum()), 1)
        kl_sum = torch.zeros((), device=self.device)
        for lo in range(0, size, chunk):
            part = idx[lo : lo + chunk]
            mb = {k: v[part] for k, v in seq.items()}
            adv = adv_all[lo : lo + chunk]
            state: PolicyState = None
            live: Tensor | None = None
            with self.optimizer.autocast():
                if recurrent:
                    if initial_state is not None:
                        state = (initial_state[0][part], initial_state[1][part])
                    params, values, _ = self._forward_train(
                        mb["observations"], state, mb.get("starts")
                    )
                    mb = {k: v.reshape(-1, *v.shape[2:]) for k, v in mb.items()}
                    adv = adv.reshape(-1)
                    if "masks" in mb:  # only live steps of the sequences count
                        live = mb["masks"]
                        params = _select(params, live)
                        values, adv = values[live], adv[live]
                        mb = {k: v[live] for k, v in mb.items()}
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
                old_values, targets = mb["values"], mb["returns"]
                if self.value_norm is not None:  # the critic learns in normalised units
                    old_values, targets = self.value_norm(old_values), self.value_norm(targets)
                v_loss = ops.ppo_value_loss(
                    values, old_values, targets, c.clip_coef if c.clip_vloss else None
                )
                loss = pg_loss - c.ent_coef * entropy + c.vf_coef * v_loss
            count = int(part.numel()) if live is None else int(live.sum())
            weight = count / (size if live_all is None else total_live)
            if count == 0:
                continue
            self.optimizer.backward(loss, weight)
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
                    target = new_logprobs[part]
                    if live is not None:
                        flat = target.reshape(-1).clone()
                        flat[live] = logprobs.detach()
                        new_logprobs[part] = flat.reshape(target.shape)
                    else:
                        new_logprobs[part] = logprobs.detach().reshape(target.shape)
        stats[5] += 1
        return kl_sum

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the weights needed to resume: optimizer, scaler, generators."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "cpu_generator": self._cpu_generator.get_state(),
            "num_updates": self.num_updates,
            "discounted": None if self._discounted is None else self._discounted.clone(),
            **({"outer": self.outer.state_dict()} if self.outer is not None else {}),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self._cpu_generator.set_state(state["cpu_generator"])
        self.num_updates = int(state["num_updates"])
        discounted = state.get("discounted")
        self._discounted = None if discounted is None else discounted.to(self.device)
        if self.outer is not None and "outer" in state:
            self.outer.load_state_dict(state["outer"])


def _to_float(params: Any) -> Any:
    if isinstance(params, tuple):
        return tuple(p.float() for p in params)
    return params.float()


def _select(params: Any, rows: Tensor) -> Any:
    """Distribution parameters of the selected samples (shared ones, like a Gaussian's
    state-independent ``log_std``, are kept as they are)."""
    if isinstance(params, tuple):
        return tuple(p[rows] if p.dim() == params[0].dim() else p for p in params)
    return params[rows]


def _normalize(advantages: Tensor, live: Tensor | None) -> Tensor:
    """Normalise advantages over the live entries only (non-live ones are never used)."""
    if live is None:
        return ops.normalize_advantages(advantages)
    out = torch.zeros_like(advantages)
    out[live] = ops.normalize_advantages(advantages[live])
    return out
