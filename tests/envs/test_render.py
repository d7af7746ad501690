"""The numpy rasterizer against brute-force references."""

from __future__ import annotations

import numpy as np

from fugu.envs import render as draw
from fugu.envs.cartpole import CartPole


def test_circle_and_line_match_brute_force() -> None:
    img = draw.canvas(40, 50)
    draw.fill_circle(img, 10.3, 20.7, 6.5, (255, 0, 0))
    ys, xs = np.mgrid[:40, :50]
    np.testing.assert_array_equal(img[..., 0] == 255, (xs - 10.3) ** 2 + (ys - 20.7) ** 2 <= 6.5**2)
    img = draw.canvas(40, 50)
    draw.draw_line(img, 5, 5, 45.5, 30, 3, (0, 255, 0))
    t = np.clip(((xs - 5) * 40.5 + (ys - 5) * 25) / (40.5**2 + 25**2), 0, 1)
    near = (xs - (5 + t * 40.5)) ** 2 + (ys - (5 + t * 25)) ** 2 <= 1.5**2
    np.testing.assert_array_equal(img[..., 1] == 255, near)


def test_shapes_are_clipped() -> None:
    img = draw.canvas(10, 10, (1, 2, 3))
    draw.fill_circle(img, -50, -50, 3, (9, 9, 9))
    draw.draw_line(img, -30, -30, -20, -20, 2, (9, 9, 9))
    draw.fill_rect(img, 20, 20, 30, 30, (9, 9, 9))
    assert (img == [1, 2, 3]).all()
    draw.draw_line(img, 2, 2, 2, 2, 4, (9, 9, 9))  # a point: a disc
    assert img[2, 2].tolist() == [9, 9, 9]


def test_cartpole_frame_moves_with_the_cart() -> None:
    env = CartPole(2, seed=0)
    env.reset()
    state = env.get_state()
    state["physics"][1] = [1.0, 0.0, 0.3, 0.0]
    env.set_state(state)
    left, right = env.render(0), env.render(1)
    assert left.shape == (400, 600, 3) and not np.array_equal(left, right)
