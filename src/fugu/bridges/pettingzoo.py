"""PettingZoo ``ParallelEnv`` -> fugu env: one fixed row per possible agent.

Every agent of ``env.possible_agents`` owns one row, in that order, for the env's whole life:

* **Masks.** ``masks[i]`` is true iff agent ``i`` acts on the next step: it received an
  observation on this step and is neither terminated nor truncated. The step on which an
  agent terminates (or is truncated) reports its reward and flag with ``masks`` already false;
  its last observation is in ``final_observations`` and its ``observations`` row is zeroed.
  An absent agent's row (not yet spawned, or gone) has ``masks`` false, a zero observation,
  reward 0 and no flag: trainers ignore masked rows. Rewards and flags the ParallelEnv reports
  for an agent whose row was masked before the step (it did not act: it has not appeared yet,
  or left earlier) are dropped, so a masked row never carries a reward or a flag. When the
  whole env autoresets on a step, the rows of the new episode's agents are live again on that
  same step.
* **Autoreset.** When every agent is done (no agent of ``env.agents`` is left without a
  terminal or truncation flag), the same step resets the env: ``final_observations`` holds
  the last observations, ``observations`` the new episode's, and infos gets
  ``{"episode_return": mean return over agents, "episode_length": steps, "num_episodes": 1}``.
* **Roles.** Agents are grouped into roles: agents with equal observation *and* action spaces
  share a role (numbered in order of first appearance in ``possible_agents``); ``roles`` is the
  ``int32`` role id of every row. With one role, rows are the agents' flattened observations.
  With several, each role's observation is laid out as ``Dict(role=..., observation=<its
  space>)`` (the role id is a leaf at offset 0 of every row, so it survives vectorization),
  and the rows are padded to a common length: ``role_observation_layouts[r]`` restores rows
  of role ``r``, ``role_action_layouts[r]`` describes its actions.
* **Actions of heterogeneous roles** share one action row: all-``Discrete`` roles use
  ``Discrete(max n)``, all-discrete roles ``MultiDiscrete`` of the longest role (padded with
  1-choice components), all-continuous roles a ``Box`` of the longest role, and any other mix a
  ``float32`` ``Box`` in the mixed scheme of :mod:`fugu.core.actions`. A role reads the first
  entries of the row; discrete choices beyond its own range and continuous values beyond its
  own bounds are clipped (mask invalid choices in the policy with
  ``role_action_layouts[r].nvec``).
* **Extra fields** (:mod:`fugu.core.schema`, carried by every backend): ``roles`` (int32, the
  role id of every row) always; ``action_masks`` (bool ``[A, num_logits]``) when the agents'
  observation spaces are ``Dict`` spaces with an ``"action_mask"`` key (the PettingZoo classic
  convention; one role with Discrete or MultiDiscrete actions), written from each observation
  (all true on absent rows); ``global_state`` (float32, the env's ``state()`` on every row,
  written after every reset and step) when the env has a ``state_space`` Box.
* **Infos.** The env's per-agent info dicts are not forwarded (they would be one dict per row);
  only the aggregated episode statistics are reported.

Example:
    >>> from mpe2 import simple_spread_v3
    >>> env = PettingZooPufferEnv(simple_spread_v3.parallel_env(max_cycles=5))
    >>> obs, infos = env.reset(seed=0)
    >>> obs.shape, env.masks.tolist(), env.single_action_space
    ((3, 18), [True, True, True], Discrete(5))
    >>> env.close()
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.actions import ActionLayout
from fugu.core.emulation import episode_info, first_seed
from fugu.core.env import EnvBuffers, Infos, PufferEnv, StepResult
from fugu.core.errors import APIUsageError, EnvContractError
from fugu.core.flatten import SpaceLayout
from fugu.core.schema import ROLES, action_masks_field, global_state_field, num_logits

__all__ = ["PettingZooPufferEnv", "from_pettingzoo"]


def _roles(env: Any, agents: list[Any]) -> tuple[np.ndarray, list[Any], list[Any]]:
    obs_spaces: list[Any] = []
    act_spaces: list[Any] = []
    roles = []
    for agent in agents:
        obs_space, act_space = env.observation_space(agent), env.action_space(agent)
        for role, (o, a) in enumerate(zip(obs_spaces, act_spaces)):
            if o == obs_space and a == act_space:
                roles.append(role)
                break
        else:
            roles.append(len(obs_spaces))
            obs_spaces.append(obs_space)
            act_spaces.append(act_space)
    return np.array(roles, np.int32), obs_spaces, act_spaces


def _observation_layouts(obs_spaces: list[spaces.Space]) -> list[SpaceLayout]:
    """One layout per role over a common row (see the module docstring)."""
    if len(obs_spaces) == 1:
        return [SpaceLayout.from_space(obs_spaces[0])]
    base = [SpaceLayout.from_space(space) for space in obs_spaces]
    dtypes = {leaf.dtype for layout in base for leaf in layout.leaves}
    num_roles = len(obs_spaces)
    (dtype,) = dtypes if len(dtypes) == 1 else (None,)
    if dtype is not None and dtype != np.bool_ and np.issubdtype(dtype, np.number):
        role_space: spaces.Space = spaces.Box(0, num_roles - 1, (), dtype.type)
    else:
        role_space = spaces.Discrete(num_roles)
    layouts = [
        SpaceLayout.from_space(
            spaces.Dict(OrderedDict([("role", role_space), ("observation", space)]))
        )
        for space in obs_spaces
    ]
    if len({layout.row_dtype for layout in layouts}) > 1:
        layouts = [layout.as_bytes() for layout in layouts]
    align = max(leaf.dtype.itemsize for layout in layouts for leaf in layout.leaves)
    nbytes = max(layout.nbytes for layout in layouts)
    nbytes = -(-nbytes // align) * align
    return [layout.padded(nbytes // layout.row_dtype.itemsize) for layout in layouts]


def _common_row_space(layouts: list[SpaceLayout]) -> spaces.Box:
    if len(layouts) == 1:
        return layouts[0].row_space()
    boxes = [layout.row_space() for layout in layouts]
    if any(box.dtype != boxes[0].dtype for box in boxes):
        return spaces.Box(0, 255, layouts[0].row_shape, np.uint8)
    low = np.min([box.low for box in boxes], axis=0)
    high = np.max([box.high for box in boxes], axis=0)
    return spaces.Box(low, high, dtype=boxes[0].dtype)  # type: ignore[arg-type]


class _RoleDecoder:
    """Decodes a role's entries of the shared action row: slice, clip, round, decode."""

    def __init__(
        self, layout: ActionLayout, low: np.ndarray, high: np.ndarray, round_values: bool
    ) -> None:
        self.layout, self.low, self.high = layout, low, high
        self.size = len(low)
        self.round_values = round_values

    def __call__(self, row: np.ndarray) -> Any:
        part = np.clip(np.asarray(row).reshape(-1)[: self.size], self.low, self.high)
        if self.round_values:
            part = np.rint(part).astype(np.int64)
        return self.layout.decode(part)


def _identity(row: np.ndarray) -> np.ndarray:
    return row


def _action_codecs(
    layouts: list[ActionLayout],
) -> tuple[spaces.Space, list[Callable[[np.ndarray], Any]]]:
    """The shared action space and, per role, a row -> action decoder."""
    flats = [layout.single_action_space for layout in layouts]
    if len(layouts) == 1:
        layout = layouts[0]
        return flats[0], [_identity if layout.is_identity else layout.decode]
    decoders: list[Callable[[np.ndarray], Any]] = []
    if all(layout.kind == "discrete" for layout in layouts):
        for layout in layouts:
            decoders.append(
                _RoleDecoder(layout, np.zeros_like(layout.nvec), layout.nvec - 1, False)
            )
        if all(isinstance(flat, spaces.Discrete) for flat in flats):
            return spaces.Discrete(max(int(layout.nvec[0]) for layout in layouts)), decoders
        length = max(len(layout.nvec) for layout in layouts)
        nvec = np.ones(length, np.int64)
        for layout in layouts:
            nvec[: len(layout.nvec)] = np.maximum(nvec[: len(layout.nvec)], layout.nvec)
        return spaces.MultiDiscrete(nvec), decoders
    length = max(layout.num_discrete + layout.num_continuous for layout in layouts)
    low = np.zeros(length, np.float32)
    high = np.zeros(length, np.float32)
    for layout in layouts:
        if layout.kind == "discrete":
            lo = np.zeros(layout.num_discrete, np.float32)
            hi = (layout.nvec - 1).astype(np.float32)
        else:
            box = layout.single_action_space
            lo, hi = box.low.reshape(-1), box.high.reshape(-1)  # type: ignore[attr-defined]
        decoders.append(_RoleDecoder(layout, lo, hi, layout.kind == "discrete"))
        low[: len(lo)] = np.minimum(low[: len(lo)], lo)
        high[: len(hi)] = np.maximum(high[: len(hi)], hi)
    return spaces.Box(low, high, dtype=np.float32), decoders


def _has_action_mask(obs_spaces: list[spaces.Space], action_space: spaces.Space) -> bool:
    """Whether agents observe ``Dict(observation=..., action_mask=...)`` (PettingZoo classic)."""
    return (
        len(obs_spaces) == 1
        and isinstance(obs_spaces[0], spaces.Dict)
        and "action_mask" in obs_spaces[0].spaces
        and isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete))
    )


class PettingZooPufferEnv(PufferEnv):
    """A PettingZoo ``ParallelEnv`` as a fugu env with one row per possible agent.

    Args:
        env: A PettingZoo ``ParallelEnv`` or a zero-argument callable building one.
        buffers: Buffers to adopt (one row per possible agent); allocated when ``None``.

    Attributes:
        env: The wrapped ParallelEnv.
        possible_agents: The agent of every row.
        roles: ``int32 [num_agents]``: the role id of every row (the ``roles`` extra field).
        num_roles: Number of distinct (observation space, action space) pairs.
        role_observation_layouts: Per role, the layout of its rows (restore with
            :func:`fugu.ops.emulation.restore`).
        role_action_layouts: Per role, how its action space is carried.
        observation_layout: The layout of role 0 (the only one for homogeneous agents).
    """

    check_actions = False  # checks its own actions (live rows only, its own messages)

    def __init__(self, env: Any, buffers: EnvBuffers | None = None) -> None:
        if not hasattr(env, "possible_agents") and callable(env):
            env = env()
        for attr in ("possible_agents", "observation_space", "action_space", "reset", "step"):
            if not hasattr(env, attr):
                raise APIUsageError(
                    f"PettingZooPufferEnv needs a PettingZoo ParallelEnv; {type(env).__name__} "
                    f"has no {attr!r} (wrap AEC envs with pettingzoo.utils.aec_to_parallel)"
                )
        self.env = env
        self.possible_agents = list(env.possible_agents)
        if not self.possible_agents:
            raise EnvContractError("the ParallelEnv has no possible_agents")
        roles, obs_spaces, act_spaces = _roles(env, self.possible_agents)
        self.num_roles = len(obs_spaces)
        self.role_observation_layouts = _observation_layouts(obs_spaces)
        self.role_action_layouts = [ActionLayout.from_space(space) for space in act_spaces]
        self.observation_layout = self.role_observation_layouts[0]
        action_space, role_decoders = _action_codecs(self.role_action_layouts)
        extra_fields = [ROLES]
        self._mask_key = _has_action_mask(obs_spaces, action_space)
        if self._mask_key:
            extra_fields.append(action_masks_field(num_logits(action_space)))
        state_space = getattr(env, "state_space", None)
        self._has_state = isinstance(state_space, spaces.Box)
        if self._has_state:
            extra_fields.append(global_state_field(state_space.shape))  # type: ignore[union-attr]
        super().__init__(
            _common_row_space(self.role_observation_layouts),
            action_space,
            len(self.possible_agents),
            buffers,
            extra_fields,
        )
        self.roles: np.ndarray = self.extras["roles"]
        self.roles[:] = roles
        self._row = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._decoders = [role_decoders[role] for role in roles]
        self._plain_obs = self.num_roles == 1 and self.observation_layout.is_passthrough
        at = () if self.num_roles == 1 else ("observation",)
        self._writers = []
        self._role_views = []
        for i, role in enumerate(roles):
            layout = self.role_observation_layouts[role]
            self._writers.append(layout.writer(self.observations[i], at))
            if self.num_roles > 1:
                self._role_views.append(layout.view(self.observations[i])["role"])
        self._returns = np.zeros(self.num_agents, np.float64)
        self._seen = np.zeros(self.num_agents, np.bool_)
        self._episode_length = 0

    def _clear_rows(self, rows: np.ndarray) -> None:
        self.observations[rows] = 0
        if self._mask_key:
            self.extras["action_masks"][rows] = True
        for i in np.flatnonzero(rows) if self._role_views else ():
            self._role_views[i][...] = self.roles[i]

    def _write_observations(self, observations: dict[Any, Any]) -> None:
        was_live = self.masks.copy()
        self.masks[:] = False
        for agent, obs in observations.items():
            i = self._row[agent]
            if self._plain_obs:
                self.observations[i] = obs
            else:
                self._writers[i](obs)
            if self._mask_key:
                self.extras["action_masks"][i] = np.ravel(obs["action_mask"]).astype(bool)
            self.masks[i] = True
        gone = was_live & ~self.masks
        if gone.any():
            self._clear_rows(gone)

    def _write_state(self) -> None:
        if self._has_state:
            self.extras["global_state"][:] = np.asarray(self.env.state(), np.float32).reshape(
                self.extras["global_state"].shape[1:]
            )

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[np.ndarray, Infos]:
        """Reset the env (seeded) and return ``(observations, infos)``."""
        self._check_open()
        observations, _ = self.env.reset(seed=first_seed(seed))
        self.masks[:] = True
        self._clear_rows(self.masks)
        self._write_observations(observations)
        self.rewards[:] = 0.0
        self.terminals[:] = False
        self.truncations[:] = False
        self._returns[:] = 0.0
        self._seen[:] = self.masks
        self._episode_length = 0
        self._write_state()
        return self.observations, []

    def step(self, actions: np.ndarray) -> StepResult:
        """Step the live agents with their rows of ``actions`` (absent rows are ignored)."""
        actions = self._write_actions(actions)
        acted = self.masks.copy()  # rows live on the previous step: only they may earn
        action_dict = {}
        for agent in self.env.agents:
            i = self._row[agent]
            action_dict[agent] = self._decoders[i](actions[i])
        observations, rewards, terminations, truncations, _ = self.env.step(action_dict)
        self._write_observations(observations)
        self.rewards[:] = 0.0
        self.terminals[:] = False
        self.truncations[:] = False
        for agent, reward in rewards.items():
            self.rewards[self._row[agent]] = reward
        for agent, flag in terminations.items():
            self.terminals[self._row[agent]] = flag
        for agent, flag in truncations.items():
            self.truncations[self._row[agent]] = flag
        if not acted.all():  # masked rows carry no reward and no flags (the env contract)
            idle = ~acted
            self.rewards[idle] = 0.0
            self.terminals[idle] = False
            self.truncations[idle] = False
        self._returns += self.rewards
        self._seen |= self.masks
        self._episode_length += 1
        done = (self.terminals | self.truncations) & self.masks
        if done.any():
            self.final_observations[done] = self.observations[done]
        remaining = [
            agent
            for agent in self.env.agents
            if not (terminations.get(agent, False) or truncations.get(agent, False))
        ]
        if remaining:
            if done.any():  # the agents that just ended do not act on the next step
                self.masks[done] = False
                self._clear_rows(done)
            self._write_state()
            return self.observations, self.rewards, self.terminals, self.truncations, []
        seen = self._seen | self.masks
        infos = [episode_info(float(self._returns[seen].mean()), self._episode_length)]
        observations, _ = self.env.reset()
        self.masks[:] = True
        self._clear_rows(self.masks)
        self._write_observations(observations)
        self._returns[:] = 0.0
        self._seen[:] = self.masks
        self._episode_length = 0
        self._write_state()
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def close(self) -> None:
        """Close the wrapped env (idempotent)."""
        if not self.closed:
            self.env.close()
        super().close()


def from_pettingzoo(env: Any, buffers: EnvBuffers | None = None) -> PettingZooPufferEnv:
    """Wrap a PettingZoo ``ParallelEnv`` (or a callable building one) as a fugu env."""
    return PettingZooPufferEnv(env, buffers=buffers)
