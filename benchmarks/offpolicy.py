"""Off-policy benchmark: fugu's DQN, SAC and HER against Stable-Baselines3, in the same run.

Every task runs fugu and SB3 interleaved (fugu seed 0, SB3 seed 0, fugu seed 1, ...), with the
same hyperparameters, one env, one gradient step per env step and one torch thread each, so a
noisy machine affects both alike. Each run prints one JSON line: ``impl``, ``task``, ``seed``,
``solved``, ``steps`` and ``seconds`` to the criterion (or to the budget), ``sps`` (env steps
per second of the whole run) and the task's score; then one summary line per task and impl
with the medians and fugu's wall-clock and step ratios.

Tasks (criteria of issue 16):

* ``dqn_her_bitflip15``: DQN + HER (future, k=4) on bit flipping with 15 bits; solved when
  the success rate of the last 100 episodes reaches 0.9.
* ``dqn_bitflip15``: the same without HER, on a fixed budget: it does not get there.
* ``sac_her_bitflip10``: SAC + HER (future, k=4) on continuous bit flipping with 10 bits
  (SAC's defaults, both); solved as above.
* ``sac_pendulum``: SAC on Pendulum-v1 (learning rate 1e-3, rl-zoo); solved when the mean
  return of the last 10 episodes reaches -200.
* ``dqn_cartpole``: DQN on CartPole-v1 under the rl-zoo protocol (its hyperparameters, 5e4
  env steps, then 20 greedy episodes); the score is the greedy mean return.
* ``replay_sampling``: batches of 256 transitions per second sampled from a full 1M ring of
  CartPole transitions: fugu uniform (with and without prefetch) and prioritized, SB3's
  uniform ``ReplayBuffer.sample`` interleaved with them.

    PYTHONPATH=src python benchmarks/offpolicy.py --tasks dqn_her_bitflip15,sac_pendulum \
        --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fugu.algos.dqn import DQN, DQNConfig
from fugu.algos.sac import SAC, SACConfig
from fugu.buffers import Prioritized, ReplayBuffer
from fugu.core.registry import make
from fugu.core.schema import Field
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

HER_DQN: dict[str, Any] = {
    "learning_rate": 1e-3, "buffer_size": 100_000, "batch_size": 256, "learning_starts": 256,
    "gamma": 0.95, "target_update_interval": 100, "exploration_fraction": 0.1,
    "exploration_final_eps": 0.02, "hidden_sizes": (64, 64),
}  # fmt: skip
"""DQN settings of both bit-flipping tasks (fugu and SB3 alike; SB3's default network), one
gradient step per env step (SB3 ``train_freq=1``)."""
CARTPOLE_DQN: dict[str, Any] = {
    "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
    "gamma": 0.99, "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
    "hidden_sizes": (256, 256), "train_freq": 256, "gradient_steps": 128,
    "target_update_interval": 10,
}  # fmt: skip
"""rl-zoo3's ``dqn.yml`` entry for CartPole-v1 (5e4 steps)."""
PENDULUM_SAC: dict[str, Any] = {"learning_rate": 1e-3, "learning_starts": 100}
"""rl-zoo3's ``sac.yml`` entry for Pendulum-v1 (the rest are SAC's defaults)."""


def _fugu_run(
    env_id: str,
    algo: Any,
    budget: int,
    solved: Callable[[Trainer], bool],
    num_steps: int = 1,
    **env_kwargs: Any,
) -> tuple[Trainer, dict[str, Any]]:
    envs = make_train_envs(env_id, 1, seed=algo.config.seed, double_buffer=False, **env_kwargs)
    trainer = Trainer(envs, algo, TrainConfig(num_steps=num_steps, total_timesteps=budget,
                                              seed=algo.config.seed))  # fmt: skip
    start = time.perf_counter()
    done = False
    while not trainer.done and not done:
        trainer.train_epoch()
        done = solved(trainer)
    seconds = time.perf_counter() - start
    trainer.close()
    steps = trainer.global_step
    return trainer, {"solved": done, "steps": steps, "seconds": seconds, "sps": steps / seconds}


def _build(algo_type: Any, config: Any, env_id: str, **env_kwargs: Any) -> Any:
    env = make(env_id, num_envs=1, **env_kwargs)
    algo = algo_type.build(config, env.single_observation_space, env.single_action_space,
                           PolicyConfig())  # fmt: skip
    env.close()
    return algo


def _success(returns: Any, n: int, window: int = 100) -> float:
    recent = list(returns)[-window:]
    return float(np.mean([r > -n for r in recent])) if recent else 0.0


# -- bit flipping ------------------------------------------------------------------------------
def fugu_bitflip(seed: int, her: bool, budget: int, n: int = 15) -> dict[str, Any]:
    torch.manual_seed(seed)
    config = DQNConfig(**HER_DQN, her_strategy="future" if her else "none", her_k=4, seed=seed)
    algo = _build(DQN, config, "bitflip-v1", n=n)

    def solved(trainer: Trainer) -> bool:
        return len(trainer.episode_returns) >= 100 and _success(trainer.episode_returns, n) >= 0.9

    trainer, out = _fugu_run("bitflip-v1", algo, budget, solved, n=n)
    out["score"] = _success(trainer.episode_returns, n)
    return out


def sb3_bitflip(seed: int, her: bool, budget: int, n: int = 15) -> dict[str, Any]:
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.envs import BitFlippingEnv

    class Stop(BaseCallback):
        solved = False

        def _on_step(self) -> bool:
            buf = self.model.ep_success_buffer
            Stop.solved = len(buf) >= 100 and float(np.mean(buf)) >= 0.9
            return not Stop.solved

    env = BitFlippingEnv(n_bits=n, continuous=False, max_steps=n)
    kwargs = {k: v for k, v in HER_DQN.items() if k != "hidden_sizes"}
    kwargs["train_freq"] = 1
    if her:
        kwargs["replay_buffer_class"] = HerReplayBuffer
        kwargs["replay_buffer_kwargs"] = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    model = SB3DQN("MultiInputPolicy", env, seed=seed, device="cpu",
                   policy_kwargs={"net_arch": list(HER_DQN["hidden_sizes"])}, **kwargs)  # fmt: skip
    Stop.solved = False
    start = time.perf_counter()
    model.learn(budget, callback=Stop())
    seconds = time.perf_counter() - start
    steps = model.num_timesteps
    score = float(np.mean(model.ep_success_buffer)) if model.ep_success_buffer else 0.0
    return {"solved": Stop.solved, "steps": steps, "seconds": seconds, "sps": steps / seconds,
            "score": score}  # fmt: skip


def fugu_sac_bitflip(seed: int, budget: int, n: int = 10) -> dict[str, Any]:
    torch.manual_seed(seed)
    config = SACConfig(her_strategy="future", her_k=4, seed=seed)
    algo = _build(SAC, config, "bitflip-v1", n=n, continuous=True)

    def solved(trainer: Trainer) -> bool:
        return len(trainer.episode_returns) >= 100 and _success(trainer.episode_returns, n) >= 0.9

    trainer, out = _fugu_run("bitflip-v1", algo, budget, solved, n=n, continuous=True)
    out["score"] = _success(trainer.episode_returns, n)
    return out


def sb3_sac_bitflip(seed: int, budget: int, n: int = 10) -> dict[str, Any]:
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.envs import BitFlippingEnv

    class Stop(BaseCallback):
        solved = False

        def _on_step(self) -> bool:
            buf = self.model.ep_success_buffer
            Stop.solved = len(buf) >= 100 and float(np.mean(buf)) >= 0.9
            return not Stop.solved

    env = BitFlippingEnv(n_bits=n, continuous=True, max_steps=n)
    her = {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    model = SB3SAC("MultiInputPolicy", env, seed=seed, device="cpu",
                   replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=her)  # fmt: skip
    Stop.solved = False
    start = time.perf_counter()
    model.learn(budget, callback=Stop())
    seconds = time.perf_counter() - start
    steps = model.num_timesteps
    score = float(np.mean(model.ep_success_buffer)) if model.ep_success_buffer else 0.0
    return {"solved": Stop.solved, "steps": steps, "seconds": seconds, "sps": steps / seconds,
            "score": score}  # fmt: skip


# -- Pendulum ----------------------------------------------------------------------------------
def fugu_pendulum(seed: int, budget: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    algo = _build(SAC, SACConfig(**PENDULUM_SAC, seed=seed), "pendulum-v1")

    def solved(trainer: Trainer) -> bool:
        returns = list(trainer.episode_returns)[-10:]
        return len(returns) >= 10 and float(np.mean(returns)) >= -200

    trainer, out = _fugu_run("pendulum-v1", algo, budget, solved)
    out["score"] = float(np.mean(list(trainer.episode_returns)[-10:]))
    return out


def sb3_pendulum(seed: int, budget: int) -> dict[str, Any]:
    import gymnasium
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    returns: deque[float] = deque(maxlen=10)

    class Stop(BaseCallback):
        solved = False

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    returns.append(float(info["episode"]["r"]))
            Stop.solved = len(returns) >= 10 and float(np.mean(returns)) >= -200
            return not Stop.solved

    env = Monitor(gymnasium.make("Pendulum-v1"))
    model = SB3SAC("MlpPolicy", env, seed=seed, device="cpu", **PENDULUM_SAC)
    Stop.solved = False
    start = time.perf_counter()
    model.learn(budget, callback=Stop())
    seconds = time.perf_counter() - start
    steps = model.num_timesteps
    return {"solved": Stop.solved, "steps": steps, "seconds": seconds, "sps": steps / seconds,
            "score": float(np.mean(returns)) if returns else float("nan")}  # fmt: skip


# -- CartPole, rl-zoo protocol -----------------------------------------------------------------
def _greedy_returns(algo: Any, episodes: int = 20) -> list[float]:
    env = make("cartpole-v1", num_envs=1)
    obs, _ = env.reset(seed=12345)
    returns, total = [], 0.0
    while len(returns) < episodes:
        actions = algo.act(torch.from_numpy(obs), None, {}, deterministic=True).actions
        obs, rewards, terminals, truncations, _ = env.step(actions.numpy())
        total += float(rewards[0])
        if terminals[0] or truncations[0]:
            returns.append(total)
            total = 0.0
    env.close()
    return returns


def fugu_cartpole(seed: int, budget: int = 50_000) -> dict[str, Any]:
    torch.manual_seed(seed)
    c = CARTPOLE_DQN
    # SB3 updates the target every 10 env steps, i.e. once per 256-step collection (after its
    # 128 gradient steps): fugu counts the interval in gradient steps
    config = DQNConfig(
        learning_rate=c["learning_rate"], batch_size=c["batch_size"],
        buffer_size=c["buffer_size"], learning_starts=c["learning_starts"], gamma=c["gamma"],
        exploration_fraction=c["exploration_fraction"],
        exploration_final_eps=c["exploration_final_eps"], hidden_sizes=c["hidden_sizes"],
        gradient_steps=c["gradient_steps"], target_update_interval=c["gradient_steps"], seed=seed,
    )  # fmt: skip
    algo = _build(DQN, config, "cartpole-v1")
    trainer, out = _fugu_run("cartpole-v1", algo, budget, lambda t: False, c["train_freq"])
    greedy = _greedy_returns(trainer.algo)
    out.update(score=float(np.mean(greedy)), solved=float(np.mean(greedy)) >= 500)
    return out


def sb3_cartpole(seed: int, budget: int = 50_000) -> dict[str, Any]:
    import gymnasium
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.evaluation import evaluate_policy

    c = CARTPOLE_DQN
    kwargs = {k: v for k, v in c.items() if k != "hidden_sizes"}
    model = SB3DQN("MlpPolicy", gymnasium.make("CartPole-v1"), seed=seed, device="cpu",
                   policy_kwargs={"net_arch": list(c["hidden_sizes"])}, **kwargs)  # fmt: skip
    start = time.perf_counter()
    model.learn(budget)
    seconds = time.perf_counter() - start
    mean, _ = evaluate_policy(model, gymnasium.make("CartPole-v1"), n_eval_episodes=20,
                              deterministic=True)  # fmt: skip
    return {"solved": float(mean) >= 500, "steps": model.num_timesteps, "seconds": seconds,
            "sps": model.num_timesteps / seconds, "score": float(mean)}  # fmt: skip


# -- replay sampling ---------------------------------------------------------------------------
def _fill_fugu(capacity: int, prioritized: bool, prefetch: int) -> Callable[[int], Any]:
    fields = {
        "observations": Field("observations", (4,)),
        "actions": Field("actions", (), np.int64),
        "rewards": Field("rewards"),
        "terminals": Field("terminals", (), np.bool_),
        "truncations": Field("truncations", (), np.bool_),
    }
    buf = ReplayBuffer(
        fields, capacity, prioritized=Prioritized() if prioritized else None, prefetch=prefetch
    )
    gen = torch.Generator().manual_seed(0)
    chunk = 100_000
    for _ in range(capacity // chunk):
        buf.add({name: torch.randint(0, 2, (chunk, *t.shape[1:]), generator=gen).to(t.dtype)
                 for name, t in buf.tensors.items()})  # fmt: skip
    return buf.sample


def _fill_sb3(capacity: int) -> Callable[[int], Any]:
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer as SB3Replay

    buf = SB3Replay(capacity, spaces.Box(-1, 1, (4,)), spaces.Discrete(2), device="cpu")
    rng = np.random.default_rng(0)
    buf.observations[:] = rng.random(buf.observations.shape, dtype=np.float32)
    buf.next_observations[:] = rng.random(buf.next_observations.shape, dtype=np.float32)
    buf.full = True
    return buf.sample


def replay_sampling(
    capacity: int = 1_000_000,
    batch: int = 256,
    seconds: float = 2.0,
    rounds: int = 3,
    sb3: bool = True,
) -> list[dict]:
    """Batches per second from a full ring of CartPole transitions, fugu and SB3 interleaved
    (``rounds`` alternating windows of ``seconds`` each; the median window is reported)."""
    samplers = {
        "uniform": _fill_fugu(capacity, False, 1),
        "uniform_prefetch64": _fill_fugu(capacity, False, 64),
        "prioritized": _fill_fugu(capacity, True, 1),
    }
    if sb3:
        samplers["sb3_uniform"] = _fill_sb3(capacity)
    rates: dict[str, list[float]] = {kind: [] for kind in samplers}
    for _ in range(rounds):
        for kind, sample in samplers.items():
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for _ in range(50):
                    sample(batch)
                count += 50
            rates[kind].append(count / (time.perf_counter() - start))
    records = []
    for kind, values in rates.items():
        impl, name = ("sb3", kind[4:]) if kind.startswith("sb3_") else ("fugu", kind)
        rate = statistics.median(values)
        records.append({"impl": impl, "task": f"replay_sampling_{name}", "capacity": capacity,
                        "batch_size": batch, "batches_per_s": rate})  # fmt: skip
    if sb3:
        base = statistics.median(rates["sb3_uniform"])
        for record in records:
            record["vs_sb3"] = record["batches_per_s"] / base
    return records


TASKS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Any]], int]] = {
    "dqn_her_bitflip15": (
        lambda s, b: fugu_bitflip(s, True, b), lambda s, b: sb3_bitflip(s, True, b), 30_000,
    ),
    "dqn_bitflip15": (
        lambda s, b: fugu_bitflip(s, False, b), lambda s, b: sb3_bitflip(s, False, b), 10_000,
    ),
    "sac_her_bitflip10": (fugu_sac_bitflip, sb3_sac_bitflip, 20_000),
    "sac_pendulum": (fugu_pendulum, sb3_pendulum, 20_000),
    "dqn_cartpole": (fugu_cartpole, sb3_cartpole, 50_000),
}  # fmt: skip
"""Each task's fugu runner, SB3 runner and default env-step budget."""


def _summary(task: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for impl in ("fugu", "sb3"):
        mine = [r for r in runs if r["impl"] == impl]
        if not mine:
            continue
        out.append({
            "summary": True, "impl": impl, "task": task, "runs": len(mine),
            "solved": sum(bool(r["solved"]) for r in mine),
            "median_steps": statistics.median(r["steps"] for r in mine),
            "median_seconds": statistics.median(r["seconds"] for r in mine),
            "median_sps": statistics.median(r["sps"] for r in mine),
            "median_score": statistics.median(r["score"] for r in mine),
        })  # fmt: skip
    if len(out) == 2:
        out[0]["seconds_ratio_sb3_over_fugu"] = out[1]["median_seconds"] / out[0]["median_seconds"]
        out[0]["steps_ratio_fugu_over_sb3"] = out[0]["median_steps"] / out[1]["median_steps"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="replay_sampling,dqn_her_bitflip15,dqn_bitflip15")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=None, help="env steps per run")
    parser.add_argument("--no-sb3", action="store_true", help="fugu only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for task in args.tasks.split(","):
        if task == "replay_sampling":
            for record in replay_sampling(sb3=not args.no_sb3):
                print(json.dumps(record), flush=True)
            continue
        fugu_fn, sb3_fn, budget = TASKS[task]
        budget = args.budget or budget
        runs = []
        for seed in range(args.seeds):
            impls = [("fugu", fugu_fn)] + ([] if args.no_sb3 else [("sb3", sb3_fn)])
            for impl, fn in impls:
                record = {"impl": impl, "task": task, "seed": seed, **fn(seed, budget)}
                runs.append(record)
                print(json.dumps(record), flush=True)
        for line in _summary(task, runs):
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
