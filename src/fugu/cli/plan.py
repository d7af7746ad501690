"""``fugu plan``: model predictive control live, a PETS agent, or a sweep over horizons.

Examples::

    fugu plan pendulum-v1 --horizon 30 --planner cem              # true-model MPC, live
    fugu plan pendulum-v1 --model pets --steps 800                 # PETS: learn while planning
    fugu plan pendulum-v1 --sweep-horizons 5,10,20,40 --png horizon.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``fugu plan``'s arguments."""
    parser.add_argument("env", help="env id with a Box action space, e.g. pendulum-v1")
    parser.add_argument("--horizon", type=int, default=30, help="planning horizon (steps)")
    parser.add_argument("--planner", choices=("cem", "rs", "mppi"), default="cem")
    parser.add_argument(
        "--model",
        choices=("true", "pets"),
        default="true",
        help="plan with clones of the native env (true) or a learned PETS ensemble",
    )
    parser.add_argument("--population", type=int, default=200, help="sequences per iteration")
    parser.add_argument("--iterations", type=int, default=None, help="planner iterations")
    parser.add_argument("--steps", type=int, default=None, help="env steps (default: 1 episode)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=200, help="PETS: random steps first")
    parser.add_argument("--train-every", type=int, default=200, help="PETS: steps per refit")
    parser.add_argument("--fit-steps", type=int, default=300, help="PETS: Adam steps per refit")
    parser.add_argument(
        "--sweep-horizons",
        default=None,
        help="comma-separated horizons: one episode each, return against horizon",
    )
    parser.add_argument("--png", default="horizon_sweep.png", help="where the sweep plot goes")
    parser.add_argument("--save", default=None, help="PETS: save the agent (torch.save) here")
    parser.add_argument("--quiet", action="store_true", help="no live output, only the summary")


def _episode_steps(env: Any) -> int:
    for attr in ("max_episode_steps",):
        if hasattr(env, attr):
            return int(getattr(env, attr))
    return 200


def _make(args: argparse.Namespace) -> Any:
    from gymnasium import spaces

    import fugu
    from fugu.core.errors import APIUsageError

    if args.env in fugu.registered_ids():
        env = fugu.make(args.env, num_envs=1, seed=args.seed)
    else:  # a Gymnasium id: one env, seeded by the reset below
        env = fugu.make(args.env)
    if not isinstance(env.single_action_space, spaces.Box):
        env.close()
        raise APIUsageError(
            f"{args.env} has action space {env.single_action_space}: planners need a Box"
        )
    env.reset(seed=args.seed)
    return env


def _live(args: argparse.Namespace, total: int, label: str) -> tuple[Any, Any]:
    """A rich progress bar on stderr and its update callback."""
    if args.quiet:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
    )
    task = progress.add_task(label, total=total, status="")

    def update(report: Any) -> None:
        last = f" last episode {report.returns[-1]:.1f}" if report.returns else ""
        status = f"return {report.episode_return:8.1f}  plan {report.plan_ms:6.1f} ms{last}"
        progress.update(task, completed=report.step, status=status)

    return progress, update


def _run_true(args: argparse.Namespace, horizon: int, steps: int | None) -> dict[str, Any]:
    from fugu.plan import MPC, TrueModel, make_planner, run_mpc

    env = _make(args)
    space = env.single_action_space
    planner = make_planner(
        args.planner, space.low, space.high, horizon, args.population, args.iterations, args.seed
    )
    mpc = MPC(planner, TrueModel())
    n = steps or _episode_steps(env)
    progress, update = _live(args, n, f"{args.env} {args.planner} H={horizon}")
    ms: list[float] = []

    def on_step(report: Any) -> None:
        ms.append(report.plan_ms)
        if update is not None:
            update(report)

    start = time.perf_counter()
    if progress is not None:
        progress.start()
    try:
        returns = run_mpc(
            env, mpc.act, n, on_step=on_step, on_reset=mpc.reset, plan_ms=lambda: planner.last_ms
        )
    finally:
        if progress is not None:
            progress.stop()
    partial = float(env.state["episode_return"][0]) if hasattr(env, "state") else 0.0
    env.close()
    return {
        "env": args.env,
        "planner": args.planner,
        "model": "true",
        "horizon": horizon,
        "population": planner.population,
        "iterations": planner.iterations,
        "steps": n,
        "episode_returns": returns,
        "return": returns[-1] if returns else partial,
        "plan_ms_per_step": sum(ms) / max(len(ms), 1),
        "wall_s": time.perf_counter() - start,
    }


def _run_pets(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from fugu.plan import PETSAgent, make_planner

    env = _make(args)
    space = env.single_action_space
    planner = make_planner(
        args.planner, space.low, space.high, args.horizon, args.population, args.iterations,
        args.seed,
    )  # fmt: skip
    agent = PETSAgent(
        env, planner, warmup=args.warmup, train_every=args.train_every,
        fit_steps=args.fit_steps, seed=args.seed,
    )  # fmt: skip
    n = args.steps or 5 * _episode_steps(env)
    progress, update = _live(args, n, f"{args.env} PETS/{args.planner} H={args.horizon}")
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: more threads only add overhead
    if progress is not None:
        progress.start()
    try:
        returns = agent.learn(n, update)
    finally:
        torch.set_num_threads(threads)
        if progress is not None:
            progress.stop()
    env.close()
    if args.save:
        torch.save(agent.state_dict(), args.save)
    return {
        "env": args.env,
        "planner": args.planner,
        "model": "pets",
        "horizon": args.horizon,
        "steps": n,
        "episode_returns": returns,
        "fits": agent.fits,
        "fit_s": agent.fit_s,
        "wall_s": time.perf_counter() - start,
    }


def plot_sweep(rows: list[dict[str, Any]], path: str, title: str) -> None:
    """Plot episode return against horizon to a PNG (matplotlib, headless)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the plan extra
        from fugu.core.errors import missing_dependency

        raise missing_dependency("matplotlib", "plan") from exc
    fig, ax = plt.subplots(figsize=(6, 4))
    horizons = [r["horizon"] for r in rows]
    ax.plot(horizons, [r["return"] for r in rows], marker="o")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(horizons)
    ax.set_xticklabels([str(h) for h in horizons])
    ax.set_xlabel("planning horizon (steps)")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Run the planner (or PETS, or a sweep) and print one JSON summary per run."""
    from fugu.core.errors import FuguError

    try:
        if args.sweep_horizons:
            horizons = [int(h) for h in args.sweep_horizons.split(",") if h.strip()]
            rows = []
            for h in horizons:
                row = _run_true(args, h, args.steps)
                rows.append(row)
                print(json.dumps(row), flush=True)
            title = f"{args.env}: {args.planner.upper()} with the true model"
            plot_sweep(rows, args.png, title)
            print(f"wrote {args.png}", file=sys.stderr)
            return 0
        if args.model == "pets":
            print(json.dumps(_run_pets(args)))
        else:
            print(json.dumps(_run_true(args, args.horizon, args.steps)))
    except FuguError as exc:
        print(f"fugu plan: {exc}", file=sys.stderr)
        return 2
    return 0
