"""Save and load an :class:`~fugu.llm.policy.LMPolicy` built by
:func:`~fugu.llm.policy.build_tiny_lm` (safetensors weights, JSON config and alphabet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fugu.core.errors import missing_dependency
from fugu.llm.policy import LMPolicy
from fugu.llm.tokenizer import CharTokenizer

__all__ = ["load_policy", "save_policy"]


def save_policy(policy: LMPolicy, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``fugu_llm.json`` under ``directory``."""
    from safetensors.torch import save_model

    if not isinstance(policy.tokenizer, CharTokenizer):
        raise TypeError("save_policy stores CharTokenizer policies; save others with their tools")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_model(policy, str(out / "model.safetensors"))
    meta: dict[str, Any] = {
        "config": policy.model.config.to_dict(),
        "alphabet": policy.tokenizer.alphabet,
        "value_head": policy.value_head is not None,
    }
    (out / "fugu_llm.json").write_text(json.dumps(meta))
    return out


def load_policy(directory: str | Path) -> LMPolicy:
    """The policy written by :func:`save_policy`."""
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise missing_dependency("transformers", "llm") from err
    from safetensors.torch import load_model

    src = Path(directory)
    meta = json.loads((src / "fugu_llm.json").read_text())
    config = transformers.AutoConfig.for_model(**meta["config"])
    model = transformers.AutoModelForCausalLM.from_config(config)
    policy = LMPolicy(model, CharTokenizer(meta["alphabet"]), value_head=meta["value_head"])
    load_model(policy, str(src / "model.safetensors"))
    policy.eval()
    return policy
