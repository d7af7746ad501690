"""``fugu.vector.make``: build a vec env of any backend from an env id or factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fugu.core.errors import APIUsageError
from fugu.core.vec import VecEnv
from fugu.vector.factory import EnvFactory
from fugu.vector.multiproc import Multiprocessing
from fugu.vector.serial import Serial

__all__ = ["BACKENDS", "make"]

BACKENDS = ("auto", "serial", "multiprocessing", "native", "remote", "ray")
"""Accepted values of ``make(backend=...)``."""


def make(
    env: str | Callable[..., Any],
    num_envs: int = 1,
    *,
    backend: str = "auto",
    num_workers: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    context: str | None = None,
    spin_us: float = 200.0,
    pin_workers: bool | None = None,
    address: str | None = None,
    token: str | None = None,
    remote_options: dict[str, Any] | None = None,
) -> VecEnv:
    """Build a vec env of ``num_envs`` instances of ``env``.

    Args:
        env: A fugu env id (``"cartpole-v1"``), a Gymnasium id (``"CartPole-v1"``, wrapped by
            :mod:`fugu.core.emulation`) or a callable returning a
            :class:`~fugu.core.env.PufferEnv` and accepting ``buffers=``.
        num_envs: Number of env instances (for a native env: copies in the one native env).
        backend: ``"serial"`` (in process), ``"multiprocessing"`` (worker processes on shared
            memory), ``"native"`` (the env steps all copies itself: its constructor takes
            ``num_envs``; the env is returned as is) or ``"auto"``: native when the env
            supports it, else multiprocessing when ``num_workers > 1``, else serial.
            ``"remote"``: the rows of a ``fugu serve`` server at ``address`` (gRPC);
            ``"ray"``: env workers as Ray actors (``num_workers`` of them).
        num_workers: Worker processes (multiprocessing) or threads (native envs that take
            ``threads``).
        batch_size: Instances per :meth:`~fugu.core.vec.VecEnv.recv` batch (default: all).
        seed: Seed of the first reset that gets none (native envs: their ``seed`` argument).
        env_kwargs: Keyword arguments for the env constructor.
        context: Multiprocessing start method (``"spawn"``, ``"fork"``, ``"forkserver"``).
        spin_us: Multiprocessing: microseconds a waiting side polls before sleeping (see
            :class:`~fugu.vector.multiproc.Multiprocessing`).
        pin_workers: Multiprocessing: pin each worker to a CPU (``None``: when the workers
            cover the usable CPUs evenly; see :class:`~fugu.vector.multiproc.Multiprocessing`).
        address: ``backend="remote"``: ``host:port`` of a ``fugu serve`` server (see
            :class:`~fugu.vector.remote.Remote`); ``backend="ray"``: the Ray cluster address
            (``None``: the running or a new local one; see :class:`~fugu.vector.ray.RayVecEnv`).
        token: ``backend="remote"``: the server's token.
        remote_options: Further keyword arguments of :class:`~fugu.vector.remote.Remote`
            (``timeout_s``, ...) or :class:`~fugu.vector.ray.RayVecEnv` (``on_failure``, ...).

    Returns:
        An object implementing the :class:`~fugu.core.vec.VecEnv` protocol.

    Example:
        >>> import fugu.vector
        >>> env = fugu.vector.make("cartpole-v1", num_envs=4, backend="serial", seed=1)
        >>> obs, infos = env.reset()
        >>> obs.shape, env.num_agents
        ((4, 4), 4)
        >>> env.close()
    """
    if backend not in BACKENDS:
        raise APIUsageError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(env, str) and not callable(env):
        raise APIUsageError(f"env must be an env id or a callable, got {type(env).__name__}")
    if backend == "remote":
        from fugu.vector.remote import Remote

        if address is None:
            raise APIUsageError("backend='remote' needs address='host:port' of a `fugu serve`")
        if env_kwargs:
            raise APIUsageError("backend='remote': env_kwargs are the server's; pass them there")
        env_id = env if isinstance(env, str) else None
        return Remote(
            address, env_id, num_envs, batch_size, seed, token=token, **(remote_options or {})
        )
    factory = EnvFactory(env, dict(env_kwargs or {}))
    if backend == "ray":
        from fugu.vector.ray import RayVecEnv

        return RayVecEnv(
            factory, num_envs, num_workers, batch_size, seed, address=address,
            **(remote_options or {}),
        )  # fmt: skip
    if backend == "native" or (backend == "auto" and factory.accepts("num_envs")):
        return _native(factory, num_envs, num_workers, batch_size, seed)
    if backend == "multiprocessing" or (backend == "auto" and (num_workers or 1) > 1):
        return Multiprocessing(
            factory,
            num_envs,
            num_workers,
            batch_size,
            seed,
            context=context,
            spin_us=spin_us,
            pin_workers=pin_workers,
        )
    if num_workers not in (None, 1):
        raise APIUsageError(
            f"backend='serial' runs in one process; drop num_workers={num_workers} "
            "or use backend='multiprocessing'"
        )
    return Serial(factory, num_envs, batch_size, seed)


def _native(
    factory: EnvFactory,
    num_envs: int,
    num_workers: int | None,
    batch_size: int | None,
    seed: int | None,
) -> VecEnv:
    if not factory.accepts("num_envs"):
        raise APIUsageError(
            f"{factory.env!r} is not a native env (its constructor takes no num_envs); "
            "use backend='serial' or 'multiprocessing'"
        )
    extra: dict[str, Any] = {"num_envs": num_envs}
    for name, value in (("threads", num_workers), ("batch_size", batch_size), ("seed", seed)):
        if value is None:
            continue
        if not factory.accepts(name):
            raise APIUsageError(
                f"native env {factory.env!r} does not take {name!r}; drop that argument"
            )
        extra[name] = value
    return factory(**extra)  # type: ignore[return-value]
