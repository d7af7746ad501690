"""Hyperparameter search: Protein (cost-aware Pareto Bayesian search), Random, Sobol, Optuna.

Modules (import what you need; nothing is imported here):

- :mod:`fugu.hpo.spaces`: search spaces mapped to [-1, 1] (uniform, int_uniform, log, pow2, logit);
- :mod:`fugu.hpo.searchers`: the ask/tell interface, Random and Sobol searchers;
- :mod:`fugu.hpo.protein`: Protein; :mod:`fugu.hpo.gp`: its Gaussian process;
- :mod:`fugu.hpo.pareto`: Pareto front, pruning, hypervolume;
- :mod:`fugu.hpo.optuna_bridge`: Optuna (TPE) behind the same interface;
- :mod:`fugu.hpo.methods`: searchers by name;
- :mod:`fugu.hpo.sweep`, :mod:`fugu.hpo.outputs`, :mod:`fugu.hpo.train_trial`: ``fugu sweep``;
- :mod:`fugu.hpo.benchmark`: synthetic cost-aware problems and ``fugu bench hpo``.
"""
