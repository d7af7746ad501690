"""A TensorBoard sink written with ``tensorboard``'s own protobufs (no torch, no TensorFlow).

Scalars, histograms (weights, gradients, actions), images (PNG) and videos (animated GIF in the
image tab, as TensorBoard shows them) go to one event file per logger in ``logdir``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import missing_dependency
from fugu.loggers.base import NullLogger
from fugu.loggers.media import check_frames, check_image, encode_gif, encode_png

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(NullLogger):
    """Write TensorBoard event files to ``logdir`` (view with ``tensorboard --logdir RUN_DIR``).

    Args:
        logdir: Directory for the event file (created).
        histogram_bins: Number of buckets of each histogram.

    Raises:
        MissingDependencyError: ``tensorboard`` is not installed (extra ``tensorboard``).
    """

    def __init__(self, logdir: str | Path, histogram_bins: int = 64) -> None:
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as error:  # pragma: no cover - tensorboard is in the dev extras
            raise missing_dependency("tensorboard", "tensorboard") from error
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.histogram_bins = int(histogram_bins)
        self._event_pb2 = event_pb2
        self._summary_pb2 = summary_pb2
        self._writer: Any = EventFileWriter(str(self.logdir), flush_secs=10)

    def _write(self, step: int, *values: Any) -> None:
        if self._writer is None:
            return
        summary = self._summary_pb2.Summary(value=list(values))
        event = self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer.add_event(event)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the config as a text summary (tag ``config``) at step 0."""
        text = "```\n" + json.dumps(config, indent=2, default=str) + "\n```"
        tensor = self._tensor_pb(text.encode())
        metadata = self._summary_pb2.SummaryMetadata(
            plugin_data=self._summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        )
        self._write(
            0, self._summary_pb2.Summary.Value(tag="config", tensor=tensor, metadata=metadata)
        )

    def _tensor_pb(self, data: bytes) -> Any:
        from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

        return tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            string_val=[data],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[]),
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Record each metric as a scalar (non-finite values are skipped)."""
        values = [
            self._summary_pb2.Summary.Value(tag=key, simple_value=float(value))
            for key, value in metrics.items()
            if math.isfinite(float(value))
        ]
        if values:
            self._write(step, *values)

    def log_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """Record a histogram of ``values`` (flattened; non-finite values dropped)."""
        data = np.asarray(values, dtype=np.float64).ravel()
        data = data[np.isfinite(data)]
        if data.size == 0:
            return
        low, high = float(data.min()), float(data.max())
        if low == high:
            low, high = low - 0.5, high + 0.5
        counts, edges = np.histogram(data, bins=self.histogram_bins, range=(low, high))
        histogram = self._summary_pb2.HistogramProto(
            min=float(data.min()),
            max=float(data.max()),
            num=float(data.size),
            sum=float(data.sum()),
            sum_squares=float(np.dot(data, data)),
            bucket_limit=[float(edge) for edge in edges[1:]],
            bucket=[float(count) for count in counts],
        )
        self._write(step, self._summary_pb2.Summary.Value(tag=tag, histo=histogram))

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Record an RGB ``uint8 [H, W, 3]`` image (PNG-encoded)."""
        array = check_image(image)
        encoded = self._summary_pb2.Summary.Image(
            height=array.shape[0],
            width=array.shape[1],
            colorspace=3,
            encoded_image_string=encode_png(array),
        )
        self._write(step, self._summary_pb2.Summary.Value(tag=tag, image=encoded))

    def log_video(self, tag: str, frames: np.ndarray, step: int, fps: int = 30) -> None:
        """Record RGB ``uint8 [T, H, W, 3]`` frames as an animated GIF in the image tab.

        Raises:
            MissingDependencyError: ``imageio`` is not installed (extra ``video``).
        """
        array = check_frames(frames)
        encoded = self._summary_pb2.Summary.Image(
            height=array.shape[1],
            width=array.shape[2],
            colorspace=3,
            encoded_image_string=encode_gif(array, fps),
        )
        self._write(step, self._summary_pb2.Summary.Value(tag=tag, image=encoded))

    def flush(self) -> None:
        """Write pending events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file. Idempotent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
