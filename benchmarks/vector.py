"""Vectorization benchmark: fugu Serial / Multiprocessing vs Gymnasium Sync/AsyncVectorEnv.

Prints one JSON line per implementation (keys impl, num_envs, num_workers, batch_size, sps,
repeats, ratio_vs_gymnasium_sync, ...). Extra arguments are those of ``fugu bench vector``.

    python benchmarks/vector.py --num-envs 8 --num-workers 2 --repeats 5
"""

from __future__ import annotations

import sys

from fugu.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "vector", "--json", *sys.argv[1:]]))
