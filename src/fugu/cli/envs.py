"""``fugu envs``: list the registered environments."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu envs``."""
    parser.add_argument("--json", action="store_true", help="print one JSON line per env")


def run(args: argparse.Namespace) -> int:
    """List fugu's env ids (Gymnasium ids work everywhere an id is accepted, too)."""
    import json

    from fugu.core.registry import default_registry

    for env_id in default_registry.ids():
        spec = default_registry.spec(env_id)
        entry = spec.entry_point if isinstance(spec.entry_point, str) else repr(spec.entry_point)
        print(json.dumps({"id": env_id, "entry_point": entry}) if args.json else env_id)
    return 0
