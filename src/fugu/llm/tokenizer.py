"""A character-level tokenizer: every character of a fixed alphabet is one token.

Tiny models trained from scratch here need no subword vocabulary; a real checkpoint brings
its own tokenizer (anything with ``encode``/``decode`` and ``pad_id``/``bos_id``/``eos_id``
works with :class:`fugu.llm.policy.LMPolicy`).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_ALPHABET", "CharTokenizer"]

#: Digits, arithmetic, letters, a little punctuation, space and newline.
DEFAULT_ALPHABET = string.digits + "+-*/()=<>?:,.;!'#_" + string.ascii_lowercase + " \n"

_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class CharTokenizer:
    """Maps characters to ids; ids 0-3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``.

    Args:
        alphabet: the characters with their own token (duplicates are an error).

    Example:
        >>> tok = CharTokenizer()
        >>> ids = tok.encode("12+3=")
        >>> tok.decode(ids)
        '12+3='
        >>> tok.decode(tok.encode("7", bos=True, eos=True))
        '7'
    """

    pad_id = 0
    bos_id = 1
    eos_id = 2
    unk_id = 3

    def __init__(self, alphabet: str = DEFAULT_ALPHABET) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("alphabet has repeated characters")
        self.alphabet = alphabet
        self._to_id = {ch: i + len(_SPECIALS) for i, ch in enumerate(alphabet)}
        self._to_char = dict(enumerate(_SPECIALS)) | {i: ch for ch, i in self._to_id.items()}

    @property
    def vocab_size(self) -> int:
        """Number of ids (specials included)."""
        return len(self.alphabet) + len(_SPECIALS)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text`` (unknown characters become ``<unk>``)."""
        ids = [self._to_id.get(ch, self.unk_id) for ch in text]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Sequence[int] | np.ndarray, *, stop_at_eos: bool = True) -> str:
        """Text of ``ids``: specials are dropped, decoding stops at the first ``<eos>``."""
        out: list[str] = []
        for raw in ids:
            i = int(raw)
            if i == self.eos_id and stop_at_eos:
                break
            if i >= len(_SPECIALS):
                out.append(self._to_char.get(i, ""))
            elif i == self.unk_id:
                out.append("?")
        return "".join(out)

    def batch_decode(self, rows: Sequence[Sequence[int]] | np.ndarray) -> list[str]:
        """:meth:`decode` of each row."""
        return [self.decode(row) for row in rows]
