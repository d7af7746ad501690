"""``fugu eval ENV --checkpoint PATH``: play a trained agent (any algorithm), report returns,
render a video."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu eval``."""
    parser.add_argument("env", help="env id the policy was trained on, e.g. cartpole-v1")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH",
        help="a checkpoint directory, or a run dir (its latest valid checkpoint is used)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play (10)")
    parser.add_argument("--num-envs", type=int, default=1, help="env rows played at once (1)")
    parser.add_argument("--seed", type=int, default=0, help="reset seed (0)")
    parser.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of taking the mode"
    )
    parser.add_argument(
        "--render",
        choices=("gif", "mp4"),
        help="record the first episode (row 0) with env.render() as a gif or mp4",
    )
    parser.add_argument("--output", metavar="PATH", help="video file (default: eval.<gif|mp4>)")
    parser.add_argument("--max-frames", type=int, default=1000, help="most frames recorded")
    parser.add_argument("--fps", type=int, default=30, help="video frames per second (30)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint's policy, play ``--episodes`` episodes, print and render."""
    import json
    from pathlib import Path

    from fugu.bridges.entry import make_env as make
    from fugu.checkpoint import find_latest_valid, verify_checkpoint
    from fugu.core.errors import FuguError
    from fugu.loggers.media import write_video
    from fugu.train.build import load_algorithm
    from fugu.train.evaluate import evaluate_policy
    from fugu.train.experiment import ExperimentConfig

    try:
        path = Path(args.checkpoint)
        if not (path / "manifest.json").is_file():
            found = find_latest_valid(path)
            if found is None:
                raise FuguError(f"no valid checkpoint at {path}")
            path = found
        reason = verify_checkpoint(path)
        if reason is not None:
            raise FuguError(f"checkpoint {path} is not usable: {reason}")
        manifest = json.loads((path / "manifest.json").read_text())
        config = ExperimentConfig.from_dict(manifest.get("config", {}))
        if config.env.id != args.env:
            print(
                f"warning: the checkpoint was trained on {config.env.id!r}, evaluating on "
                f"{args.env!r}",
                file=sys.stderr,
            )
        kwargs = dict(config.env.kwargs)
        if args.num_envs != 1:
            kwargs["num_envs"] = args.num_envs
        if args.render is not None:  # Gymnasium envs draw frames only when asked to
            kwargs["render_mode"] = "rgb_array"
        env = make(args.env, **kwargs)
        try:
            algo, _ = load_algorithm(
                path, env.single_observation_space, env.single_action_space, args.device
            )
            result = evaluate_policy(
                env,
                algo,
                args.episodes,
                deterministic=not args.stochastic,
                render=args.render is not None,
                max_frames=args.max_frames,
                seed=args.seed,
            )
        finally:
            env.close()
        video = None
        if args.render is not None:
            if result.frames is None:
                raise FuguError("no frames were rendered")
            video = write_video(args.output or f"eval.{args.render}", result.frames, args.fps)
    except FuguError as error:
        print(f"fugu eval: error: {error}", file=sys.stderr)
        return 2
    report = {
        "env": args.env,
        "algo": config.algo,
        "checkpoint": str(path),
        "episodes": len(result.returns),
        "mean_return": result.mean_return,
        "returns": result.returns,
        "lengths": result.lengths,
        "video": None if video is None else str(video),
        "env_stats": result.info_means,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{len(result.returns)} episodes of {args.env} ({config.algo}) from {path}: "
            f"mean return {result.mean_return:.2f} (min {min(result.returns, default=0):.1f}, "
            f"max {max(result.returns, default=0):.1f})"
        )
        if video is not None:
            print(f"video: {video}")
    return 0
