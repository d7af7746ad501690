"""Building a run's parts from its config: env shards, the algorithm, the trainer, the loggers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

import fugu.vector
from fugu.algos.base import Algorithm
from fugu.algos.registry import get_algorithm
from fugu.bridges.entry import EntryPointEnv, is_entry_point
from fugu.core.errors import APIUsageError
from fugu.explore.config import make_reward_hooks
from fugu.loggers import JsonlLogger, Logger, MultiLogger
from fugu.safety.config import wrap_envs
from fugu.train.experiment import ExperimentConfig
from fugu.train.loop import Trainer, make_train_envs
from fugu.vector import EnvFactory

__all__ = [
    "build_algorithm",
    "build_env",
    "build_trainer",
    "load_algorithm",
    "make_logger",
]


def build_env(
    config: ExperimentConfig, num_envs: int | None = None, seed: int | None = None
) -> list[Any]:
    """The env shards of ``config.env``: two halves of a native env when double-buffering
    (see :func:`~fugu.train.loop.make_train_envs`), else one vec env from
    :func:`fugu.vector.make`."""
    env = config.env
    rows = env.num_envs if num_envs is None else num_envs
    seed = config.train.seed if seed is None else seed
    kwargs = dict(env.kwargs)
    if is_entry_point(env.id):  # "package.module:factory": any env a factory returns
        backend = "serial" if env.backend in ("auto", "native") else env.backend
        return [
            fugu.vector.make(
                EntryPointEnv(env.id),
                num_envs=rows,
                backend=backend,
                num_workers=env.threads if env.threads > 1 else None,
                seed=seed,
                env_kwargs=kwargs,
            )
        ]
    if env.backend in ("remote", "ray"):
        return [
            fugu.vector.make(
                env.id,
                num_envs=rows,
                backend=env.backend,
                num_workers=env.threads if env.backend == "ray" and env.threads > 1 else None,
                seed=seed,
                env_kwargs=kwargs if env.backend == "ray" else None,
                address=env.address,
                token=os.environ.get("FUGU_SERVE_TOKEN") if env.backend == "remote" else None,
            )
        ]
    native = env.backend == "native" or (
        env.backend == "auto" and EnvFactory(env.id, kwargs).accepts("num_envs")
    )
    if native:
        if env.threads > 1:
            kwargs["threads"] = env.threads
        return make_train_envs(env.id, rows, seed, config.train.double_buffer, **kwargs)
    return [
        fugu.vector.make(
            env.id,
            num_envs=rows,
            backend=env.backend,
            num_workers=env.threads if env.threads > 1 else None,
            seed=seed,
            env_kwargs=kwargs,
        )
    ]


def make_logger(config: ExperimentConfig, run_dir: Path, resumed: bool) -> MultiLogger:
    loggers: list[Logger] = []
    settings = config.logging
    if settings.jsonl:
        loggers.append(JsonlLogger(run_dir / "metrics.jsonl"))
    if settings.tensorboard:
        from fugu.loggers.tensorboard import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir))
    if settings.wandb:
        from fugu.loggers.wandb import WandbLogger

        loggers.append(
            WandbLogger(
                settings.wandb_project,
                mode=settings.wandb_mode,
                name=run_dir.name,
                group=settings.wandb_group,
                dir=run_dir,
                config=config.to_dict(),
                run_id=run_dir.name.replace(".", "-")[-64:],
            )
        )
    logger = MultiLogger(loggers)
    if not resumed:
        logger.log_config(config.to_dict())
    return logger


def build_algorithm(
    config: ExperimentConfig, observation_space: Any, action_space: Any
) -> Algorithm:
    """The algorithm ``train.algo`` of ``config`` for these spaces, its weights initialised
    from ``train.seed`` (with the global torch RNG forked, so nothing else is affected)."""
    if config.train.torch_threads is not None:
        # The Trainer sets this too, but the (orthogonal) initialisation already depends on
        # it: set it first so a run's initial weights do not depend on history.
        torch.set_num_threads(config.train.torch_threads)
    algo_type = get_algorithm(config.algo)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return algo_type.build(  # type: ignore[no-any-return]
            config.algo_config,
            observation_space,
            action_space,
            config.policy,
            config.train.device,
        )


def build_trainer(config: ExperimentConfig, **trainer_kwargs: Any) -> Trainer:
    """Env shards, algorithm and :class:`~fugu.train.loop.Trainer` of ``config``.

    ``trainer_kwargs`` go to the trainer (``policy_map``, ``reward_hooks``, ``dataset``); the
    ``[explore]`` section's hooks are added to ``reward_hooks``; the ``[shield]`` section wraps
    the env shards in shields (:func:`fugu.safety.config.wrap_envs`).
    """
    try:
        envs = build_env(config)
    except TypeError as error:
        if not config.env.kwargs:
            raise
        raise APIUsageError(
            f"env {config.env.id!r} rejected env.kwargs {config.env.kwargs} ({error}); check "
            "the env's docstring ('fugu envs' lists them) for its arguments"
        ) from None
    envs = wrap_envs(config.shield, envs, config.env.id, config.env.kwargs)
    obs_space, act_space = envs[0].single_observation_space, envs[0].single_action_space
    algo = build_algorithm(config, obs_space, act_space)
    explore = make_reward_hooks(config.explore, algo, obs_space, act_space, config.train.seed)
    if explore:
        trainer_kwargs["reward_hooks"] = [*trainer_kwargs.get("reward_hooks", ()), *explore]
    return Trainer(envs, algo, config.train, **trainer_kwargs)


def load_algorithm(
    checkpoint: str | Path, observation_space: Any, action_space: Any, device: str | None = None
) -> tuple[Algorithm, ExperimentConfig]:
    """The algorithm of a checkpoint, with its modules' weights, and the checkpoint's config.

    Args:
        checkpoint: A checkpoint directory (verified: a corrupt one raises).
        observation_space: The env's single observation space.
        action_space: The env's single action space.
        device: Where to put it (default: the config's ``train.device``).
    """
    from fugu.checkpoint import load_checkpoint
    from fugu.train.session import load_module_weights

    loaded = load_checkpoint(checkpoint)
    config = ExperimentConfig.from_dict(loaded.config)
    if device is not None:
        config = config.with_overrides({"train.device": device})
    algo = build_algorithm(config, observation_space, action_space)
    load_module_weights(algo.modules(), loaded.weights)
    return algo, config
