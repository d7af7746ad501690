"""``fugu bench env``: steps per second of fugu's native envs, beside Gymnasium and EnvPool.

``fugu bench env cartpole-v1 --num-envs 4096`` measures one env; ``--peers`` adds Gymnasium's
vectorized CartPole and EnvPool at the same size (for ``cartpole-v1``); ``--suite`` runs what
``benchmarks/envs.py`` runs: every env (or the one named) at several sizes, cartpole-v1 with its
peers, 1 vs 2 threads at 65536 rows, and cold/warm start times.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu bench env``."""
    parser.description = (
        "Steps per second (rows stepped per second) of a fugu native env with pre-drawn random "
        "actions written into its action buffer; median of --repeats timed runs. "
        "Prints a table, or one JSON line per measurement with --json."
    )
    parser.add_argument(
        "env_id", nargs="?", default=None, help="fugu env id, e.g. cartpole-v1 (see 'fugu envs')"
    )
    parser.add_argument("--num-envs", type=int, default=4096, help="env copies (4096)")
    parser.add_argument("--threads", type=int, default=1, help="stepping threads (1)")
    parser.add_argument(
        "--seconds", type=float, default=0.5, help="minimum duration of one timed run (0.5)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; median (3)")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure Gymnasium's vector CartPole and EnvPool (cartpole-v1 only)",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="every env (or ENV_ID) at --sizes, peers, 2 threads at 65536 rows, start times",
    )
    parser.add_argument(
        "--sizes", default="1,8,64,1024,4096", help="num_envs values of --suite (1,8,64,1024,4096)"
    )
    parser.add_argument(
        "--no-starts", action="store_true", help="skip cold/warm start times in --suite"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per measurement")


def run(args: argparse.Namespace) -> int:
    """Run the measurements and print them."""
    from fugu.core.errors import FuguError
    from fugu.core.registry import registered_ids
    from fugu.envs import benchmark

    timing = {"seconds": args.seconds, "repeats": args.repeats}
    try:
        if args.suite:
            ids = [args.env_id] if args.env_id else None
            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
            records = benchmark.run_suite(
                ids, sizes, peers=True, starts=not args.no_starts, **timing
            )
        else:
            if args.env_id is None:
                print("error: name an env id (or pass --suite); ids: " + " ".join(registered_ids()))
                return 2
            records = iter(_one(args, timing))
        for record in records:
            print(benchmark.format_record(record) if args.json else _line(record), flush=True)
    except FuguError as error:
        print(f"error: {error}")
        return 2
    return 0


def _one(args: argparse.Namespace, timing: dict[str, float]) -> list[dict[str, object]]:
    from fugu.envs import benchmark

    record = benchmark.measure_env(args.env_id, args.num_envs, args.threads, **timing)  # type: ignore[arg-type]
    records: list[dict[str, object]] = []
    if args.peers and args.env_id == "cartpole-v1":
        peer = benchmark.measure_gymnasium_vector(args.num_envs, **timing)  # type: ignore[arg-type]
        record["ratio_vs_gymnasium_vector"] = record["sps"] / peer["sps"]
        records.append(peer)
        pool = benchmark.measure_envpool(args.num_envs, **timing)  # type: ignore[arg-type]
        record["ratio_vs_envpool"] = record["sps"] / pool["sps"]
        records.append(pool)
    return [*records, record]


def _line(record: dict[str, object]) -> str:
    if "sps" in record:
        extras = "  ".join(
            f"{key}={value:.2f}"
            for key, value in record.items()
            if key.startswith("ratio")  # type: ignore[str-format]
        )
        threads = f" threads={record['threads']}"
        return (
            f"{record['impl']:>16} {record['env']:<24} num_envs={record['num_envs']:<6}"
            f"{threads}  {float(record['sps']) / 1e6:9.2f} M steps/s  {extras}"  # type: ignore[arg-type]
        ).rstrip()
    return f"{record['impl']:>16} {record['env']:<24} {float(record['seconds']):.2f} s"  # type: ignore[arg-type]
