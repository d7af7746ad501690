"""``fugu sweep ENV``: hyperparameter search over training runs (Protein by default).

Search ranges come from the env preset's ``[sweep]`` table; every trial is a training run in
``SWEEP_DIR/trials/trial-NNNN``; the sweep's state is ``SWEEP_DIR/observations.jsonl``, so
running the same command again resumes it. Outputs: ``front.csv``, ``front.png``, ``best.toml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

_EPILOG = """\
search ranges (the env preset's [sweep] table, e.g. src/fugu/presets/cartpole-v1.toml):
  [sweep]
  budget = "train.total_timesteps"          # the cost axis (cheap runs first)
  [sweep.parameters]
  "ppo.learning_rate" = { distribution = "log", min = 1e-4, max = 1e-2 }
  distributions: uniform, int_uniform, log, pow2, logit (values near 1, e.g. gamma)

config overrides apply to every trial: --SECTION.KEY VALUE (as in 'fugu train').

resume: run the same command again (same --sweep-dir): observations are replayed and the
sweep continues up to --max-runs trials.

outputs in SWEEP_DIR: observations.jsonl (state), sweep.jsonl (per-trial metrics),
front.csv and front.png (score-cost Pareto front), best.toml (use: fugu train ENV --preset
SWEEP_DIR/best.toml), trials/ (each trial's run dir).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu sweep``."""
    from fugu.hpo.methods import METHODS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("env", help="env id whose preset has a [sweep] table, e.g. cartpole-v1")
    parser.add_argument("--max-runs", type=int, required=True, metavar="N", help="total trials")
    parser.add_argument(
        "--method", choices=METHODS, default="protein", help="search method (protein)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the searcher (0)")
    parser.add_argument(
        "--sweep-dir", metavar="PATH", help="state and outputs (runs/sweep-ENV-METHOD-SEED)"
    )
    parser.add_argument(
        "--algo", metavar="NAME", help="the algorithm every trial trains (default ppo)"
    )
    parser.add_argument("--preset", metavar="FILE", help="a TOML preset instead of the env's")
    parser.add_argument(
        "--metric", help="epoch metric to maximise (the [sweep] 'metric', else env/mean_return_100)"
    )
    parser.add_argument(
        "--cost", choices=("seconds", "steps"), default="seconds", help="cost axis (seconds)"
    )
    parser.add_argument(
        "--num-reports", type=int, default=5, help="observations per trial along its budget (5)"
    )
    parser.add_argument(
        "--early-stop", action="store_true", help="stop trials far below the Pareto front"
    )
    parser.add_argument("--max-cost", type=float, help="Protein never suggests runs above this")
    parser.add_argument("--no-plot", action="store_true", help="do not draw front.png")
    parser.set_defaults(overrides=[])
    original = parser.parse_known_args

    def parse_known_args(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        from fugu.cli.train import split_overrides

        overrides, rest = split_overrides(list(sys.argv[1:] if args is None else args))
        result, extras = original(rest, namespace)
        result.overrides = overrides
        return result, extras

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the sweep and print one JSON line per trial, then the result."""
    from pathlib import Path

    from fugu.core.errors import FuguError
    from fugu.hpo.methods import make_searcher
    from fugu.hpo.spaces import SearchSpace
    from fugu.hpo.sweep import run_sweep
    from fugu.hpo.train_trial import make_train_trial
    from fugu.loggers import Logger
    from fugu.train.experiment import ExperimentConfig

    try:
        overrides = list(args.overrides)
        if args.algo is not None:
            overrides = ["--train.algo", args.algo, *overrides]
        base = ExperimentConfig.from_preset(args.env, overrides, preset=args.preset)
        if not base.sweep:
            print(f"error: the preset of {args.env} has no [sweep] table", file=sys.stderr)
            return 2
        space = SearchSpace.from_dict(base.sweep)
        kwargs: dict[str, Any] = {}
        if args.method == "protein":
            max_cost = args.max_cost if args.max_cost is not None else base.sweep.get("max_cost")
            kwargs = {
                "early_stopping": args.early_stop,
                "max_cost": max_cost,
                "initial": _preset_values(base.to_dict(), space.names),
            }
        searcher = make_searcher(args.method, space, args.seed, **kwargs)
        name = f"sweep-{args.env}-{args.method}-{args.seed}"
        directory = Path(args.sweep_dir) if args.sweep_dir else Path("runs") / name
        metric = args.metric or str(base.sweep.get("metric", "env/mean_return_100"))
        trial = make_train_trial(
            base,
            directory / "trials",
            metric=metric,
            cost=args.cost,
            num_reports=args.num_reports,
            wandb_group=directory.name,
        )
        logger: Logger | None = None
        if base.logging.tensorboard:
            from fugu.loggers.tensorboard import TensorBoardLogger

            logger = TensorBoardLogger(directory / "tensorboard")

        progress = _SweepProgress(args.max_runs)

        def on_trial(record: dict[str, Any]) -> None:
            record = {**record, "params": tidy_params(record.get("params", {}))}
            print(json.dumps(record), flush=True)
            print(progress.line(record), file=sys.stderr, flush=True)

        config = {k: v for k, v in base.to_dict().items() if k != "sweep"}
        result = run_sweep(
            searcher,
            trial,
            directory,
            args.max_runs,
            logger=logger,
            base_config=config,
            plot=not args.no_plot,
            on_trial=on_trial,
        )
    except FuguError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    best = result.best
    summary = {
        "sweep_dir": str(directory),
        "trials": result.num_trials,
        "failures": len(result.failures),
        "best_score": None if best is None else best.score,
        "best_cost": None if best is None else best.cost,
        "best_params": None if best is None else best.params,
        **{name: str(path) for name, path in result.paths.items()},
    }
    print(json.dumps(summary), flush=True)
    return 0


def tidy_params(params: dict[str, Any]) -> dict[str, Any]:
    """Floats that are integers up to rounding (``1500000.000000001``) as ints.

    Example:
        >>> tidy_params({"train.total_timesteps": 1500000.000000001, "ppo.gamma": 0.99})
        {'train.total_timesteps': 1500000, 'ppo.gamma': 0.99}
    """
    tidy: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, float) and abs(value) >= 1 and abs(value - round(value)) < 1e-6:
            tidy[key] = round(value)
        else:
            tidy[key] = value
    return tidy


class _SweepProgress:
    """One stderr line per finished trial: trials done, this score, best so far, ETA."""

    def __init__(self, max_runs: int) -> None:
        import time

        self.max_runs = max_runs
        self.start = time.perf_counter()
        self.done = 0
        self.best: float | None = None
        self.best_trial: Any = None

    def line(self, record: dict[str, Any]) -> str:
        import time

        self.done += 1
        score = record.get("score")
        failed = bool(record.get("failed"))
        if not failed and score is not None and (self.best is None or score > self.best):
            self.best, self.best_trial = float(score), record.get("trial")
        elapsed = time.perf_counter() - self.start
        left = max(self.max_runs - self.done, 0)
        eta = elapsed / self.done * left
        this = "failed" if failed else f"score {score:.4g}"
        best = "-" if self.best is None else f"{self.best:.4g} (trial {self.best_trial})"
        return (
            f"sweep: {self.done}/{self.max_runs} trials, trial {record.get('trial')} {this}; "
            f"best so far {best}; elapsed {elapsed:.0f}s, ETA {eta:.0f}s"
        )


def _preset_values(config: dict[str, Any], names: Sequence[str]) -> dict[str, Any] | None:
    """The base config's value of every searched key (``None`` if one is missing)."""
    values: dict[str, Any] = {}
    for name in names:
        section, _, key = name.partition(".")
        value = config.get(section, {}).get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        values[name] = value
    return values
