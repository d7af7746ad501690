"""``fugu collect ENV --checkpoint PATH --episodes N --output DIR``: record a trajectory dataset.

Each source (every ``--checkpoint``, and ``--random``) plays ``--episodes`` whole episodes on
``--num-envs`` rows in parallel, optionally with ``--epsilon`` random actions; the episodes of all
sources are written as one :class:`~fugu.data.TrajectoryDataset` (its metadata lists the
composition), or also as a Minari dataset with ``--minari-id``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu collect``."""
    parser.add_argument("env", help="env id, e.g. cartpole-v1 ('fugu envs' lists them)")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="PATH",
        help="a checkpoint directory or run dir to collect with (repeat for a mixture)",
    )
    parser.add_argument(
        "--random", action="store_true", help="also collect with a uniformly random policy"
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes per source (100)")
    parser.add_argument(
        "--epsilon",
        type=float,
        default=0.0,
        help="probability of a random action at each step of a checkpoint's policy (0)",
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="take the policy's mode instead of sampling"
    )
    parser.add_argument("--num-envs", type=int, default=16, help="env rows stepped at once (16)")
    parser.add_argument("--seed", type=int, default=0, help="reset and noise seed (0)")
    parser.add_argument("--output", required=True, metavar="DIR", help="the dataset directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument(
        "--minari-id",
        metavar="ID",
        help="also write a Minari dataset namespace/name-vN (under MINARI_DATASETS_PATH)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")


def _resolve_checkpoint(path_text: str) -> Any:
    from pathlib import Path

    from fugu.checkpoint import find_latest_valid, verify_checkpoint
    from fugu.core.errors import FuguError

    path = Path(path_text)
    if not path.exists():
        raise FuguError(f"--checkpoint {path}: no such file or directory")
    if not (path / "manifest.json").is_file():
        found = find_latest_valid(path)
        if found is None:
            raise FuguError(f"no valid checkpoint at {path} (pass a checkpoint or a run dir)")
        path = found
    reason = verify_checkpoint(path)
    if reason is not None:
        raise FuguError(f"checkpoint {path} is not usable: {reason}")
    return path


def run(args: argparse.Namespace) -> int:
    """Collect from every source, write the dataset, print its summary."""
    import json
    from pathlib import Path

    import fugu.vector
    from fugu.core.errors import FuguError
    from fugu.data import DatasetMetadata, TrajectoryDataset
    from fugu.train.build import load_algorithm
    from fugu.train.record import record_dataset
    from fugu.train.validate import check_env_id, check_writable

    try:
        if args.episodes < 1 or args.num_envs < 1:
            raise FuguError("--episodes and --num-envs must be >= 1")
        if not 0.0 <= args.epsilon <= 1.0:
            raise FuguError(f"--epsilon must be in [0, 1], got {args.epsilon}")
        if not args.checkpoint and not args.random:
            raise FuguError("name a source: --checkpoint PATH (repeatable) and/or --random")
        output = Path(args.output)
        if output.exists() and not args.overwrite:
            raise FuguError(f"--output {output} exists (pass --overwrite to replace it)")
        check_writable(output, "--output")
        check_env_id(args.env)
        sources: list[tuple[str, Any]] = [("random", None)] if args.random else []
        sources += [(str(_resolve_checkpoint(c)), c) for c in args.checkpoint]
        env = fugu.vector.make(args.env, num_envs=args.num_envs, seed=args.seed)
        parts = []
        try:
            for index, (name, given) in enumerate(sources):
                actor = None
                if given is not None:
                    actor, _ = load_algorithm(
                        name, env.single_observation_space, env.single_action_space, "cpu"
                    )

                shown = [-1]

                def progress(done: int, total: int, name: str = name, shown: Any = shown) -> None:
                    tenth = 10 * done // total
                    if not args.quiet and tenth != shown[0]:
                        shown[0] = tenth
                        print(f"{name}: {done}/{total} episodes", file=sys.stderr)

                parts.append(
                    record_dataset(
                        env,
                        actor,
                        args.episodes,
                        epsilon=args.epsilon if actor is not None else 0.0,
                        deterministic=args.deterministic,
                        seed=args.seed + index,
                        policy_name=name,
                        env_id=args.env,
                        on_progress=progress,
                    )
                )
        finally:
            env.close()
        first = parts[0].metadata
        metadata = DatasetMetadata(
            env_id=args.env,
            policy=" + ".join(p.metadata.policy for p in parts),
            observation_space=first.observation_space,
            action_space=first.action_space,
            extras=list(first.extras),
            composition={
                "sources": [{**p.metadata.composition["sources"][0], **_returns(p)} for p in parts]
            },
        )
        dataset = TrajectoryDataset.concatenate(parts, metadata)
        dataset.save(output, overwrite=args.overwrite)
        if args.minari_id:
            from fugu.data import to_minari

            to_minari(dataset, args.minari_id)
    except FuguError as error:
        print(f"fugu collect: error: {error}", file=sys.stderr)
        return 2
    report = {"output": str(output), **dataset.summary(), **metadata.composition}
    if args.minari_id:
        report["minari_id"] = args.minari_id
    if args.json:
        print(json.dumps(report))
    else:
        s = dataset.summary()
        print(
            f"{int(s['num_episodes'])} episodes, {int(s['num_transitions']):,} transitions of "
            f"{args.env} -> {output}: return mean {s['return_mean']:.1f} "
            f"(min {s['return_min']:.1f}, max {s['return_max']:.1f})"
        )
    return 0


def _returns(part: Any) -> dict[str, float]:
    s = part.summary()
    return {"return_mean": s["return_mean"], "return_max": s["return_max"]}
