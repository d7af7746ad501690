"""Atomic checkpoints of the full training state and their discovery on resume."""
