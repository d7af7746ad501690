"""Lagrange multipliers: rise over the limit, fall under it, never negative, resume exactly."""

from __future__ import annotations

import itertools

import pytest

from fugu.core.errors import APIUsageError
from fugu.models.lagrange import LagrangeMultiplier, PIDLagrangeMultiplier


@pytest.mark.parametrize(
    "make", [lambda: PIDLagrangeMultiplier(), lambda: LagrangeMultiplier(0.05)]
)
def test_multiplier_rises_over_the_limit_falls_under_it_and_stays_non_negative(make) -> None:
    m = make()
    values = [m.update(cost=60.0, limit=25.0) for _ in range(30)]
    assert values[0] > 0.0 and all(b >= a for a, b in itertools.pairwise(values))
    peak = values[-1]
    falling = [m.update(cost=0.0, limit=25.0) for _ in range(300)]
    assert falling[0] < peak
    assert min(falling) >= 0.0 and falling[-1] == 0.0


def test_pid_terms_react_faster_than_the_plain_integral() -> None:
    pid = PIDLagrangeMultiplier(kp=1.0, ki=0.01, kd=0.0, p_ema=0.0)
    plain = LagrangeMultiplier(learning_rate=0.01)
    assert pid.update(35.0, 25.0) == pytest.approx(10.1)  # kp * 10 + ki * 10
    assert plain.update(35.0, 25.0) == pytest.approx(0.1)
    # at the limit the proportional term vanishes and only the integral stays
    assert pid.update(25.0, 25.0) == pytest.approx(0.1)


def test_pid_derivative_acts_only_while_the_cost_rises() -> None:
    m = PIDLagrangeMultiplier(kp=0.0, ki=0.0, kd=1.0, d_ema=0.0, d_delay=1)
    assert m.update(10.0, 25.0) == 0.0
    assert m.update(14.0, 25.0) == pytest.approx(4.0)
    assert m.update(12.0, 25.0) == 0.0


def test_state_round_trip_and_bad_gains() -> None:
    m = PIDLagrangeMultiplier()
    for cost in (40.0, 30.0, 50.0):
        m.update(cost, 25.0)
    copy = PIDLagrangeMultiplier()
    copy.load_state_dict(m.state_dict())
    assert copy.update(45.0, 25.0) == m.update(45.0, 25.0)
    with pytest.raises(APIUsageError):
        PIDLagrangeMultiplier(kp=-1.0)
    with pytest.raises(APIUsageError):
        LagrangeMultiplier(learning_rate=0.0)
