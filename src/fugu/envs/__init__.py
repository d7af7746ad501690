"""fugu's native numba-vectorized environments ("ocean")."""
