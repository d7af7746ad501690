"""Bridges between fugu and other libraries: Gymnasium, Stable-Baselines3, PettingZoo."""
