"""``fugu eval ENV --checkpoint PATH``: play a trained agent (any algorithm), report returns,
render a video."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu eval``."""
    parser.add_argument(
        "env",
        nargs="?",
        help="env id (default: the one the checkpoint was trained on, from its manifest)",
    )
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
    parser.add_argument(
        "--target-return",
        type=float,
        metavar="R",
        help="the return a return-conditioned agent (dt) is asked for in each episode",
    )
    parser.add_argument(
        "--env-kwargs",
        metavar="JSON",
        help="override the env's constructor arguments recorded in the checkpoint",
    )


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
    from fugu.train.validate import check_device, check_env_id, check_spaces, check_writable

    try:
        path = Path(args.checkpoint)
        if not path.exists():
            raise FuguError(f"--checkpoint {path}: no such file or directory")
        if not (path / "manifest.json").is_file():
            found = find_latest_valid(path)
            if found is None and (path / "weights.safetensors").is_file():
                raise FuguError(
                    f"checkpoint {path} has no manifest.json (an interrupted write, or copied "
                    "without it): fugu needs the manifest for the config and the checksums"
                )
            if found is None:
                raise FuguError(
                    f"no valid checkpoint at {path} (a checkpoint is a directory with a "
                    "manifest.json; pass it, or a run dir or its checkpoints/ folder)"
                )
            path = found
        reason = verify_checkpoint(path)
        if reason is not None:
            raise FuguError(f"checkpoint {path} is not usable: {reason}")
        manifest = json.loads((path / "manifest.json").read_text())
        config = ExperimentConfig.from_dict(manifest.get("config", {}))
        check_device(args.device)
        args.env = args.env or config.env.id
        if args.episodes < 1 or args.num_envs < 1 or args.max_frames < 1 or args.fps < 1:
            raise FuguError("--episodes, --num-envs, --max-frames and --fps must be >= 1")
        if args.render is not None:
            output = Path(args.output or f"eval.{args.render}")
            check_writable(output, "--output")
        kwargs = dict(config.env.kwargs)
        if args.env_kwargs:
            try:
                extra = json.loads(args.env_kwargs)
            except json.JSONDecodeError:
                extra = None
            if not isinstance(extra, dict):
                raise FuguError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
            kwargs.update(extra)
        if args.num_envs != 1:
            kwargs["num_envs"] = args.num_envs
        if args.render is not None:  # Gymnasium envs draw frames only when asked to
            kwargs["render_mode"] = "rgb_array"
        check_env_id(args.env)
        try:
            env = make(args.env, **kwargs)
        except TypeError as error:
            raise FuguError(f"env {args.env!r} rejected the arguments {kwargs}: {error}") from None
        try:
            check_spaces(
                manifest.get("metadata", {}),
                env.single_observation_space,
                env.single_action_space,
                path,
            )
            if args.env != config.env.id:
                print(
                    f"warning: the checkpoint was trained on {config.env.id!r}, evaluating on "
                    f"{args.env!r}",
                    file=sys.stderr,
                )
            algo, _ = load_algorithm(
                path, env.single_observation_space, env.single_action_space, args.device
            )
            if args.target_return is not None:
                set_target = getattr(algo, "set_target_return", None)
                if set_target is None:
                    raise FuguError(
                        f"--target-return: {config.algo} is not return-conditioned (dt is)"
                    )
                set_target(args.target_return)
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
            video = write_video(output, result.frames, args.fps)
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
    if args.target_return is not None:
        report["target_return"] = args.target_return
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
