"""Metric sinks: JSONL, TensorBoard, Weights & Biases."""
