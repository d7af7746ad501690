"""Cost of checking actions passed to ``env.step`` (``PufferEnv.check_actions``).

Steps a 4096-row ``cartpole-v1`` with caller-provided actions, the check on and off,
interleaved, and prints one JSON line: ``ratio_check_on_vs_off`` (median step time with the
check / without; the trainer writes the action buffer in place and never pays it).

    python benchmarks/action_check.py
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

import fugu


def _steps(env, actions, check: bool, count: int) -> float:
    env.check_actions = check
    start = time.perf_counter()
    for _ in range(count):
        env.step(actions)
    return time.perf_counter() - start


def main(rows: int = 4096, count: int = 300, repeats: int = 7) -> dict[str, float]:
    env = fugu.make("cartpole-v1", num_envs=rows)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, rows).astype(env.actions.dtype)
    _steps(env, actions, True, 50)  # warm-up
    on, off = [], []
    for _ in range(repeats):
        on.append(_steps(env, actions, True, count))
        off.append(_steps(env, actions, False, count))
    env.close()
    return {
        "bench": "action_check",
        "env": "cartpole-v1",
        "num_envs": rows,
        "ratio_check_on_vs_off": statistics.median(on) / statistics.median(off),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
