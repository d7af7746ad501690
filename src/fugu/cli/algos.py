"""``fugu algos``: list the registered algorithms."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu algos``."""
    parser.add_argument("--json", action="store_true", help="print one JSON line per algorithm")


def run(args: argparse.Namespace) -> int:
    """Print each algorithm's name, how it collects data and the action spaces it supports."""
    import json

    from fugu.algos.registry import algorithm_names, get_algorithm

    rows = []
    for name in algorithm_names():
        algo = get_algorithm(name)
        summary = (algo.__doc__ or "").strip().splitlines()
        rows.append(
            {
                "name": name,
                "collection": algo.collection,
                "action_spaces": list(algo.action_spaces),
                "config": f"[{name}] {algo.config_type.__name__}",
                "summary": summary[0] if summary else "",
            }
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max(len(row["name"]) for row in rows)
    print(f"{'name':<{width}}  {'collection':<10}  action spaces")
    for row in rows:
        spaces = ", ".join(row["action_spaces"])
        print(f"{row['name']:<{width}}  {row['collection']:<10}  {spaces}  ({row['summary']})")
    print("train one with: fugu train ENV --algo NAME (settings: --NAME.KEY VALUE)")
    return 0
