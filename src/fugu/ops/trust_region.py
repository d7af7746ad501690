"""Trust-region maths: conjugate gradient, flat parameter vectors and CPO's step.

Constrained Policy Optimization (Achiam et al. 2017) maximises the linearised reward
surrogate ``g^T x`` subject to the linearised cost constraint ``c + b^T x <= 0`` and the
quadratic trust region ``x^T H x / 2 <= delta`` (``H`` the Fisher information of the policy).
With ``H^-1 g`` and ``H^-1 b`` from conjugate gradient (:func:`conjugate_gradient`),
:func:`cpo_step` solves the dual of that problem in closed form, and when no step in the
trust region can satisfy the constraint (the policy is infeasible and the region too small to
recover) returns the *recovery* step that decreases the cost as fast as the region allows.

Example:
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]])
    >>> x = conjugate_gradient(lambda v: A @ v, torch.tensor([1.0, 2.0]), iterations=10)
    >>> [round(v, 4) for v in x.tolist()]
    [0.0909, 0.6364]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "CPOStep",
    "conjugate_gradient",
    "cpo_step",
    "flat_grad",
    "get_flat_params",
    "set_flat_params",
]


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor],
    b: Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> Tensor:
    """Approximately solve ``A x = b`` for a symmetric positive definite ``A`` given as
    ``matvec(v) = A v`` (never formed), starting from ``x = 0``.

    Args:
        matvec: The product with ``A`` (e.g. a Fisher-vector product).
        b: The right-hand side (a flat vector).
        iterations: At most this many iterations (exact after ``len(b)`` in exact arithmetic).
        residual_tol: Stop once the squared residual norm falls below this.

    Returns:
        ``x`` with ``A x ~ b``.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    for _ in range(iterations):
        if float(rr) < residual_tol:
            break
        ap = matvec(p)
        alpha = rr / torch.dot(p, ap).clamp_min(1e-12)
        x += alpha * p
        r -= alpha * ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def flat_grad(
    output: Tensor,
    params: list[nn.Parameter],
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> Tensor:
    """The gradient of a scalar ``output`` with respect to ``params``, as one flat vector
    (zeros for parameters it does not depend on)."""
    grads = torch.autograd.grad(
        output,
        params,
        retain_graph=retain_graph or create_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]
    )


def get_flat_params(params: Iterable[nn.Parameter]) -> Tensor:
    """The parameters concatenated into one flat (detached) vector."""
    return torch.cat([p.detach().reshape(-1) for p in params])


@torch.no_grad()
def set_flat_params(params: Iterable[nn.Parameter], flat: Tensor) -> None:
    """Copy a flat vector (as :func:`get_flat_params` lays it out) into ``params``."""
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(flat[offset : offset + n].view_as(p))
        offset += n


class CPOStep(NamedTuple):
    """What :func:`cpo_step` returns.

    Attributes:
        direction: The step ``x`` in parameter space (before any line search).
        case: 4: no usable cost gradient (plain trust-region step); 3: feasible and the whole
            trust region satisfies the constraint (plain step); 2: feasible, the constraint
            cuts the region; 1: infeasible but a step in the region can recover; 0:
            infeasible beyond the region's reach: the recovery step (cost descent only).
        lagrange_reward: The dual variable ``lambda`` of the trust region (0 in case 0).
        lagrange_cost: The dual variable ``nu`` of the cost constraint.
    """

    direction: Tensor
    case: int
    lagrange_reward: float
    lagrange_cost: float


def cpo_step(
    g: Tensor,
    b: Tensor,
    h_inv_g: Tensor,
    h_inv_b: Tensor,
    c: float,
    max_kl: float,
    eps: float = 1e-8,
) -> CPOStep:
    """Solve CPO's linear-quadratic subproblem in closed form (Achiam et al. 2017, App. 10.2).

    ``max g^T x  s.t.  c + b^T x <= 0,  x^T H x / 2 <= max_kl``.

    Args:
        g: Gradient of the reward surrogate (to increase).
        b: Gradient of the cost surrogate (its change must keep ``c + b^T x <= 0``).
        h_inv_g: ``H^-1 g``.
        h_inv_b: ``H^-1 b``.
        c: The constraint value now, ``J_c - limit`` (positive: infeasible).
        max_kl: The trust region ``delta``.
        eps: Guards the divisions.

    Returns:
        A :class:`CPOStep`.
    """
    q = float(torch.dot(g, h_inv_g))
    two_delta = 2.0 * max_kl
    if float(torch.dot(b, b)) <= eps or not math.isfinite(float(torch.dot(b, h_inv_b))):
        lam = math.sqrt(max(q, eps) / two_delta)
        return CPOStep(h_inv_g / lam, 4, lam, 0.0)
    # The dual below is written with the gradient of the reward *loss* (-g), as in the paper's
    # reference code: r is (-g)^T H^-1 b, and the step is (H^-1 g - nu H^-1 b) / lambda.
    r = -float(torch.dot(g, h_inv_b))
    s = max(float(torch.dot(b, h_inv_b)), eps)
    slack = c * c / s - two_delta  # > 0: the constraint's boundary lies outside the region
    if c < 0 and slack > 0:
        case = 3
    elif c < 0:
        case = 2
    elif slack <= 0:
        case = 1
    else:  # infeasible and no step in the region reaches the constraint: recover
        return CPOStep(-math.sqrt(two_delta / s) * h_inv_b, 0, 0.0, 0.0)
    if case == 3:
        lam = math.sqrt(max(q, eps) / two_delta)
        return CPOStep(h_inv_g / lam, 3, lam, 0.0)
    # The dual: max over lambda >= 0 of two branches (nu > 0 and nu = 0), each on its range.
    a_coef = max(q - r * r / s, eps)
    b_coef = max(two_delta - c * c / s, eps)
    lam_a = math.sqrt(a_coef / b_coef)
    lam_b = math.sqrt(max(q, eps) / two_delta)
    boundary = r / c if abs(c) > eps else (math.inf if r > 0 else 0.0)
    if c < 0:
        range_a, range_b = (0.0, max(boundary, 0.0)), (max(boundary, 0.0), math.inf)
    else:
        range_a, range_b = (max(boundary, 0.0), math.inf), (0.0, max(boundary, 0.0))
    lam_a = min(max(lam_a, range_a[0]), range_a[1])
    lam_b = min(max(lam_b, range_b[0]), range_b[1])

    def dual_a(lam: float) -> float:
        lam = max(lam, eps)
        return -0.5 * (a_coef / lam + b_coef * lam) - r * c / s

    def dual_b(lam: float) -> float:
        lam = max(lam, eps)
        return -0.5 * (q / lam + two_delta * lam)

    lam = lam_a if dual_a(lam_a) >= dual_b(lam_b) else lam_b
    lam = max(lam, eps)
    nu = max(0.0, (lam * c - r) / s)
    return CPOStep((h_inv_g - nu * h_inv_b) / lam, case, lam, nu)
