"""Exact checks of piecewise-linear networks with the z3 SMT solver (real arithmetic).

The network is encoded over real numbers: each input a real variable bounded by the box, each
affine layer a linear term (the float32 weights as exact rationals), each ReLU an
``If(z > 0, z, 0)``. The negation of the property is asserted; *unsat* proves the property,
*sat* gives a counterexample (the model, checked by evaluating the network), and a timeout is
``unknown``. ``monotonic`` properties encode two copies of the network, on inputs that differ
only along the varied dimension. tanh networks are outside this (nonlinear) fragment:
``unknown``. Needs ``z3-solver`` (the ``verify`` extra).
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from fugu.core.errors import missing_dependency
from fugu.safety.properties import Property
from fugu.verify.network import Network
from fugu.verify.result import TOLERANCE, VerifyResult, confirm, make_result

__all__ = ["check_z3"]


def _z3() -> Any:
    try:
        import z3
    except ImportError as error:
        raise missing_dependency("z3-solver", "verify") from error
    return z3


def _encode(z3: Any, solver: Any, net: Network, inputs: list[Any], prop: Property,
            prefix: str) -> list[Any]:  # fmt: skip
    """Constrain fresh variables to the network's neurons on the box; return the outputs.

    Interval bounds (:func:`fugu.verify.ibp.interval_bounds`) remove every ReLU that is
    always on or always off on the box and bound the others' inputs, which keeps the case
    splits to the unstable neurons."""
    from fugu.verify.ibp import _activate, _affine

    lo, hi = prop.low[None], prop.high[None]
    h = inputs
    for k, (weight, bias, activation) in enumerate(net.layers):
        zlo, zhi = _affine(lo, hi, weight, bias)
        out = []
        for j, (row, b) in enumerate(zip(weight, bias)):
            term = z3.Sum([z3.RealVal(Fraction(float(w))) * x for w, x in zip(row, h) if w != 0])
            term = term + z3.RealVal(Fraction(float(b)))
            z = z3.Real(f"{prefix}_z{k}_{j}")
            solver.add(z == term)
            if activation != "relu" or zlo[0, j] >= 0:
                out.append(z)
            elif zhi[0, j] <= 0:
                out.append(z3.RealVal(0))
            else:
                y = z3.Real(f"{prefix}_h{k}_{j}")
                on = z3.Bool(f"{prefix}_a{k}_{j}")
                solver.add(y >= 0, y >= z, y <= z3.RealVal(Fraction(float(zhi[0, j]))))
                solver.add(z3.If(on, z3.And(z >= 0, y == z), z3.And(z <= 0, y == 0)))
                out.append(y)
        lo, hi = _activate(zlo, zhi, activation)
        h = out
    return h


def _value(z3: Any, model: Any, var: Any) -> float:
    v = model.eval(var, model_completion=True)
    return float(Fraction(v.numerator_as_long(), v.denominator_as_long()))


def _unstable(net: Network, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """ReLUs whose input changes sign on each box ``[B, d]`` (interval bounds)."""
    from fugu.verify.ibp import _activate, _affine

    count = np.zeros(len(low), dtype=np.int64)
    lo, hi = low, high
    for weight, bias, activation in net.layers:
        zlo, zhi = _affine(lo, hi, weight, bias)
        if activation == "relu":
            count += ((zlo < 0) & (zhi > 0)).sum(axis=1)
        lo, hi = _activate(zlo, zhi, activation)
    return count


def check_z3(
    net: Network, prop: Property, timeout_s: float = 60.0, max_unstable: int = 20
) -> VerifyResult:
    """Decide ``prop`` on ``net`` exactly with z3 (``unknown`` on timeout or tanh).

    The box is first split in halves (along its widest input; never along a ``monotonic``
    property's varied input, whose pairs must stay in one piece) until each piece has at most
    ``max_unstable`` ReLUs that change sign on it; z3 then decides every piece, the property
    holding when it holds on all of them (the case splits z3 makes grow exponentially with
    the unstable ReLUs, so many small queries beat one large one)."""
    start = time.perf_counter()
    prop.check_sizes(net.num_inputs, net.num_outputs)
    if not net.is_piecewise_linear:
        return make_result(prop, "z3", "unknown", 0.0,
                           detail="tanh is not piecewise linear; train a relu policy")  # fmt: skip
    width = np.maximum(prop.high - prop.low, 1e-12)
    if prop.kind == "monotonic":
        width = width.copy()
        width[prop.input] = np.inf  # never split along it
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    low, high = prop.low[None], prop.high[None]
    while len(low):
        done = _unstable(net, low, high) <= max_unstable
        if len(pieces) + len(low) > 4096:
            done[:] = True
        pieces += list(zip(low[done], high[done]))
        low, high = low[~done], high[~done]
        if not len(low):
            break
        dim = np.argmax((high - low) / width, axis=1)
        rows = np.arange(len(low))
        mid = (low[rows, dim] + high[rows, dim]) * 0.5
        left_high, right_low = high.copy(), low.copy()
        left_high[rows, dim] = mid
        right_low[rows, dim] = mid
        low, high = np.concatenate([low, right_low]), np.concatenate([left_high, high])
    unknown = ""
    for lo, hi in pieces:
        remaining = timeout_s - (time.perf_counter() - start)
        if remaining <= 0:
            unknown = "timeout"
            break
        piece = replace(prop, low=lo, high=hi)
        result = _check_box(net, piece, remaining)
        if result.status == "violated":
            result.name, result.seconds = prop.name, time.perf_counter() - start
            return result
        if result.status == "unknown":
            unknown = result.detail
            break
    seconds = time.perf_counter() - start
    if unknown:
        return make_result(prop, "z3", "unknown", seconds, detail=unknown)
    return make_result(prop, "z3", "holds", seconds, detail=f"unsat on {len(pieces)} pieces")


def _check_box(net: Network, prop: Property, timeout_s: float) -> VerifyResult:
    start = time.perf_counter()
    z3 = _z3()
    solver = z3.SolverFor("QF_LRA")
    solver.set("timeout", int(timeout_s * 1000))
    d = net.num_inputs

    def box(prefix: str) -> list[Any]:
        xs = [z3.Real(f"{prefix}{i}") for i in range(d)]
        for x, lo, hi in zip(xs, prop.low, prop.high):
            solver.add(x >= z3.RealVal(Fraction(float(lo))), x <= z3.RealVal(Fraction(float(hi))))
        return xs

    xs = box("x")
    out = _encode(z3, solver, net, xs, prop, "x")
    pair: list[Any] | None = None
    tol = z3.RealVal(Fraction(TOLERANCE))
    if prop.kind == "never_action":
        for j in range(net.num_outputs):
            if j != prop.action:
                solver.add(out[prop.action] >= out[j])
    elif prop.kind == "output_bounds":
        k = prop.output
        options = []
        if np.isfinite(prop.lower):
            options.append(out[k] <= z3.RealVal(Fraction(prop.lower)) - tol)
        if np.isfinite(prop.upper):
            options.append(out[k] >= z3.RealVal(Fraction(prop.upper)) + tol)
        solver.add(z3.Or(*options))
    else:
        pair = box("y")
        out2 = _encode(z3, solver, net, pair, prop, "y")
        for i in range(d):
            solver.add(pair[i] == xs[i] if i != prop.input else pair[i] >= xs[i])
        k = prop.output
        if prop.direction == "increasing":
            solver.add(out2[k] <= out[k] - tol)
        else:
            solver.add(out2[k] >= out[k] + tol)
    answer = solver.check()
    seconds = time.perf_counter() - start
    if answer == z3.unsat:
        return make_result(prop, "z3", "holds", seconds, detail="unsat")
    if answer != z3.sat:
        return make_result(prop, "z3", "unknown", seconds, detail=str(solver.reason_unknown()))
    model = solver.model()
    points = np.array([[_value(z3, model, x) for x in xs]])
    if pair is not None:
        points = np.vstack([points, [[_value(z3, model, y) for y in pair]]])
    if not confirm(net, prop, points):
        return make_result(prop, "z3", "unknown", seconds,
                           detail="the model did not reproduce in float64")  # fmt: skip
    return make_result(prop, "z3", "violated", seconds, net, points, "sat")
