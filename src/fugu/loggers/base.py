"""The :class:`Logger` protocol every metric sink implements, and :class:`MultiLogger`.

Loggers are an L1 layer: they take plain Python numbers and numpy arrays (never tensors), so
they import neither torch nor the training code. The trainer converts before it logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Logger", "MultiLogger", "NullLogger"]


@runtime_checkable
class Logger(Protocol):
    """A metric sink. Every method takes the global env step as ``step``.

    Metric keys are namespaced (``env/…``, ``loss/…``, ``perf/…``, ``train/…``, ``eval/…``)
    and identical in every sink. Sinks that cannot show a kind of data (JSONL and images)
    ignore it.
    """

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the resolved experiment config (a nested dict of plain values)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Record scalar metrics at ``step``."""

    def log_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """Record the distribution of ``values`` (any shape, flattened)."""

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Record an RGB ``uint8 [H, W, 3]`` image."""

    def log_video(self, tag: str, frames: np.ndarray, step: int, fps: int = 30) -> None:
        """Record RGB ``uint8 [T, H, W, 3]`` frames as a video."""

    def flush(self) -> None:
        """Write buffered data to storage."""

    def close(self) -> None:
        """Flush and release the sink. Idempotent."""


class NullLogger:
    """A logger that drops everything (the base of sinks that only handle some kinds).

    Example:
        >>> NullLogger().log_metrics({"loss/policy": 0.1}, step=0)
        >>> isinstance(NullLogger(), Logger)
        True
    """

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Drop the config."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Drop the metrics."""

    def log_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """Drop the histogram."""

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Drop the image."""

    def log_video(self, tag: str, frames: np.ndarray, step: int, fps: int = 30) -> None:
        """Drop the video."""

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to close."""


class MultiLogger(NullLogger):
    """Fan every call out to several loggers, in order.

    Example:
        >>> from fugu.loggers.jsonl import JsonlLogger
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> logger = MultiLogger([JsonlLogger(path), NullLogger()])
        >>> logger.log_metrics({"env/episode_return": 9.0}, step=8)
        >>> logger.close()
        >>> path.read_text().strip()
        '{"step": 8, "env/episode_return": 9.0}'
    """

    def __init__(self, loggers: Sequence[Logger]) -> None:
        self.loggers = list(loggers)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the config in every logger."""
        for logger in self.loggers:
            logger.log_config(config)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Record the metrics in every logger."""
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def log_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """Record the histogram in every logger."""
        for logger in self.loggers:
            logger.log_histogram(tag, values, step)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Record the image in every logger."""
        for logger in self.loggers:
            logger.log_image(tag, image, step)

    def log_video(self, tag: str, frames: np.ndarray, step: int, fps: int = 30) -> None:
        """Record the video in every logger."""
        for logger in self.loggers:
            logger.log_video(tag, frames, step, fps)

    def flush(self) -> None:
        """Flush every logger."""
        for logger in self.loggers:
            logger.flush()

    def close(self) -> None:
        """Close every logger."""
        for logger in self.loggers:
            logger.close()
