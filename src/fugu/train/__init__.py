"""The training loop: collection, updates, evaluation, callbacks, checkpoints."""
