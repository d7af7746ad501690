"""MAPPO and IPPO: PPO for cooperative teams, with a centralised critic or without one.

Every agent is a row of the data plane (see ``docs/multi-agent.md``). A team is
``team_size`` consecutive stored rows, as native multi-agent envs and the PettingZoo bridge
lay them out (row ``copy * team_size + k`` is agent ``k`` of copy ``copy``).

* **Actors** are decentralised: an agent's action depends on its own observation only. One
  actor serves every row (``share_actor``), or each role has its own: the env's ``roles``
  field when it declares one (the PettingZoo bridge does), else the agent's position in its
  team.
* **The critic** is centralised (MAPPO): it sees the team's global state, built by emulation
  as the concatenation of the team's observations followed by the agent's one-hot id. With
  ``central_critic = False`` (IPPO, also registered as ``ippo``) it sees the agent's own
  observation only.
* **Value normalisation**: the critic learns returns normalised by their running mean and
  standard deviation (``norm_value``), the statistics updated with each rollout's returns
  before its losses; values handed to GAE and bootstrapping are in reward units.
* **Death masking**: rows that are not live (``masks`` false: dead, absent or waiting agents)
  never reach the losses, GAE runs around them, and their slots in the teammates' global
  state are zero.

Bootstrapping a truncated row with a centralised critic needs the whole team:
:attr:`MAPPO.bootstrap_whole_rows` asks the collector to pass every stored row of a shard
(final observations where a row was truncated, current ones elsewhere) to :meth:`bootstrap`.

Example:
    >>> from fugu.models import PolicyConfig
    >>> algo = MAPPO.build(MAPPOConfig(team_size=3), spaces.Box(-1, 1, (4,)),
    ...                    spaces.Discrete(5), PolicyConfig(hidden_size=16))
    >>> out = algo.act(torch.zeros(6, 4), None, {})
    >>> out.actions.shape, sorted(out.fields), algo.critic_input_size
    (torch.Size([6]), ['logprobs', 'values'], 15)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu import ops
from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.buffers import Batch, PolicyState
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.normalize import RunningNorm
from fugu.models.optim import SCHEDULES, Optimizer
from fugu.models.policy import Policy, PolicyConfig, make_policy

__all__ = ["IPPO", "MAPPO", "IPPOConfig", "MAPPOConfig", "team_state"]


@dataclass(frozen=True)
class MAPPOConfig:
    """Hyperparameters of MAPPO (the ``[mappo]`` section, ``--mappo.KEY VALUE``)."""

    learning_rate: float = 1e-3
    """Adam step size at the start of training (actors and critic)."""
    lr_schedule: str = "linear"
    """``"constant"``, ``"linear"`` or ``"cosine"`` decay over the run's env steps."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE trace decay."""
    clip_coef: float = 0.2
    """Clip range of the surrogate's probability ratio."""
    clip_vloss: bool = False
    """Clip value updates around the rollout's values (by ``clip_coef``, normalised units)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Clip of the global gradient norm."""
    update_epochs: int = 4
    """Passes over the rollout per update."""
    num_minibatches: int = 4
    """Minibatches per epoch (of live samples)."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    norm_value: bool = True
    """Learn values in units normalised by the running mean and std of the returns."""
    central_critic: bool = True
    """A centralised critic on the team's global state (MAPPO); false: each agent's critic
    sees its own observation (IPPO)."""
    team_size: int = 0
    """Agents per team (consecutive stored rows). Needed by the central critic and by
    per-agent actors; 0 is only valid for IPPO with a shared actor."""
    agent_id: bool = True
    """Append the agent's one-hot position in its team to the critic's input."""
    share_actor: bool = True
    """One actor for every row; false: one actor per role (``num_roles`` of them)."""
    num_roles: int = 0
    """Actors when ``share_actor`` is false: the env's ``roles`` ids index them, or, without
    a ``roles`` field, the agent's position in its team (0: ``team_size`` actors)."""
    critic_hidden_size: int = 0
    """Width of the critic's two hidden layers (0: the policy's ``hidden_size``)."""
    seed: int = 0
    """Seed of the generators that sample actions and shuffle minibatches."""

    def __post_init__(self) -> None:
        if self.lr_schedule not in SCHEDULES:
            raise APIUsageError(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        if self.update_epochs < 1 or self.num_minibatches < 1:
            raise APIUsageError("MAPPO needs update_epochs >= 1 and num_minibatches >= 1")
        if self.team_size < 0 or self.num_roles < 0:
            raise APIUsageError("team_size and num_roles must be >= 0")
        if not self.learning_rate > 0 or self.max_grad_norm <= 0:
            raise APIUsageError("MAPPO needs learning_rate > 0 and max_grad_norm > 0")

    @property
    def num_actors(self) -> int:
        """Actor networks: 1 when shared, else ``num_roles`` (or ``team_size``)."""
        if self.share_actor:
            return 1
        return self.num_roles or self.team_size


@dataclass(frozen=True)
class IPPOConfig(MAPPOConfig):
    """Hyperparameters of IPPO: MAPPO without the central critic (the ``[ippo]`` section)."""

    central_critic: bool = False
    """Off for IPPO (each agent's critic sees its own observation)."""


def team_state(obs: Tensor, team_size: int, agent_id: bool, live: Tensor | None = None) -> Tensor:
    """The emulated global state of every row: its team's observations, then its one-hot id.

    Args:
        obs: ``[..., B, D]`` observations, ``B`` a multiple of ``team_size``.
        team_size: Agents per team (consecutive rows).
        agent_id: Append the row's one-hot position in its team.
        live: ``[..., B]`` bool; rows that are not live contribute zeros (death masking).

    Returns:
        ``[..., B, team_size * D (+ team_size)]``.

    Example:
        >>> team_state(torch.arange(4.0).view(4, 1), 2, True).tolist()
        [[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [2.0, 3.0, 1.0, 0.0], [2.0, 3.0, 0.0, 1.0]]
    """
    *lead, rows, size = obs.shape
    if rows % team_size:
        raise APIUsageError(
            f"{rows} rows do not split into teams of {team_size} (mappo.team_size): a team "
            "must be consecutive rows of one env copy"
        )
    x = obs.float()
    if live is not None:
        x = x * live.unsqueeze(-1).to(x.dtype)
    teams = rows // team_size
    joint = x.reshape(*lead, teams, 1, team_size * size).expand(*lead, teams, team_size, -1)
    parts = [joint]
    if agent_id:
        eye = torch.eye(team_size, device=obs.device, dtype=x.dtype)
        parts.append(eye.expand(*lead, teams, team_size, team_size))
    return torch.cat(parts, dim=-1).reshape(*lead, rows, -1)


def _critic(in_size: int, hidden: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_size
    for _ in range(2):
        linear = nn.Linear(width, hidden)
        nn.init.orthogonal_(linear.weight, np.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.Tanh()]
        width = hidden
    head = nn.Linear(width, 1)
    nn.init.orthogonal_(head.weight, 1.0)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*layers, head)


class MAPPO:
    """Multi-agent PPO: decentralised actors, a centralised (or, IPPO, per-agent) critic.

    Args:
        actors: One policy per actor (their value heads are unused).
        observation_space: One row's observation space (a flat Box).
        config: Hyperparameters.
        device: Where the modules and the update run.
    """

    name: ClassVar[str] = "mappo"
    config_type: ClassVar[type] = MAPPOConfig
    collection: ClassVar[Collection] = "rollout"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "multi_discrete", "box")
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/policy",
        "loss/value",
        "loss/entropy",
        "loss/approx_kl",
        "loss/explained_variance",
        "train/learning_rate",
    )
    bootstrap_whole_rows: ClassVar[bool] = True
    """Ask the collector for every stored row of a shard when bootstrapping (whole teams)."""

    def __init__(
        self,
        actors: list[Policy],
        observation_space: spaces.Box,
        config: MAPPOConfig,
        device: torch.device | str = "cpu",
    ) -> None:
        c = self.config = config
        if (c.central_critic or (not c.share_actor and not c.num_roles)) and c.team_size < 1:
            raise APIUsageError(
                "mappo's central critic (and per-agent actors) need the number of agents per "
                "team: set mappo.team_size (e.g. --mappo.team-size 3 for simple-spread), or "
                "train IPPO (--algo ippo)"
            )
        if any(actor.is_recurrent for actor in actors):
            raise APIUsageError("mappo supports feed-forward policies (policy.kind mlp or cnn)")
        self.device = torch.device(device)
        self.actors = nn.ModuleList(actors).to(self.device)
        self._actors: list[Policy] = list(actors)
        self.distribution = actors[0].distribution
        self._obs_ndim = len(observation_space.shape or ())
        obs_size = int(np.prod(observation_space.shape))
        ids = c.team_size if c.agent_id and c.team_size > 0 else 0
        self.critic_input_size = (c.team_size if c.central_critic else 1) * obs_size + ids
        hidden = c.critic_hidden_size or actors[0].config.hidden_size
        self.critic = _critic(self.critic_input_size, hidden).to(self.device)
        self.value_norm = RunningNorm((), clip=None).to(self.device) if c.norm_value else None
        params = [*self.actors.parameters(), *self.critic.parameters()]
        self.optimizer = Optimizer(
            params,
            learning_rate=c.learning_rate,
            lr_schedule=c.lr_schedule,
            max_grad_norm=c.max_grad_norm,
            device=self.device,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(c.seed)
        self._cpu_generator = torch.Generator().manual_seed(c.seed + 1)
        self.num_updates = 0

    @classmethod
    def build(
        cls,
        config: MAPPOConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> MAPPO:
        """Actors from ``[policy]`` and a critic for these spaces (the trainer seeds torch)."""
        check_action_space(cls, action_space)
        actors = [
            make_policy(observation_space, action_space, policy_config)
            for _ in range(max(config.num_actors, 1))
        ]
        return cls(actors, observation_space, config, device)

    # -- the protocol: storage, acting, bootstrapping ----------------------------------------
    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """``logprobs``, ``values``, and the env's ``action_masks`` / ``roles`` if declared."""
        fields = {
            "logprobs": Field("logprobs", (), np.float32),
            "values": Field("values", (), np.float32),
        }
        for name in ("action_masks", "roles"):
            if name in env_fields:
                fields[name] = env_fields[name]
        return fields

    def modules(self) -> dict[str, nn.Module]:
        """``actors`` (a ModuleList), ``critic`` and, with ``norm_value``, ``value_norm``."""
        modules: dict[str, nn.Module] = {"actors": self.actors, "critic": self.critic}
        if self.value_norm is not None:
            modules["value_norm"] = self.value_norm
        return modules

    def initial_state(self, num_rows: int) -> PolicyState:
        """``None``: the actors are feed-forward."""
        return None

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """Feed-forward: nothing to reset."""
        return state

    def roles_of(self, num_rows: int, extras: Mapping[str, Tensor]) -> Tensor | None:
        """Actor index of each row (``None`` with one shared actor)."""
        if len(self.actors) == 1:
            return None
        if self.config.num_roles and "roles" in extras:
            roles = extras["roles"].to(self.device, torch.long)
        else:
            roles = torch.arange(num_rows, device=self.device) % self.config.team_size
        return roles.clamp(0, len(self.actors) - 1)

    def _params(self, obs: Tensor, roles: Tensor | None) -> Any:
        if roles is None:
            return self._actors[0].forward_train(obs)[0]
        outs = [actor.forward_train(obs)[0] for actor in self._actors]
        if isinstance(outs[0], tuple):  # Gaussian: (mean, log_std)
            mean = torch.stack([o[0] for o in outs])[roles, torch.arange(len(roles))]
            log_std = torch.stack([o[1].expand_as(o[0]) for o in outs])
            return mean, log_std[roles, torch.arange(len(roles))]
        logits = [o for o in outs if isinstance(o, Tensor)]
        return torch.stack(logits)[roles, torch.arange(len(roles))]

    def critic_inputs(self, obs: Tensor, live: Tensor | None = None) -> Tensor:
        """The critic's input for rows ``obs [..., B, *obs_shape]``: the team state (MAPPO) or
        the row's own observation (IPPO), with the one-hot agent id when configured."""
        c = self.config
        flat = obs.reshape(*obs.shape[: obs.dim() - self._obs_ndim], -1).float()
        if c.central_critic:
            return team_state(flat, c.team_size, c.agent_id, live)
        if c.agent_id and c.team_size > 0:
            rows = flat.shape[-2]
            eye = torch.eye(c.team_size, device=flat.device)
            ids = eye[torch.arange(rows, device=flat.device) % c.team_size]
            return torch.cat([flat, ids.expand(*flat.shape[:-1], -1)], dim=-1)
        return flat

    def _values(self, obs: Tensor, live: Tensor | None = None) -> Tensor:
        """Values in reward units (denormalised) of rows ``obs``."""
        v = self.critic(self.critic_inputs(obs, live)).squeeze(-1)
        return v if self.value_norm is None else self.value_norm.denormalize(v)

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Each row's action from its own observation (its role's actor); ``values`` from the
        critic (whole teams for MAPPO: ``obs`` must hold whole teams)."""
        with torch.inference_mode():
            roles = self.roles_of(obs.shape[0], extras)
            params = self._params(obs, roles)
            dist = self.distribution
            if "action_masks" in extras:
                params = dist.mask(params, extras["action_masks"].to(self.device))
            if deterministic:
                actions = dist.mode(params)
                logprobs = dist.log_prob(params, actions)
            else:
                actions, logprobs = dist.sample_with_log_prob(params, self.generator)
            fields: dict[str, Tensor] = {"logprobs": logprobs}
            if obs.shape[0] % max(self.config.team_size, 1) == 0:
                fields["values"] = self._values(obs)
            else:  # evaluation on a few rows: no critic needed
                fields["values"] = torch.zeros(obs.shape[0], device=self.device)
        return ActOutput(actions, fields, state)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Values ``[B]`` of whole teams of rows (see :attr:`bootstrap_whole_rows`)."""
        with torch.inference_mode():
            return self._values(obs)

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        """The PPO epochs over one ``[T, N]`` rollout, live samples only."""
        c = self.config
        learning_rate = self.optimizer.set_progress(progress)
        masks = batch["masks"]
        all_live = bool(masks.all())
        with torch.no_grad():
            advantages = ops.gae(
                batch["rewards"], batch["values"], batch["next_values"], batch["terminals"],
                batch["truncations"], c.gamma, c.gae_lambda, masks=None if all_live else masks,
            )  # fmt: skip
            returns = advantages + batch["values"]
            critic_in = self.critic_inputs(batch["observations"], None if all_live else masks)
            if self.value_norm is not None:  # first, so the critic never chases stale units
                self.value_norm.update(returns[masks])
        steps, rows = masks.shape
        roles = None
        if len(self.actors) > 1:
            extras = {"roles": batch["roles"].reshape(-1)} if "roles" in batch else {}
            roles = self.roles_of(rows, extras)
            if roles is not None and "roles" not in batch:
                roles = roles.repeat(steps)

        def flat(x: Tensor) -> Tensor:
            return x.reshape(steps * rows, *x.shape[2:])

        seq = {
            "observations": flat(batch["observations"]),
            "actions": flat(batch["actions"]),
            "logprobs": flat(batch["logprobs"]),
            "values": flat(batch["values"]),
            "returns": flat(returns),
            "advantages": flat(advantages),
            "critic_in": flat(critic_in),
        }
        if "action_masks" in batch:
            seq["action_masks"] = flat(batch["action_masks"])
        if roles is not None:
            seq["roles"] = roles
        live = flat(masks).nonzero().squeeze(-1)
        stats = torch.zeros(5, device=self.device)
        count = 0
        self.optimizer.pop_grad_norm()
        for _ in range(c.update_epochs):
            order = live[torch.randperm(len(live), generator=self._cpu_generator).to(self.device)]
            for idx in torch.tensor_split(order, c.num_minibatches):
                if idx.numel() == 0:
                    continue
                stats += self._minibatch({k: v[idx] for k, v in seq.items()})
                count += 1
        self.num_updates += 1
        with torch.no_grad():
            values, targets = batch["values"][masks], returns[masks]
            explained = ops.explained_variance(values, targets)
            observations = batch["observations"][masks]
            for actor in self._actors:  # observation statistics move only after the update
                actor.update_obs_norm(observations)
        totals = (stats / max(count, 1)).tolist()
        metrics = {
            "loss/policy": totals[0],
            "loss/value": totals[1],
            "loss/entropy": totals[2],
            "loss/approx_kl": totals[3],
            "loss/clipfrac": totals[4],
            "loss/explained_variance": float(explained),
            "train/learning_rate": learning_rate,
            "train/grad_norm": self.optimizer.pop_grad_norm(),
        }
        if roles is not None:  # per-role reward per live step
            rewards = flat(batch["rewards"])[live]
            for r in range(len(self.actors)):
                mine = roles[live] == r
                if bool(mine.any()):
                    metrics[f"train/role_{r}_reward"] = float(rewards[mine].mean())
        return metrics

    def _minibatch(self, mb: dict[str, Tensor]) -> Tensor:
        c = self.config
        params = self._params(mb["observations"], mb.get("roles"))
        dist = self.distribution
        if "action_masks" in mb:
            params = dist.mask(params, mb["action_masks"])
        logprobs = dist.log_prob(params, mb["actions"])
        entropy = dist.entropy(params).mean()
        adv = mb["advantages"]
        if c.norm_adv:
            adv = ops.normalize_advantages(adv)
        pg_loss = ops.ppo_policy_loss(logprobs, mb["logprobs"], adv, c.clip_coef)
        values = self.critic(mb["critic_in"]).squeeze(-1)
        old_values, targets = mb["values"], mb["returns"]
        if self.value_norm is not None:
            old_values, targets = self.value_norm(old_values), self.value_norm(targets)
        v_loss = ops.ppo_value_loss(
            values, old_values, targets, c.clip_coef if c.clip_vloss else None
        )
        self.optimizer.backward(pg_loss - c.ent_coef * entropy + c.vf_coef * v_loss)
        self.optimizer.step()
        with torch.no_grad():
            logratio = logprobs - mb["logprobs"]
            return torch.stack([
                pg_loss.detach(), v_loss.detach(), entropy.detach(), ops.approx_kl(logratio),
                ops.clip_fraction(logratio, c.clip_coef),
            ])  # fmt: skip

    # -- state besides the weights ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, generators and update count (weights are saved apart)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "cpu_generator": self._cpu_generator.get_state(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self._cpu_generator.set_state(state["cpu_generator"])
        self.num_updates = int(state["num_updates"])


class IPPO(MAPPO):
    """Independent PPO: :class:`MAPPO` with ``central_critic = False`` (registry ``ippo``)."""

    name: ClassVar[str] = "ippo"
    config_type: ClassVar[type] = IPPOConfig
