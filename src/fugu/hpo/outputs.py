"""A sweep's outputs: the Pareto front as CSV and PNG, the best config as a TOML preset.

- ``front.csv``: one row per front point, by increasing cost: ``score``, ``cost``, then every
  hyperparameter;
- ``front.png``: every observation (grey), the front (a red staircase: the best score reached
  for at most that cost), the best point (a star); cost on a log axis;
- ``best.toml``: the base config (a preset table) with the best observation's params written in
  at their dotted keys, without the ``[sweep]`` table: ``fugu train ENV --preset best.toml``.

Example:
    >>> nested_update({"ppo": {"gamma": 0.99, "update_epochs": 4}},
    ...               {"ppo.gamma": 0.995, "ppo.update_epochs": 5.0})
    {'ppo': {'gamma': 0.995, 'update_epochs': 5}}
"""

from __future__ import annotations

import copy
import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fugu.hpo.searchers import Observation, Searcher

__all__ = ["dumps_toml", "nested_update", "plot_front", "write_outputs"]


def nested_update(base: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each dotted key of ``params`` set (ints stay ints)."""
    result: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in params.items():
        *parents, name = key.split(".")
        table = result
        for parent in parents:
            table = table.setdefault(parent, {})
        old = table.get(name)
        if isinstance(old, int) and not isinstance(old, bool) and isinstance(value, float):
            value = round(value)
        table[name] = value
    return result


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) or value is None:
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def dumps_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """Write nested dicts as TOML (tables for sub-dicts, ``None`` values omitted).

    Example:
        >>> print(dumps_toml({"a": 1, "ppo": {"gamma": 0.99}}), end="")
        a = 1
        <BLANKLINE>
        [ppo]
        gamma = 0.99
    """
    scalars = [(k, v) for k, v in data.items() if v is not None and not _is_table(v)]
    tables = [(k, v) for k, v in data.items() if _is_table(v)]
    parts = []
    if scalars:
        header = f"[{prefix}]\n" if prefix else ""
        parts.append(header + "".join(f"{_key(k)} = {_toml_value(v)}\n" for k, v in scalars))
    for name, table in tables:
        parts.append(dumps_toml(table, f"{prefix}.{_key(name)}" if prefix else _key(name)))
    return "\n".join(p for p in parts if p)


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value)


def _write_csv(path: Path, front: list[Observation], names: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["score", "cost", *names])
        for o in front:
            writer.writerow([repr(o.score), repr(o.cost), *(o.params[n] for n in names)])


def plot_front(searcher: Searcher, path: str | Path, title: str = "Pareto front") -> Path:
    """Draw every observation, the Pareto front and the best point into a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        obs = searcher.observations
        axes.scatter(
            [o.cost for o in obs],
            [o.score for o in obs],
            s=12,
            c="0.6",
            label=f"observations ({len(obs)})",
        )
        front = searcher.pareto()
        if front:
            costs = [o.cost for o in front]
            scores = [o.score for o in front]
            axes.step(costs, scores, where="post", color="tab:red", label="Pareto front")
            axes.scatter(costs, scores, s=20, c="tab:red")
            best = searcher.best()
            axes.scatter(
                [best.cost],
                [best.score],
                marker="*",
                s=200,
                c="gold",
                edgecolors="black",
                zorder=5,
                label="best",
            )
            axes.set_xscale("log")
        axes.set_xlabel("cost")
        axes.set_ylabel("score")
        axes.set_title(f"{title} ({len(searcher.failures)} failed)")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path


def write_outputs(
    searcher: Searcher,
    directory: str | Path,
    base_config: Mapping[str, Any] | None = None,
    *,
    plot: bool = True,
) -> dict[str, Path]:
    """Write ``front.csv``, ``best.toml`` (when anything succeeded) and ``front.png`` (if asked).

    Returns:
        Output name (``csv``, ``toml``, ``png``) -> path of each file written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"csv": directory / "front.csv"}
    _write_csv(paths["csv"], searcher.pareto(), searcher.space.names)
    if searcher.observations:
        best = searcher.best()
        base = {k: v for k, v in (base_config or {}).items() if k != "sweep"}
        config = nested_update(base, best.run if best.run is not None else best.params)
        header = f"# best of the sweep: score {best.score!r} at cost {best.cost!r}\n"
        budget = searcher.space.budget
        if best.run is not None and budget is not None and best.run != best.params:
            header += (
                f"# reached at {budget} = {best.params[budget]!r} of a run planned for "
                f"{best.run[budget]!r}; these are that run's params (its schedules span the "
                "planned budget)\n"
            )
        paths["toml"] = directory / "best.toml"
        paths["toml"].write_text(header + dumps_toml(config), "utf-8")
    if plot:
        paths["png"] = plot_front(searcher, directory / "front.png")
    return paths
