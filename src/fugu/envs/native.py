"""The native env base: one object owns N env copies and steps them all in one numba kernel.

A native env ("ocean" env) keeps its whole state in numpy arrays with one leading index per env
copy, and steps every copy in a numba kernel compiled with ``@njit(cache=True, nogil=True)``
that writes the contract's buffers (:class:`fugu.core.env.EnvBuffers`) in place. Because the
kernels release the GIL, ``threads > 1`` steps disjoint ranges of copies on a small thread pool
(fugu's "Parallel" backend), and :meth:`NativeEnv.send` / :meth:`NativeEnv.recv` with
``batch_size < num_agents`` step one batch on a worker thread while the caller computes on
another (double buffering).

Writing a native env
--------------------
Subclass :class:`NativeEnv` and provide four things:

1. ``__init__(self, num_envs=1, *, threads=1, seed=None, buffers=None, info_interval=128,
   batch_size=None, **env_params)``: validate the env parameters, keep them (plain
   floats/ints, or one float64 array ``self.params`` to pass to kernels), then call
   ``super().__init__(num_envs, observation_space, action_space, agents_per_env=k,
   threads=threads, seed=seed, buffers=buffers, info_interval=info_interval,
   batch_size=batch_size)``. Rows are agent-major inside a copy: row
   ``copy * agents_per_env + k`` is agent ``k`` of copy ``copy``. An env with extra per-row
   buffers (action masks, costs, ...) also passes ``extra_fields=(...)`` (see
   :mod:`fugu.core.schema`); its kernels then write ``self.extras[name]`` in place.
2. ``allocate_state(self, num_envs) -> dict[str, np.ndarray]``: the env-specific state arrays
   (physics, boards, timers...), each with leading dimension ``num_envs``. The base adds
   ``rng`` (uint64 ``[num_envs]``, one xorshift state per copy), ``episode_return`` (float64
   ``[rows]``), ``episode_length`` (int64 ``[rows]``) and ``episode_stats`` (float64
   ``[num_envs, 3 + len(score_keys)]``), all reachable as ``self.state[name]``. Everything in
   ``self.state`` (plus the observation buffer) is what :meth:`NativeEnv.get_state` saves.
3. ``reset_envs(self, lo, hi)``: call your numba reset kernel for copies ``[lo, hi)``. It draws
   from the copies' generators (with :func:`rng_uniform` / :func:`rng_integers`), writes the
   copies' state and observation rows. The base zeroes the episode counters, rewards and flags
   before calling it.
4. ``step_envs(self, lo, hi)``: call your numba step kernel for copies ``[lo, hi)``. For each
   copy it reads the actions, advances the state, writes rewards, terminals and truncations
   (truncation = time limit, distinct from termination), adds the reward to the episode return
   and 1 to the episode length; for a copy whose episode ended it adds its ``score_keys``
   columns, calls :func:`end_episode` (which copies the observation into
   ``final_observations`` and adds the episode to ``episode_stats`` with
   :func:`record_episode`, zeroing the counters) and resets the copy in place (same-step
   autoreset), writing the next episode's first observation.

The calling convention: every kernel takes ``(lo, hi, io, <env state arrays>, <params>)``.
``io`` is :attr:`NativeEnv.io`, one tuple (:data:`KernelIO`) built once by the base holding the
contract's buffers and the base's state, indexed with this module's constants:
``io[OBSERVATIONS]`` (``[rows, obs_size]``, flattened), ``io[ACTIONS]``, ``io[REWARDS]``,
``io[TERMINALS]``, ``io[TRUNCATIONS]``, ``io[MASKS]``, ``io[FINAL_OBSERVATIONS]``, ``io[RNG]``,
``io[EPISODE_RETURN]``, ``io[EPISODE_LENGTH]``, ``io[EPISODE_STATS]``. The env's own arrays
follow (``self.state[...]``, and separately any extra per-row arrays such as Connect4's
``action_masks`` or HazardNav's ``costs``), then parameters (numbers or one float64 array)::

    @njit(cache=True, nogil=True)
    def _step(lo, hi, io, position, max_steps):
        actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
        ...

Take the arrays out of ``io`` at the top of the kernel, before its loops: indexing ``io`` is
free at compile time, but each access in a hot loop costs reference counting (CartPole ran 20%
slower). A helper that takes ``io`` and runs once per row must be ``inline="always"`` (as
:func:`end_episode` is); a plain call passes the whole tuple (probe-constant ran 4x slower).

Kernels must not allocate, must touch only rows of their copy range (so threads never race) and
take every array as an argument (module-level constants are fine: numba freezes them). Randomness
comes only from the copy's own generator, so results do not depend on ``threads``. Declare
``score_keys`` (class attribute) for env-specific scores: a kernel adds to
``episode_stats[copy, 3 + k]`` when an episode ends and ``infos`` reports the mean per episode.
Override :meth:`NativeEnv.render` to draw a row (see :mod:`fugu.envs.render`).

Speed habits: ``set_state`` copies in place, so the arrays never change identity: ``io`` is built
once, and so can any tuple of env arrays; run the common path in one branch-light loop and
handle ended episodes in a second pass; use :func:`fugu.envs.libm.sincos` when both ``sin`` and
``cos`` of one angle are needed (bit-identical, twice as fast). :mod:`fugu.envs.cartpole` is the
reference example.

Episode statistics are accumulated per copy inside the kernels and aggregated into ``infos``
every ``info_interval`` steps: ``[{"episode_return": mean, "episode_length": mean,
"num_episodes": n, **scores}]`` (an empty list when no episode ended in the interval).

Example:
    A one-dimensional walk (kernels in a real env also take ``cache=True``, which a doctest
    cannot):

    >>> from numba import njit
    >>> @njit(nogil=True)
    ... def walk_reset(lo, hi, io, position):
    ...     obs, rng = io[OBSERVATIONS], io[RNG]
    ...     for i in range(lo, hi):
    ...         position[i] = rng_uniform(rng, i, -1.0, 1.0)
    ...         obs[i, 0] = position[i]
    >>> @njit(nogil=True)
    ... def walk_step(lo, hi, io, position, max_steps):
    ...     actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    ...     terminals, truncations = io[TERMINALS], io[TRUNCATIONS]
    ...     ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    ...     for i in range(lo, hi):
    ...         position[i] += 0.1 if actions[i] == 1 else -0.1
    ...         obs[i, 0] = position[i]
    ...         reward = -abs(position[i])
    ...         rewards[i] = reward
    ...         ret[i] += reward
    ...         length[i] += 1
    ...         terminals[i] = abs(position[i]) > 2.0
    ...         truncations[i] = length[i] >= max_steps
    ...         if terminals[i] or truncations[i]:
    ...             end_episode(io, i, i, i + 1)  # final observation, statistics
    ...             walk_reset(i, i + 1, io, position)  # same-step autoreset
    >>> class Walk(NativeEnv):
    ...     def __init__(self, num_envs=1, *, max_steps=100, **kwargs):
    ...         self.max_steps = max_steps
    ...         box = spaces.Box(-3.0, 3.0, (1,), np.float32)
    ...         super().__init__(num_envs, box, spaces.Discrete(2), **kwargs)
    ...     def allocate_state(self, num_envs):
    ...         return {"position": np.zeros(num_envs)}
    ...     def reset_envs(self, lo, hi):
    ...         walk_reset(lo, hi, self.io, self.state["position"])
    ...     def step_envs(self, lo, hi):
    ...         walk_step(lo, hi, self.io, self.state["position"], self.max_steps)
    >>> walk = Walk(num_envs=3, max_steps=5, seed=0, info_interval=5)
    >>> _ = walk.reset()
    >>> for _ in range(5):
    ...     *_, truncations, infos = walk.step(np.ones(3, dtype=np.int32))
    >>> truncations.tolist(), infos[0]["num_episodes"], infos[0]["episode_length"]
    ([True, True, True], 3, 5.0)

    State round trips:

    >>> from fugu.envs.cartpole import CartPole
    >>> env = CartPole(num_envs=4, seed=0)
    >>> obs, infos = env.reset()
    >>> obs.shape, env.actions.dtype
    ((4, 4), dtype('int32'))
    >>> state = env.get_state()
    >>> a = env.step(np.ones(4, dtype=np.int32))[0].copy()
    >>> env.set_state(state)
    >>> bool((env.step(np.ones(4, dtype=np.int32))[0] == a).all())
    True
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers, Infos, PufferEnv, StepResult, write_actions
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.core.vec import VecBatch

__all__ = [
    "ACTIONS",
    "EPISODE_LENGTH",
    "EPISODE_RETURN",
    "EPISODE_STATS",
    "FINAL_OBSERVATIONS",
    "MASKS",
    "OBSERVATIONS",
    "REWARDS",
    "RNG",
    "TERMINALS",
    "TRUNCATIONS",
    "KernelIO",
    "NativeEnv",
    "end_episode",
    "record_episode",
    "rng_integers",
    "rng_next",
    "rng_uniform",
    "seed_rng",
]

_RETURN, _LENGTH, _COUNT = 0, 1, 2  # columns of episode_stats; score_keys follow

KernelIO = tuple[np.ndarray, ...]
"""The arrays every kernel reads and writes, as one tuple: :attr:`NativeEnv.io`.

Index it with the module's constants (numba resolves ``io[REWARDS]`` at compile time, so it
costs nothing): ``OBSERVATIONS`` (the observation rows flattened to ``[rows, obs_size]``),
``ACTIONS``, ``REWARDS``, ``TERMINALS``, ``TRUNCATIONS``, ``MASKS``, ``FINAL_OBSERVATIONS``
(flattened like ``OBSERVATIONS``), ``RNG`` (``[num_envs]``), ``EPISODE_RETURN``,
``EPISODE_LENGTH`` (``[rows]``) and ``EPISODE_STATS`` (``[num_envs, 3 + len(score_keys)]``).
"""

(
    OBSERVATIONS,
    ACTIONS,
    REWARDS,
    TERMINALS,
    TRUNCATIONS,
    MASKS,
    FINAL_OBSERVATIONS,
    RNG,
    EPISODE_RETURN,
    EPISODE_LENGTH,
    EPISODE_STATS,
) = range(11)


@njit(cache=True, nogil=True)
def seed_rng(rng: np.ndarray, seed: np.uint64) -> None:  # pragma: no cover - numba
    """Seed ``rng[i]`` from ``seed + i`` with splitmix64 (never zero, as xorshift needs)."""
    for i in range(rng.shape[0]):
        z = np.uint64(seed) + np.uint64(i) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        rng[i] = z if z != np.uint64(0) else np.uint64(0x2545F4914F6CDD1D)


@njit(cache=True, nogil=True)
def rng_next(rng: np.ndarray, i: int) -> np.uint64:  # pragma: no cover - numba
    """Advance copy ``i``'s xorshift64* state and return 64 random bits."""
    x = rng[i]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[i] = x
    return x * np.uint64(0x2545F4914F6CDD1D)


@njit(cache=True, nogil=True)
def rng_uniform(rng: np.ndarray, i: int, low: float, high: float) -> float:  # pragma: no cover
    """A float64 uniform in ``[low, high)`` from copy ``i``'s generator."""
    u = np.float64(rng_next(rng, i) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    return low + (high - low) * u


@njit(cache=True, nogil=True)
def rng_integers(rng: np.ndarray, i: int, n: int) -> int:  # pragma: no cover - numba
    """An integer uniform in ``[0, n)`` from copy ``i``'s generator (``n`` small)."""
    return int((rng_next(rng, i) >> np.uint64(33)) % np.uint64(n))


@njit(cache=True, nogil=True)
def record_episode(
    stats: np.ndarray,
    env: int,
    episode_return: np.ndarray,
    episode_length: np.ndarray,
    row: int,
) -> None:  # pragma: no cover - numba
    """Add row ``row``'s finished episode to copy ``env``'s statistics and zero its counters."""
    stats[env, 0] += episode_return[row]
    stats[env, 1] += episode_length[row]
    stats[env, 2] += 1.0
    episode_return[row] = 0.0
    episode_length[row] = 0


@njit(cache=True, nogil=True, inline="always")
def end_episode(io: KernelIO, env: int, row_lo: int, row_hi: int) -> None:  # pragma: no cover
    """Rows ``[row_lo, row_hi)`` of copy ``env`` ended their episode on this step.

    Copies their observations into ``final_observations`` and adds each row's episode to the
    copy's statistics with :func:`record_episode` (which zeroes its counters). Call it after
    writing the observation that ended the episode and before resetting the copy's state
    (same-step autoreset); env-specific ``score_keys`` columns are the caller's to add.

    Example:
        >>> from fugu.envs.cartpole import CartPole
        >>> env = CartPole(num_envs=2, seed=0)
        >>> _ = env.reset()
        >>> _ = env.step(np.ones(2, dtype=np.int32))
        >>> end_episode(env.io, 1, 1, 2)
        >>> bool((env.final_observations[1] == env.observations[1]).all())
        True
        >>> env.state["episode_length"].tolist(), env.state["episode_stats"][1].tolist()
        ([1, 0], [1.0, 1.0, 1.0])
    """
    obs, final = io[OBSERVATIONS], io[FINAL_OBSERVATIONS]
    stats, ret, length = io[EPISODE_STATS], io[EPISODE_RETURN], io[EPISODE_LENGTH]
    for row in range(row_lo, row_hi):
        for k in range(obs.shape[1]):
            final[row, k] = obs[row, k]
        record_episode(stats, env, ret, length, row)


def _flat_rows(array: np.ndarray) -> np.ndarray:
    """A ``[rows, -1]`` view of ``array`` (never a copy: kernels write through it)."""
    flat = array.reshape(array.shape[0], -1)
    if flat.size and not np.shares_memory(flat, array):
        raise APIUsageError("native envs need observation buffers whose rows are contiguous")
    return flat


def _splits(n: int, parts: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, n, min(parts, n) + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


class NativeEnv(PufferEnv):
    """Base of fugu's numba-vectorized envs; see the module docstring for how to write one.

    Args:
        num_envs: Number of env copies (rows = ``num_envs * agents_per_env``).
        single_observation_space: One row's observation space (a Box).
        single_action_space: One row's action space.
        agents_per_env: Agents (rows) per copy.
        threads: Threads stepping disjoint ranges of copies (1 = the calling thread only).
        seed: Seed used by the first :meth:`reset` called without one (copy ``i`` is seeded
            from ``seed + i``, so results do not depend on ``threads``).
        buffers: Buffers to adopt (from a vectorizer); allocated when ``None``.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per :meth:`recv` batch (a multiple of ``agents_per_env`` dividing the
            rows); ``None`` means all rows. Smaller batches step on a worker thread while the
            caller works on the previous batch.
        extra_fields: The env's extra per-row buffers (:mod:`fugu.core.schema`), exposed as
            ``self.extras[name]`` and ``self.<name>``; kernels write them in place.
    """

    score_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        num_envs: int,
        single_observation_space: spaces.Box,
        single_action_space: spaces.Space,
        *,
        agents_per_env: int = 1,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        extra_fields: Sequence[Field] = (),
    ) -> None:
        if isinstance(num_envs, bool) or num_envs != int(num_envs) or int(num_envs) < 1:
            raise APIUsageError(f"num_envs must be a whole number >= 1, got {num_envs!r}")
        if int(threads) < 1:
            raise APIUsageError(f"threads must be >= 1, got {threads}")
        if int(info_interval) < 1:
            raise APIUsageError(f"info_interval must be >= 1, got {info_interval}")
        self.num_copies = int(num_envs)
        self.agents_per_env = int(agents_per_env)
        super().__init__(
            single_observation_space,
            single_action_space,
            self.num_copies * self.agents_per_env,
            buffers,
            extra_fields,
        )
        self.threads = int(threads)
        self.info_interval = int(info_interval)
        self._seed = seed
        rows = self.num_agents
        self.state: dict[str, np.ndarray] = dict(self.allocate_state(self.num_copies))
        self.state["rng"] = np.zeros(self.num_copies, dtype=np.uint64)
        self.state["episode_return"] = np.zeros(rows, dtype=np.float64)
        self.state["episode_length"] = np.zeros(rows, dtype=np.int64)
        self.state["episode_stats"] = np.zeros(
            (self.num_copies, 3 + len(self.score_keys)), dtype=np.float64
        )
        self.state["steps"] = np.zeros(1, dtype=np.int64)  # synced from _steps by get_state
        s = self.state  # set_state copies in place, so these arrays never change identity
        self.io: KernelIO = (
            _flat_rows(self.observations), self.actions, self.rewards, self.terminals,
            self.truncations, self.masks, _flat_rows(self.final_observations), s["rng"],
            s["episode_return"], s["episode_length"], s["episode_stats"],
        )  # fmt: skip
        """The contract's buffers and the base's state, one tuple for every kernel (see
        :data:`KernelIO`)."""
        self._steps = 0
        self._rng_seeded = False
        self._ready = False
        """Whether :meth:`step` may run: after a reset (or a restored state), until closed."""
        self._chunks = _splits(self.num_copies, self.threads)
        self._pool: ThreadPoolExecutor | None = None
        self._batch_pool: ThreadPoolExecutor | None = None
        if len(self._chunks) > 1:
            self._pool = ThreadPoolExecutor(len(self._chunks) - 1, thread_name_prefix="fugu-env")
        self._init_batches(batch_size)

    # -- what subclasses implement ------------------------------------------------------------
    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """Env-specific state arrays with leading dimension ``num_envs`` (override)."""
        return {}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Reset copies ``[lo, hi)`` by calling the env's numba reset kernel (override)."""
        raise NotImplementedError

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)`` by calling the env's numba step kernel (override)."""
        raise NotImplementedError

    # -- the contract -------------------------------------------------------------------------
    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[np.ndarray, Infos]:
        """Reset every copy; copy ``i`` draws from a generator seeded with ``seed + i``.

        Without a seed, the constructor's seed is used on the first reset, and later resets
        continue each copy's generator (fresh OS entropy when no seed was ever given).
        """
        self._check_open()
        self._wait_all()
        if seed is None and not self._rng_seeded:
            seed = self._seed
            if seed is None:
                seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        if seed is not None:
            self._seed_rows(seed)
        self.state["episode_return"][:] = 0.0
        self.state["episode_length"][:] = 0
        self.state["episode_stats"][:] = 0.0
        self._steps = 0
        self.rewards[:] = 0.0
        self.terminals[:] = False
        self.truncations[:] = False
        self.masks[:] = True  # every row of a native env is a live agent
        self._run(self.reset_envs)
        self._ready = True
        return self.observations, []

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every copy with ``actions`` (written into the action buffer unless it is it).

        Raises:
            APIUsageError: the env is closed, or was never reset.
        """
        if not self._ready:
            self._check_open()
            raise APIUsageError(
                f"{type(self).__name__}.step() called before reset(); call env.reset(seed=...) "
                "first (the observations are undefined until then)"
            )
        if self._num_batches > 1:
            self._wait_all()  # a batch may still be stepping after send()
        if actions is not self.actions:
            self._write_actions(actions)
        if self._pool is None:
            self.step_envs(0, self.num_copies)
        else:
            self._run(self.step_envs)
        self._steps += 1
        infos = [] if self._steps % self.info_interval else self.flush_infos()
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def close(self) -> None:
        """Stop the worker threads. Idempotent."""
        self._wait_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._batch_pool is not None:
            self._batch_pool.shutdown(wait=True)
            self._batch_pool = None
        self.closed = True
        self._ready = False

    # -- state ----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of the full env state: env arrays, generators, episode counters, observations.

        :meth:`set_state` with it makes the env continue exactly as it would have.
        """
        self._wait_all()
        self.state["steps"][0] = self._steps
        state = {name: array.copy() for name, array in self.state.items()}
        state["observations"] = self.observations.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state` (arrays are copied in place)."""
        self._wait_all()
        expected = {**self.state, "observations": self.observations}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise APIUsageError(
                f"state keys do not match {type(self).__name__}: missing {missing}, "
                f"unexpected {extra}; pass a dict from get_state() of the same env"
            )
        for name, target in expected.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise APIUsageError(
                    f"state[{name!r}] has shape {value.shape}, expected {target.shape}; "
                    "was it saved from an env with another num_envs?"
                )
            target[...] = value
        self._steps = int(self.state["steps"][0])
        self._rng_seeded = True
        self._ready = not self.closed

    # -- helpers --------------------------------------------------------------------------------
    def _seed_rows(self, seed: int | Sequence[int]) -> None:
        rng = self.state["rng"]
        if isinstance(seed, (int, np.integer)):
            seed_rng(rng, np.uint64(int(seed) % 2**64))
        else:
            seeds = [int(s) for s in seed]
            if len(seeds) != self.num_copies:
                raise APIUsageError(
                    f"reset(seed=...) got {len(seeds)} seeds for {self.num_copies} env copies; "
                    "pass one int (copy i uses seed + i) or one seed per copy"
                )
            one = np.zeros(1, dtype=np.uint64)
            for i, s in enumerate(seeds):
                seed_rng(one, np.uint64(s % 2**64))
                rng[i] = one[0]
        self._rng_seeded = True

    def _run(self, fn: Callable[[int, int], None]) -> None:
        """Call ``fn(lo, hi)`` on every chunk of copies, chunks 1.. on the pool."""
        if self._pool is None:
            fn(0, self.num_copies)
            return
        futures = [self._pool.submit(fn, lo, hi) for lo, hi in self._chunks[1:]]
        lo, hi = self._chunks[0]
        fn(lo, hi)
        for future in futures:
            future.result()

    def _tick(self) -> Infos:
        self._steps += 1
        return [] if self._steps % self.info_interval else self.flush_infos()

    def flush_infos(self) -> Infos:
        """Aggregate (and clear) the episode statistics gathered since the last aggregation."""
        stats = self.state["episode_stats"]
        totals = stats.sum(axis=0)
        stats[:] = 0.0
        count = totals[_COUNT]
        if count == 0:
            return []
        info: dict[str, Any] = {
            "episode_return": float(totals[_RETURN] / count),
            "episode_length": float(totals[_LENGTH] / count),
            "num_episodes": int(count),
        }
        for k, key in enumerate(self.score_keys):
            info[key] = float(totals[3 + k] / count)
        return [info]

    # -- double-buffered batches ----------------------------------------------------------------
    def _init_batches(self, batch_size: int | None) -> None:
        rows = self.num_agents
        size = rows if batch_size is None else int(batch_size)
        if size < 1 or rows % size or size % self.agents_per_env:
            raise APIUsageError(
                f"batch_size must divide the {rows} rows and be a multiple of agents_per_env "
                f"({self.agents_per_env}), got {batch_size}"
            )
        self.batch_size = size
        self._num_batches = rows // size
        per = size // self.agents_per_env
        self._batches = [(b * per, (b + 1) * per) for b in range(self._num_batches)]
        parts = len(self._chunks)  # each batch is split over the stepping threads too
        self._batch_chunks = [_splits_range(lo, hi, parts) for lo, hi in self._batches]
        self._batch_ids = [
            np.arange(lo * self.agents_per_env, hi * self.agents_per_env, dtype=np.int64)
            for lo, hi in self._batches
        ]
        self._futures: list[Future[None] | None] = [None] * self._num_batches
        self._batch_infos: list[Infos] = [[] for _ in range(self._num_batches)]
        self._batch_extras = [
            {name: array[lo * self.agents_per_env : hi * self.agents_per_env]
             for name, array in self.extras.items()}
            for lo, hi in self._batches
        ]  # fmt: skip
        self._next_recv = 0
        if self._num_batches > 1:
            self._batch_pool = ThreadPoolExecutor(1, thread_name_prefix="fugu-env-batch")

    @property
    def agents_per_batch(self) -> int:
        """Rows returned by each :meth:`recv`."""
        return self.batch_size

    def _wait_all(self) -> None:
        for b, future in enumerate(getattr(self, "_futures", [])):
            if future is not None:
                future.result()
                self._futures[b] = None

    def async_reset(self, seed: int | None = None) -> None:
        """Reset every row; the next :meth:`recv` returns the first batch."""
        if self._num_batches == 1:
            super().async_reset(seed)
            return
        self._check_open()
        self.reset(seed)
        self._batch_infos = [[] for _ in range(self._num_batches)]
        self._next_recv = 0
        self._awaiting = "reset"
        self._started = True

    def _step_batch(self, b: int) -> None:
        chunks = self._batch_chunks[b]
        if self._pool is None:
            self.step_envs(*chunks[0])
            return
        futures = [self._pool.submit(self.step_envs, lo, hi) for lo, hi in chunks[1:]]
        self.step_envs(*chunks[0])
        for future in futures:
            future.result()

    def send(self, actions: np.ndarray) -> None:
        """Start stepping the rows of the last :meth:`recv` with ``actions`` (one per row)."""
        if self._num_batches == 1:
            super().send(actions)
            return
        self._check_open()
        if not self._started:
            raise APIUsageError("send() called before async_reset(); call async_reset() first")
        if self._awaiting is not None:
            raise APIUsageError("send() called twice without recv(); call recv() first")
        b = (self._next_recv - 1) % self._num_batches
        lo, hi = self._batches[b]
        rows = slice(lo * self.agents_per_env, hi * self.agents_per_env)
        write_actions(self.actions[rows], actions)
        assert self._batch_pool is not None
        self._futures[b] = self._batch_pool.submit(self._step_batch, b)
        self._awaiting = "step"

    def recv(self) -> VecBatch:
        """Return the next batch of rows (waiting for its step to finish)."""
        if self._num_batches == 1:
            return super().recv()
        self._check_open()
        if self._awaiting is None:
            raise APIUsageError("recv() called without a pending async_reset() or send()")
        self._awaiting = None
        b = self._next_recv
        future = self._futures[b]
        if future is not None:
            future.result()
            self._futures[b] = None
            if b == self._num_batches - 1:
                self._batch_infos[b] = self._tick()
        self._next_recv = (b + 1) % self._num_batches
        infos, self._batch_infos[b] = self._batch_infos[b], []
        lo, hi = self._batches[b]
        rows = slice(lo * self.agents_per_env, hi * self.agents_per_env)
        return VecBatch(
            self.observations[rows],
            self.rewards[rows],
            self.terminals[rows],
            self.truncations[rows],
            self.final_observations[rows],
            infos,
            self._batch_ids[b],
            self.masks[rows],
            self._batch_extras[b],
        )


def _splits_range(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    return [(lo + a, lo + b) for a, b in _splits(hi - lo, parts)]
