"""restore() gives zero-copy tensor views equal to the numpy unflattening."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fugu.core import APIUsageError
from fugu.core.flatten import SpaceLayout
from fugu.ops.emulation import restore, restore_leaf, torch_dtype


def _load_strategies():
    name = "fugu_tests_spaces_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parents[1] / "core" / "spaces_strategies.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


S = _load_strategies()


def _leaves(nested):
    if isinstance(nested, dict):
        for value in nested.values():
            yield from _leaves(value)
    elif isinstance(nested, tuple):
        for value in nested:
            yield from _leaves(value)
    else:
        yield nested


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=S.observation_spaces, seed=st.integers(0, 2**16), batch=st.integers(1, 4))
def test_restore_equals_samples_without_copies(space, seed, batch):
    layout = SpaceLayout.from_space(space)
    space.seed(seed)
    samples = [space.sample() for _ in range(batch)]
    rows = np.zeros((batch, *layout.row_shape), layout.row_dtype)
    for row, sample in zip(rows, samples):
        layout.write(row, sample)
    tensor = torch.from_numpy(rows)
    restored = restore(tensor, layout)
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    for leaf_tensor in _leaves(restored):
        assert start <= leaf_tensor.data_ptr() < end or leaf_tensor.numel() == 0
        assert leaf_tensor.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
    for i, sample in enumerate(samples):
        S.assert_nested_equal(_index(restored, i), sample, space)


def _index(nested, i):
    if isinstance(nested, dict):
        return {key: _index(value, i) for key, value in nested.items()}
    if isinstance(nested, tuple):
        return tuple(_index(value, i) for value in nested)
    return nested[i]


def test_restore_of_a_mixed_layout_shares_memory_both_ways():
    space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "id": spaces.Discrete(5)})
    layout = SpaceLayout.from_space(space)
    rows = np.zeros((3, *layout.row_shape), layout.row_dtype)
    tensor = torch.from_numpy(rows)
    obs = restore(tensor, layout)
    obs["pos"][1] = torch.tensor([0.5, -0.25])
    obs["id"][2] = 4
    numpy_view = layout.unflatten(rows)
    assert numpy_view["pos"][1].tolist() == [0.5, -0.25] and numpy_view["id"].tolist() == [0, 0, 4]
    assert obs["pos"].dtype == torch.float32 and obs["id"].dtype == torch.int64
    assert restore_leaf(tensor, layout, "id").data_ptr() == obs["id"].data_ptr()
    assert restore_leaf(tensor, layout, layout.leaf("pos")).shape == (3, 2)
    # leading batch dimensions are kept: [T, B, row]
    stacked = torch.zeros((2, 3, *layout.row_shape), dtype=torch.uint8)
    assert restore(stacked, layout)["pos"].shape == (2, 3, 2)


def test_restore_passthrough_and_errors():
    layout = SpaceLayout.from_space(spaces.Box(0, 255, (4, 4), np.uint8))
    batch = torch.zeros((2, 4, 4), dtype=torch.uint8)
    assert restore(batch, layout) is batch
    layout = SpaceLayout.from_space(spaces.Tuple((spaces.Discrete(2), spaces.Box(0, 1, (1,)))))
    with pytest.raises(APIUsageError, match="row shape"):
        restore(torch.zeros((2, 3), dtype=torch.uint8), layout)
    with pytest.raises(APIUsageError, match="row dtype"):
        restore(torch.zeros((2, *layout.row_shape), dtype=torch.float32), layout)
    assert torch_dtype(np.dtype(np.bool_)) == torch.bool


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_restore_on_gpu_is_zero_copy():
    space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "id": spaces.Discrete(5)})
    layout = SpaceLayout.from_space(space)
    rows = np.zeros((8, *layout.row_shape), layout.row_dtype)
    layout.write(rows[3], {"pos": np.array([0.5, 0.25], np.float32), "id": 4})
    tensor = torch.from_numpy(rows).cuda()
    obs = restore(tensor, layout)
    assert obs["id"].device == tensor.device and int(obs["id"][3]) == 4
    assert obs["pos"].untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr()
