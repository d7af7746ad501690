"""Run a policy for whole episodes on an env: returns, lengths and (optionally) rendered frames.

Used by ``fugu eval`` and by the trainer's periodic episode videos. Rows are stepped together;
an episode counts when one of its rows finishes, and frames are taken from row 0 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fugu.algos.base import ActOutput
from fugu.core.errors import APIUsageError
from fugu.models import Policy
from fugu.train.episodes import add_infos
from fugu.train.shards import action_bounds

__all__ = ["EvalResult", "PolicyActor", "evaluate_policy"]


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
    info_sums: dict[str, float] = field(default_factory=dict)
    info_episodes: int = 0

    def add_infos(self, infos: list[dict[str, Any]]) -> None:
        """Accumulate the env's aggregated episode infos (weighted by ``num_episodes``)."""
        self.info_episodes += add_infos(infos, self.info_sums)

    @property
    def info_means(self) -> dict[str, float]:
        """The env's own episode statistics (``win``, ``illegal``, ...), averaged per episode."""
        return {k: v / max(self.info_episodes, 1) for k, v in self.info_sums.items()}

    @property
    def mean_return(self) -> float:
        """Mean return over the episodes (``nan`` when none finished)."""
        return float(np.mean(self.returns)) if self.returns else float("nan")

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """``eval/episode_return``, ``eval/episode_length``, ``eval/num_episodes``, and the env's
        own statistics as ``eval/env/<key>``."""
        env_stats = {f"{prefix}/env/{k}": v for k, v in self.info_means.items()}
        return {
            **env_stats,
            f"{prefix}/episode_return": self.mean_return,
            f"{prefix}/episode_length": float(np.mean(self.lengths)) if self.lengths else 0.0,
            f"{prefix}/num_episodes": float(len(self.returns)),
        }


class PolicyActor:
    """A bare :class:`~fugu.models.Policy` as an :class:`~fugu.algos.base.Actor`.

    Args:
        policy: The policy.
        device: Where it runs.
        seed: Seed of the generator used when sampling.
    """

    def __init__(self, policy: Policy, device: torch.device | str = "cpu", seed: int = 0) -> None:
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def initial_state(self, num_rows: int) -> Any:
        """The policy's initial recurrent state."""
        return self.policy.initial_state(num_rows, self.device)

    def reset_state(self, state: Any, starts: torch.Tensor) -> Any:
        """Reset the state of rows that start an episode."""
        return self.policy.reset_state(state, starts)

    def act(
        self,
        obs: torch.Tensor,
        state: Any,
        extras: Mapping[str, torch.Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """The mode (or a sample) of the policy's distribution, respecting action masks."""
        with torch.inference_mode():
            params, _, state = self.policy.forward_eval(obs, state)
            dist = self.policy.distribution
            if "action_masks" in extras:
                params = dist.mask(params, extras["action_masks"].to(self.device))
            actions = dist.mode(params) if deterministic else dist.sample(params, self.generator)
        return ActOutput(actions, {}, state)


def evaluate_policy(
    env: Any,
    actor: Any,
    episodes: int = 10,
    *,
    deterministic: bool = True,
    render: bool = False,
    max_frames: int = 1000,
    max_steps: int = 100_000,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    each_row_once: bool = False,
) -> EvalResult:
    """Play ``episodes`` episodes of ``actor`` on ``env`` (a fugu env, any number of rows).

    Only live rows (``masks``) act, and the env's declared fields (``action_masks``...) reach
    the actor, so a masked agent never plays an illegal move.
    An actor with ``observe_rewards(rewards, state) -> state`` (a return-conditioned one, such
    as the Decision Transformer) is given every step's rewards.

    Args:
        env: A :class:`~fugu.core.env.PufferEnv` (``reset``/``step``; ``render(row)`` when
            rendering).
        actor: Any :class:`~fugu.algos.base.Actor` (an algorithm from a checkpoint), or a bare
            :class:`~fugu.models.Policy` (wrapped in :class:`PolicyActor`).
        episodes: Episodes to finish before stopping.
        deterministic: Take the distribution's mode instead of sampling (sampling uses the
            actor's own generator).
        render: Record row 0's first episode with ``env.render(0)``.
        max_frames: Most frames recorded.
        max_steps: Give up after this many vector steps (an env that never ends).
        seed: Reset seed.
        device: Where a bare policy runs (an algorithm uses its own device).
        each_row_once: Count only each row's first episode and play until every row has
            finished one (one episode per row, ``episodes`` is not used). The first episodes
            to finish are the shortest ones, so when lengths vary (a snake's lives) stopping
            at the first ``episodes`` of many rows measures the worst of them; this measures
            them all. Info means still cover every episode that ended.

    Returns:
        An :class:`EvalResult`.
    """
    if episodes < 1:
        raise APIUsageError(f"episodes must be >= 1, got {episodes}")
    if isinstance(actor, Policy):
        actor = PolicyActor(actor, device or "cpu", 0 if seed is None else int(seed))
    where = torch.device(getattr(actor, "device", None) or device or "cpu")
    modules = actor.modules().values() if hasattr(actor, "modules") else []
    modes = [(module, module.training) for module in modules]
    for module, _ in modes:
        module.eval()
    try:
        return _play(
            env, actor, episodes, deterministic, render, max_frames, max_steps, seed, where,
            each_row_once,
        )  # fmt: skip
    finally:
        for module, training in modes:
            module.train(training)


def _play(
    env: Any,
    actor: Any,
    episodes: int,
    deterministic: bool,
    render: bool,
    max_frames: int,
    max_steps: int,
    seed: int | None,
    device: torch.device,
    each_row_once: bool = False,
) -> EvalResult:
    obs, _ = env.reset(seed)
    rows = int(np.asarray(env.rewards).shape[0])
    finished = np.zeros(rows, dtype=bool)  # rows whose first episode ended
    extras = {k: torch.from_numpy(v) for k, v in (getattr(env, "extras", None) or {}).items()}
    returns_so_far = np.zeros(rows, dtype=np.float64)
    lengths_so_far = np.zeros(rows, dtype=np.int64)
    result = EvalResult()
    frames: list[np.ndarray] = []
    recording = render
    state = actor.initial_state(rows)
    bounds = action_bounds(env.single_action_space)
    observe = getattr(actor, "observe_rewards", None)
    if recording:
        frames.append(np.asarray(env.render(0), dtype=np.uint8).copy())
    for _ in range(max_steps):
        out = actor.act(torch.as_tensor(obs, device=device), state, extras, deterministic)
        state = out.state
        actions = out.actions.cpu()
        if bounds is not None:
            actions = torch.clamp(actions, *bounds)
        obs, rewards, terminals, truncations, infos = env.step(
            actions.numpy().astype(env.actions.dtype, copy=False)
        )
        if observe is not None:  # a return-conditioned actor counts down its return to go
            state = observe(torch.as_tensor(rewards, device=device), state)
        result.add_infos(infos)
        returns_so_far += rewards
        lengths_so_far += 1
        done = np.logical_or(terminals, truncations)
        if recording:
            if done[0] or len(frames) >= max_frames:
                recording = False
            else:
                frames.append(np.asarray(env.render(0), dtype=np.uint8).copy())
        if done.any():
            for row in np.flatnonzero(done & ~finished if each_row_once else done):
                result.returns.append(float(returns_so_far[row]))
                result.lengths.append(int(lengths_so_far[row]))
            finished |= done
            returns_so_far[done] = 0.0
            lengths_so_far[done] = 0
            if state is not None:
                state = actor.reset_state(state, torch.as_tensor(done, device=device))
            enough = finished.all() if each_row_once else len(result.returns) >= episodes
            if enough and not recording:
                break
    flush = getattr(env, "flush_infos", None)
    if flush is not None:
        result.add_infos(flush())
    if not each_row_once:
        result.returns = result.returns[:episodes]
        result.lengths = result.lengths[:episodes]
    if render and frames:
        result.frames = np.stack(frames)
    return result
