"""The env benchmark's logic, run tiny (no timing asserts)."""

from __future__ import annotations

import json

import pytest

from fugu.envs import benchmark


def test_measure_env_record() -> None:
    record = benchmark.measure_env("probe-multiagent-v1", 4, 2, seconds=0.001, repeats=2)
    assert record["impl"] == "fugu" and record["rows"] == 8 and record["threads"] == 2
    assert record["sps"] > 0


@pytest.mark.parametrize("env_id", ["pendulum-v1", "cartpole-v1"])
def test_measure_env_action_kinds(env_id: str) -> None:
    assert benchmark.measure_env(env_id, 2, seconds=0.001, repeats=1)["sps"] > 0


def test_suite_with_peers_and_big() -> None:
    records = list(
        benchmark.run_suite(["cartpole-v1"], [2], big=16, starts=False, seconds=0.001, repeats=1)
    )
    impls = [r["impl"] for r in records]
    assert impls == ["gymnasium_vector", "envpool", "fugu", "fugu", "fugu"]
    assert records[2]["ratio_vs_gymnasium_vector"] > 0 and records[2]["ratio_vs_envpool"] > 0
    assert records[-1]["threads"] == 2 and "ratio_vs_one_thread" in records[-1]
    line = benchmark.format_record(records[2])
    assert json.loads(line)["env"] == "cartpole-v1"


def test_start_times(tmp_path: object) -> None:
    records = benchmark.measure_start(["probe-constant-v1"], str(tmp_path), impl="warm_start")
    assert [r["env"] for r in records] == ["import", "probe-constant-v1", "all"]
    assert all(r["impl"] == "warm_start" and r["seconds"] > 0 for r in records)
