"""Training diagnostics beyond scalars: weight/gradient/action histograms and episode videos.

Used by :func:`fugu.train.run.train` every ``logging.histogram_interval`` /
``logging.video_interval`` epochs. Tensors are turned into numpy arrays here, so the loggers
stay torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from fugu.algos.base import Algorithm
from fugu.loggers import Logger
from fugu.train.experiment import ExperimentConfig
from fugu.train.loop import Trainer

__all__ = [
    "GradientRecorder",
    "log_histograms",
    "log_novelty_heatmaps",
    "log_video",
    "named_parameters",
]

_log = logging.getLogger(__name__)


def named_parameters(
    modules: Mapping[str, torch.nn.Module],
) -> list[tuple[str, torch.nn.Parameter]]:
    """``("<module>.<parameter>", parameter)`` over every module an algorithm owns."""
    return [
        (f"{module_name}.{name}", param)
        for module_name, module in modules.items()
        for name, param in module.named_parameters()
    ]


class GradientRecorder:
    """Keeps a copy of each parameter's last gradient while ``active`` (for histograms)."""

    def __init__(self, modules: Mapping[str, torch.nn.Module]) -> None:
        self.active = False
        self.grads: dict[str, np.ndarray] = {}
        self._handles = [
            param.register_post_accumulate_grad_hook(self._hook(name))
            for name, param in named_parameters(modules)
            if param.requires_grad  # frozen ones (target networks) get no gradient
        ]

    def _hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(param: torch.Tensor) -> None:
            if self.active and param.grad is not None:
                self.grads[name] = param.grad.detach().float().cpu().numpy().copy()

        return hook

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()


def log_histograms(
    logger: Logger,
    grads: Mapping[str, np.ndarray],
    trainer: Trainer,
    step: int,
) -> None:
    """Histograms of every weight, of the recorded gradients and of the rollout's actions."""
    for name, param in named_parameters(trainer.algo.modules()):
        logger.log_histogram(f"weights/{name}", param.detach().float().cpu().numpy(), step)
    for name, grad in grads.items():
        logger.log_histogram(f"gradients/{name}", grad, step)
    actions = trainer.collector.storage.tensors["actions"]
    logger.log_histogram("actions", actions.float().cpu().numpy(), step)


def log_video(
    logger: Logger, config: ExperimentConfig, algo: Algorithm, step: int
) -> dict[str, float]:
    """Play one episode on a fresh env, log its frames as a video; return ``eval/`` metrics."""
    from fugu.bridges.entry import make_env as make
    from fugu.train.evaluate import evaluate_policy

    try:
        env = make(config.env.id, **{**config.env.kwargs, "render_mode": "rgb_array"})
    except Exception as error:  # an env that cannot be built alone: skip the video
        _log.warning("no episode video: cannot build %s (%s)", config.env.id, error)
        return {}
    try:
        result = evaluate_policy(
            env,
            algo,
            episodes=1,
            render=True,
            max_frames=config.logging.video_length,
            seed=config.train.seed,
        )
    except Exception as error:  # env without render(): skip, once per call
        _log.warning("no episode video: %s", error)
        return {}
    finally:
        env.close()
    if result.frames is not None:
        logger.log_image("eval/frame", result.frames[0], step)
        logger.log_video("eval/video", result.frames, step, fps=30)
    return result.metrics("eval")


def log_novelty_heatmaps(logger: Logger, trainer: Trainer, step: int) -> int:
    """Log ``explore/<hook>_novelty``: each novelty-scoring reward hook (RND) painted over the
    grid cells of the trainer's env; returns the number of images logged (0 where the env has
    no grid: ``cell_observations()`` and ``grid_shape``)."""
    from fugu.explore.heatmap import novelty_heatmap

    hooks = [hook for hook in trainer.reward_hooks if callable(getattr(hook, "novelty", None))]
    grids: list[Any] = [
        env for env in trainer.envs if callable(getattr(env, "cell_observations", None))
    ]
    if not hooks or not grids:
        return 0
    cells, shape = grids[0].cell_observations(), tuple(grids[0].grid_shape)
    for hook in hooks:
        image = novelty_heatmap(hook, cells, shape)
        logger.log_image(f"explore/{getattr(hook, 'name', 'hook')}_novelty", image, step)
    return len(hooks)
