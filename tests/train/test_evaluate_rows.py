"""evaluate_policy(each_row_once=True): every row's first episode, not the first to end."""

from __future__ import annotations

import torch

import fugu
from fugu.models import make_policy
from fugu.train.evaluate import evaluate_policy


def test_each_row_once_counts_every_rows_first_episode_not_the_shortest():
    torch.manual_seed(0)
    env = fugu.make("snake-v1", num_envs=8, seed=0)  # 32 rows, lives of varied lengths
    policy = make_policy(env.single_observation_space, env.single_action_space)
    rows = env.num_agents
    first = evaluate_policy(env, policy, episodes=rows // 4, deterministic=False, seed=1)
    every = evaluate_policy(env, policy, episodes=rows // 4, deterministic=False, seed=1,
                            each_row_once=True)  # fmt: skip
    env.close()
    assert len(first.lengths) == rows // 4 and len(every.lengths) == rows
    # the same seed plays the same lives: the first quarter to end are the shortest of them
    assert sorted(every.lengths)[: rows // 4] == sorted(first.lengths)
    assert sum(every.lengths) / rows > sum(first.lengths) / len(first.lengths)
