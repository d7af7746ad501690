"""Media helpers shared by the sinks: image/frame checks, PNG and GIF encoding, video files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

from fugu.core.errors import APIUsageError, missing_dependency

__all__ = ["check_frames", "check_image", "encode_gif", "encode_png", "write_video"]


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a contiguous ``uint8 [H, W, 3]`` array or raise ``ValueError``.

    Example:
        >>> check_image(np.zeros((2, 3, 3), dtype=np.uint8)).shape
        (2, 3, 3)
    """
    array = np.ascontiguousarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"images must be RGB uint8 [H, W, 3], got dtype {array.dtype} shape {array.shape}"
        )
    return array


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Return ``frames`` as a contiguous ``uint8 [T, H, W, 3]`` array or raise ``ValueError``.

    Example:
        >>> check_frames(np.zeros((4, 2, 3, 3), dtype=np.uint8)).shape
        (4, 2, 3, 3)
    """
    array = np.ascontiguousarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or len(array) == 0:
        raise ValueError(
            f"videos must be RGB uint8 [T, H, W, 3] with T >= 1, got dtype {array.dtype} "
            f"shape {array.shape}"
        )
    return array


def encode_png(image: np.ndarray) -> bytes:
    """Encode an RGB ``uint8 [H, W, 3]`` image as PNG bytes (zlib only, no imaging library).

    Example:
        >>> encode_png(np.zeros((2, 2, 3), dtype=np.uint8))[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    array = check_image(image)
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def encode_gif(frames: np.ndarray, fps: int = 30) -> bytes:
    """Encode RGB ``uint8 [T, H, W, 3]`` frames as a looping animated GIF.

    Raises:
        MissingDependencyError: ``imageio`` is not installed (extra ``video``).
    """
    array = check_frames(frames)
    try:
        import imageio.v3 as iio
    except ImportError as error:  # pragma: no cover - imageio is in the dev extras
        raise missing_dependency("imageio", "video") from error
    buffer = io.BytesIO()
    iio.imwrite(buffer, array, extension=".gif", duration=1000.0 / max(1, fps), loop=0)
    return buffer.getvalue()


def write_video(path: str | Path, frames: np.ndarray, fps: int = 30) -> Path:
    """Write RGB ``uint8 [T, H, W, 3]`` frames to ``path``: ``.gif`` or ``.mp4`` (by suffix).

    Raises:
        APIUsageError: The suffix is neither ``.gif`` nor ``.mp4``.
        MissingDependencyError: ``imageio`` (or ``imageio-ffmpeg`` for mp4) is missing
            (extra ``video``).
    """
    path = Path(path)
    array = check_frames(frames)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        path.write_bytes(encode_gif(array, fps))
        return path
    if suffix != ".mp4":
        raise APIUsageError(f"video files must end in .gif or .mp4, got {path.name!r}")
    try:
        import imageio.v2 as imageio
    except ImportError as error:  # pragma: no cover - imageio is in the dev extras
        raise missing_dependency("imageio", "video") from error
    # H.264 wants even sizes: pad by one row/column where needed.
    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    try:
        writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1)
    except (ImportError, ValueError) as error:  # pragma: no cover - ffmpeg plugin missing
        raise missing_dependency("imageio-ffmpeg", "video") from error
    with writer:
        for frame in array:
            writer.append_data(frame)
    return path
