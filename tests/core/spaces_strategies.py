"""Hypothesis strategies for random nested gymnasium spaces (shared by the emulation tests)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from hypothesis import strategies as st

SHAPES = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
BOX_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8, np.float16]


@st.composite
def boxes(draw: Any, dtypes: list[Any] = BOX_DTYPES) -> spaces.Box:
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(SHAPES)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        low = draw(st.integers(max(int(info.min), -100), 0))
        high = draw(st.integers(1, min(int(info.max), 100)))
    else:
        low = draw(st.sampled_from([-1.0, -10.0, 0.0]))
        high = low + draw(st.sampled_from([0.5, 1.0, 20.0]))
    return spaces.Box(low, high, shape, dtype.type)


@st.composite
def discretes(draw: Any) -> spaces.Space:
    kind = draw(st.sampled_from(["discrete", "multidiscrete", "multibinary"]))
    if kind == "discrete":
        return spaces.Discrete(draw(st.integers(1, 6)), start=draw(st.integers(-3, 3)))
    if kind == "multidiscrete":
        shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple))
        nvec = np.array(
            draw(
                st.lists(
                    st.integers(1, 5), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
                )
            )
        ).reshape(shape)
        start = np.array(
            draw(st.lists(st.integers(-2, 2), min_size=nvec.size, max_size=nvec.size))
        ).reshape(shape)
        return spaces.MultiDiscrete(nvec, start=start)
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple))
    return spaces.MultiBinary(list(shape) if len(shape) > 1 else shape[0])


KEYS = st.text(alphabet="abcxyz", min_size=1, max_size=3)


def nested(leaves: st.SearchStrategy) -> st.SearchStrategy:
    """Dicts and tuples of ``leaves``, nested up to a few levels."""
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda s: spaces.Tuple(tuple(s))),
            st.dictionaries(KEYS, children, min_size=1, max_size=3).map(spaces.Dict),
        ),
        max_leaves=6,
    )


observation_spaces = nested(st.one_of(boxes(), discretes()))
action_spaces = nested(st.one_of(boxes([np.float32]), discretes()))


def assert_nested_equal(restored: Any, sample: Any, space: spaces.Space) -> None:
    """``restored`` (arrays/tensors) holds the same values and leaf dtypes as ``sample``."""
    if isinstance(space, spaces.Dict):
        assert list(restored) == list(space.spaces)
        for key, sub in space.items():
            assert_nested_equal(restored[key], sample[key], sub)
        return
    if isinstance(space, spaces.Tuple):
        assert isinstance(restored, tuple) and len(restored) == len(space.spaces)
        for value, expected, sub in zip(restored, sample, space.spaces):
            assert_nested_equal(value, expected, sub)
        return
    if hasattr(restored, "numpy"):  # a torch tensor
        restored = restored.numpy()
    restored = np.asarray(restored)
    expected = np.asarray(sample)
    assert restored.dtype == np.dtype(space.dtype), (restored.dtype, space)
    assert restored.shape == expected.shape, (restored.shape, expected.shape, space)
    np.testing.assert_array_equal(restored, expected)
