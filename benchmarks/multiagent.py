"""Multi-agent benchmark: MAPPO and IPPO on simple_spread, the native port against mpe2.

Prints one JSON line per measurement:

* ``{"kind": "env_sps", "impl": "fugu-native" | "mpe2-bridge", "sps": agent steps/s, ...}``:
  random-action stepping, one thread, measured alternately (``--repeats`` rounds); the last
  record of each round carries ``ratio_native_vs_mpe2``.
* ``{"kind": "curve", "impl": "fugu-mappo" | "fugu-ippo", "env_steps", "agent_steps",
  "return_n_scaled", "wall_s"}``: training on ``simple-spread-v1`` with its preset; the return
  is JaxMARL's N-scaled unit (per-agent episode return x N, mean over the last
  ``--episode-window`` agent episodes, 768 = the last epoch's); ``env_steps`` counts env
  copies stepped (agent steps / N), as JaxMARL does.
* ``{"kind": "reference", ...}``: JaxMARL IPPO's published figures (about -65 at 2M env
  steps, -60 at 10M) and a random policy (about -81), for the same axis.
* ``{"kind": "eval", "impl": ..., "env": "simple-spread-v1" | "mpe2-simple_spread_v3"}``: the
  trained policy (sampling, as trained) over ``--eval-episodes`` episodes on the native port
  and on mpe2's own env through the PettingZoo bridge; the mpe2 record carries
  ``relative_gap`` = |mpe2 - native| / |native|.

    python benchmarks/multiagent.py --agent-steps 1200000

Budgets are scaled to the machine: the defaults fit a few minutes on a shared 2-core box.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from fugu.algos.base import Actor
from fugu.bridges.entry import EntryPointEnv
from fugu.envs.benchmark import measure_env
from fugu.envs.simple_spread import SimpleSpread
from fugu.train.build import build_trainer
from fugu.train.experiment import ExperimentConfig
from fugu.vector import make as make_vec

N = 3
MPE2 = "mpe2.simple_spread_v3:parallel_env"


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def bridge_sps(num_envs: int, seconds: float) -> float:
    """Agent steps per second of mpe2 simple_spread_v3 through the bridge (serial)."""
    env = make_vec(EntryPointEnv(MPE2), num_envs=num_envs, backend="serial", seed=0)
    try:
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        actions = rng.integers(0, 5, (64, env.num_agents)).astype(np.int32)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            env.step(actions[steps % 64])
            steps += 1
        return steps * env.num_agents / (time.perf_counter() - start)
    finally:
        env.close()


def evaluate(actor: Actor, env: Any, episodes: int, seed: int) -> float:
    """Mean N-scaled return (sum of the team's per-agent returns) over ``episodes``."""
    env.reset(seed=seed)
    rows = env.num_agents
    returns = np.zeros(rows)
    finished: list[float] = []
    obs = torch.from_numpy(env.observations)
    while len(finished) < episodes:
        out = actor.act(obs, None, {})
        _, rewards, terminals, truncations, _ = env.step(out.actions.numpy().astype(np.int32))
        returns += rewards
        done = terminals | truncations
        if done.any():
            team = returns.reshape(-1, N)[done.reshape(-1, N).all(1)].sum(1)
            finished.extend(team.tolist())
            returns[done] = 0.0
    return float(np.mean(finished[:episodes]))


def train(algo: str, agent_steps: int, seed: int, window: int) -> Any:
    config = ExperimentConfig.from_preset(
        "simple-spread-v1",
        {
            "train.algo": algo,
            "train.total_timesteps": agent_steps,
            "train.seed": seed,
            "train.episode_window": window,
        },
    )
    trainer = build_trainer(config)
    start = time.perf_counter()
    every = max(1, trainer.config.total_timesteps // trainer.batch_size // 12)
    while not trainer.done:
        trainer.train_epoch()
        if trainer.epoch % every == 0 or trainer.done:
            recent = list(trainer.episode_returns)
            emit({
                "kind": "curve", "impl": f"fugu-{algo}", "env_steps": trainer.global_step // N,
                "agent_steps": trainer.global_step, "return_n_scaled": float(np.mean(recent)) * N,
                "wall_s": round(time.perf_counter() - start, 2),
            })  # fmt: skip
    algo_obj = trainer.algo
    trainer.close()
    return algo_obj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agent-steps", type=int, default=1_200_000)
    parser.add_argument("--algos", default="mappo,ippo")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-episodes", type=int, default=480)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episode-window", type=int, default=768)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    for _ in range(args.repeats):
        native = measure_env("simple-spread-v1", 1024, seconds=0.5, repeats=3)["sps"]
        emit({"kind": "env_sps", "impl": "fugu-native", "num_envs": 1024, "sps": native})
        bridge = bridge_sps(16, 1.0)
        emit({"kind": "env_sps", "impl": "mpe2-bridge", "num_envs": 16, "sps": bridge,
              "ratio_native_vs_mpe2": native / bridge})  # fmt: skip
    for env_steps, value in ((2_000_000, -65.0), (10_000_000, -60.0)):
        emit({"kind": "reference", "impl": "jaxmarl-ippo", "env_steps": env_steps,
              "return_n_scaled": value})  # fmt: skip
    emit({"kind": "reference", "impl": "random", "return_n_scaled": -81.0})
    if args.skip_train:
        return
    for name in args.algos.split(","):
        algo = train(name, args.agent_steps, args.seed, args.episode_window)
        copies = args.eval_episodes // 4
        native_env = SimpleSpread(num_envs=copies, seed=1000)
        native = evaluate(algo, native_env, args.eval_episodes, 1000)
        emit({"kind": "eval", "impl": f"fugu-{name}", "env": "simple-spread-v1",
              "return_n_scaled": native, "episodes": args.eval_episodes})  # fmt: skip
        bridge_env = make_vec(EntryPointEnv(MPE2), num_envs=copies, backend="serial", seed=2000)
        reference = evaluate(algo, bridge_env, args.eval_episodes, 2000)
        bridge_env.close()
        emit({"kind": "eval", "impl": f"fugu-{name}", "env": "mpe2-simple_spread_v3",
              "return_n_scaled": reference, "episodes": args.eval_episodes,
              "relative_gap": abs(reference - native) / abs(native)})  # fmt: skip


if __name__ == "__main__":
    main()
