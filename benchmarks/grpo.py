"""GRPO, DAPO and Outer-PPO on envs: GRPO vs PPO on CartPole, the DAPO ablation, Outer-PPO vs PPO.

Tasks (issue 23; budgets scaled to a shared 2-core CPU, say so when you quote them):

* ``cartpole``: GRPO with seed groups (64 copies in groups of 8, 500-step collections, later
  episodes grouped by index) against PPO (the tuned ``cartpole-v1`` preset), interleaved per
  seed: env steps and training wall-clock until the mean return of the last 100 episodes
  reaches 475 (or the budget runs out).
* ``dapo``: on ``pointgoal-v1`` (sparse reward, terminating on success, truncated at 50 steps:
  the env analogue of a verifiable answer and a length budget), GRPO and then each DAPO
  technique added in turn; score after a fixed env-step budget: success rate and mean return
  of the last 200 episodes, plus the refill cost of dynamic sampling.
* ``outer``: PPO against Outer-PPO (outer learning rate 1.5, Nesterov momentum 0.5) on three
  native envs (CartPole, dense PointGoal, HazardNav) with the same untuned PPO and a fixed
  budget of 61,440 env steps (30 updates); mean of the last 100 episode returns, with 95% t
  intervals over seeds and of the paired (same seed) difference.

Each run prints one JSON line; each task ends with summary lines (medians / means, ratios).

    PYTHONPATH=src python benchmarks/grpo.py --tasks cartpole,dapo,outer --seeds 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from fugu.algos.grpo import GRPO, GRPOConfig
from fugu.algos.ppo import PPO, PPOConfig
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
"""Student-t 97.5% quantiles by degrees of freedom (95% two-sided intervals)."""

CARTPOLE_POLICY = PolicyConfig(hidden_size=32, activation="tanh", norm_obs=False)
CARTPOLE_PPO = PPOConfig(
    learning_rate=0.02, lr_schedule="cosine", gamma=0.97, gae_lambda=0.9, ent_coef=0.0,
    update_epochs=1, num_minibatches=2, norm_adv=False,
)  # fmt: skip
"""The ``cartpole-v1`` preset's PPO (512 copies, 16-step rollouts)."""
CARTPOLE_GRPO = GRPOConfig(learning_rate=1e-2, group_size=8, use_later_episodes=True)


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _trainer(env_id: str, algo: Any, num_envs: int, num_steps: int, budget: int, seed: int,
             env_kwargs: dict[str, Any] | None = None) -> Trainer:  # fmt: skip
    envs = make_train_envs(env_id, num_envs, seed=seed, double_buffer=False, **(env_kwargs or {}))
    space = envs[0]
    torch.manual_seed(seed)
    cls, config, policy = algo
    built = cls.build(replace(config, seed=seed), space.single_observation_space,
                      space.single_action_space, policy)  # fmt: skip
    train = TrainConfig(num_steps=num_steps, total_timesteps=budget, seed=seed,
                        double_buffer=False, torch_threads=1)  # fmt: skip
    return Trainer(envs, built, train)


def _to_threshold(trainer: Trainer, threshold: float, window: int = 100) -> tuple[bool, float]:
    """Train until the last ``window`` episodes average ``threshold``; returns (solved, s)."""
    start = time.perf_counter()
    while not trainer.done:
        trainer.train_epoch()
        if len(trainer.episodes.returns) >= window and trainer.mean_return >= threshold:
            return True, time.perf_counter() - start
    return False, time.perf_counter() - start


def task_cartpole(seeds: Sequence[int], budget: int) -> None:
    arms = {
        "ppo": ((PPO, CARTPOLE_PPO, CARTPOLE_POLICY), 512, 16),
        "grpo": ((GRPO, CARTPOLE_GRPO, CARTPOLE_POLICY), 64, 500),
    }
    # warm-up: numba kernels and torch paths compiled outside the timed runs
    for algo, num_envs, num_steps in arms.values():
        _trainer("cartpole-v1", algo, num_envs, num_steps, num_envs * num_steps, 99).train()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    for seed in seeds:
        for name, (algo, num_envs, num_steps) in arms.items():
            trainer = _trainer("cartpole-v1", algo, num_envs, num_steps, budget, seed)
            solved, seconds = _to_threshold(trainer, 475.0)
            record = {"task": "cartpole", "impl": name, "seed": seed, "solved": solved,
                      "steps": trainer.global_step, "seconds": round(seconds, 2),
                      "final_return": round(trainer.mean_return, 1)}  # fmt: skip
            trainer.close()
            results[name].append(record)
            _emit(record)
    summary: dict[str, Any] = {"task": "cartpole", "summary": True}
    for name, records in results.items():
        summary[f"{name}_solved"] = f"{sum(r['solved'] for r in records)}/{len(records)}"
        summary[f"{name}_median_steps"] = statistics.median(r["steps"] for r in records)
        summary[f"{name}_median_seconds"] = statistics.median(r["seconds"] for r in records)
    steps = summary["grpo_median_steps"] / summary["ppo_median_steps"]
    seconds = summary["grpo_median_seconds"] / max(summary["ppo_median_seconds"], 1e-9)
    summary["grpo_over_ppo_steps"] = round(steps, 2)
    summary["grpo_over_ppo_seconds"] = round(seconds, 2)
    _emit(summary)


DAPO_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("grpo", {}),
    ("+clip_higher", {"clip_high": 0.28}),
    ("+step_level_loss", {"step_level_loss": True}),
    ("+overlong_filter", {"overlong_filter": True}),
    ("+soft_overlong", {"overlong_buffer": 10, "max_episode_steps": 50}),
    ("+dynamic_sampling", {"dynamic_sampling": True}),
]
"""The ablation: each row adds one DAPO technique to the row before (the last row is DAPO)."""


def task_dapo(seeds: Sequence[int], budget: int, arms: Sequence[str] = ()) -> None:
    """The ablation at an equal env-step ``budget``; the arm ``dapo@equal_updates`` is the
    full DAPO row trained until it made as many updates as GRPO does in the budget (dynamic
    sampling spends env steps on refills, so at equal env steps it updates less often)."""
    env_kwargs = {"terminate_on_success": True}
    policy = PolicyConfig(hidden_size=64, activation="tanh", norm_obs=False)
    base = GRPOConfig(learning_rate=3e-3, group_size=8, update_epochs=2, num_minibatches=2)
    configs, settings = [], {}
    for name, change in DAPO_STEPS:
        settings = {**settings, **change}
        configs.append((name, replace(base, **settings)))
    configs.append(("dapo@equal_updates", configs[-1][1]))
    if arms:
        configs = [(name, config) for name, config in configs if name in arms]
    equal_updates = budget // (64 * 50)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in configs}
    for seed in seeds:
        for name, config in configs:
            until_updates = name.endswith("@equal_updates")
            trainer = _trainer("pointgoal-v1", (GRPO, config, policy), 64, 50,
                               budget * (4 if until_updates else 1), seed, env_kwargs)  # fmt: skip
            start = time.perf_counter()
            refills = updates = refill_steps = 0.0
            while not trainer.done and not (until_updates and updates >= equal_updates):
                m = trainer.train_epoch()
                updates += m.get("train/updated", 0.0)
                refills += m.get("train/refill_rounds", 0.0)
                refill_steps += m.get("train/refill_steps", 0.0)
            lengths = list(trainer.episodes.lengths)[-200:]
            returns = list(trainer.episodes.returns)[-200:]
            record = {
                "task": "dapo", "impl": name, "seed": seed, "steps": trainer.global_step,
                "success": round(sum(n < 50 for n in lengths) / max(len(lengths), 1), 3),
                "mean_return": round(statistics.fmean(returns), 2),
                "updates": int(updates), "refill_rounds": int(refills),
                "refill_step_frac": round(refill_steps / trainer.global_step, 3),
                "seconds": round(time.perf_counter() - start, 2),
            }  # fmt: skip
            trainer.close()
            rows[name].append(record)
            _emit(record)
    for name, records in rows.items():
        successes = [r["success"] for r in records]
        mean, half = _interval(successes)
        _emit({"task": "dapo", "summary": True, "impl": name, "success_mean": round(mean, 3),
               "success_ci95": round(half, 3),
               "return_mean": round(statistics.fmean(r["mean_return"] for r in records), 2),
               "refill_step_frac": round(statistics.fmean(r["refill_step_frac"]
                                                          for r in records), 3)})  # fmt: skip


OUTER_PPO = PPOConfig(
    learning_rate=1e-3, lr_schedule="constant", update_epochs=4, num_minibatches=4
)
"""The PPO both arms share on every env (untuned, not at the edge of stability)."""
OUTER_POLICY = PolicyConfig(hidden_size=64)
OUTER_TASKS: dict[str, tuple[str, int, int, int, PPOConfig, PolicyConfig, dict[str, Any]]] = {
    "cartpole-v1": ("cartpole-v1", 32, 64, 61_440, OUTER_PPO, OUTER_POLICY, {}),
    "pointgoal-v1": ("pointgoal-v1", 32, 64, 61_440, replace(OUTER_PPO, gamma=0.95),
                     OUTER_POLICY, {"dense": True, "terminate_on_success": True}),
    "hazard-nav-v1": ("hazard-nav-v1", 32, 64, 61_440, OUTER_PPO, OUTER_POLICY, {}),
}  # fmt: skip
"""Env, copies, horizon, env-step budget, PPO settings, policy and env options of each env."""


def _interval(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, half


def task_outer(seeds: Sequence[int], scale: float, envs: Sequence[str] = ()) -> None:
    arms = {"ppo": {}, "outer_ppo": {"outer_lr": 1.5, "outer_momentum": 0.5}}
    for env_name, (env_id, num_envs, steps, budget, ppo, policy, kw) in OUTER_TASKS.items():
        if envs and env_name not in envs:
            continue
        scores: dict[str, list[float]] = {name: [] for name in arms}
        for seed in seeds:
            for name, change in arms.items():
                config = replace(ppo, **change)
                trainer = _trainer(env_id, (PPO, config, policy), num_envs, steps,
                                   int(budget * scale), seed, kw)  # fmt: skip
                start = time.perf_counter()
                trainer.train()
                score = trainer.episodes.mean_return(last=100)
                trainer.close()
                scores[name].append(score)
                _emit({"task": "outer", "env": env_name, "impl": name, "seed": seed,
                       "steps": trainer.global_step, "score": round(score, 2),
                       "seconds": round(time.perf_counter() - start, 2)})  # fmt: skip
        summary: dict[str, Any] = {"task": "outer", "summary": True, "env": env_name}
        for name, values in scores.items():
            mean, half = _interval(values)
            summary[f"{name}_mean"] = round(mean, 2)
            summary[f"{name}_ci95"] = round(half, 2)
        diffs = [o - p for o, p in zip(scores["outer_ppo"], scores["ppo"])]
        mean, half = _interval(diffs)
        summary["paired_diff_mean"] = round(mean, 2)
        summary["paired_diff_ci95"] = round(half, 2)
        _emit(summary)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,dapo,outer")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cartpole-budget", type=int, default=1_500_000)
    parser.add_argument("--dapo-budget", type=int, default=64_000)
    parser.add_argument("--dapo-arms", default="", help="comma-separated subset of the rows")
    parser.add_argument("--outer-envs", default="", help="comma-separated subset of the envs")
    parser.add_argument("--outer-scale", type=float, default=1.0, help="scales outer budgets")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = range(args.seeds)
    for task in args.tasks.split(","):
        if task == "cartpole":
            task_cartpole(seeds, args.cartpole_budget)
        elif task == "dapo":
            task_dapo(seeds, args.dapo_budget, [a for a in args.dapo_arms.split(",") if a])
        elif task == "outer":
            task_outer(seeds, args.outer_scale, [e for e in args.outer_envs.split(",") if e])
        else:
            print(f"unknown task {task!r}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
