"""Hyperparameter search: Protein (cost-aware Pareto Bayesian search), Random, Sobol, Optuna."""
