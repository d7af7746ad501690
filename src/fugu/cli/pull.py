"""``fugu pull REPO_ID``: a pushed policy from the HuggingFace Hub, ready for fugu.load."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu pull``."""
    parser.epilog = (
        "Prints the folder: a fugu checkpoint that fugu.load, 'fugu eval --checkpoint' and "
        "'fugu export' take. With HF_HUB_OFFLINE=1 the Hub cache is used without the network. "
        "Example: fugu pull me/cartpole-ppo --local-dir cartpole-ppo"
    )
    parser.add_argument("repo_id", help="USER/NAME on the Hub, or a local folder repository")
    parser.add_argument(
        "--local-dir", metavar="DIR", help="copy the files into DIR (default: the Hub cache)"
    )
    parser.add_argument("--revision", help="a branch, tag or commit (default: main)")
    parser.add_argument("--cache-dir", metavar="DIR", help="the Hub cache (default HF_HUB_CACHE)")


def run(args: argparse.Namespace) -> int:
    """Download (or take from the cache), check it is a fugu checkpoint, print its folder."""
    import sys

    from fugu.core.errors import FuguError
    from fugu.hub import pull

    try:
        folder = pull(
            args.repo_id, local_dir=args.local_dir, revision=args.revision, cache_dir=args.cache_dir
        )
    except FuguError as error:
        print(f"fugu pull: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the Hub client's own errors: not found, offline, auth
        print(f"fugu pull: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(folder)
    return 0
