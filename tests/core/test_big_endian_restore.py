"""Restoring rows whose Box leaves have a non-native byte order (``>f4``, ``>f8``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.core.flatten import SpaceLayout
from fugu.ops.emulation import restore


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", ">i4"])
def test_restore_swaps_non_native_byte_order(dtype):
    space = spaces.Dict(
        {"pos": spaces.Box(-9, 9, (2,), dtype=np.dtype(dtype)), "id": spaces.Discrete(3)}
    )
    layout = SpaceLayout.from_space(space)
    rows = np.zeros((3, *layout.row_shape), layout.row_dtype)
    layout.write(rows[1], {"pos": np.array([5, -2], dtype), "id": 2})
    obs = restore(torch.from_numpy(rows), layout)
    assert obs["pos"][1].tolist() == [5, -2] and obs["id"].tolist() == [0, 2, 0]
    assert (
        obs["pos"].dtype == torch.from_numpy(np.zeros(1, np.dtype(dtype).newbyteorder("="))).dtype
    )
