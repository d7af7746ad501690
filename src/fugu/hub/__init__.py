"""HuggingFace Hub: push a trained policy (model card, config, safetensors, ONNX) and pull it.

See :func:`push` and :func:`pull`; ``docs/hub.md`` shows the repository's layout.
"""

from fugu.hub.card import model_card
from fugu.hub.repo import REPO_FILES, PushResult, pull, push, stage

__all__ = ["REPO_FILES", "PushResult", "model_card", "pull", "push", "stage"]
