"""HPO benchmark: Protein vs Random, Sobol and Optuna TPE on cost-aware synthetic problems.

Prints one JSON line per (problem, method) with keys problem, method, num_seeds,
hypervolume_median, best_score_under_cap_median (medians over seeds), then
{"problem": "suggest_latency", "observations": 200, "seconds": ...}. Extra arguments are those
of ``fugu bench hpo`` (``--gp`` compares GP backends, ``--cartpole`` runs a real sweep).

    python benchmarks/hpo.py --seeds 5 --trials 60
"""

from __future__ import annotations

import sys

from fugu.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "hpo", *sys.argv[1:]]))
