"""``fugu push RUN_OR_CHECKPOINT --repo-id user/name``: a policy to the HuggingFace Hub."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu push``."""
    parser.epilog = (
        "The repository holds the checkpoint (manifest.json, weights.safetensors, state.pt), "
        "config.json, policy.onnx with its parity report (export.json), eval.gif where the env "
        "renders, and a model card (README.md) with a results table. Log in first with "
        "'hf auth login' (older clients: 'huggingface-cli login') or set HF_TOKEN; "
        "--local-dir writes the same folder without uploading. "
        "Example: fugu push runs/cartpole-v1-ppo-1-... --repo-id me/cartpole-ppo"
    )
    parser.add_argument("source", help="a run dir (its best checkpoint) or a checkpoint directory")
    parser.add_argument("--repo-id", required=True, metavar="USER/NAME", help="the Hub repository")
    parser.add_argument(
        "--local-dir",
        metavar="DIR",
        help="only write the repository folder into DIR (a local folder repository); no upload",
    )
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--message", metavar="TEXT", help="the commit message")
    parser.add_argument(
        "--episodes", type=int, default=5, help="evaluation episodes for the card (0: none)"
    )
    parser.add_argument("--no-gif", action="store_true", help="do not record eval.gif")
    parser.add_argument("--no-onnx", action="store_true", help="do not add policy.onnx")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")


def run(args: argparse.Namespace) -> int:
    """Stage the repository, upload it (or write it to --local-dir), print where it went."""
    import json
    import sys

    from fugu.core.errors import FuguError
    from fugu.hub import push

    try:
        result = push(
            args.source,
            args.repo_id,
            local_dir=args.local_dir,
            private=args.private,
            commit_message=args.message,
            eval_episodes=args.episodes,
            gif=not args.no_gif,
            onnx=not args.no_onnx,
        )
    except FuguError as error:
        print(f"fugu push: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the Hub client's own errors: auth, network, permissions
        print(f"fugu push: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    where = result.url or result.folder
    print(f"{result.repo_id}: {', '.join(result.files)} -> {where}")
    if "mean_return" in result.results:
        print(f"eval: mean return {result.results['mean_return']:.4g} "
              f"over {result.results['episodes']} episodes")  # fmt: skip
    for note in result.notes:
        print(f"note: {note}")
    return 0
