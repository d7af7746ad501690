"""Offline RL on locally generated mixed-quality datasets: DT vs BC vs %BC vs the best
behaviour policy, the RTG-conditioning curve, dataset I/O and DT training speed.

For each env: train fugu's own PPO (checkpoints along the way), record a dataset of
``--episodes`` episodes from each of a random policy and the early, mid and expert checkpoints
(the composition is printed), train a Decision Transformer, BC and 10%BC on it for a fixed
number of updates, and evaluate each (deterministic, ``--eval-episodes`` episodes). Then the DT
is asked for a range of target returns (the RTG curve, saved as ``docs/img/dt-rtg.png``).
Every measurement is one JSON line; budgets are tiny so the run fits a few minutes on a
shared CPU (say so when quoting it).

    PYTHONPATH=src python benchmarks/offline.py --out /tmp/offline
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fugu.vector
from fugu.algos.bc import BC, BCConfig
from fugu.algos.dt import DT, DTConfig
from fugu.data import DatasetMetadata, TrajectoryDataset
from fugu.models import PolicyConfig
from fugu.train.build import load_algorithm
from fugu.train.evaluate import evaluate_policy
from fugu.train.experiment import ExperimentConfig
from fugu.train.record import record_dataset
from fugu.train.run import train

ENVS: dict[str, dict[str, Any]] = {
    "cartpole-v1": {"train.total_timesteps": 400_000, "checkpoint.interval": 6},
    "pendulum-v1": {"train.total_timesteps": 300_000, "checkpoint.interval": 10},
    "hazard-nav-v1": {"train.total_timesteps": 300_000, "checkpoint.interval": 8},
}


def emit(**record: Any) -> None:
    print(json.dumps(record), flush=True)


def sources(run_dir: Path) -> dict[str, Path]:
    """The early, mid and expert (best, else last) checkpoints of a PPO run."""
    steps = sorted((run_dir / "checkpoints").glob("step-*"))
    best = sorted((run_dir / "checkpoints" / "best").glob("step-*"))
    return {"early": steps[0], "mid": steps[len(steps) // 2], "expert": (best or steps)[-1]}


def make_env(env_id: str, rows: int) -> Any:
    return fugu.vector.make(env_id, num_envs=rows, seed=0)


def collect(env_id: str, run_dir: Path, episodes: int) -> tuple[TrajectoryDataset, dict]:
    parts, behaviour = [], {}
    env = make_env(env_id, 16)
    try:
        for index, (name, ckpt) in enumerate([("random", None), *sources(run_dir).items()]):
            actor = None
            if ckpt is not None:
                actor, _ = load_algorithm(
                    ckpt, env.single_observation_space, env.single_action_space, "cpu"
                )
            part = record_dataset(
                env, actor, episodes, seed=index, policy_name=name, env_id=env_id,
                deterministic=False,
            )  # fmt: skip
            parts.append(part)
            behaviour[name] = float(part.episode_returns.mean())
            if actor is not None:  # the same policy played as the learners are: its mode
                behaviour[f"{name}_deterministic"] = evaluate(env_id, actor, 10)
    finally:
        env.close()
    meta = DatasetMetadata(
        env_id=env_id,
        policy="random + early + mid + expert PPO",
        observation_space=parts[0].metadata.observation_space,
        action_space=parts[0].metadata.action_space,
        extras=list(parts[0].metadata.extras),
        composition={"sources": [{"policy": k, "episodes": episodes, "return_mean": v}
                                 for k, v in behaviour.items() if "_" not in k]},
    )  # fmt: skip
    return TrajectoryDataset.concatenate(parts, meta), behaviour


def fit(algo: Any, data: TrajectoryDataset, updates: int) -> tuple[float, float]:
    """Train for ``updates``; returns wall-clock and CPU seconds (this process's, the fair
    figure on a shared machine where the process gets a fraction of a core)."""
    batches = algo.batches(data)
    next(batches)  # statistics, first sample
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(updates):
        algo.update(next(batches))
    return time.perf_counter() - start, time.process_time() - cpu


def evaluate(env_id: str, algo: Any, episodes: int) -> float:
    env = make_env(env_id, episodes)
    try:
        return evaluate_policy(env, algo, episodes, deterministic=True, seed=123).mean_return
    finally:
        env.close()


def io_speed(path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 2_000_000
    data = TrajectoryDataset(
        {
            "observations": rng.normal(size=(n, 4)).astype(np.float32),
            "actions": rng.integers(0, 2, n),
            "rewards": np.ones(n, np.float32),
            "terminals": np.zeros(n, bool),
            "truncations": np.zeros(n, bool),
            "episode_starts": np.arange(0, n + 1, 500),
            "final_observations": np.zeros((n // 500, 4), np.float32),
        },
        DatasetMetadata(env_id="cartpole-v1"),
    )
    for _ in range(2):
        start = time.perf_counter()
        data.save(path, overwrite=True)
        mid = time.perf_counter()
        loaded = TrajectoryDataset.load(path)
        arrays = {k: np.array(v) for k, v in loaded.arrays.items()}  # read every byte
        end = time.perf_counter()
        del arrays
    emit(
        measure="dataset_io",
        transitions=n,
        write_transitions_per_s=n / (mid - start),
        read_transitions_per_s=n / (end - mid),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="/tmp/fugu-offline-bench")
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--episodes", type=int, default=25, help="episodes per source")
    parser.add_argument("--dt-updates", type=int, default=500)
    parser.add_argument("--dt-context-length", type=int, default=20)
    parser.add_argument("--bc-updates", type=int, default=1000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--rtg-points", type=int, default=6)
    parser.add_argument("--plot", default="docs/img/dt-rtg.png")
    parser.add_argument(
        "--curves-from", metavar="JSONL", help="also plot the rtg_curve lines of an earlier run"
    )
    parser.add_argument("--no-io", action="store_true", help="skip the dataset I/O measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_io:
        io_speed(out / "io")
    curves: dict[str, tuple[list[float], list[float], float]] = {}
    if args.curves_from:
        for line in Path(args.curves_from).read_text().splitlines():
            record = json.loads(line)
            if record.get("measure") == "rtg_curve":
                targets = record["targets"]
                curves[record["env"]] = (targets, record["achieved"], max(targets))
    for env_id in args.envs:
        run_dir = out / f"ppo-{env_id}"
        if not (run_dir / "summary.json").is_file():
            overrides = {
                **ENVS.get(env_id, {}),
                "train.stop_on_solve": False,
                "checkpoint.keep_last": 1000,  # early and mid checkpoints stay
            }
            config = ExperimentConfig.from_preset(env_id, overrides)
            start = time.perf_counter()
            train(config, run_dir=run_dir, quiet=True)
            emit(env=env_id, measure="ppo_train_s", value=time.perf_counter() - start)
        data, behaviour = collect(env_id, run_dir, args.episodes)
        data.save(out / f"data-{env_id}", overwrite=True)
        emit(env=env_id, measure="dataset", **data.summary(), composition=behaviour)
        obs_space, act_space = data.spaces()
        results: dict[str, float] = {}
        torch.manual_seed(0)
        dt = DT.build(
            DTConfig(context_length=args.dt_context_length, seed=0),
            obs_space,
            act_space,
            PolicyConfig(),
        )
        seconds, cpu_seconds = fit(dt, data, args.dt_updates)
        tokens = args.dt_updates * dt.config.batch_size * dt.config.context_length * 3
        emit(env=env_id, measure="dt_train", updates=args.dt_updates, seconds=seconds,
             tokens_per_s=tokens / seconds, cpu_seconds=cpu_seconds,
             tokens_per_cpu_s=tokens / cpu_seconds)  # fmt: skip
        results["dt"] = evaluate(env_id, dt, args.eval_episodes)
        for name, fraction in (("bc", 1.0), ("10%bc", 0.1)):
            torch.manual_seed(0)
            bc = BC.build(BCConfig(top_fraction=fraction), obs_space, act_space, PolicyConfig())
            fit(bc, data, args.bc_updates)
            results[name] = evaluate(env_id, bc, args.eval_episodes)
        best = max(behaviour.values())
        recorded = max(v for k, v in behaviour.items() if not k.endswith("_deterministic"))
        emit(
            env=env_id,
            measure="returns",
            **results,
            best_behaviour=best,
            best_recorded=recorded,  # the best source as it is in the dataset (sampled)
            dt_over_bc=results["dt"] - results["bc"],
            dt_over_pct_bc=results["dt"] - results["10%bc"],
            dt_vs_best_behaviour=results["dt"] / best if best > 0 else best / results["dt"],
        )
        returns = data.episode_returns
        targets = np.linspace(returns.min(), returns.max(), args.rtg_points).tolist()
        achieved = []
        for target in targets:
            dt.set_target_return(target)
            achieved.append(evaluate(env_id, dt, args.eval_episodes))
        emit(env=env_id, measure="rtg_curve", targets=targets, achieved=achieved)
        curves[env_id] = (targets, achieved, float(returns.max()))
    if args.plot and curves:
        plot(curves, Path(args.plot))


def plot(curves: dict[str, tuple[list[float], list[float], float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), squeeze=False)
    for ax, (env_id, (targets, achieved, top)) in zip(axes[0], curves.items()):
        ax.plot(targets, achieved, "o-", label="DT achieved")
        ax.plot(targets, targets, "--", color="gray", label="achieved = target")
        ax.axvline(top, color="red", lw=0.8, ls=":", label="dataset max")
        ax.set_title(env_id)
        ax.set_xlabel("target return")
        ax.set_ylabel("achieved return")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
