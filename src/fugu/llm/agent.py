"""Run an :class:`~fugu.llm.policy.LMPolicy` on a :class:`~fugu.llm.textenv.TextEnv`.

When the env lists valid actions the policy picks one by its normalised log-likelihood
(:meth:`~fugu.llm.policy.LMPolicy.act`); otherwise it generates the action freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from fugu.llm.policy import LMPolicy
from fugu.llm.textenv import TextEnv

__all__ = ["Episode", "run_episode"]


@dataclass
class Episode:
    """One episode's record."""

    total_reward: float = 0.0
    steps: int = 0
    observations: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


def run_episode(
    policy: LMPolicy,
    env: TextEnv,
    *,
    seed: int | None = None,
    greedy: bool = False,
    max_steps: int = 100,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Episode:
    """Play one episode (at most ``max_steps`` actions) and record it."""
    episode = Episode()
    obs = env.reset(seed=seed)
    for _ in range(max_steps):
        episode.observations.append(obs)
        actions = env.valid_actions()
        if actions:
            index, _ = policy.act(obs, actions, greedy=greedy, generator=generator)
            action = actions[index]
        else:
            gen = policy.generate(
                [obs],
                max_new_tokens=max_new_tokens,
                temperature=0.0 if greedy else temperature,
                generator=generator,
            )
            action = gen.texts[0]
        out = env.step(action)
        episode.actions.append(action)
        episode.rewards.append(out.reward)
        episode.total_reward += out.reward
        episode.steps += 1
        obs = out.observation
        if out.done:
            break
    return episode
