"""Tiny numpy rasterizer for native envs' ``render(row)``: RGB ``uint8 [H, W, 3]`` images.

Rendering is not on the hot path, so these helpers favour clarity over speed. Coordinates are
pixels, ``x`` to the right and ``y`` down; shapes are clipped to the image.

Example:
    >>> img = canvas(4, 6, (255, 255, 255))
    >>> fill_rect(img, 1, 1, 3, 2, (255, 0, 0))
    >>> img.shape, img.dtype, img[1, 1].tolist(), img[0, 0].tolist()
    ((4, 6, 3), dtype('uint8'), [255, 0, 0], [255, 255, 255])
"""

from __future__ import annotations

import numpy as np

__all__ = ["canvas", "draw_line", "fill_circle", "fill_rect", "grid"]

Color = tuple[int, int, int]


def canvas(height: int, width: int, color: Color = (0, 0, 0)) -> np.ndarray:
    """A new ``[height, width, 3]`` uint8 image filled with ``color``."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = color
    return img


def fill_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
    """Fill pixels ``[y0, y1) x [x0, x1)`` (clipped)."""
    h, w = img.shape[:2]
    x0, x1 = max(0, int(x0)), min(w, int(x1))
    y0, y1 = max(0, int(y0)), min(h, int(y1))
    if x0 < x1 and y0 < y1:
        img[y0:y1, x0:x1] = color


def fill_circle(img: np.ndarray, cx: float, cy: float, radius: float, color: Color) -> None:
    """Fill the disc of ``radius`` pixels around ``(cx, cy)``."""
    box = _box(img, cx - radius, cy - radius, cx + radius, cy + radius)
    if box is None:
        return
    x0, y0, x1, y1 = box
    ys, xs = np.ogrid[y0:y1, x0:x1]
    img[y0:y1, x0:x1][(xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2] = color


def draw_line(
    img: np.ndarray, x0: float, y0: float, x1: float, y1: float, width: float, color: Color
) -> None:
    """Draw a segment ``width`` pixels thick from ``(x0, y0)`` to ``(x1, y1)``."""
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 == 0:
        fill_circle(img, x0, y0, width / 2, color)
        return
    half = width / 2
    box = _box(img, min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half)
    if box is None:
        return
    bx0, by0, bx1, by1 = box
    ys, xs = np.ogrid[by0:by1, bx0:bx1]
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    dist2 = (xs - (x0 + t * dx)) ** 2 + (ys - (y0 + t * dy)) ** 2
    img[by0:by1, bx0:bx1][dist2 <= half**2] = color


def _box(
    img: np.ndarray, x0: float, y0: float, x1: float, y1: float
) -> tuple[int, int, int, int] | None:
    """The integer pixel box covering ``[x0, x1] x [y0, y1]``, clipped; None when empty."""
    h, w = img.shape[:2]
    bx0, by0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    bx1, by1 = min(w, int(np.ceil(x1)) + 1), min(h, int(np.ceil(y1)) + 1)
    if bx0 >= bx1 or by0 >= by1:
        return None
    return bx0, by0, bx1, by1


def grid(cells: np.ndarray, palette: np.ndarray, cell_size: int = 16) -> np.ndarray:
    """Render a 2-D integer grid: cell value ``v`` gets colour ``palette[v]``.

    Args:
        cells: Integer array ``[rows, cols]``.
        palette: uint8 array ``[num_values, 3]``.
        cell_size: Pixels per cell side.

    Example:
        >>> grid(np.array([[0, 1]]), np.array([[0, 0, 0], [255, 255, 255]], np.uint8), 2).shape
        (2, 4, 3)
    """
    img = np.asarray(palette, dtype=np.uint8)[np.asarray(cells)]
    return np.repeat(np.repeat(img, cell_size, axis=0), cell_size, axis=1)
