"""Native env benchmark: every fugu env at 1-4096 rows, cartpole-v1 beside its peers.

Prints one JSON line per measurement: ``impl`` (fugu, gymnasium_vector, envpool, cold_start,
warm_start), ``env``, ``num_envs``, ``threads``, ``sps`` (rows stepped per second) and, for
cartpole-v1, ``ratio_vs_gymnasium_vector`` and ``ratio_vs_envpool``; the 2-thread record at
65536 rows carries ``ratio_vs_one_thread``; start records carry ``seconds``. Extra arguments
are those of ``fugu bench env``.

    python benchmarks/envs.py --repeats 5
"""

from __future__ import annotations

import sys

from fugu.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "env", "--suite", "--json", *sys.argv[1:]]))
