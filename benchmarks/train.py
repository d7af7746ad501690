"""Training benchmark: fugu PPO (cartpole-v1) vs Stable-Baselines3 PPO (rl-zoo3 CartPole-v1).

Prints one JSON line per run (impl, seed, sps, solved, time_to_solve_s, steps_to_solve, wall_s,
timesteps, final_return) and a summary line (medians, ratio_sps_vs_sb3). Extra arguments are
those of ``fugu bench train``.

    python benchmarks/train.py --seeds 5
"""

from __future__ import annotations

import sys

from fugu.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "train", *sys.argv[1:]]))
