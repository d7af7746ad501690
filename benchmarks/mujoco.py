"""Batched MuJoCo Hopper: fugu's ``hopper-v1`` against Gymnasium's vector Hopper-v5 and EnvPool.

Every implementation steps the same MJCF model (Gymnasium's ``hopper.xml``, frame skip 4) with
uniform random actions, autoresetting, and is measured in interleaved rounds in one process so
the ratios hold on a noisy machine. Prints one JSON line per measurement (the median over
rounds): ``impl``, ``num_envs``, ``threads``, ``sps`` (rows stepped per second) and
``ratio_vs_gymnasium_sync`` / ``ratio_vs_envpool_v5``, then a ``summary`` line with the load
average before and after.

Implementations: ``fugu`` (``hopper-v1``, 1 and 2 threads, the exact ``mj_step`` stepper),
``fugu_rollout`` (the same with ``stepper="rollout"``), ``gymnasium_sync``
(``SyncVectorEnv``), ``gymnasium_async`` (``AsyncVectorEnv``: one process per row, so only
at 16 rows), ``envpool_v4`` / ``envpool_v5`` (EnvPool's ``Hopper-v4``/``Hopper-v5``, 2 threads,
its own bundled MuJoCo), and ``mujoco_rollout`` (``mujoco.rollout`` stepping the same batch of
full-physics states on 2 threads with no task code: what the C rollout alone costs).

    nice -n 5 python benchmarks/mujoco.py --sizes 16 64 256 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# this script is named like the mujoco package: keep its folder off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

Stepper = Callable[[np.ndarray], Any]


def _fugu(num_envs: int, threads: int, stepper: str) -> tuple[Stepper, Callable[[], None]]:
    import fugu

    env = fugu.make("hopper-v1", num_envs=num_envs, threads=threads, seed=0, stepper=stepper)
    env.reset()
    return env.step, env.close


def _gymnasium(num_envs: int, kind: str) -> tuple[Stepper, Callable[[], None]]:
    import gymnasium

    fns = [lambda: gymnasium.make("Hopper-v5") for _ in range(num_envs)]
    cls = gymnasium.vector.SyncVectorEnv if kind == "sync" else gymnasium.vector.AsyncVectorEnv
    env = cls(fns)
    env.reset(seed=0)
    return env.step, env.close


def _envpool(num_envs: int, version: str) -> tuple[Stepper, Callable[[], None]]:
    import envpool

    env = envpool.make_gymnasium(f"Hopper-{version}", num_envs=num_envs, num_threads=2, seed=0)
    env.reset()
    return env.step, env.close


def _rollout(num_envs: int) -> tuple[Stepper, Callable[[], None]]:
    import mujoco
    from fugu.envs.mujoco import gymnasium_asset
    from mujoco import rollout

    model = mujoco.MjModel.from_xml_path(gymnasium_asset("hopper.xml"))
    datas = [mujoco.MjData(model) for _ in range(2)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    first = np.zeros(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, first, spec)
    states = np.tile(first, (num_envs, 1))
    out = np.zeros((num_envs, 4, states.shape[1]))
    controls = np.zeros((num_envs, 4, model.nu))
    runner = rollout.Rollout(nthread=2)
    models = [model] * num_envs

    def step(actions: np.ndarray) -> None:
        controls[:] = actions[:, None, :]
        runner.rollout(models, datas, states, controls, state=out, nstep=4, skip_checks=True)
        states[:] = out[:, -1]

    return step, runner.close


def _measure(step: Stepper, actions: np.ndarray, seconds: float) -> float:
    step(actions[0])  # warm
    rows, n, start = actions.shape[1], 0, time.perf_counter()
    while True:
        step(actions[n % len(actions)])
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return rows * n / elapsed


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--no-peers", action="store_true", help="fugu only")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    for num_envs in args.sizes:
        builders: dict[str, Callable[[], tuple[Stepper, Callable[[], None]]]] = {
            "fugu/1": lambda n=num_envs: _fugu(n, 1, "threads"),
            "fugu/2": lambda n=num_envs: _fugu(n, 2, "threads"),
            "fugu_rollout/1": lambda n=num_envs: _fugu(n, 1, "rollout"),
            "fugu_rollout/2": lambda n=num_envs: _fugu(n, 2, "rollout"),
        }
        if not args.no_peers:
            builders["gymnasium_sync/1"] = lambda n=num_envs: _gymnasium(n, "sync")
            if num_envs <= 16:
                builders["gymnasium_async/2"] = lambda n=num_envs: _gymnasium(n, "async")
            builders["envpool_v4/2"] = lambda n=num_envs: _envpool(n, "v4")
            builders["envpool_v5/2"] = lambda n=num_envs: _envpool(n, "v5")
            builders["mujoco_rollout/2"] = lambda n=num_envs: _rollout(n)
        envs = {name: build() for name, build in builders.items()}
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (64, num_envs, 3)).astype(np.float32)
        rates: dict[str, list[float]] = {name: [] for name in envs}
        for _ in range(args.rounds):
            for name, (step, _) in envs.items():
                rates[name].append(_measure(step, actions, args.seconds))
        for _, close in envs.values():
            close()
        medians = {name: statistics.median(values) for name, values in rates.items()}
        for name, sps in medians.items():
            impl, threads = name.split("/")
            record: dict[str, Any] = {
                "impl": impl,
                "env": "hopper",
                "num_envs": num_envs,
                "threads": int(threads),
                "sps": round(sps, 1),
                "rounds": [round(v, 1) for v in rates[name]],
            }
            for peer in ("gymnasium_sync/1", "envpool_v5/2", "envpool_v4/2"):
                if peer in medians and peer != name:
                    record[f"ratio_vs_{peer.split('/')[0]}"] = round(sps / medians[peer], 2)
            print(json.dumps(record), flush=True)
    summary = {"summary": True, "load_before": load_before, "load_after": os.getloadavg()}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
