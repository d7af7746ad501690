"""Shielded learning on the water tank, and verification times of IBP, z3 and Marabou.

Part 1 (``--part shield``): PPO on ``water-tank-v1`` unshielded (a ``monitor`` wrapper only
counts), with a pre-emptive shield and with a post-posed shield, the same budget and seed each.
One JSON line per run: violations during training (overflows and empty tanks, the env's summed
``costs``), unsafe actions the policy chose, interventions, the final return (mean of the last
100 training episodes) and its ratio to the unshielded learner's.

Part 2 (``--part verify``): small ReLU PPO policies trained briefly on ``cartpole-v1`` and
``pendulum-v1``, then each property of a fixed list checked by every engine. One JSON line per
(property, engine): status, seconds; then one line per property saying whether the engines
agree (``unknown`` from the incomplete IBP does not count as disagreement only when an exact
engine also has nothing; it is reported as is).

    python benchmarks/safe_shield.py                     # both parts, a few minutes
    python benchmarks/safe_shield.py --part shield --timesteps 200000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from fugu.safety.properties import Property
from fugu.train.build import build_trainer
from fugu.train.experiment import ExperimentConfig
from fugu.verify import from_policy, verify


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def shield_run(mode: str, timesteps: int, seed: int) -> dict[str, Any]:
    """Train PPO on the water tank with ``mode`` (``monitor`` = unshielded)."""
    config = ExperimentConfig.from_dict(
        {
            "env": {"id": "water-tank-v1", "num_envs": 16},
            "train": {"total_timesteps": timesteps, "num_steps": 128, "seed": seed},
            "shield": {"mode": mode},
        }
    )
    trainer = build_trainer(config)
    start = time.perf_counter()
    violations = unsafe = interventions = 0.0
    while not trainer.done:
        metrics = trainer.train_epoch()
        violations += metrics.get("safety/violations", 0.0)
        unsafe += metrics.get("safety/unsafe_actions", 0.0)
        interventions += metrics.get("safety/interventions", 0.0)
    returns = list(trainer.episode_returns)[-100:]
    trainer.close()
    return {
        "part": "shield",
        "mode": "unshielded" if mode == "monitor" else mode,
        "seed": seed,
        "timesteps": timesteps,
        "violations": violations,
        "unsafe_actions": unsafe,
        "interventions": interventions,
        "final_return": float(np.mean(returns)) if returns else float("nan"),
        "seconds": time.perf_counter() - start,
    }


def _policy(env_id: str, timesteps: int, hidden: int) -> Any:
    config = ExperimentConfig.from_dict(
        {
            "env": {"id": env_id, "num_envs": 8},
            "train": {"total_timesteps": timesteps, "num_steps": 128, "seed": 0},
            "policy": {"hidden_size": hidden, "num_layers": 1, "activation": "relu"},
        }
    )
    trainer = build_trainer(config)
    trainer.train()
    policy = trainer.algo.modules()["policy"].eval()
    trainer.close()
    return policy


def _box(low: list[float], high: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(low, np.float64), np.array(high, np.float64)


def cartpole_properties() -> list[Property]:
    """Properties of a CartPole policy (obs: x, x_dot, theta, theta_dot; action 0 = left)."""
    falling_right = _box([-0.5, -0.5, 0.1, 0.5], [0.5, 0.5, 0.2, 1.5])
    falling_left = _box([-0.5, -0.5, -0.2, -1.5], [0.5, 0.5, -0.1, -0.5])
    near = _box([-0.2, -0.2, -0.05, -0.2], [0.2, 0.2, 0.05, 0.2])
    return [
        Property("falling right: never push left", "never_action", *falling_right, action=0),
        Property("falling left: never push right", "never_action", *falling_left, action=1),
        Property("upright: never push left", "never_action", *near, action=0),
        Property("logits within +-20", "output_bounds", *near, output=0, lower=-20, upper=20),
        Property("logits within +-0.01", "output_bounds", *near, output=1, lower=-0.01, upper=0.01),
        Property("right logit rises with theta_dot", "monotonic", *near, output=1, input=3),
    ]


def pendulum_properties() -> list[Property]:
    """Properties of a Pendulum policy (obs: cos, sin, theta_dot; the output is the mean)."""
    top = _box([0.9, -0.4, -1.0], [1.0, 0.4, 1.0])
    return [
        Property("torque mean within +-10", "output_bounds", *top, output=0, lower=-10, upper=10),
        Property(
            "torque mean within +-0.05", "output_bounds", *top, output=0, lower=-0.05, upper=0.05
        ),
        Property(
            "torque falls with theta_dot",
            "monotonic",
            *top,
            output=0,
            input=2,
            direction="decreasing",
        ),
        Property("torque rises with theta_dot", "monotonic", *top, output=0, input=2),
    ]


def verify_part(timesteps: int, hidden: int, timeout: float) -> None:
    for env_id, props in (
        ("cartpole-v1", cartpole_properties()),
        ("pendulum-v1", pendulum_properties()),
    ):
        net = from_policy(_policy(env_id, timesteps, hidden))
        for prop in props:
            results = verify(net, [prop], ("ibp", "z3", "marabou"), timeout)
            for r in results:
                _emit(
                    {
                        "part": "verify",
                        "env": env_id,
                        "property": r.name,
                        "kind": r.kind,
                        "engine": r.engine,
                        "status": r.status,
                        "seconds": r.seconds,
                        "detail": r.detail,
                    }
                )
            statuses = [r.status for r in results]
            _emit(
                {
                    "part": "verify",
                    "env": env_id,
                    "property": prop.name,
                    "statuses": dict(zip(("ibp", "z3", "marabou"), statuses)),
                    "agree": len(set(statuses)) == 1,
                }
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("shield", "verify", "all"), default="all")
    parser.add_argument("--timesteps", type=int, default=60_000, help="water tank PPO budget")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--policy-timesteps", type=int, default=20_000)
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (one layer)")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if args.part in ("shield", "all"):
        for seed in args.seeds:
            runs = [
                shield_run(m, args.timesteps, seed) for m in ("monitor", "preemptive", "postposed")
            ]
            base = runs[0]["final_return"]
            for run in runs:
                run["return_ratio"] = run["final_return"] / base if base else float("nan")
                _emit(run)
    if args.part in ("verify", "all"):
        verify_part(args.policy_timesteps, args.hidden, args.timeout)


if __name__ == "__main__":
    main()
