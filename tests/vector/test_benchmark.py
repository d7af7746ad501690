"""The vector benchmark: every implementation runs and the ratios are filled in."""

from __future__ import annotations

import pytest

from fugu.core.errors import APIUsageError
from fugu.vector.benchmark import IMPLS, VectorBenchConfig, run_vector_benchmark


@pytest.mark.timeout(120)
def test_every_implementation_is_measured() -> None:
    config = VectorBenchConfig(num_envs=2, num_workers=2, steps=40, repeats=2, context="fork")
    seen = []
    results = run_vector_benchmark(config, lambda impl, repeat, r: seen.append((impl, repeat, r)))
    assert [r.impl for r in results] == list(IMPLS)
    assert len(seen) == 2 * 2 * len(IMPLS)
    by_impl = {r.impl: r for r in results}
    assert by_impl["gymnasium-sync"].ratio_vs_gymnasium_sync == 1.0
    assert by_impl["gymnasium-async"].ratio_vs_gymnasium_async == 1.0
    assert by_impl["fugu-mp-async"].batch_size == 1 and by_impl["fugu-mp-async"].num_workers == 2
    for r in results:
        assert r.repeats == 2 and len(r.sps_runs) == 2 and r.sps > 0
        assert {"impl", "num_envs", "num_workers", "batch_size", "sps", "repeats",
                "ratio_vs_gymnasium_sync"} <= set(r.to_dict())  # fmt: skip


def test_box_actions_and_seconds() -> None:
    config = VectorBenchConfig(
        env_id="Pendulum-v1", num_envs=2, num_workers=1, seconds=0.05, repeats=1,
        impls=("fugu-serial",),
    )  # fmt: skip
    (result,) = run_vector_benchmark(config)
    assert result.sps > 0 and result.ratio_vs_gymnasium_sync is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"impls": ("nope",)}, "unknown implementations"),
        ({"num_envs": 3, "num_workers": 2}, "must divide"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_bad_configs(kwargs: dict, match: str) -> None:
    with pytest.raises(APIUsageError, match=match):
        run_vector_benchmark(VectorBenchConfig(**{"impls": ("fugu-serial",), **kwargs}))
