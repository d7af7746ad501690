"""Vectorization backends behind fugu.core.VecEnv: Serial, Multiprocessing, Native."""
