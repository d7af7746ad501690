"""``fugu train ENV [--algo NAME]``: train a registered algorithm (PPO by default) on an env,
with a live dashboard, checkpoints and TensorBoard.

Every config field is a flag: ``--SECTION.KEY VALUE`` (``fugu train ENV --help`` lists them
with their defaults; ``--algo NAME --help`` lists that algorithm's). Values resolve as: config
defaults < ``default`` preset < the env's preset < ``--preset FILE`` < flags.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

_EPILOG = """\
config overrides (any field of any section; the values shown are those {env} runs with:
its preset's, else the default; --print-config prints them all as TOML):
  --SECTION.KEY VALUE     e.g. --{algo}.learning-rate 3e-4 --train.total-timesteps 1e6
                          --env.num-envs 64 --logging.wandb true --policy.hidden-size 128
{options}
resume:
  A run in a stable directory (--run-name NAME or --run-dir PATH) resumes from its latest
  valid checkpoint when the same command is run again (--resume auto, the default).
  --resume latest also finds the newest runs/<env>-<algo>-<seed>-* run; --resume PATH resumes
  a given checkpoint or run dir; --resume never starts fresh.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu train`` (config overrides are parsed separately)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("env", help="env id, e.g. cartpole-v1 ('fugu envs' lists them)")
    parser.add_argument(
        "--algo",
        metavar="NAME",
        help="the algorithm to train (default ppo; 'fugu algos' lists them); same as "
        "--train.algo NAME",
    )
    parser.add_argument("--preset", metavar="FILE", help="a TOML preset instead of the env's")
    parser.add_argument(
        "--dataset",
        metavar="PATH",
        help="the dataset of an offline algorithm (dt, bc; written by fugu collect); same as "
        "--ALGO.dataset PATH",
    )
    parser.add_argument(
        "--seed", type=int, help="shorthand for --train.seed N (and the algorithm's seed)"
    )
    parser.add_argument(
        "--resume",
        metavar="auto|latest|never|PATH",
        help="which checkpoint to continue (default: the config's checkpoint.resume, 'auto')",
    )
    parser.add_argument("--run-dir", metavar="PATH", help="the run directory (stable: resumable)")
    parser.add_argument("--run-name", metavar="NAME", help="run directory runs/NAME (resumable)")
    parser.add_argument("--root", default="runs", help="parent of run directories (runs)")
    parser.add_argument(
        "--epochs", type=int, metavar="N", help="stop after N epochs (resume later to continue)"
    )
    parser.add_argument("--quiet", action="store_true", help="no dashboard, only the summary")
    parser.add_argument(
        "--summary-json", metavar="PATH", help="write the run's summary as one JSON object"
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (preset + overrides) as TOML and exit: a dry run",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training across the ranks a launcher started: "
        "torchrun --nproc-per-node K -m fugu train ... (automatic under torchrun)",
    )
    parser.set_defaults(overrides=[])
    _accept_overrides(parser)


def _accept_overrides(parser: argparse.ArgumentParser) -> None:
    """Collect ``--section.key [value]`` tokens before argparse sees them; list them in help."""
    original_parse = parser.parse_known_args
    original_help = parser.format_help
    seen = {"algo": "ppo", "env": ""}

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        tokens = list(sys.argv[1:] if args is None else args)
        seen["algo"] = _algo_in(tokens, split_overrides(tokens)[0])
        positional = [t for t in split_overrides(tokens)[1] if not t.startswith("-")]
        seen["env"] = positional[0] if positional else ""
        tokens = expand_aliases(tokens, seen["algo"])
        overrides, rest = split_overrides(tokens)
        result, extras = original_parse(rest, namespace)
        unknown = [token for token in extras if token.startswith("-")]
        if unknown:
            from fugu.core.errors import FuguError
            from fugu.train.aliases import resolve_key

            try:
                resolve_key(unknown[0], seen["algo"])
            except FuguError as error:
                parser.error(str(error))
        result.overrides = overrides
        return result, extras

    def format_help() -> str:
        algo = seen["algo"]
        parser.epilog = _EPILOG.format(
            options=_describe_options(algo, seen["env"]), algo=algo, env=seen["env"] or "ENV"
        )
        return original_help()

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]
    parser.format_help = format_help  # type: ignore[method-assign]


_ALIAS_FLAGS = (
    "--lr",
    "--learning-rate",
    "--total-timesteps",
    "--timesteps",
    "--num-envs",
    "--device",
    "--num-steps",
    "--gamma",
    "--shield",
)


def expand_aliases(tokens: Sequence[str], algo: str = "ppo") -> list[str]:
    """Short flags as their ``--section.key`` (see :data:`fugu.train.aliases.ALIASES`).

    Example:
        >>> expand_aliases(["cartpole-v1", "--lr", "1e-3", "--device=cpu"])
        ['cartpole-v1', '--ppo.learning-rate', '1e-3', '--train.device=cpu']
    """
    from fugu.train.aliases import ALIASES

    result = []
    for token in tokens:
        flag, eq, value = token.partition("=")
        if flag in _ALIAS_FLAGS:
            key = ALIASES[flag[2:].replace("-", "_")].format(algo=algo)
            flag = "--" + key.replace("_", "-")
        result.append(flag + eq + value)
    return result


def split_overrides(tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``--section.key [value]`` tokens from the others (a flag alone means ``true``).

    Example:
        >>> split_overrides(["cartpole-v1", "--ppo.ent-coef", "-0.1", "--quiet", "--logging.wandb"])
        (['--ppo.ent-coef', '-0.1', '--logging.wandb', 'true'], ['cartpole-v1', '--quiet'])
    """
    overrides: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        key = token.partition("=")[0]
        if token.startswith("--") and "." in key and not key[2:].startswith("."):
            if "=" in token:
                overrides += [key, token.partition("=")[2]]
                index += 1
                continue
            has_value = index + 1 < len(tokens) and not tokens[index + 1].startswith("--")
            overrides += [token, tokens[index + 1] if has_value else "true"]
            index += 1 + int(has_value)
        else:
            rest.append(token)
            index += 1
    return overrides, rest


def _algo_in(tokens: Sequence[str], overrides: Sequence[str]) -> str:
    """The algorithm named by ``--algo NAME`` or ``--train.algo NAME`` (default ``ppo``)."""
    for flags in (list(tokens), list(overrides)):
        for flag in ("--algo", "--train.algo"):
            if flag in flags[:-1]:
                return flags[flags.index(flag) + 1]
    return "ppo"


def _describe_options(algo: str = "ppo", env: str = "") -> str:
    try:
        from fugu.core.errors import FuguError
        from fugu.train.experiment import ExperimentConfig, describe_options
    except ImportError as error:  # pragma: no cover - a broken install
        return f"  (options unavailable: {error})"
    try:
        rows = describe_options(algo)
        preset = ExperimentConfig.from_preset(env, {"train.algo": algo}).to_dict() if env else None
    except FuguError as error:
        return f"  ({error})"
    lines = []
    for flag, type_name, text, default in rows:
        section, _, key = flag[2:].partition(".")
        value = default
        if preset is not None:
            value = preset.get(section, {}).get(key.replace("-", "_"), default)
        value_text = json.dumps(value) if value is not None else "none"
        label = f"{env}'s preset" if preset is not None and value != default else "default"
        text = text.replace("``", "")
        lines.append(f"  {flag} ({type_name}, {label} {value_text})")
        if text:
            lines.append(f"      {text}")
    return "\n".join(lines)


def build_config(args: argparse.Namespace) -> Any:
    """The :class:`~fugu.train.experiment.ExperimentConfig` the arguments describe."""
    from fugu.train.aliases import resolve_key
    from fugu.train.experiment import ExperimentConfig, section_type
    from fugu.train.fields import field_types

    overrides = list(args.overrides)
    algo = args.algo or _algo_in([], overrides)
    for flag in overrides[0::2]:
        resolve_key(flag, algo)  # unknown options: a message with the closest ones
    if args.algo is not None:
        overrides = ["--train.algo", args.algo, *overrides]
    if getattr(args, "dataset", None) is not None:
        from fugu.core.errors import APIUsageError

        if "dataset" not in field_types(section_type(algo)):
            raise APIUsageError(
                f"--dataset: {algo} does not train on a dataset (offline algorithms do: "
                "--algo dt, --algo bc)"
            )
        overrides += [f"--{algo}.dataset", str(args.dataset)]
    if args.resume is not None:
        _check_resume(args.resume)
        overrides += ["--checkpoint.resume", str(args.resume)]
    config = ExperimentConfig.from_preset(args.env, overrides, preset=args.preset)
    if args.seed is not None:
        seeds = {"train.seed": args.seed}
        if "seed" in field_types(section_type(config.algo)):
            seeds[f"{config.algo}.seed"] = args.seed
        config = config.with_overrides(seeds)
    return config


def _check_resume(value: str) -> None:
    """``--resume`` is a mode or an existing path (``lastest`` is not taken for a path)."""
    import difflib
    from pathlib import Path

    from fugu.core.errors import APIUsageError

    modes = ("auto", "latest", "never")
    if value in modes or Path(value).exists():
        return
    close = difflib.get_close_matches(value, modes, n=1)
    hint = f"did you mean --resume {close[0]}? " if close else ""
    raise APIUsageError(
        f"--resume {value}: not a mode ({', '.join(modes)}) nor an existing checkpoint or run "
        f"dir; {hint}"
        "pass a checkpoint directory or a run dir to resume it"
    )


def run(args: argparse.Namespace) -> int:
    """Train, drawing the dashboard (unless ``--quiet``), and print where everything went."""
    import logging

    from fugu.core.errors import FuguError
    from fugu.train.run import train

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.epochs is not None and args.epochs < 1:
            raise FuguError(f"--epochs must be >= 1, got {args.epochs}")
        if args.summary_json:
            from fugu.train.validate import check_writable

            check_writable(args.summary_json, "--summary-json")
        config = build_config(args)
        if args.print_config:
            from fugu.train.experiment import dumps_toml
            from fugu.train.validate import check_device, check_env_id

            check_env_id(config.env.id)
            check_device(config.train.device)
            print(dumps_toml(config.to_dict()), end="")
            return 0
    except FuguError as error:
        print(f"fugu train: error: {error}", file=sys.stderr)
        return 2

    from fugu.train.distributed import init_from_env, launched_distributed, shutdown

    main_rank = True
    if args.distributed or launched_distributed():
        try:
            main_rank = init_from_env(config.train.device).is_main
        except FuguError as error:
            print(f"fugu train: error: {error}", file=sys.stderr)
            return 2
    try:
        return _train(args, config, train, main_rank)
    finally:
        shutdown()


def _train(args: argparse.Namespace, config: Any, train: Any, main_rank: bool) -> int:
    import signal
    import threading

    from fugu.core.errors import FuguError

    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "\nstopping after this epoch and writing a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    dashboard = None if args.quiet or not main_rank else _Dashboard(config)
    try:
        if dashboard is not None:
            dashboard.start()
        summary = train(
            config,
            run_dir=args.run_dir,
            run_name=args.run_name,
            root=args.root,
            quiet=args.quiet,
            on_progress=None if dashboard is None else dashboard.update,
            stop=stop,
            max_epochs=args.epochs,
            adopt_checkpoint_config=not (args.overrides or args.preset or args.algo)
            and args.seed is None,
        )
    except FuguError as error:
        print(f"fugu train: error: {error}", file=sys.stderr)
        return 2
    finally:
        if dashboard is not None:
            dashboard.stop()
        signal.signal(signal.SIGINT, previous)

    if not main_rank:  # rank 0 reports for the group
        return 130 if summary.interrupted else 0
    result = summary.to_dict()
    result["tensorboard"] = f"tensorboard --logdir {summary.run_dir}"
    if args.summary_json:
        from pathlib import Path

        path = Path(args.summary_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result) + "\n")
    _print_summary(summary, args)
    return 130 if summary.interrupted else 0


def _print_summary(summary: Any, args: argparse.Namespace) -> None:
    final = "n/a" if summary.final_return is None else f"{summary.final_return:.1f}"
    finished = summary.timesteps >= summary.total_timesteps
    if summary.interrupted:
        state = "interrupted"
    elif summary.stopped_on_solve:
        state = "solved, stopped"
    else:
        state = "done" if finished else "stopped"
    warmup = (
        f" after the first epoch, which took {summary.warmup_s:.1f}s with the env kernels' "
        "compile/load"
        if summary.warmup_s
        else ""
    )
    print(
        f"{state}: {summary.timesteps:,} steps in {summary.wall_s:.1f}s "
        f"({summary.sps:,.0f} steps/s{warmup})"
    )
    if summary.solved:
        print(
            f"first solved: step {summary.steps_to_solve:,} after {summary.time_to_solve_s:.1f}s"
            " of training"
        )
    verdict = (
        "solved"
        if summary.solved_at_end
        else ("no longer solved" if summary.solved else "not solved")
    )
    if summary.solve_metric == "episode_return":
        print(f"final:       mean return {final} (last 100 episodes), {verdict}")
    else:
        score = "n/a" if summary.final_score is None else f"{summary.final_score:.3f}"
        print(
            f"final:       mean {summary.solve_metric} {score}, mean return {final} "
            f"(last 100 episodes), {verdict}"
        )
    if summary.stopped_on_solve and summary.solve_check_return is not None:
        how = "deterministic" if summary.solve_check_deterministic else "sampled"
        metric = "return" if summary.solve_metric == "episode_return" else summary.solve_metric
        print(
            f"confirmed:   mean {metric} {summary.solve_check_return:.3f} ({how}: the first "
            "episode of every row of a fresh env)"
        )
    if summary.best_return is not None:
        print(f"best:        mean return {summary.best_return:.1f} at step {summary.best_step:,}")
    for skipped in summary.skipped_checkpoints:
        print(f"skipped:     {skipped}")
    if summary.resumed_from:
        print(f"resumed:     {summary.resumed_from}")
    print(f"run dir:     {summary.run_dir}")
    print(f"checkpoint:  {summary.checkpoint} (latest)")
    if summary.best_checkpoint:
        print(f"best ckpt:   {summary.best_checkpoint}")
    print(f"metrics:     {summary.run_dir}/metrics.jsonl")
    print(f"tensorboard: tensorboard --logdir {summary.run_dir}")
    evaluated = summary.best_checkpoint or summary.checkpoint
    if evaluated:
        print(f"evaluate:    fugu eval --checkpoint {evaluated}")
    if summary.interrupted or (not finished and not summary.stopped_on_solve):
        print(f"resume:      fugu train {args.env} --run-dir {summary.run_dir} --resume latest")


def _format_metric(value: float | None) -> str:
    """A metric for the dashboard: 4 significant digits, scientific when tiny or huge."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


class _Dashboard:
    """A rich Live view: progress bar with ETA, SPS, returns, losses, time split."""

    def __init__(self, config: Any) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.config = config
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.description = f"{config.env.id} {config.algo}"
        self.task = self.progress.add_task(
            f"{self.description}: building envs, compiling env kernels (first run only)",
            total=config.train.total_timesteps,
        )
        from fugu.algos.registry import get_algorithm

        self.algo_metrics: tuple[str, ...] = tuple(get_algorithm(config.algo).dashboard_metrics)
        self.latest: Any = None
        self.live: Any = None

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column()
        p = self.latest
        if p is not None:
            m = p.metrics
            rollout, update = m.get("perf/rollout_s", 0.0), m.get("perf/update_s", 0.0)
            share = 100.0 * rollout / max(rollout + update, 1e-9)
            avg_sps = p.global_step / max(p.elapsed_s, 1e-9)
            target = p.solve_threshold if math.isfinite(p.solve_threshold) else None
            if p.solved_now:
                solved = "[green]solved[/green]"
            elif p.solved:
                solved = (
                    f"[yellow]below target {target}[/yellow] (first solved at step "
                    f"{p.steps_to_solve:,})"
                )
            else:
                solved = f"target {target}"
            table.add_row(
                "[bold]steps/s",
                f"{m.get('perf/sps', 0.0):,.0f} (avg {avg_sps:,.0f})",
                "[bold]epoch",
                f"{p.epoch}",
            )
            by_return = p.solve_metric == "episode_return"
            table.add_row(
                "[bold]return (100 ep)",
                f"{p.mean_return:.1f}  {solved}" if by_return else f"{p.mean_return:.2f}",
                "[bold]episodes",
                f"{m.get('env/num_episodes', 0.0):.0f} this epoch",
            )
            if not by_return:
                table.add_row(f"[bold]{p.solve_metric} (100 ep)", f"{p.solve_score:.3f}  {solved}")
            cells = [(f"[bold]{key}", _format_metric(m.get(key))) for key in self.algo_metrics]
            for left, right in itertools.zip_longest(cells[0::2], cells[1::2], fillvalue=("", "")):
                table.add_row(*left, *right)
            table.add_row(
                "[bold]time split", f"rollout {share:.0f}% / update {100 - share:.0f}%", "", ""
            )
            table.add_row("[bold]run dir", str(p.run_dir), "", "")
        return Group(self.progress, table)

    def start(self) -> None:
        from rich.live import Live

        self.live = Live(self._render(), console=self.console, refresh_per_second=4)
        self.live.start()

    def update(self, progress: Any) -> None:
        self.latest = progress
        self.progress.update(
            self.task,
            total=progress.total_timesteps,  # a resumed run trains to its checkpoint's total
            completed=min(progress.global_step, progress.total_timesteps),
            description=self.description
            + (" (solved: stopped early)" if progress.stopped_on_solve else ""),
        )
        if self.live is not None:
            self.live.update(self._render())

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            if not self.console.is_terminal:  # a redirected final frame ends without a newline
                self.console.line()
