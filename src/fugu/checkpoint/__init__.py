"""Atomic checkpoints of the full training state and their discovery on resume.

See :mod:`fugu.checkpoint.store` for the on-disk format.
"""

from fugu.checkpoint.store import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    find_latest_valid,
    list_checkpoints,
    load_checkpoint,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
)

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "find_latest_valid",
    "list_checkpoints",
    "load_checkpoint",
    "load_weights",
    "prune_checkpoints",
    "save_checkpoint",
    "verify_checkpoint",
]
