"""GAE and V-trace against slow reference loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.ops import gae, next_values_from, vtrace

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine


def _random_rollout(seed: int, steps: int = 17, rows: int = 5):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(steps, rows, generator=g, dtype=torch.float64)
    values = torch.randn(steps, rows, generator=g, dtype=torch.float64)
    last = torch.randn(rows, generator=g, dtype=torch.float64)
    final = torch.randn(steps, rows, generator=g, dtype=torch.float64)
    u = torch.rand(steps, rows, generator=g)
    terminals = u < 0.1
    truncations = (u >= 0.1) & (u < 0.2)
    ratios = torch.exp(0.5 * torch.randn(steps, rows, generator=g, dtype=torch.float64))
    return rewards, values, last, final, terminals, truncations, ratios


def _reference(rewards, values, last, final, terminals, truncations, ratios, gamma, lam, rho, c):
    """Per-element loops: the definition, written the slow way."""
    steps, rows = rewards.shape
    adv = np.zeros((steps, rows))
    for n in range(rows):
        running = 0.0
        for t in reversed(range(steps)):
            if terminals[t, n]:
                nxt = 0.0
            elif truncations[t, n]:
                nxt = float(final[t, n])
            else:
                nxt = float(values[t + 1, n]) if t + 1 < steps else float(last[n])
            r = float(ratios[t, n])
            delta = min(rho, r) * (float(rewards[t, n]) + gamma * nxt - float(values[t, n]))
            done = bool(terminals[t, n] or truncations[t, n])
            running = delta + (0.0 if done else gamma * lam * min(c, r) * running)
            adv[t, n] = running
    return adv


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_reference(seed, gamma, lam):
    r, v, last, final, term, trunc, _ = _random_rollout(seed)
    nv = next_values_from(v, last, trunc, final)
    got = gae(r, v, nv, term, trunc, gamma, lam)
    ones = torch.ones_like(r)
    want = _reference(r, v, last, final, term, trunc, ones, gamma, lam, 1.0, 1.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


def test_truncation_bootstraps_final_value_and_termination_does_not():
    r = torch.zeros(1, 2)
    v = torch.zeros(1, 2)
    final = torch.full((1, 2), 10.0)
    term = torch.tensor([[True, False]])
    trunc = torch.tensor([[False, True]])
    nv = next_values_from(v, torch.full((2,), 99.0), trunc, final)
    adv = gae(r, v, nv, term, trunc, gamma=0.5, gae_lambda=0.9)
    assert adv.tolist() == [[0.0, 5.0]]


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize(("rho", "c"), [(1.0, 1.0), (2.0, 0.5), (float("inf"), float("inf"))])
def test_vtrace_matches_reference(seed, rho, c):
    r, v, last, final, term, trunc, ratios = _random_rollout(seed)
    nv = next_values_from(v, last, trunc, final)
    got = vtrace(r, v, nv, term, trunc, ratios, 0.97, 0.9, rho, c)
    want = _reference(r, v, last, final, term, trunc, ratios, 0.97, 0.9, rho, c)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
def test_vtrace_equals_gae_on_policy(lam):
    r, v, last, final, term, trunc, _ = _random_rollout(7)
    nv = next_values_from(v, last, trunc, final)
    ones = torch.ones_like(r)
    a = vtrace(r, v, nv, term, trunc, ones, 0.99, lam, rho_clip=1.0, c_clip=1.0)
    b = gae(r, v, nv, term, trunc, 0.99, lam)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_vtrace_lambda_one_is_impala_target():
    """With lambda = 1, v_s = V + A matches IMPALA's recursive definition."""
    r, v, last, _, _, _, ratios = _random_rollout(11)
    no = torch.zeros_like(r, dtype=torch.bool)
    nv = next_values_from(v, last, no, torch.zeros_like(v))
    adv = vtrace(r, v, nv, no, no, ratios, 0.9, 1.0, rho_clip=1.0, c_clip=1.0)
    vs_next = last.clone()
    for t in reversed(range(r.shape[0])):
        rho = ratios[t].clamp(max=1.0)
        c = ratios[t].clamp(max=1.0)
        delta = rho * (r[t] + 0.9 * nv[t] - v[t])
        vs = v[t] + delta + 0.9 * c * (vs_next - nv[t])
        torch.testing.assert_close(v[t] + adv[t], vs)
        vs_next = vs


def test_float32_inputs_keep_dtype():
    r, v, last, final, term, trunc, _ = _random_rollout(0)
    r, v, last, final = (x.float() for x in (r, v, last, final))
    nv = next_values_from(v, last, trunc, final)
    assert gae(r, v, nv, term, trunc, 0.99, 0.95).dtype == torch.float32
