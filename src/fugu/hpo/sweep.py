"""The sweep runner: suggest, run a trial, observe, repeat; logged, crash-tolerant, resumable.

A trial is any callable ``trial_fn(params, report) -> result``:

- ``params`` is the searcher's suggestion (a dict keyed by dotted config keys);
- ``report(steps, score, cost) -> bool`` records an intermediate observation (the budget
  parameter set to ``steps``) and returns whether the searcher wants the run stopped early;
- ``result`` is a mapping with ``score`` and ``cost`` (and optionally ``steps``, the budget
  reached; default: the suggested budget).

A trial that raises, or whose score is not finite, is recorded as a failure and the sweep goes
on. Everything is appended to ``<sweep_dir>/observations.jsonl`` as it happens; running the same
sweep again replays that file into a fresh searcher and continues with the remaining trials.
The outputs (rewritten after every trial) are ``front.csv``, ``front.png`` and ``best.toml``
(see :mod:`fugu.hpo.outputs`).

Example:
    >>> import tempfile
    >>> from fugu.hpo.searchers import RandomSearcher
    >>> from fugu.hpo.spaces import SearchSpace, Uniform
    >>> space = SearchSpace({"x": Uniform(-1, 1)})
    >>> def trial(params, report):
    ...     return {"score": -params["x"] ** 2, "cost": 1.0}
    >>> result = run_sweep(RandomSearcher(space, seed=0), trial, tempfile.mkdtemp(),
    ...                    max_runs=5, plot=False)
    >>> result.num_trials, len(result.failures)
    (5, 0)
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fugu.core.errors import APIUsageError
from fugu.hpo.outputs import write_outputs
from fugu.hpo.searchers import Observation, Searcher
from fugu.loggers import JsonlLogger, Logger, MultiLogger

__all__ = ["OBSERVATIONS_FILE", "Report", "SweepResult", "TrialFn", "read_state", "run_sweep"]

OBSERVATIONS_FILE = "observations.jsonl"
"""The sweep's state: every observation, failure and finished trial, one JSON object per line."""

Report = Callable[[float, float, float], bool]
"""``report(steps, score, cost) -> should_stop``."""

TrialFn = Callable[[dict[str, Any], Report], Mapping[str, Any]]
"""``trial_fn(params, report) -> {"score": ..., "cost": ..., "steps": ...}``."""


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        observations: Every successful observation (intermediate ones included).
        failures: Params of every failed trial.
        num_trials: Trials finished (successful, stopped or failed), over all resumptions.
        best: The best observation (highest score, cheapest among ties), or ``None``.
        front: The Pareto front, by increasing cost.
        paths: Output name (``observations``, ``csv``, ``png``, ``toml``) -> path.
    """

    observations: list[Observation]
    failures: list[dict[str, Any]]
    num_trials: int
    best: Observation | None
    front: list[Observation]
    paths: dict[str, Path] = field(default_factory=dict)


def read_state(path: str | Path) -> list[dict[str, Any]]:
    """The records of an ``observations.jsonl`` file (a torn last line is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text("utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _replay(searcher: Searcher, records: list[dict[str, Any]]) -> int:
    """Feed saved records to ``searcher``; return the number of finished trials."""
    finished = 0
    started: set[int] = set()
    for record in records:
        kind = record.get("type")
        started.add(int(record.get("trial", -1)))
        if kind == "observation":
            before = len(searcher.observations)
            searcher.observe(record["params"], record["score"], record["cost"])
            _attach_run(searcher, before, record.get("run_params"))
        elif kind == "failure":
            searcher.observe_failure(record["params"])
        elif kind == "trial":
            finished += 1
    searcher.resume(len(started - {-1}))
    return finished


def run_sweep(
    searcher: Searcher,
    trial_fn: TrialFn,
    sweep_dir: str | Path,
    max_runs: int,
    *,
    logger: Logger | None = None,
    base_config: Mapping[str, Any] | None = None,
    plot: bool = True,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep of ``max_runs`` trials in ``sweep_dir``.

    Args:
        searcher: Proposes params and learns from observations (fresh: the state file is
            replayed into it).
        trial_fn: Runs one trial (see the module docstring).
        sweep_dir: Directory of the sweep's state and outputs.
        max_runs: Total trials, counting those finished before a resume.
        logger: Extra sink for per-trial metrics (``sweep/score``, ``sweep/cost``,
            ``sweep/best_score``, at step = trial index). ``sweep.jsonl`` is always written.
        base_config: Nested config (a preset's table) the best params are written into as
            ``best.toml``; without it ``best.toml`` holds the params alone.
        plot: Whether to draw ``front.png`` (matplotlib).
        on_trial: Called with each finished trial's record (for progress output).

    Returns:
        A :class:`SweepResult`.
    """
    if max_runs < 1:
        raise APIUsageError(f"max_runs must be >= 1, got {max_runs}")
    directory = Path(sweep_dir)
    directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / OBSERVATIONS_FILE
    finished = _replay(searcher, read_state(state_path))
    sinks: list[Logger] = [JsonlLogger(directory / "sweep.jsonl")]
    if logger is not None:
        sinks.append(logger)
    sweep_logger = MultiLogger(sinks)
    paths: dict[str, Path] = {"observations": state_path}
    try:
        with state_path.open("a", encoding="utf-8") as state:

            def write(record: dict[str, Any]) -> None:
                state.write(json.dumps(record) + "\n")
                state.flush()

            for index in range(finished, max_runs):
                record = _run_trial(searcher, trial_fn, index, write)
                best = max((o.score for o in searcher.observations), default=math.nan)
                metrics = {"sweep/best_score": best, "sweep/failed": float(record["failed"])}
                if not record["failed"]:
                    metrics |= {"sweep/score": record["score"], "sweep/cost": record["cost"]}
                sweep_logger.log_metrics(metrics, step=index)
                sweep_logger.flush()
                paths |= write_outputs(searcher, directory, base_config, plot=False)
                if on_trial is not None:
                    on_trial(record)
    finally:
        sweep_logger.close()
    paths |= write_outputs(searcher, directory, base_config, plot=plot)
    observations = list(searcher.observations)
    return SweepResult(
        observations=observations,
        failures=list(searcher.failures),
        num_trials=max(finished, max_runs),
        best=searcher.best() if observations else None,
        front=searcher.pareto(),
        paths=paths,
    )


def _attach_run(searcher: Searcher, before: int, run: Mapping[str, Any] | None) -> None:
    """Record on the observation just made (if one was) the params of the run it came from."""
    if run is not None and len(searcher.observations) > before:
        searcher.observations[-1] = replace(searcher.observations[-1], run=dict(run))


def _run_trial(
    searcher: Searcher,
    trial_fn: TrialFn,
    index: int,
    write: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    params = searcher.suggest()
    budget = searcher.space.budget
    last: dict[str, Any] = {}

    def observe(steps: float | None, score: float, cost: float) -> None:
        point = dict(params)
        if budget is not None and steps is not None:
            point[budget] = type(params[budget])(steps)
        if not (math.isfinite(float(score)) and math.isfinite(float(cost)) and float(cost) > 0):
            raise FloatingPointError(f"non-finite score or cost: score={score}, cost={cost}")
        before = len(searcher.observations)
        searcher.observe(point, float(score), float(cost))
        _attach_run(searcher, before, params)
        write(
            {
                "type": "observation",
                "trial": index,
                "params": point,
                "run_params": params,
                "score": float(score),
                "cost": float(cost),
            }
        )
        last.update(params=point, score=float(score), cost=float(cost), steps=steps)

    def report(steps: float, score: float, cost: float) -> bool:
        observe(steps, score, cost)
        return searcher.should_stop(last["params"], float(score), float(cost))

    try:
        result = trial_fn(dict(params), report)
        score, cost = float(result["score"]), float(result["cost"])
        steps = result.get("steps")
        if last and steps is not None and float(last["steps"]) == float(steps):
            pass  # the final point was already reported
        elif not last or score != last["score"] or cost != last["cost"]:
            observe(steps, score, cost)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        searcher.observe_failure(params)
        message = "".join(traceback.format_exception_only(type(error), error)).strip()
        write({"type": "failure", "trial": index, "params": params, "error": message})
        record = {
            "type": "trial",
            "trial": index,
            "params": params,
            "failed": True,
            "error": message,
        }
        write(record)
        return record
    record = {
        "type": "trial",
        "trial": index,
        "params": params,
        "failed": False,
        "score": last["score"],
        "cost": last["cost"],
    }
    write(record)
    return record
