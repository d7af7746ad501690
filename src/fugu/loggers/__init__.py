"""Metric sinks: JSONL, TensorBoard, Weights & Biases, behind one :class:`Logger` protocol.

Loggers take numbers and numpy arrays only (they are an L1 layer: no torch). The TensorBoard
and W&B sinks import their libraries when constructed and raise
:class:`~fugu.core.errors.MissingDependencyError` naming the extra when they are missing.
"""

from fugu.loggers.base import Logger, MultiLogger, NullLogger
from fugu.loggers.jsonl import JsonlLogger, read_jsonl

__all__ = ["JsonlLogger", "Logger", "MultiLogger", "NullLogger", "read_jsonl"]
