"""``fugu bench vector``: fugu's vectorization backends against Gymnasium's, same run.

Measures env steps per second of fugu Serial, fugu Multiprocessing (synchronous, and
asynchronous batches of one worker each) and Gymnasium's ``SyncVectorEnv`` and
``AsyncVectorEnv`` on the same env with the same number of envs and pre-drawn random actions.
"""

from __future__ import annotations

import argparse
from typing import Any

IMPL_HELP = "gymnasium-sync, gymnasium-async, fugu-serial, fugu-mp-sync, fugu-mp-async"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu bench vector``."""
    parser.description = (
        "Steps per second of fugu's vectorization backends beside Gymnasium's SyncVectorEnv and "
        "AsyncVectorEnv, measured in the same run (repeats interleaved, median reported). "
        "Prints a table, or one JSON line per implementation with --json."
    )
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium env id (CartPole-v1)")
    parser.add_argument("--num-envs", type=int, default=8, help="envs per implementation (8)")
    parser.add_argument(
        "--num-workers", type=int, default=2, help="fugu multiprocessing workers (2)"
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="duration of one measurement (2.0)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="env steps per measurement (overrides --seconds)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="measurements per implementation; median (3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of envs and actions (0)")
    parser.add_argument(
        "--impls", default=None, help=f"comma-separated subset of: {IMPL_HELP} (all)"
    )
    parser.add_argument(
        "--context",
        choices=["spawn", "fork", "forkserver"],
        default=None,
        help="start method of fugu's workers (spawn)",
    )
    parser.add_argument(
        "--pin-workers",
        choices=["auto", "on", "off"],
        default="auto",
        help="pin fugu's workers to CPUs: auto (when they cover the CPUs evenly), on, off",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per impl")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print a table or JSON lines."""
    import json

    from fugu.core.errors import FuguError
    from fugu.vector.benchmark import IMPLS, VectorBenchConfig, run_vector_benchmark

    impls = tuple(s.strip() for s in args.impls.split(",")) if args.impls else IMPLS
    config = VectorBenchConfig(
        env_id=args.env,
        num_envs=args.num_envs,
        num_workers=args.num_workers,
        seconds=args.seconds,
        steps=args.steps,
        repeats=args.repeats,
        seed=args.seed,
        impls=impls,
        context=args.context,
        pin_workers={"auto": None, "on": True, "off": False}[args.pin_workers],
    )
    try:
        if args.json:
            results = run_vector_benchmark(config)
        else:
            results = _run_with_progress(config, run_vector_benchmark)
    except FuguError as error:
        print(f"error: {error}")
        return 2
    if args.json:
        for result in results:
            print(json.dumps(result.to_dict()))
    else:
        _print_table(config, results)
    return 0


def _run_with_progress(config: Any, bench: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    total = config.repeats * len(config.impls)
    columns = (
        TextColumn("[bold cyan]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("starting envs", total=total, last="")

        def on_progress(impl: str, repeat: int, result: Any) -> None:
            if result is None:
                description = f"{impl} (repeat {repeat + 1}/{config.repeats})"
                progress.update(task, description=description)
            else:
                last = f"{impl}: {result.sps_runs[-1]:,.0f} steps/s"
                progress.update(task, advance=1, last=last)

        return bench(config, on_progress)


def _print_table(config: Any, results: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (
        f"{config.env_id}: {config.num_envs} envs, median of {config.repeats} "
        f"measurement(s) of {f'{config.steps} steps' if config.steps else f'{config.seconds} s'}"
    )
    table = Table(title=title)
    for name, justify in [
        ("implementation", "left"),
        ("workers", "right"),
        ("batch", "right"),
        ("steps/s", "right"),
        ("vs gym sync", "right"),
        ("vs gym async", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]

    def ratio(value: float | None) -> str:
        if value is None:
            return "-"
        color = "green" if value >= 1.0 else "red"
        return f"[{color}]{value:.2f}x[/{color}]"

    for r in results:
        style = "bold" if r.impl.startswith("fugu") else ""
        table.add_row(
            r.impl,
            str(r.num_workers),
            str(r.batch_size),
            f"{r.sps:,.0f}",
            ratio(r.ratio_vs_gymnasium_sync),
            ratio(r.ratio_vs_gymnasium_async),
            style=style,
        )
    Console().print(table)
