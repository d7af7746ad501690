"""GAE and V-trace against slow reference loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.ops import credit_to_live_steps, gae, next_values_from, vtrace

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


def _masked_reference(rewards, values, last, final, terminals, truncations, masks, gamma, lam):
    """Per-row loops over the live steps only: credit what non-live steps received to the
    row's previous live step (within an episode), then plain GAE on the compacted row."""
    steps, rows = rewards.shape
    adv = np.zeros((steps, rows))
    for n in range(rows):
        live = [t for t in range(steps) if masks[t, n]]
        r = {t: float(rewards[t, n]) for t in live}
        term = {t: bool(terminals[t, n]) for t in live}
        trunc = {t: bool(truncations[t, n]) for t in live}
        fin = {t: float(final[t, n]) for t in live}
        previous = None
        for t in range(steps):
            if masks[t, n]:
                previous = None if (term[t] or trunc[t]) else t
            elif previous is not None:
                r[previous] += float(rewards[t, n])
                if terminals[t, n]:
                    term[previous] = True
                elif truncations[t, n] and not term[previous]:
                    trunc[previous] = True
                    fin[previous] = float(final[t, n])
                if terminals[t, n] or truncations[t, n]:
                    previous = None
        running = 0.0
        for i in reversed(range(len(live))):
            t = live[i]
            if term[t]:
                nxt = 0.0
            elif trunc[t]:
                nxt = fin[t]
            else:
                nxt = float(values[live[i + 1], n]) if i + 1 < len(live) else float(last[n])
            delta = r[t] + gamma * nxt - float(values[t, n])
            running = delta + gamma * lam * (0.0 if (term[t] or trunc[t]) else running)
            adv[t, n] = running
    return adv


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_masked_gae_with_credit_matches_the_per_row_reference(seed):
    rewards, values, last, final, terminals, truncations, _ = _random_rollout(seed)
    g = torch.Generator().manual_seed(100 + seed)
    masks = torch.rand(rewards.shape, generator=g) < 0.6
    masks[:, 0] = True  # one fully live row
    masks[:, 1] = False  # one never-live row
    r, term, trunc, moved = credit_to_live_steps(rewards, terminals, truncations, masks, final)
    nv = next_values_from(values, last, trunc, moved, masks)
    got = gae(r, values, nv, term, trunc, 0.97, 0.9, masks=masks)
    want = _masked_reference(rewards, values, last, final, terminals, truncations, masks, 0.97, 0.9)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)
    assert got[~masks].abs().sum() == 0  # non-live steps carry no advantage
    # with every step live, the masked path is plain GAE
    ones = torch.ones_like(masks)
    plain = gae(rewards, values, next_values_from(values, last, truncations, final),
                terminals, truncations, 0.97, 0.9)  # fmt: skip
    masked = gae(rewards, values, next_values_from(values, last, truncations, final, ones),
                 terminals, truncations, 0.97, 0.9, masks=ones)  # fmt: skip
    torch.testing.assert_close(plain, masked)


def test_waiting_row_is_credited_with_the_terminal_reward_of_its_last_move():
    # a two-player game: row 0 moves at t=0, 2; row 1 at t=1, 3; row 1's move at t=3 wins,
    # so row 0 (waiting at t=3) receives -1 and the episode's end there.
    rewards = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    terminals = torch.tensor([[False, False], [False, False], [False, False], [True, True]])
    masks = torch.tensor([[True, False], [False, True], [True, False], [False, True]])
    r, term, _, _ = credit_to_live_steps(rewards, terminals, torch.zeros_like(terminals), masks)
    assert r[:, 0].tolist() == [0.0, 0.0, -1.0, 0.0] and term[:, 0].tolist() == [
        False, False, True, False,
    ]  # fmt: skip
    assert r[:, 1].tolist() == [0.0, 0.0, 0.0, 1.0] and term[3, 1]
