"""``fugu algos``: list the registered algorithms."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu algos``."""
    parser.add_argument("--json", action="store_true", help="print one JSON line per algorithm")


def run(args: argparse.Namespace) -> int:
    """Print each algorithm's name, how it collects data and the action spaces it supports."""
    import json
    import re

    from fugu.algos.registry import algorithm_names, get_algorithm
    from fugu.core.errors import FuguError

    rows = []
    for name in algorithm_names():
        try:
            algo = get_algorithm(name)
        except FuguError as error:  # a broken plugin must not hide the others
            rows.append({"name": name, "collection": "-", "action_spaces": [],
                         "config": "-", "summary": f"unavailable: {error}"})  # fmt: skip
            continue
        lines = (algo.__doc__ or "").strip().splitlines()
        # the first docstring line, with Sphinx roles (:class:`~a.B`) reduced to their names
        summary = re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1],
                         lines[0] if lines else "")  # fmt: skip
        rows.append(
            {
                "name": name,
                "collection": algo.collection,
                "action_spaces": list(algo.action_spaces),
                "config": f"[{name}] {algo.config_type.__name__}",
                "summary": summary,
            }
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max(len("name"), *(len(row["name"]) for row in rows))
    spaces_width = max(len("action spaces"), *(len(", ".join(r["action_spaces"])) for r in rows))
    print(f"{'name':<{width}}  {'collection':<10}  {'action spaces':<{spaces_width}}  summary")
    for row in rows:
        spaces = ", ".join(row["action_spaces"])
        print(
            f"{row['name']:<{width}}  {row['collection']:<10}  {spaces:<{spaces_width}}  "
            f"{row['summary']}"
        )
    print("train one with: fugu train ENV --algo NAME (settings: --NAME.KEY VALUE)")
    return 0
