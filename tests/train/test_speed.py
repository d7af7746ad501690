"""The rollout speed probe and its CLI: they run and report sane numbers."""

from __future__ import annotations

import argparse
import json

import torch

from fugu.cli import bench_rollout
from fugu.train.speed import measure_rollout_sps

torch.set_num_threads(1)


def test_measure_rollout_sps_reports_its_setup():
    result = measure_rollout_sps(num_envs=16, num_steps=4, repeats=2, rollouts_per_repeat=1)
    data = result.to_dict()
    assert data["num_envs"] == 16 and data["num_steps"] == 4 and data["steps_per_second"] > 0


def test_bench_rollout_cli_prints_json_lines(capsys):
    parser = argparse.ArgumentParser()
    bench_rollout.add_arguments(parser)
    args = parser.parse_args(["--num-envs", "8", "--num-steps", "2", "--repeats", "1"])
    assert bench_rollout.run(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["double_buffer"] for line in lines] == [False, True]
    assert all(line["benchmark"] == "rollout" for line in lines)
