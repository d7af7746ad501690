"""``fugu runs``: the runs under a folder, newest first, with their status and returns."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu runs``."""
    parser.add_argument("root", nargs="?", default="runs", help="folder of run dirs (runs)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument("--limit", type=int, default=20, help="newest this many runs (20)")


def run_status(run_dir: Path) -> dict[str, Any]:
    """What ``run_dir`` holds: env, algo, status, steps, final and best returns."""
    row: dict[str, Any] = {"run": run_dir.name, "path": str(run_dir)}
    config_path = run_dir / "config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text("utf-8"))
            row["env"] = config.get("env", {}).get("id")
            row["algo"] = config.get("train", {}).get("algo")
        except json.JSONDecodeError:
            pass
    summary_path = run_dir / "summary.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text("utf-8"))
        except json.JSONDecodeError:
            summary = {}
    if summary:
        if summary.get("interrupted"):
            status = "interrupted"
        elif summary.get("stopped_on_solve"):
            status = "solved (stopped)"
        elif summary.get("timesteps", 0) < summary.get("total_timesteps", 0):
            status = "paused"
        else:
            status = "done"
        if summary.get("solved") and not summary.get("solved_at_end", True):
            status += ", no longer solved"
        elif summary.get("solved") and "solved" not in status:
            status += ", solved"
        row.update(
            status=status,
            steps=summary.get("timesteps"),
            final_return=summary.get("final_return"),
            best_return=summary.get("best_return"),
            best_checkpoint=summary.get("best_checkpoint"),
        )
    else:
        steps = _last_step(run_dir / "metrics.jsonl")
        row.update(status="running or crashed", steps=steps)
    return row


def _last_step(path: Path) -> int | None:
    if not path.is_file():
        return None
    lines = path.read_text("utf-8").strip().splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line).get("step", 0))
        except (json.JSONDecodeError, ValueError, AttributeError):
            continue
    return None


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def run(args: argparse.Namespace) -> int:
    """List the runs of ``args.root``."""
    import sys

    root = Path(args.root)
    if not root.is_dir():
        print(f"fugu runs: error: no folder {root} (runs are written to ./runs)", file=sys.stderr)
        return 2
    dirs = [p for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    rows = [run_status(p) for p in dirs[: max(args.limit, 1)]]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print(f"no runs in {root}")
        return 0
    header = ("run", "env", "algo", "status", "steps", "final", "best")
    table = [
        (
            row["run"],
            str(row.get("env") or "-"),
            str(row.get("algo") or "-"),
            row["status"],
            "-" if row.get("steps") is None else f"{row['steps']:,}",
            _number(row.get("final_return")),
            _number(row.get("best_return")),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0
