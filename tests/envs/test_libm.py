"""``sincos`` gives exactly NumPy's sin and cos."""

from __future__ import annotations

import numpy as np
from numba import njit

from fugu.envs.libm import sincos


@njit(cache=True)
def _both(x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i, 0], out[i, 1] = sincos(x[i])


def test_sincos_is_bit_identical_to_numpy() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-0.5, 0.5, 20000),
            rng.uniform(-10, 10, 20000),
            rng.uniform(-1e6, 1e6, 20000),
            rng.normal(0, 1e-6, 2000),
            [0.0, -0.0, np.pi, -np.pi, 1e300],
        ]
    )
    out = np.empty((x.size, 2))
    _both(x, out)
    np.testing.assert_array_equal(out[:, 0], np.sin(x))
    np.testing.assert_array_equal(out[:, 1], np.cos(x))
    # and element by element as Gymnasium calls them (NumPy float64 scalars)
    for value in x[::997]:
        assert out[np.flatnonzero(x == value)[0]].tolist() == [np.sin(value), np.cos(value)]
