from __future__ import annotations

import pytest
import torch

from fugu.llm.policy import LMPolicy, build_tiny_lm
from fugu.llm.tokenizer import CharTokenizer


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def tok() -> CharTokenizer:
    return CharTokenizer()


@pytest.fixture
def tiny(tok: CharTokenizer) -> LMPolicy:
    return build_tiny_lm(tok, n_layer=1, d_model=32, n_head=2, seed=0)
