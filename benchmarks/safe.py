"""Safe-RL benchmark: PPO vs PPO-Lagrangian vs CPO on cost-constrained tasks, in one run.

For every task and seed the algorithms run interleaved (ppo seed 0, ppo_lag seed 0, cpo seed
0, ppo seed 1, ...) with the shipped presets (8 envs x 128 steps, observation normalisation
and reward scaling for all three), so a noisy machine affects them alike. Each run prints one
JSON line: ``task``, ``algo``, ``seed``, ``steps``, ``wall_s``, ``final_return`` (mean return
of the last 100 episodes), ``final_cost`` (mean summed cost of the last 100 episodes),
``cost_limit``, ``frac_epochs_over_limit`` (over the trainer's epochs in which an episode
ended: the fraction whose mean episode cost ``env/cost`` exceeded the limit) and the same
over the last half of training (``frac_epochs_over_limit_late``). Then one summary line per
task and algorithm (means over seeds, and ``cost_ratio_vs_ppo``).

Tasks:

* ``hazard-nav``: ``hazard-nav-v1`` (native; episodes of at most 200 steps).
* ``hopper``: ``safe-hopper-velocity-v1`` (Gymnasium ``Hopper-v5``, cost
  ``1[x_velocity > 0.7402]``, 1000-step episodes; needs ``mujoco``).
* ``halfcheetah``: ``safe-halfcheetah-velocity-v1`` (threshold 3.2096).

The issue's protocol is 1e6 steps x 3 seeds; the budgets are flags so a small machine can run
what fits::

    PYTHONPATH=src python benchmarks/safe.py --tasks hazard-nav --steps 200000 --seeds 3
    PYTHONPATH=src python benchmarks/safe.py --tasks hopper --steps 1000000 --seeds 3

``--set KEY=VALUE`` applies an algorithm setting to all three (``--set learning_rate=1e-3``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

TASKS = {
    "hazard-nav": "hazard-nav-v1",
    "hopper": "safe-hopper-velocity-v1",
    "halfcheetah": "safe-halfcheetah-velocity-v1",
}


def run_one(
    task: str, algo: str, seed: int, steps: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Train ``algo`` on ``task`` for ``steps`` env steps; the run's record."""
    from fugu.train.build import build_trainer
    from fugu.train.experiment import ExperimentConfig

    overrides: dict[str, Any] = {
        "train.algo": algo,
        "train.total_timesteps": steps,
        "train.seed": seed,
        f"{algo}.seed": seed,
        f"{algo}.norm_reward": True,
        "env.num_envs": args.num_envs,
    }
    if algo != "ppo":
        overrides[f"{algo}.cost_limit"] = args.cost_limit
    for item in args.set:  # the same algorithm settings for every learner
        key, _, value = item.partition("=")
        overrides[f"{algo}.{key}"] = value
    config = ExperimentConfig.from_preset(TASKS[task], overrides)
    trainer = build_trainer(config)
    epoch_costs: list[float] = []
    start = time.perf_counter()
    try:
        while not trainer.done:
            metrics = trainer.train_epoch()
            if "env/cost" in metrics:
                epoch_costs.append(metrics["env/cost"])
        wall = time.perf_counter() - start
        tracker = trainer.episode_costs
        final_cost = tracker.mean_return() if tracker is not None else float("nan")
        over = [c > args.cost_limit for c in epoch_costs]
        late = over[len(over) // 2 :]
        return {
            "task": task,
            "algo": algo,
            "seed": seed,
            "steps": trainer.global_step,
            "wall_s": round(wall, 1),
            "final_return": trainer.mean_return,
            "final_cost": final_cost,
            "cost_limit": args.cost_limit,
            "frac_epochs_over_limit": sum(over) / max(len(over), 1),
            "frac_epochs_over_limit_late": sum(late) / max(len(late), 1),
            "epochs_with_episodes": len(over),
        }
    finally:
        trainer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="hazard-nav,hopper", help="comma-separated tasks")
    parser.add_argument("--algos", default="ppo,ppo_lag,cpo", help="comma-separated algos")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per run")
    parser.add_argument(
        "--task-steps", default="", help="per-task budgets, e.g. hazard-nav=200000,hopper=50000"
    )
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--cost-limit", type=float, default=25.0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an algorithm setting for all three, e.g. --set learning_rate=1e-3",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    budgets = dict(item.split("=") for item in args.task_steps.split(",") if item)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the trainer writes nothing itself; keep any stray file out of the repo
        for task in args.tasks.split(","):
            steps = int(float(budgets.get(task, args.steps)))
            for seed in range(args.seeds):
                for algo in args.algos.split(","):
                    record = run_one(task, algo, seed, steps, args)
                    records.append(record)
                    print(json.dumps(record), flush=True)
    for task in dict.fromkeys(r["task"] for r in records):
        ppo_cost = [r["final_cost"] for r in records if r["task"] == task and r["algo"] == "ppo"]
        for algo in dict.fromkeys(r["algo"] for r in records if r["task"] == task):
            rows = [r for r in records if r["task"] == task and r["algo"] == algo]
            summary = {
                "summary": True,
                "task": task,
                "algo": algo,
                "seeds": len(rows),
                "steps": rows[0]["steps"],
                "mean_return": statistics.fmean(r["final_return"] for r in rows),
                "mean_cost": statistics.fmean(r["final_cost"] for r in rows),
                "cost_limit": args.cost_limit,
                "frac_epochs_over_limit": statistics.fmean(
                    r["frac_epochs_over_limit"] for r in rows
                ),
                "frac_epochs_over_limit_late": statistics.fmean(
                    r["frac_epochs_over_limit_late"] for r in rows
                ),
            }
            if ppo_cost:
                summary["cost_ratio_vs_ppo"] = summary["mean_cost"] / max(
                    statistics.fmean(ppo_cost), 1e-9
                )
            print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
