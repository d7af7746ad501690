"""Trained policies out of fugu: ONNX, numpy-only and pure-Python runtimes, parity-checked."""

from fugu.export.api import FORMATS, ExportResult, export
from fugu.export.graph import ActorGraph, act, actor_graph

__all__ = ["FORMATS", "ActorGraph", "ExportResult", "act", "actor_graph", "export"]
