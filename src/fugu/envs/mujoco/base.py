"""Any MJCF model as a batched fugu env: one ``MjData`` per row, stepped without the GIL.

:class:`MujocoEnv` holds ``num_envs`` copies of a MuJoCo simulation (one ``MjData`` each, one
shared ``MjModel`` unless domain randomisation gives each row its own) and is a
:class:`~fugu.envs.native.NativeEnv`: ``threads > 1`` steps disjoint row ranges on a thread
pool, ``batch_size`` double-buffers, and ``get_state`` / ``set_state`` round-trip. Each row's
step is one ``mujoco.mj_step(model, data, frame_skip)`` call, which releases the GIL for the
whole of its physics, so threads step rows in parallel. (``mujoco.rollout`` steps a batch in C
too, but it takes and returns only the full-physics state: the solver's warm start and derived
quantities such as ``cfrc_ext`` are lost between calls, so it cannot reproduce Gymnasium's
trajectories exactly; ``stepper="rollout"`` offers it, and ``benchmarks/mujoco.py`` measures
both.)

After every step the env copies the ``MjData`` arrays named in ``fields`` (``qpos`` and
``qvel`` by default; any ``MjData`` attribute: ``cfrc_ext``, ``xpos``, ``sensordata``...)
into batched ``float64 [rows, ...]`` arrays, and the task is written as vectorised functions
of those arrays (numpy over the batch; call a numba kernel from them if you like):

* ``observe(sim) -> [n, obs_size]``: the observations (their size is found by calling it);
* ``reward(sim, previous, actions) -> [n]``: ``previous`` holds the fields before the step;
* ``terminal(sim) -> bool [n]``: the episode ends (a death, not a time limit);
* ``reset_state(rng, qpos0, qvel0) -> (qpos, qvel)``: one row's initial state, drawn from the
  row's own ``numpy.random.Generator`` (seeded with ``seed + row``);
* ``randomize(model, base, rng)``: domain randomisation, called at each row's reset with that
  row's own ``MjModel`` copy, the unmodified model and a generator of its own (see
  :func:`scale_mass_friction`).

``sim`` and ``previous`` are :class:`MjRows`: the rows being computed, one array per field
(``sim.qpos``, ``sim["cfrc_ext"]``), plus ``sim.dt`` (seconds per env step). Subclasses may
override the methods :meth:`MujocoEnv.observe`, :meth:`MujocoEnv.reward`,
:meth:`MujocoEnv.terminal` and :meth:`MujocoEnv.reset_state` instead of passing functions (the
Gymnasium ports in :mod:`fugu.envs.mujoco.locomotion` do).

A reset follows Gymnasium's MuJoCo envs call for call (``mj_resetData``, the initial state,
``mj_forward``) and a step too (``ctrl = action``, ``mj_step(frame_skip)``, then
``mj_rnePostConstraint`` when ``post_constraint`` is set, which ``cfrc_ext`` needs), so a port
reproduces its Gymnasium original step for step. ``render(row)`` draws a row with
``mujoco.Renderer``; headless machines need ``MUJOCO_GL=egl`` set before mujoco is imported.

Example:
    A point mass pushed along a slide joint, rewarded for its speed:

    >>> XML = '''<mujoco><worldbody><body><joint name="x" type="slide" axis="1 0 0"/>
    ... <geom size="0.1" mass="1"/></body></worldbody>
    ... <actuator><motor joint="x" ctrlrange="-1 1"/></actuator></mujoco>'''
    >>> env = MujocoEnv(
    ...     XML, num_envs=4, frame_skip=2, seed=0, max_episode_steps=10,
    ...     reward=lambda sim, previous, actions: (sim.qpos[:, 0] - previous.qpos[:, 0]) / sim.dt,
    ... )
    >>> obs, _ = env.reset()
    >>> obs.shape, env.single_action_space.shape
    ((4, 2), (1,))
    >>> obs, rewards, terminals, truncations, _ = env.step(np.ones((4, 1), np.float32))
    >>> bool((rewards > 0).all()), terminals.any()
    (True, np.False_)
    >>> env.close()
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError, missing_dependency
from fugu.core.schema import Field
from fugu.envs.native import NativeEnv

try:
    import mujoco
except ImportError:  # pragma: no cover - mujoco is in the dev extras
    raise missing_dependency("mujoco", "mujoco") from None

__all__ = [
    "MjRows",
    "MujocoEnv",
    "ObserveFn",
    "RandomizeFn",
    "ResetStateFn",
    "RewardFn",
    "TerminalFn",
    "load_model",
    "scale_mass_friction",
]

ObserveFn = Callable[["MjRows"], np.ndarray]
RewardFn = Callable[["MjRows", "MjRows", np.ndarray], np.ndarray]
TerminalFn = Callable[["MjRows"], np.ndarray]
ResetStateFn = Callable[[np.random.Generator, np.ndarray, np.ndarray], tuple[Any, Any]]
RandomizeFn = Callable[[Any, Any, np.random.Generator], None]


def _integration_spec() -> int:
    return int(mujoco.mjtState.mjSTATE_INTEGRATION)


def load_model(model: Any) -> Any:
    """An ``MjModel`` from a path to an MJCF (or MJB) file, an XML string or an ``MjModel``.

    Example:
        >>> load_model("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>").ngeom
        1
    """
    if isinstance(model, mujoco.MjModel):
        return model
    if isinstance(model, os.PathLike) or (
        isinstance(model, str) and not model.lstrip().startswith("<")
    ):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise APIUsageError(f"no MJCF file at {path!r} (pass a path or an XML string)")
        if path.endswith(".mjb"):
            return mujoco.MjModel.from_binary_path(path)
        return mujoco.MjModel.from_xml_path(path)
    if isinstance(model, str):
        return mujoco.MjModel.from_xml_string(model)
    raise APIUsageError(
        f"model must be an MJCF path, an XML string or a mujoco.MjModel, got {type(model).__name__}"
    )


def scale_mass_friction(
    mass: tuple[float, float] = (1.0, 1.0), friction: tuple[float, float] = (1.0, 1.0)
) -> RandomizeFn:
    """A domain-randomisation hook: every body's mass and every geom's friction scaled by one
    factor each, drawn uniformly per row at each reset.

    Example:
        >>> hook = scale_mass_friction(mass=(0.5, 0.5))
        >>> base = load_model("<mujoco><worldbody><body><geom size='1' mass='2'/></body>"
        ...                   "</worldbody></mujoco>")
        >>> row = load_model("<mujoco><worldbody><body><geom size='1' mass='2'/></body>"
        ...                  "</worldbody></mujoco>")
        >>> hook(row, base, np.random.default_rng(0))
        >>> float(row.body_mass[1])
        1.0
    """
    (m_lo, m_hi), (f_lo, f_hi) = mass, friction
    if not (0 < m_lo <= m_hi and 0 < f_lo <= f_hi):
        raise APIUsageError(f"scale ranges must be 0 < low <= high, got {mass}, {friction}")

    def randomize(model: Any, base: Any, rng: np.random.Generator) -> None:
        scale = rng.uniform(m_lo, m_hi)
        model.body_mass[:] = base.body_mass * scale
        model.body_inertia[:] = base.body_inertia * scale  # same shapes, denser bodies
        model.geom_friction[:] = base.geom_friction * rng.uniform(f_lo, f_hi)

    return randomize


class MjRows(Mapping[str, np.ndarray]):
    """Rows of a :class:`MujocoEnv`'s gathered ``MjData`` fields: ``rows.qpos``,
    ``rows["cfrc_ext"]`` (``float64 [n, ...]`` views, never copies), and ``dt``."""

    __slots__ = ("_arrays", "dt")

    def __init__(self, arrays: dict[str, np.ndarray], dt: float) -> None:
        self._arrays = arrays
        self.dt = dt

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise AttributeError(
                f"no gathered field {name!r}; add it to the env's fields (have "
                f"{sorted(self._arrays)})"
            ) from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _concat_qpos_qvel(sim: MjRows) -> np.ndarray:
    return np.concatenate([sim.qpos, sim.qvel], axis=1)


class MujocoEnv(NativeEnv):
    """A batched MuJoCo env: ``num_envs`` rows of one MJCF model (see the module docstring).

    Args:
        model: An MJCF path, an XML string or an ``mujoco.MjModel``.
        num_envs: Rows (simulation copies).
        frame_skip: Physics steps per env step.
        observe: ``observe(sim) -> [n, obs_size]``; default ``concat(qpos, qvel)``.
        reward: ``reward(sim, previous, actions) -> [n]``; default 0.
        terminal: ``terminal(sim) -> bool [n]``; default never.
        reset_state: ``reset_state(rng, qpos0, qvel0) -> (qpos, qvel)``; default the model's
            ``qpos0`` at rest.
        randomize: ``randomize(model, base, rng)``, called with the row's own model copy at
            each of its resets (domain randomisation); ``None`` shares one model.
        fields: ``MjData`` attributes gathered into ``[rows, ...]`` arrays after every step.
        post_constraint: Call ``mj_rnePostConstraint`` after each step (``cfrc_ext``, ``cacc``
            and ``cfrc_int`` need it).
        stepper: ``"threads"`` (one ``mj_step`` call per row on its own ``MjData``: any
            ``fields``, Gymnasium's trajectories exactly) or ``"rollout"`` (one
            ``mujoco.rollout`` call per thread's rows on full-physics state rows: no per-row
            Python, but only ``qpos``/``qvel`` fields, no ``post_constraint``, and the solver's
            warm start restarts every env step, so chaotic models such as HalfCheetah drift
            away from Gymnasium's trajectories after ~100 steps; the dynamics are the same).
            Both release the GIL for the physics.
        max_episode_steps: Steps after which a row is truncated.
        render_size: ``(height, width)`` of :meth:`render` images.
        camera: A camera name or id of the model, or a dict of ``mujoco.MjvCamera`` attributes
            (``distance``, ``elevation``, ``trackbodyid``...); the free camera when ``None``.
        threads: Threads stepping disjoint row ranges.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt (from a vectorizer).
        info_interval: Steps between aggregations of episode statistics into infos.
        batch_size: Rows per ``recv`` batch (double buffering); ``None`` means all rows.
        extra_fields: Extra per-row buffers (:mod:`fugu.core.schema`), written from
            :meth:`step_extras`.
    """

    def __init__(
        self,
        model: Any,
        num_envs: int = 1,
        *,
        frame_skip: int = 1,
        observe: ObserveFn | None = None,
        reward: RewardFn | None = None,
        terminal: TerminalFn | None = None,
        reset_state: ResetStateFn | None = None,
        randomize: RandomizeFn | None = None,
        fields: Sequence[str] = ("qpos", "qvel"),
        post_constraint: bool = False,
        stepper: str = "threads",
        max_episode_steps: int = 1000,
        render_size: tuple[int, int] = (480, 480),
        camera: str | int | Mapping[str, Any] | None = None,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        extra_fields: Sequence[Field] = (),
    ) -> None:
        if int(frame_skip) < 1:
            raise APIUsageError(f"frame_skip must be >= 1, got {frame_skip}")
        if int(max_episode_steps) < 1:
            raise APIUsageError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.model = load_model(model)
        if self.model.nu == 0:
            raise APIUsageError("the MJCF model has no actuators, so there is nothing to act on")
        if isinstance(num_envs, bool) or num_envs != int(num_envs) or int(num_envs) < 1:
            raise APIUsageError(f"num_envs must be a whole number >= 1, got {num_envs!r}")
        n = int(num_envs)
        self.frame_skip = int(frame_skip)
        self.max_episode_steps = int(max_episode_steps)
        self.post_constraint = bool(post_constraint)
        plain = set(fields) <= {"qpos", "qvel"} and not self.post_constraint
        if stepper not in ("threads", "rollout"):
            raise APIUsageError(f"stepper must be 'threads' or 'rollout', got {stepper!r}")
        if stepper == "rollout" and not plain:
            raise APIUsageError(
                "stepper='rollout' steps full-physics state rows only: it gathers no fields but "
                "qpos/qvel and cannot call mj_rnePostConstraint; use stepper='threads'"
            )
        self.stepper = stepper
        self.dt = float(self.model.opt.timestep) * self.frame_skip
        self._observe_fn = observe
        self._reward_fn = reward
        self._terminal_fn = terminal
        self._reset_state_fn = reset_state
        self._randomize = randomize
        self.fields = tuple(fields)
        if "qpos" not in self.fields or "qvel" not in self.fields:
            self.fields = ("qpos", "qvel", *(f for f in self.fields if f not in ("qpos", "qvel")))
        self.models = [self.model] * n
        if randomize is not None:
            self.models = [_copy_model(self.model) for _ in range(n)]
        self.datas = [mujoco.MjData(m) for m in self.models]
        probe = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, probe)
        for name in self.fields:
            if not isinstance(getattr(probe, name, None), np.ndarray):
                raise APIUsageError(f"fields: {name!r} is not an array attribute of mujoco.MjData")
        self._views = {name: [getattr(d, name) for d in self.datas] for name in self.fields}
        self._ctrl_views = [d.ctrl for d in self.datas]
        self.init_qpos = np.array(self.model.qpos0, dtype=np.float64)
        self.init_qvel = np.zeros(self.model.nv, dtype=np.float64)
        one = {name: np.array(getattr(probe, name), dtype=np.float64)[None] for name in self.fields}
        obs_size = int(np.asarray(self.observe(MjRows(one, self.dt))).reshape(1, -1).shape[1])
        low, high = np.array(self.model.actuator_ctrlrange, dtype=np.float32).T
        limited = np.array(self.model.actuator_ctrllimited, dtype=bool)
        low, high = np.where(limited, low, -np.inf), np.where(limited, high, np.inf)
        observation_space = spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
        action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.camera = camera
        self._renderer: Any = None
        self._generators: list[np.random.Generator] = []
        self._model_generators: list[np.random.Generator] = []
        super().__init__(
            n,
            observation_space,
            action_space,
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
            extra_fields=extra_fields,
        )

    # -- the task (override these, or pass functions) ------------------------------------------
    def observe(self, sim: MjRows) -> np.ndarray:
        """The observations of ``sim``'s rows (``[n, obs_size]``)."""
        return (self._observe_fn or _concat_qpos_qvel)(sim)

    def reward(self, sim: MjRows, previous: MjRows, actions: np.ndarray) -> np.ndarray:
        """The rewards of the step from ``previous`` to ``sim`` under ``actions`` (``[n]``)."""
        if self._reward_fn is None:
            return np.zeros(len(actions))
        return self._reward_fn(sim, previous, actions)

    def terminal(self, sim: MjRows) -> np.ndarray:
        """Whether each row's episode ended in ``sim`` (``bool [n]``)."""
        if self._terminal_fn is None:
            return np.zeros(sim.qpos.shape[0], dtype=bool)
        return self._terminal_fn(sim)

    def reset_state(
        self, rng: np.random.Generator, qpos0: np.ndarray, qvel0: np.ndarray
    ) -> tuple[Any, Any]:
        """One row's initial ``(qpos, qvel)``, drawn from the row's generator ``rng``."""
        if self._reset_state_fn is None:
            return qpos0, qvel0
        return self._reset_state_fn(rng, qpos0, qvel0)

    # -- NativeEnv hooks -----------------------------------------------------------------------
    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """The gathered fields (now and before the step) and every row's integration state."""
        state: dict[str, np.ndarray] = {}
        for name in self.fields:
            shape = np.shape(self._views[name][0])
            state[f"data_{name}"] = np.zeros((num_envs, *shape))
            state[f"previous_{name}"] = np.zeros((num_envs, *shape))
        size = mujoco.mj_stateSize(self.model, self._physics_spec())
        state["physics"] = np.zeros((num_envs, size))
        if self.stepper == "rollout":
            nu = self.model.nu
            self._controls = np.zeros((num_envs, self.frame_skip, nu))
            self._trajectory = np.zeros((num_envs, self.frame_skip, size))
            time_size = mujoco.mj_stateSize(self.model, int(mujoco.mjtState.mjSTATE_TIME))
            nq, nv = self.model.nq, self.model.nv
            self._qpos_cols = slice(time_size, time_size + nq)
            self._qvel_cols = slice(time_size + nq, time_size + nq + nv)
            self._scratch: dict[int, Any] = {}
        state["generators"] = np.zeros((num_envs, 2, 6), dtype=np.uint64)
        state["episode_scores"] = np.zeros((num_envs, len(self.score_keys)))
        return state

    def _physics_spec(self) -> int:
        if self.stepper == "rollout":
            return int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
        return _integration_spec()

    def _rows(self, prefix: str, lo: int, hi: int) -> MjRows:
        return MjRows({name: self.state[f"{prefix}{name}"][lo:hi] for name in self.fields}, self.dt)

    def _gather(self, lo: int, hi: int) -> None:
        for name in self.fields:
            np.stack(self._views[name][lo:hi], out=self.state[f"data_{name}"][lo:hi])

    def _seed_rows(self, seed: int | Sequence[int]) -> None:
        n = self.num_copies
        if isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = [int(s) for s in seed]
            if len(seeds) != n:
                raise APIUsageError(
                    f"reset(seed=...) got {len(seeds)} seeds for {n} rows; pass one int (row i "
                    "uses seed + i) or one seed per row"
                )
        # row i draws its initial states like Gymnasium's env reset with seed + i
        self._generators = [np.random.default_rng(s % 2**64) for s in seeds]
        self._model_generators = [np.random.default_rng((s % 2**64, 0x5EED)) for s in seeds]
        self._rng_seeded = True

    def step_extras(
        self, sim: MjRows, previous: MjRows, actions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Values of the env's extra fields (``extra_fields``) for the step's rows, by name
        (none by default; e.g. ``{"costs": ...}`` for a safe-RL task)."""
        return {}

    def step_scores(self, sim: MjRows, previous: MjRows, actions: np.ndarray) -> np.ndarray:
        """Each row's step contribution ``[n, len(score_keys)]`` to the episode scores that
        infos report as per-episode means (declare ``score_keys`` on the subclass)."""
        raise NotImplementedError(f"{type(self).__name__} declares score_keys: override this")

    def reset_envs(self, lo: int, hi: int) -> None:
        """Reset rows ``[lo, hi)`` (Gymnasium's call sequence) and write their observations."""
        self.state["episode_scores"][lo:hi] = 0.0
        for i in range(lo, hi):
            self._reset_row(i)
        self._gather(lo, hi)
        self.observations[lo:hi] = self.observe(self._rows("data_", lo, hi))

    def _reset_row(self, i: int) -> None:
        model, data = self.models[i], self.datas[i]
        if self._randomize is not None:
            self._randomize(model, self.model, self._model_generators[i])
        mujoco.mj_resetData(model, data)
        qpos, qvel = self.reset_state(self._generators[i], self.init_qpos, self.init_qvel)
        data.qpos[:] = qpos
        data.qvel[:] = qvel
        mujoco.mj_forward(model, data)
        if self.stepper == "rollout":
            mujoco.mj_getState(model, data, self.state["physics"][i], self._physics_spec())

    def _step_rollout(self, lo: int, hi: int) -> None:
        from mujoco import rollout

        scratch = self._scratch.get(threading.get_ident())
        if scratch is None:  # one scratch MjData per stepping thread
            scratch = self._scratch.setdefault(threading.get_ident(), mujoco.MjData(self.model))
        physics, trajectory = self.state["physics"][lo:hi], self._trajectory[lo:hi]
        self._controls[lo:hi] = self.actions[lo:hi, None, :]
        rollout.rollout(
            self.models[lo:hi],
            [scratch],
            physics,
            self._controls[lo:hi],
            nstep=self.frame_skip,
            state=trajectory,
            skip_checks=True,
        )
        physics[:] = trajectory[:, -1]
        self.state["data_qpos"][lo:hi] = physics[:, self._qpos_cols]
        self.state["data_qvel"][lo:hi] = physics[:, self._qvel_cols]

    def step_envs(self, lo: int, hi: int) -> None:
        """Step rows ``[lo, hi)``: physics without the GIL, then the task over the batch."""
        actions = self.actions[lo:hi]
        for name in self.fields:
            self.state[f"previous_{name}"][lo:hi] = self.state[f"data_{name}"][lo:hi]
        if self.stepper == "rollout":
            self._step_rollout(lo, hi)
        else:
            models, datas, ctrls = self.models, self.datas, self._ctrl_views
            skip, post = self.frame_skip, self.post_constraint
            step, post_constraint = mujoco.mj_step, mujoco.mj_rnePostConstraint
            for i in range(lo, hi):
                ctrls[i][:] = actions[i - lo]
                step(models[i], datas[i], skip)
                if post:
                    post_constraint(models[i], datas[i])
            self._gather(lo, hi)
        sim, previous = self._rows("data_", lo, hi), self._rows("previous_", lo, hi)
        rewards = self.reward(sim, previous, actions)
        terminals = self.terminal(sim)
        for name, values in self.step_extras(sim, previous, actions).items():
            self.extras[name][lo:hi] = values
        scores = self.state["episode_scores"][lo:hi]
        if self.score_keys:
            scores += self.step_scores(sim, previous, actions)
        self.rewards[lo:hi] = rewards
        self.terminals[lo:hi] = terminals
        self.observations[lo:hi] = self.observe(sim)
        ret = self.state["episode_return"][lo:hi]
        length = self.state["episode_length"][lo:hi]
        ret += self.rewards[lo:hi]
        length += 1
        truncations = length >= self.max_episode_steps  # as Gymnasium's TimeLimit
        self.truncations[lo:hi] = truncations
        ended = np.flatnonzero(truncations | self.terminals[lo:hi])
        if ended.size:
            rows = ended + lo
            self.final_observations[rows] = self.observations[rows]
            stats = self.state["episode_stats"]
            stats[rows, 0] += ret[ended]
            stats[rows, 1] += length[ended]
            stats[rows, 2] += 1.0
            stats[rows, 3:] += scores[ended]
            scores[ended] = 0.0
            ret[ended] = 0.0
            length[ended] = 0
            for row in rows.tolist():
                self._reset_row(row)
                for name in self.fields:
                    self.state[f"data_{name}"][row] = self._views[name][row]
            sub = MjRows({name: self.state[f"data_{name}"][rows] for name in self.fields}, self.dt)
            self.observations[rows] = self.observe(sub)

    # -- state ---------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of the full state: every row's physics and generators, counters, fields."""
        self._wait_all()
        if self.stepper == "threads":  # (the rollout stepper keeps its rows there)
            spec = _integration_spec()
            for i, (model, data) in enumerate(zip(self.models, self.datas, strict=True)):
                mujoco.mj_getState(model, data, self.state["physics"][i], spec)
        gens = self.state["generators"]
        for i, (g, h) in enumerate(zip(self._generators, self._model_generators, strict=True)):
            gens[i, 0], gens[i, 1] = _pack(g), _pack(h)
        return super().get_state()

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state` (randomised model parameters excepted)."""
        super().set_state(state)
        spec = self._physics_spec()
        for i, (model, data) in enumerate(zip(self.models, self.datas, strict=True)):
            mujoco.mj_setState(model, data, self.state["physics"][i], spec)
        gens = self.state["generators"]
        self._generators = [_unpack(gens[i, 0]) for i in range(self.num_copies)]
        self._model_generators = [_unpack(gens[i, 1]) for i in range(self.num_copies)]

    # -- rendering -------------------------------------------------------------------------------
    def render(self, row: int = 0) -> np.ndarray:
        """An RGB ``uint8 [H, W, 3]`` image of row ``row`` (needs ``MUJOCO_GL=egl`` headless)."""
        self._check_open()
        if not 0 <= int(row) < self.num_agents:
            raise APIUsageError(f"row must be in [0, {self.num_agents}), got {row}")
        if self._renderer is None:
            height, width = self.render_size
            vis = self.model.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
            try:
                self._renderer = mujoco.Renderer(self.model, height, width)
            except Exception as exc:  # mujoco raises FatalError/RuntimeError without a GL
                raise APIUsageError(
                    f"MuJoCo cannot render here ({exc}); on a headless machine set "
                    "MUJOCO_GL=egl (or osmesa) in the environment before mujoco is imported"
                ) from exc
            self._camera = self._make_camera()
        model, data = self.models[int(row)], self.datas[int(row)]
        if self.stepper == "rollout":  # the row's MjData is only used for resets: sync it
            mujoco.mj_setState(model, data, self.state["physics"][int(row)], self._physics_spec())
            mujoco.mj_forward(model, data)
        self._renderer.update_scene(data, camera=self._camera)
        return np.asarray(self._renderer.render())

    def _make_camera(self) -> Any:
        if self.camera is None or isinstance(self.camera, (str, int)):
            return -1 if self.camera is None else self.camera
        camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(self.model, camera)
        for key, value in self.camera.items():
            if key == "lookat":
                camera.lookat[:] = value
            else:
                setattr(camera, key, value)
        if "trackbodyid" in self.camera:
            camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        return camera

    def close(self) -> None:
        """Stop the threads and free the renderer. Idempotent."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()


def _copy_model(model: Any) -> Any:
    import copy

    return copy.deepcopy(model)


def _pack(generator: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's state as 6 uint64 words."""
    s = generator.bit_generator.state
    mask = 2**64 - 1
    state, inc = s["state"]["state"], s["state"]["inc"]
    return np.array(
        [state >> 64, state & mask, inc >> 64, inc & mask, s["has_uint32"], s["uinteger"]],
        dtype=np.uint64,
    )


def _unpack(words: np.ndarray) -> np.random.Generator:
    w = [int(x) for x in words]
    bit = np.random.PCG64()
    bit.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
    return np.random.Generator(bit)
