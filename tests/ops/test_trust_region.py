"""Conjugate gradient and CPO's closed-form step against direct solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fugu.ops import conjugate_gradient, cpo_step, flat_grad, get_flat_params, set_flat_params


def _spd(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return m @ m.T + n * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conjugate_gradient_solves_an_spd_system(seed: int) -> None:
    a = _spd(8, seed)
    b = torch.randn(8, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=8, residual_tol=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-8)


def test_conjugate_gradient_stops_early_on_a_solved_system() -> None:
    calls = []

    def matvec(v: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return 2.0 * v

    x = conjugate_gradient(matvec, torch.tensor([2.0, 4.0]), iterations=50)
    assert x.tolist() == [1.0, 2.0] and len(calls) == 1


def test_flat_params_round_trip_and_flat_grad() -> None:
    net = torch.nn.Linear(3, 2)
    params = list(net.parameters())
    flat = get_flat_params(params)
    assert flat.shape == (8,)
    set_flat_params(params, torch.arange(8.0))
    assert net.bias.tolist() == [6.0, 7.0]
    grad = flat_grad(net.bias.sum(), params)
    assert grad.tolist() == [0.0] * 6 + [1.0, 1.0]


def _brute_force(g: np.ndarray, b: np.ndarray, h: np.ndarray, c: float, delta: float) -> float:
    """The best ``g^T x`` over points of the trust region that satisfy the constraint (grid)."""
    # x = L u with u in the unit disk scaled by sqrt(2 delta), H = (L L^T)^-1.
    chol = np.linalg.cholesky(np.linalg.inv(h))
    radius = np.sqrt(2 * delta)
    t = np.linspace(-1, 1, 801)
    u = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    u = u[(u**2).sum(1) <= 1] * radius
    x = u @ chol.T
    ok = c + x @ b <= 1e-9
    return float((x[ok] @ g).max()) if ok.any() else -math.inf


@pytest.mark.parametrize(
    ("c", "expected_case"),
    [(-1.0, 3), (-0.05, 2), (0.02, 1)],
)
def test_cpo_step_matches_a_brute_force_solution(c: float, expected_case: int) -> None:
    h = np.array([[2.0, 0.3], [0.3, 1.0]])
    g, b, delta = np.array([1.0, 0.5]), np.array([0.8, -0.6]), 0.01
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in {"g": g, "b": b}.items()}
    h_inv = np.linalg.inv(h)
    step = cpo_step(t["g"], t["b"], torch.tensor(h_inv @ g), torch.tensor(h_inv @ b), c, delta)
    assert step.case == expected_case
    x = step.direction.numpy()
    assert 0.5 * x @ h @ x <= delta * (1 + 1e-6)  # inside the trust region
    assert c + b @ x <= 1e-6  # the linearised constraint holds
    assert g @ x == pytest.approx(_brute_force(g, b, h, c, delta), abs=2e-3)


def test_cpo_recovery_step_when_the_constraint_is_out_of_reach() -> None:
    h = np.array([[2.0, 0.3], [0.3, 1.0]])
    g, b, delta, c = np.array([1.0, 0.5]), np.array([0.8, -0.6]), 0.01, 5.0
    h_inv = np.linalg.inv(h)
    step = cpo_step(
        torch.tensor(g), torch.tensor(b), torch.tensor(h_inv @ g), torch.tensor(h_inv @ b),
        c, delta,
    )  # fmt: skip
    assert step.case == 0
    x = step.direction.numpy()
    # pure cost descent along H^-1 b, exactly on the trust region's boundary
    s = b @ h_inv @ b
    np.testing.assert_allclose(x, -np.sqrt(2 * delta / s) * (h_inv @ b))
    assert 0.5 * x @ h @ x == pytest.approx(delta)
    assert b @ x < 0  # the cost falls as fast as the region allows
    assert b @ x == pytest.approx(-np.sqrt(2 * delta * s))


def test_cpo_step_without_a_cost_gradient_is_the_trust_region_step() -> None:
    g = torch.tensor([1.0, 2.0], dtype=torch.float64)
    step = cpo_step(g, torch.zeros(2, dtype=torch.float64), g, torch.zeros(2), 1.0, 0.02)
    assert step.case == 4
    torch.testing.assert_close(step.direction, g * math.sqrt(2 * 0.02 / 5.0))
