"""Run a policy for whole episodes on an env: returns, lengths and (optionally) rendered frames.

Used by ``fugu eval`` and by the trainer's periodic episode videos. Rows are stepped together;
an episode counts when one of its rows finishes, and frames are taken from row 0 only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fugu.core.errors import APIUsageError
from fugu.models import Policy

__all__ = ["EvalResult", "evaluate_policy"]


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate_policy`.

    Attributes:
        returns: Undiscounted return of each finished episode, in finishing order.
        lengths: Length of each finished episode.
        frames: Rendered RGB frames ``[T, H, W, 3]`` of row 0's first episode (``None`` when
            not rendering).
    """

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    frames: np.ndarray | None = None

    @property
    def mean_return(self) -> float:
        """Mean return over the episodes (``nan`` when none finished)."""
        return float(np.mean(self.returns)) if self.returns else float("nan")

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """``eval/episode_return``, ``eval/episode_length``, ``eval/num_episodes``."""
        return {
            f"{prefix}/episode_return": self.mean_return,
            f"{prefix}/episode_length": float(np.mean(self.lengths)) if self.lengths else 0.0,
            f"{prefix}/num_episodes": float(len(self.returns)),
        }


def evaluate_policy(
    env: Any,
    policy: Policy,
    episodes: int = 10,
    *,
    deterministic: bool = True,
    render: bool = False,
    max_frames: int = 1000,
    max_steps: int = 100_000,
    seed: int | None = 0,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Play ``episodes`` episodes of ``policy`` on ``env`` (a fugu env, any number of rows).

    Args:
        env: A :class:`~fugu.core.env.PufferEnv` (``reset``/``step``; ``render(row)`` when
            rendering).
        policy: The policy (its ``forward_eval`` is used under inference mode).
        episodes: Episodes to finish before stopping.
        deterministic: Take the distribution's mode instead of sampling.
        render: Record row 0's first episode with ``env.render(0)``.
        max_frames: Most frames recorded.
        max_steps: Give up after this many vector steps (an env that never ends).
        seed: Reset seed (and sampling seed when not deterministic).
        device: Where the policy runs.

    Returns:
        An :class:`EvalResult`.
    """
    if episodes < 1:
        raise APIUsageError(f"episodes must be >= 1, got {episodes}")
    policy = policy.to(device).eval()
    generator = torch.Generator(device=device)
    generator.manual_seed(0 if seed is None else int(seed))
    obs, _ = env.reset(seed)
    rows = int(np.asarray(env.rewards).shape[0])
    returns_so_far = np.zeros(rows, dtype=np.float64)
    lengths_so_far = np.zeros(rows, dtype=np.int64)
    result = EvalResult()
    frames: list[np.ndarray] = []
    recording = render
    state = policy.initial_state(rows, device)
    dist = policy.distribution
    if recording:
        frames.append(np.asarray(env.render(0), dtype=np.uint8).copy())
    for _ in range(max_steps):
        with torch.inference_mode():
            params, _, state = policy.forward_eval(torch.as_tensor(obs, device=device), state)
            actions = dist.mode(params) if deterministic else dist.sample(params, generator)
        obs, rewards, terminals, truncations, _ = env.step(
            actions.cpu().numpy().astype(env.actions.dtype, copy=False)
        )
        returns_so_far += rewards
        lengths_so_far += 1
        done = np.logical_or(terminals, truncations)
        if recording:
            if done[0] or len(frames) >= max_frames:
                recording = False
            else:
                frames.append(np.asarray(env.render(0), dtype=np.uint8).copy())
        if done.any():
            for row in np.flatnonzero(done):
                result.returns.append(float(returns_so_far[row]))
                result.lengths.append(int(lengths_so_far[row]))
            returns_so_far[done] = 0.0
            lengths_so_far[done] = 0
            if state is not None:
                state = policy.reset_state(state, torch.as_tensor(done, device=device))
            if len(result.returns) >= episodes and not recording:
                break
    result.returns = result.returns[:episodes]
    result.lengths = result.lengths[:episodes]
    if render and frames:
        result.frames = np.stack(frames)
    return result
