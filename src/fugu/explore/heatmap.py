"""Novelty heatmaps: what an exploration hook still finds novel, cell by cell, as an image.

For an env with positions on a grid, build one observation per cell (DeepSea:
:meth:`~fugu.envs.deep_sea.DeepSea.cell_observations`), score them with the hook's
``novelty`` and paint the grid: bright cells are the ones the predictor has not learned, i.e.
the frontier of exploration. The image is an RGB ``uint8 [H, W, 3]`` array, what
:meth:`fugu.loggers.Logger.log_image` records (a TensorBoard image).

Example:
    >>> from gymnasium import spaces
    >>> from fugu.explore.rnd import RND
    >>> hook = RND(spaces.Box(0, 1, (9,)))
    >>> image = novelty_heatmap(hook, torch.eye(9), (3, 3), cell_size=4)
    >>> image.shape, image.dtype
    ((12, 12, 3), dtype('uint8'))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["novelty_heatmap"]


def novelty_heatmap(
    hook: Any,
    cell_observations: torch.Tensor | np.ndarray,
    grid_shape: tuple[int, int],
    cell_size: int = 8,
) -> np.ndarray:
    """An RGB image of ``hook.novelty`` over a grid's cells (dark blue low, yellow high).

    Args:
        hook: A hook with ``novelty(observations) -> [B]`` (RND).
        cell_observations: ``[rows * cols, *obs_shape]`` observations, one per cell, row-major.
        grid_shape: ``(rows, cols)``.
        cell_size: Pixels per cell side.
    """
    obs = torch.as_tensor(np.asarray(cell_observations), dtype=torch.float32)
    scores = hook.novelty(obs).float().cpu().numpy().reshape(grid_shape)
    low, high = float(scores.min()), float(scores.max())
    level = (scores - low) / (high - low) if high > low else np.zeros_like(scores)
    dark, bright = np.array([20.0, 30.0, 90.0]), np.array([250.0, 230.0, 40.0])
    rgb = (dark + level[..., None] * (bright - dark)).astype(np.uint8)
    return np.repeat(np.repeat(rgb, cell_size, axis=0), cell_size, axis=1)
