"""DeepSea exploration benchmark: PPO, PPO+RND and PPO+ICM at growing sizes N.

For each method, size and seed, trains on ``deep-sea-v1`` (the action mapping drawn from the
seed) until the run is solved, its episode budget is spent or its time limit passes, and
prints one JSON line: ``method``, ``size``, ``seed``, ``solved``, ``episodes_to_solve``,
``seconds_to_solve``, ``episodes``, ``seconds``, ``success_fraction`` (all episodes) and
``final_success`` (the last 10 epochs), ``sps``. The last line summarises: for each method,
the largest N solved in every seed.

Solved follows bsuite's DeepSea criterion as we read it: the fraction of all episodes so far
that reached the treasure (bsuite's mean regret below 0.9) is at least 0.1, within 10k
episodes. Methods:

* ``ppo``: PPO alone;
* ``ppo+rnd``: ``ppo_rnd`` (PPO with an intrinsic critic, non-episodic intrinsic returns,
  ``int_gamma``) with the RND hook;
* ``ppo+icm``: ``ppo_rnd`` with the ICM hook;
* ``ppo+rnd-reward``: plain PPO with the RND bonus added to the reward.

    python benchmarks/exploration.py --sizes 10 20 30 40 --seeds 0 1 2
    python benchmarks/exploration.py --methods ppo+rnd --sizes 20 --time-limit 600
    python benchmarks/exploration.py --speed  # steps/s of PPO with and without the hooks
    python benchmarks/exploration.py --plot docs/assets/deep-sea-scaling.png runs/*.jsonl
    python benchmarks/exploration.py --env key-door --methods ppo ppo+rnd --sizes 5

``--env key-door`` trains on ``key-door-v1`` instead (``--sizes`` are room sizes; rollouts of
64 steps): solved once the episodes of the last 10 epochs reach the goal at least 90% of the
time (a learned policy, not bsuite's cumulative fraction), within the episode budget.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import torch

from fugu.algos.ppo import PPO, PPOConfig
from fugu.algos.ppo_rnd import PPORND, PPORNDConfig
from fugu.explore.config import ExploreConfig, make_reward_hooks
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer
from fugu.train.shards import make_train_envs

METHODS = {
    "ppo": (PPO, PPOConfig, "none"),
    "ppo+rnd": (PPORND, PPORNDConfig, "rnd"),
    "ppo+icm": (PPORND, PPORNDConfig, "icm"),
    "ppo+rnd-reward": (PPO, PPOConfig, "rnd"),
}
SOLVED_FRACTION = 0.1
"""bsuite's DeepSea criterion: mean regret below 0.9, i.e. 10% of all episodes rewarded."""
KEY_DOOR_SOLVED = 0.9
"""key-door's criterion: 90% of the last 10 epochs' episodes reach the goal."""


def build(
    method: str,
    size: int,
    seed: int,
    rows: int,
    explore: dict[str, Any],
    env: str = "deep-sea",
    algo_overrides: dict[str, Any] | None = None,
) -> Trainer:
    """A trainer of ``method`` on a DeepSea of ``size`` whose mapping is drawn from ``seed``
    (or, with ``env="key-door"``, on a key-door gridworld of room size ``size``)."""
    algo_type, config_type, hook = METHODS[method]
    if env == "key-door":
        envs = make_train_envs("key-door-v1", rows, seed, False, room_size=size, info_interval=64)
        num_steps = 64
    else:
        envs = make_train_envs(
            "deep-sea-v1", rows, seed, False, size=size, mapping_seed=seed, info_interval=size
        )
        num_steps = 2 * size
    obs_space, act_space = envs[0].single_observation_space, envs[0].single_action_space
    settings: dict[str, Any] = {"learning_rate": 1e-3, "lr_schedule": "constant", "seed": seed}
    config = config_type(**{**settings, **(algo_overrides or {})})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        algo = algo_type.build(config, obs_space, act_space, PolicyConfig())
    hooks = make_reward_hooks(
        ExploreConfig(method=hook, **explore), algo, obs_space, act_space, seed=seed
    )
    train = TrainConfig(total_timesteps=10**9, num_steps=num_steps, seed=seed)
    return Trainer(envs, algo, train, reward_hooks=hooks)


def run(
    method: str,
    size: int,
    seed: int,
    max_episodes: int,
    time_limit: float,
    rows: int,
    explore: dict[str, Any],
    env: str = "deep-sea",
    algo_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one run until solved, out of episodes or out of time; its JSON record."""
    trainer = build(method, size, seed, rows, explore, env, algo_overrides)
    start = time.perf_counter()
    episodes = successes = 0.0
    solved_at: tuple[float, float] | None = None
    recent: list[tuple[float, float]] = []
    while episodes < max_episodes and time.perf_counter() - start < time_limit:
        metrics = trainer.train_epoch()
        n = metrics.get("env/num_episodes", 0.0)
        s = metrics.get("env/success", 0.0) * n
        episodes += n
        successes += s
        recent = [*recent[-9:], (s, n)]
        if env == "key-door":
            recent_n = sum(n for _, n in recent)
            solved = len(recent) == 10 and sum(s for s, _ in recent) >= KEY_DOOR_SOLVED * recent_n
        else:
            solved = bool(episodes) and successes / episodes >= SOLVED_FRACTION
        if solved_at is None and solved:
            solved_at = (episodes, time.perf_counter() - start)
            break
    seconds = time.perf_counter() - start
    trainer.close()
    recent_n = sum(n for _, n in recent)
    return {
        "env": env,
        "method": method,
        "size": size,
        "seed": seed,
        "solved": solved_at is not None,
        "episodes_to_solve": None if solved_at is None else int(solved_at[0]),
        "seconds_to_solve": None if solved_at is None else round(solved_at[1], 1),
        "episodes": int(episodes),
        "seconds": round(seconds, 1),
        "success_fraction": round(successes / max(episodes, 1.0), 4),
        "final_success": round(sum(s for s, _ in recent) / max(recent_n, 1.0), 4),
        "sps": round(trainer.global_step / seconds),
        "explore": explore,
        "algo": algo_overrides or {},
    }


def speed(
    size: int, epochs: int, repeats: int, rows: int, explore: dict[str, Any]
) -> dict[str, Any]:
    """Steps/s of PPO, PPO+RND (hook into rewards) and ppo_rnd+RND, interleaved."""
    sps: dict[str, list[float]] = {m: [] for m in ("ppo", "ppo+rnd-reward", "ppo+rnd")}
    for _ in range(repeats):
        for method in sps:
            trainer = build(method, size, 0, rows, explore)
            trainer.train_epoch()  # warm-up (numba, allocator)
            start, step = time.perf_counter(), trainer.global_step
            for _ in range(epochs):
                trainer.train_epoch()
            sps[method].append((trainer.global_step - step) / (time.perf_counter() - start))
            trainer.close()
    best = {m: max(v) for m, v in sps.items()}
    return {
        "speed": {m: round(v) for m, v in best.items()},
        "ratio_vs_ppo": {m: round(v / best["ppo"], 3) for m, v in best.items()},
        "size": size,
        "rows": rows,
        "explore": explore,
    }


def plot(paths: list[str], out: str) -> dict[str, Any]:
    """Plot the records of JSONL files: episodes to solve against N per method (median over
    seeds, unsolved sizes marked at the budget), with the largest N solved in every seed in
    the legend. Returns that summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = []
    for path in paths:
        with open(path) as f:
            records += [
                r
                for r in map(json.loads, f)
                if "method" in r and r.get("env", "deep-sea") == "deep-sea"
            ]
    fig, ax = plt.subplots(figsize=(6, 4))
    summary: dict[str, Any] = {}
    for method in dict.fromkeys(r["method"] for r in records):
        mine = [r for r in records if r["method"] == method]
        sizes = sorted({r["size"] for r in mine})
        solved_all = [n for n in sizes if all(r["solved"] for r in mine if r["size"] == n)]
        summary[method] = max(solved_all, default=0)
        xs, ys, fails = [], [], []
        for n in sizes:
            runs = [r for r in mine if r["size"] == n]
            eps = sorted(r["episodes_to_solve"] or math.inf for r in runs)
            median = eps[len(eps) // 2]
            if math.isfinite(median):
                xs.append(n)
                ys.append(median)
            else:
                fails.append(n)
        label = f"{method} (largest N solved in every seed: {summary[method] or 'none'})"
        (line,) = ax.plot(xs, ys, "o-", label=label)
        if fails:
            budget = max(r["episodes"] for r in mine)
            ax.plot(fails, [budget] * len(fails), "x", color=line.get_color(), markersize=10)
    ax.set_xlabel("DeepSea size N")
    ax.set_ylabel("episodes to solve (median; x: not solved)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", choices=["deep-sea", "key-door"], default="deep-sea")
    parser.add_argument("--methods", nargs="+", default=["ppo", "ppo+rnd", "ppo+icm"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 20, 30, 40])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-episodes", type=int, default=10_000)
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--rows", type=int, default=16, help="env copies")
    parser.add_argument("--explore", type=json.loads, default={}, help="[explore] overrides")
    parser.add_argument(
        "--algo", type=json.loads, default={}, help="algorithm config overrides (JSON)"
    )
    parser.add_argument("--speed-epochs", type=int, default=30, help="epochs per --speed run")
    parser.add_argument("--speed", action="store_true", help="measure the hooks' cost only")
    parser.add_argument("--plot", help="write a PNG of the JSONL files given as arguments")
    parser.add_argument("files", nargs="*", help="JSONL records to plot (with --plot)")
    args = parser.parse_args(argv)
    if args.plot:
        print(json.dumps({"largest_size_solved_in_every_seed": plot(args.files, args.plot)}))
        return 0
    torch.set_num_threads(1)
    if args.speed:
        record = speed(args.sizes[0], args.speed_epochs, 3, args.rows, args.explore)
        print(json.dumps(record), flush=True)
        return 0
    largest: dict[str, int] = {}
    for method in args.methods:
        if method not in METHODS:
            parser.error(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        largest[method] = 0
        for size in sorted(args.sizes):
            records = []
            for seed in args.seeds:
                records.append(
                    run(method, size, seed, args.max_episodes, args.time_limit, args.rows,
                        args.explore, args.env, args.algo)
                )  # fmt: skip
                print(json.dumps(records[-1]), flush=True)
            if all(r["solved"] for r in records) and largest[method] == size_before(
                args.sizes, size
            ):
                largest[method] = size
    print(json.dumps({"largest_size_solved_in_every_seed": largest}), flush=True)
    return 0


def size_before(sizes: list[int], size: int) -> int:
    """The size tried before ``size`` (0 for the first): the largest-N count is contiguous."""
    smaller = [s for s in sorted(sizes) if s < size]
    return smaller[-1] if smaller else 0


if __name__ == "__main__":
    sys.exit(main())
