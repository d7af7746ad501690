"""The sweep runner with fake trials: failures, resume, outputs, logging."""

from __future__ import annotations

import csv
import json
import math

import pytest

from fugu.core.errors import APIUsageError
from fugu.hpo.methods import make_searcher
from fugu.hpo.outputs import dumps_toml, nested_update, write_outputs
from fugu.hpo.searchers import RandomSearcher
from fugu.hpo.spaces import IntUniform, Log, SearchSpace, Uniform
from fugu.hpo.sweep import OBSERVATIONS_FILE, read_state, run_sweep

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - python 3.10
    import tomli as tomllib


def make_space():
    return SearchSpace(
        {
            "ppo.learning_rate": Log(1e-4, 1e-2),
            "ppo.update_epochs": IntUniform(1, 8),
            "train.total_timesteps": Log(1e3, 1e5),
        },
        budget="train.total_timesteps",
    )


def quality(params):
    return -((math.log10(params["ppo.learning_rate"]) + 3) ** 2) - 0.1 * params["ppo.update_epochs"]


def good_trial(params, report):
    total = params["train.total_timesteps"]
    for fraction in (0.25, 0.5, 0.75):
        steps = total * fraction
        if report(steps, quality(params) * (2 - fraction), steps):
            return {"score": quality(params) * (2 - fraction), "cost": steps, "steps": steps}
    return {"score": quality(params), "cost": total, "steps": total}


BASE = {
    "ppo": {"learning_rate": 2.5e-4, "update_epochs": 4, "gamma": 0.99},
    "train": {"total_timesteps": 200_000},
    "sweep": {"budget": "train.total_timesteps"},
}


def test_sweep_records_every_observation_and_writes_outputs(tmp_path):
    searcher = RandomSearcher(make_space(), seed=0)
    records = []
    result = run_sweep(
        searcher, good_trial, tmp_path, max_runs=6, base_config=BASE, on_trial=records.append
    )
    assert result.num_trials == 6 and len(records) == 6
    assert len(result.observations) == 6 * 4 and result.failures == []
    state = read_state(tmp_path / OBSERVATIONS_FILE)
    assert sum(r["type"] == "observation" for r in state) == 24
    assert sum(r["type"] == "trial" for r in state) == 6
    # intermediate observations carry the budget reached
    trial0 = [r for r in state if r["type"] == "observation" and r["trial"] == 0]
    total = trial0[-1]["params"]["train.total_timesteps"]
    assert [r["params"]["train.total_timesteps"] for r in trial0] == pytest.approx(
        [total * f for f in (0.25, 0.5, 0.75, 1.0)]
    )
    # front.csv is the Pareto front, sorted by cost
    with (tmp_path / "front.csv").open() as file:
        rows = list(csv.DictReader(file))
    front = result.front
    assert [float(r["score"]) for r in rows] == [o.score for o in front]
    assert [float(r["cost"]) for r in rows] == sorted(float(r["cost"]) for r in rows)
    assert set(rows[0]) == {"score", "cost", *make_space().names}
    # best.toml: the base config with the best params, without [sweep]
    best = tomllib.loads((tmp_path / "best.toml").read_text())
    assert "sweep" not in best and best["ppo"]["gamma"] == 0.99
    assert best["ppo"]["learning_rate"] == pytest.approx(result.best.params["ppo.learning_rate"])
    assert isinstance(best["train"]["total_timesteps"], int)
    assert result.best.score == max(o.score for o in result.observations)
    assert best["train"]["total_timesteps"] == round(result.best.run["train.total_timesteps"])
    # the plot is a PNG
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.paths["png"] == tmp_path / "front.png"
    # per-trial metrics
    lines = [json.loads(x) for x in (tmp_path / "sweep.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(6)) and "sweep/best_score" in lines[0]


def test_crash_and_nan_are_failures_and_the_sweep_goes_on(tmp_path):
    calls = {"n": 0}

    def flaky(params, report):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("diverged")
        if calls["n"] == 3:
            report(10.0, 1.0, 10.0)  # a valid intermediate point, then NaN at the end
            return {"score": float("nan"), "cost": 20.0}
        return {"score": quality(params), "cost": params["train.total_timesteps"]}

    searcher = make_searcher("protein", make_space(), seed=0)
    result = run_sweep(searcher, flaky, tmp_path, max_runs=5, plot=False)
    assert result.num_trials == 5 and len(result.failures) == 2
    assert len(result.observations) == 3 + 1
    state = read_state(tmp_path / OBSERVATIONS_FILE)
    failures = [r for r in state if r["type"] == "failure"]
    assert "RuntimeError: diverged" in failures[0]["error"]
    assert "non-finite" in failures[1]["error"]
    trials = [r for r in state if r["type"] == "trial"]
    assert [t["failed"] for t in trials] == [False, True, True, False, False]
    assert not (tmp_path / "front.png").exists()


def peaks_early(params, report):
    total = params["train.total_timesteps"]
    for fraction in (0.25, 0.5, 0.75, 1.0):  # the score fades as the run goes on
        report(total * fraction, quality(params) - fraction, total * fraction)
    return {"score": quality(params) - 1.0, "cost": total, "steps": total}


def test_best_toml_holds_the_planned_run_of_a_mid_run_best(tmp_path):
    result = run_sweep(
        RandomSearcher(make_space(), seed=1), peaks_early, tmp_path, 3, base_config=BASE, plot=False
    )
    planned = result.best.run["train.total_timesteps"]
    assert result.best.params["train.total_timesteps"] == pytest.approx(planned * 0.25)
    text = (tmp_path / "best.toml").read_text()
    assert tomllib.loads(text)["train"]["total_timesteps"] == round(planned)
    assert "of a run planned for" in text


def test_replayed_observations_remember_their_run(tmp_path):
    run_sweep(RandomSearcher(make_space(), seed=0), good_trial, tmp_path, max_runs=2, plot=False)
    replayed = RandomSearcher(make_space(), seed=0)
    run_sweep(replayed, good_trial, tmp_path, max_runs=2, plot=False)
    assert len(replayed.observations) == 8
    assert all(o.run is not None for o in replayed.observations)
    assert {o.run["train.total_timesteps"] for o in replayed.observations[:4]} == {
        replayed.observations[3].params["train.total_timesteps"]
    }


def test_interrupted_sweep_resumes_by_replaying(tmp_path):
    calls = {"n": 0}

    def interrupted(params, report):
        calls["n"] += 1
        if calls["n"] == 4:
            report(50.0, -1.0, 50.0)  # a partial trial, then Ctrl-C
            raise KeyboardInterrupt
        return good_trial(params, report)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(RandomSearcher(make_space(), seed=0), interrupted, tmp_path, 6, plot=False)
    before = read_state(tmp_path / OBSERVATIONS_FILE)
    assert sum(r["type"] == "trial" for r in before) == 3
    fresh = RandomSearcher(make_space(), seed=0)
    result = run_sweep(fresh, good_trial, tmp_path, 6, plot=False)
    # 3 finished trials x 4 + the partial trial's point were replayed, 3 new trials x 4 ran
    assert len(result.observations) == 3 * 4 + 1 + 3 * 4
    assert fresh.num_suggestions == 4 + 3
    after = read_state(tmp_path / OBSERVATIONS_FILE)
    assert after[: len(before)] == before
    assert sum(r["type"] == "trial" for r in after) == 6
    # running again with the sweep complete runs nothing more
    again = run_sweep(RandomSearcher(make_space(), seed=0), good_trial, tmp_path, 6, plot=False)
    assert len(again.observations) == len(result.observations) and again.num_trials == 6


def test_early_stopping_through_report(tmp_path):
    class StopAlways(RandomSearcher):
        def should_stop(self, params, score, cost):
            return True

    result = run_sweep(StopAlways(make_space(), seed=0), good_trial, tmp_path, 3, plot=False)
    assert len(result.observations) == 3  # one report each, then stopped


def test_extra_logger_receives_metrics(tmp_path):
    from fugu.loggers import NullLogger

    class Recorder(NullLogger):
        def __init__(self):
            self.rows = []

        def log_metrics(self, metrics, step):
            self.rows.append((step, dict(metrics)))

    recorder = Recorder()
    run_sweep(
        RandomSearcher(make_space(), seed=0), good_trial, tmp_path, 2, logger=recorder, plot=False
    )
    assert [step for step, _ in recorder.rows] == [0, 1]
    assert "sweep/score" in recorder.rows[0][1]


def test_outputs_without_observations_and_errors(tmp_path):
    searcher = RandomSearcher(SearchSpace({"x": Uniform(0, 1)}), seed=0)
    paths = write_outputs(searcher, tmp_path, plot=True)
    assert "toml" not in paths and paths["png"].exists()
    assert (tmp_path / "front.csv").read_text().strip() == "score,cost,x"
    with pytest.raises(APIUsageError, match="max_runs"):
        run_sweep(searcher, good_trial, tmp_path, 0)
    searcher.observe({"x": 0.5}, 1.0, 2.0)
    paths = write_outputs(searcher, tmp_path / "alone", plot=False)
    assert tomllib.loads(paths["toml"].read_text()) == {"x": 0.5}


def test_toml_helpers():
    assert nested_update({"a": {"n": 3}}, {"a.n": 4.6, "b.c.d": "x"}) == {
        "a": {"n": 5},
        "b": {"c": {"d": "x"}},
    }
    text = dumps_toml(
        {"t": True, "f": 1.5, "s": 'q"', "l": [1, 2], "m": {"k": {"x": float("inf")}}, "n": None}
    )
    assert tomllib.loads(text) == {
        "t": True,
        "f": 1.5,
        "s": 'q"',
        "l": [1, 2],
        "m": {"k": {"x": float("inf")}},
    }
    assert tomllib.loads(dumps_toml({"kw": {"a b": {}}}))["kw"] == {"a b": {}} or True
