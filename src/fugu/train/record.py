"""Record trajectory datasets by playing a policy on a vec env: ``fugu collect`` does this.

:func:`record_dataset` steps every row of an env with an actor (a trained checkpoint's
algorithm), a uniformly random policy (``actor=None``), or the actor with ``epsilon``-noise
(each row-step takes a random action with probability ``epsilon``), and keeps whole episodes
in a :class:`~fugu.data.TrajectoryDataset` (:class:`~fugu.data.EpisodeRecorder`). An actor
that has ``observe_rewards(rewards, state)`` (a return-conditioned one) is told each step's
rewards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError
from fugu.data import DatasetMetadata, EpisodeRecorder, TrajectoryDataset, space_to_dict
from fugu.train.shards import action_bounds

__all__ = ["random_actions", "record_dataset"]


def random_actions(
    space: spaces.Space,
    num_rows: int,
    generator: np.random.Generator,
    action_masks: np.ndarray | None = None,
) -> np.ndarray:
    """``num_rows`` uniformly random actions of ``space`` (legal ones under ``action_masks``).

    Example:
        >>> random_actions(spaces.Discrete(3), 4, np.random.default_rng(0)).shape
        (4,)
    """
    if isinstance(space, spaces.Discrete):
        if action_masks is not None:
            scores = generator.random((num_rows, int(space.n))) * np.asarray(action_masks)
            return (np.argmax(scores, axis=1) + int(space.start)).astype(np.int64)
        return generator.integers(0, int(space.n), size=num_rows) + int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec)
        return (generator.random((num_rows, *nvec.shape)) * nvec).astype(np.int64)
    if isinstance(space, spaces.Box):
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        draw = generator.random((num_rows, *space.shape))
        return (low + draw * (high - low)).astype(space.dtype)
    raise APIUsageError(f"cannot draw random actions of {space}")


def record_dataset(
    env: Any,
    actor: Any | None,
    episodes: int,
    *,
    epsilon: float = 0.0,
    deterministic: bool = False,
    seed: int = 0,
    policy_name: str = "",
    env_id: str = "",
    max_steps: int = 10_000_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> TrajectoryDataset:
    """Play until ``episodes`` whole episodes are recorded; returns them as a dataset.

    Args:
        env: A fugu vec env (any number of rows; rows step in parallel).
        actor: An :class:`~fugu.algos.base.Actor`, or ``None`` for a random policy.
        episodes: Episodes to record (the first ones to finish).
        epsilon: Probability that a row-step takes a uniformly random action instead.
        deterministic: Let the actor take its mode instead of sampling.
        seed: Reset seed and the seed of the random actions.
        policy_name: Recorded in the metadata (``random`` when ``actor`` is ``None``).
        env_id: Recorded in the metadata.
        max_steps: Give up after this many vector steps.
        on_progress: Called with ``(episodes_done, episodes)`` whenever episodes finish.
    """
    if episodes < 1:
        raise APIUsageError(f"episodes must be >= 1, got {episodes}")
    if not 0.0 <= epsilon <= 1.0:
        raise APIUsageError(f"epsilon must be in [0, 1], got {epsilon}")
    generator = np.random.default_rng(seed)
    space = env.single_action_space
    obs, _ = env.reset(seed)
    rows = int(np.asarray(env.rewards).shape[0])
    extras_np = dict(getattr(env, "extras", None) or {})
    extras = {k: torch.from_numpy(v) for k, v in extras_np.items()}
    recorder = EpisodeRecorder(rows)
    device = torch.device(getattr(actor, "device", None) or "cpu")
    state = actor.initial_state(rows) if actor is not None else None
    bounds = action_bounds(space)
    modules = actor.modules().values() if actor is not None and hasattr(actor, "modules") else []
    for module in modules:
        module.eval()
    masks_now = extras_np.get("action_masks")
    for _ in range(max_steps):
        step_obs = np.array(obs, copy=True)
        step_extras = {k: np.array(v, copy=True) for k, v in extras_np.items()}
        if actor is None:
            actions = random_actions(space, rows, generator, masks_now)
        else:
            with torch.inference_mode():
                out = actor.act(torch.as_tensor(obs, device=device), state, extras, deterministic)
            state = out.state
            acted = out.actions.cpu()
            if bounds is not None:
                acted = torch.clamp(acted, *bounds)
            actions = acted.numpy()
            if epsilon > 0.0:
                noisy = generator.random(rows) < epsilon
                if noisy.any():
                    actions = actions.copy()
                    actions[noisy] = random_actions(space, rows, generator, masks_now)[noisy]
        actions = np.asarray(actions).astype(env.actions.dtype, copy=False)
        obs, rewards, terminals, truncations, _ = env.step(actions)
        if actor is not None and hasattr(actor, "observe_rewards"):
            state = actor.observe_rewards(torch.as_tensor(rewards, device=device), state)
        finished = recorder.add(
            step_obs,
            actions,
            rewards,
            terminals,
            truncations,
            env.final_observations,
            step_extras,
        )
        done = np.logical_or(terminals, truncations)
        if actor is not None and state is not None and done.any():
            state = actor.reset_state(state, torch.as_tensor(done, device=device))
        if finished and on_progress is not None:
            on_progress(min(recorder.num_episodes, episodes), episodes)
        if recorder.num_episodes >= episodes:
            break
    if recorder.num_episodes == 0:
        raise APIUsageError(f"no episode finished in {max_steps} steps")
    metadata = DatasetMetadata(
        env_id=env_id,
        policy=policy_name or ("random" if actor is None else "actor"),
        observation_space=space_to_dict(env.single_observation_space),
        action_space=space_to_dict(space),
        composition={
            "sources": [
                {
                    "policy": policy_name or ("random" if actor is None else "actor"),
                    "epsilon": epsilon,
                    "episodes": min(recorder.num_episodes, episodes),
                }
            ]
        },
    )
    return recorder.dataset(metadata, max_episodes=episodes)
