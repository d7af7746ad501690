"""Self-play overhead: PPO on connect4-v1 alone vs the same with the self-play machinery.

Both train the same config on the same env; "plain" lets the learner act on every row (the
env's two-player mode), "selfplay" runs fugu.selfplay's matchmaking (learner on one row of
the slot games, pool opponents batched per policy on the others, results tallied, Elo
updated, snapshots, resampling) with the given mirror fraction. Rounds are interleaved so
that a loaded machine slows both alike. Prints one JSON line per round and implementation:
``env_sps`` counts rows stepped per second (every row of every game), ``learner_sps`` the
rows the learner stored; then a summary with the median ratios.

    python benchmarks/selfplay.py --rounds 5 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from fugu.loggers import MultiLogger
from fugu.selfplay.run import SelfPlay, SelfPlayConfig
from fugu.train.build import build_trainer
from fugu.train.experiment import ExperimentConfig
from fugu.train.session import EpochContext


def _config(num_envs: int) -> ExperimentConfig:
    return ExperimentConfig.from_preset(
        "connect4-v1",
        {
            "env.num_envs": num_envs,
            # the preset plays the one_ply bot for `fugu train`; both benchmarked runs use
            # the env's two-player mode (as `fugu selfplay` does)
            "env.kwargs": {},
            "train.num_steps": 32,
            "train.total_timesteps": 10**9,
            "policy.hidden_size": 256,
            "logging.tensorboard": False,
        },
    )


def _plain(config: ExperimentConfig, epochs: int) -> dict[str, float]:
    trainer = build_trainer(config)
    trainer.train_epoch()  # warm-up
    start = time.perf_counter()
    for _ in range(epochs):
        trainer.train_epoch()
    wall = time.perf_counter() - start
    trainer.close()
    rows = 2 * config.env.num_envs * config.train.num_steps * epochs
    return {"env_sps": rows / wall, "learner_sps": rows / wall}


def _selfplay(config: ExperimentConfig, sp_config: SelfPlayConfig, epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        template = build_trainer(config)
        policy = template.algo.policy  # type: ignore[attr-defined]
        template.close()
        sp = SelfPlay(sp_config, config.env.num_envs, policy, Path(tmp), config)
        trainer = build_trainer(config, policy_map=sp.policy_map())
        logger = MultiLogger([])

        def epoch() -> None:
            metrics = trainer.train_epoch()
            context = EpochContext(
                trainer, config, Path(tmp), trainer.epoch, trainer.global_step, metrics, logger
            )
            sp(context)

        epoch()  # warm-up (the first snapshot)
        stored = trainer.num_stored
        start = time.perf_counter()
        for _ in range(epochs):
            epoch()
        wall = time.perf_counter() - start
        trainer.close()
    rows = 2 * config.env.num_envs * config.train.num_steps * epochs
    learner = stored * config.train.num_steps * epochs
    return {"env_sps": rows / wall, "learner_sps": learner / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--mirror-fraction", type=float, default=0.0)
    parser.add_argument("--num-slots", type=int, default=8)
    args = parser.parse_args()
    config = _config(args.num_envs)
    sp_config = SelfPlayConfig(
        num_slots=args.num_slots,
        mirror_fraction=args.mirror_fraction,
        snapshot_interval=1,
        sampling="uniform",
    )
    ratios: dict[str, list[float]] = {"env_sps": [], "learner_sps": []}
    for r in range(args.rounds):
        plain = _plain(config, args.epochs)
        sp = _selfplay(config, sp_config, args.epochs)
        for impl, result in (("plain", plain), ("selfplay", sp)):
            rounded = {k: round(v) for k, v in result.items()}
            print(json.dumps({"round": r, "impl": impl, **rounded}))
        for key in ratios:
            ratios[key].append(sp[key] / plain[key])
    print(
        json.dumps(
            {
                "summary": True,
                "mirror_fraction": args.mirror_fraction,
                "num_slots": args.num_slots,
                **{f"median_ratio_{k}": round(statistics.median(v), 3) for k, v in ratios.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
