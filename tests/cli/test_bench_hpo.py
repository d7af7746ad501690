"""``fugu bench hpo`` and the benchmark module, at tiny sizes."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main
from fugu.hpo import benchmark


def test_bench_hpo_prints_json_lines(capsys):
    code = main(
        [
            "bench",
            "hpo",
            "--problems",
            "branin",
            "--methods",
            "random,sobol",
            "--seeds",
            "2",
            "--trials",
            "4",
            "--no-latency",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in rows] == ["random", "sobol"]
    for row in rows:
        assert row["problem"] == "branin" and row["num_seeds"] == 2
        assert 0 <= row["hypervolume_median"] <= 1
        assert "best_score_under_cap_median" in row


def test_problems_have_known_optima():
    import numpy as np

    assert benchmark.branin_score(np.array([np.pi, 2.275])) == pytest.approx(1.0, abs=1e-5)
    optimum = np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])
    assert benchmark.hartmann6_score(optimum) == pytest.approx(1.0, abs=1e-4)


def test_run_method_protein_and_optuna():
    for method in ("protein", "optuna"):
        result = benchmark.run_method(benchmark.PROBLEMS["branin"], method, seed=0, num_trials=10)
        assert 0 <= result["hypervolume"] <= 1 and result["total_cost"] > 0
    with pytest.raises(Exception, match="unknown problem"):
        list(benchmark.run_benchmark(["nope"]))


def test_suggest_latency_and_gp_comparison():
    latency = benchmark.suggest_latency(num_observations=30, repeats=1)
    assert latency["problem"] == "suggest_latency" and latency["seconds"] > 0
    rows = benchmark.compare_gp_backends(num_points=30)
    assert [r["backend"] for r in rows] == ["fugu", "gpytorch"]
    assert all(r["test_rmse"] < 0.5 for r in rows)
