"""A causal language model as a policy.

:class:`LMPolicy` wraps any ``transformers`` causal LM (here built from a tiny config and
trained from scratch; a real checkpoint works the same way) with a tokenizer, and gives RL what
it needs: batched sampling with a KV cache and the usual controls (temperature, top-k, top-p,
new-token budget), per-token log-probabilities of given completions (the GRPO/PPO ratio),
scoring of a set of valid actions by their length-normalised log-likelihood (as in GLAM and
TWOSOME), an optional value head, and optional LoRA adapters (``peft``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from fugu.core.errors import missing_dependency

__all__ = [
    "Generation",
    "LMPolicy",
    "TokenizerLike",
    "apply_lora",
    "build_tiny_lm",
    "sample_logits",
]


class TokenizerLike(Protocol):
    """The tokenizer surface :class:`LMPolicy` uses."""

    pad_id: int
    bos_id: int
    eos_id: int

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]: ...

    def decode(self, ids: Sequence[int], *, stop_at_eos: bool = True) -> str: ...


@dataclass
class Generation:
    """A batch of sampled completions.

    Attributes:
        prompt_ids: ``[B, P]`` left-padded prompt tokens.
        prompt_mask: ``[B, P]`` bool, real prompt tokens.
        completion_ids: ``[B, T]`` sampled tokens, ``pad`` after ``eos``.
        completion_mask: ``[B, T]`` bool, the sampled tokens up to and including ``eos``.
        truncated: ``[B]`` bool, rows that used the whole budget without ``eos``.
        texts: decoded completions (without ``eos``).
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    completion_ids: Tensor
    completion_mask: Tensor
    truncated: Tensor
    texts: list[str]

    @property
    def lengths(self) -> Tensor:
        """``[B]`` tokens per completion (``eos`` included)."""
        return self.completion_mask.sum(-1)

    def select(self, rows: Tensor) -> Generation:
        """The rows ``rows`` (an index or bool tensor) of this batch."""
        if rows.dtype == torch.bool:
            rows = rows.nonzero().flatten()
        idx = rows.tolist()
        return Generation(
            self.prompt_ids[rows],
            self.prompt_mask[rows],
            self.completion_ids[rows],
            self.completion_mask[rows],
            self.truncated[rows],
            [self.texts[i] for i in idx],
        )

    @staticmethod
    def concat(parts: Sequence[Generation], pad_id: int) -> Generation:
        """Stack batches (prompts re-left-padded, completions re-right-padded)."""
        p = max(g.prompt_ids.shape[1] for g in parts)
        t = max(g.completion_ids.shape[1] for g in parts)

        def left(x: Tensor, width: int, value: int | bool) -> Tensor:
            return nn.functional.pad(x, (width - x.shape[1], 0), value=value)

        def right(x: Tensor, width: int, value: int | bool) -> Tensor:
            return nn.functional.pad(x, (0, width - x.shape[1]), value=value)

        return Generation(
            torch.cat([left(g.prompt_ids, p, pad_id) for g in parts]),
            torch.cat([left(g.prompt_mask, p, False) for g in parts]),
            torch.cat([right(g.completion_ids, t, pad_id) for g in parts]),
            torch.cat([right(g.completion_mask, t, False) for g in parts]),
            torch.cat([g.truncated for g in parts]),
            [s for g in parts for s in g.texts],
        )


def sample_logits(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token per row of ``[B, V]`` logits: greedy at ``temperature == 0``, otherwise
    sampled from the temperature-scaled distribution restricted to the ``top_k`` most likely
    tokens (0: all) and to the smallest set whose mass reaches ``top_p``.

    Example:
        >>> sample_logits(torch.tensor([[0.0, 3.0, 1.0]]), temperature=0.0).tolist()
        [1]
        >>> g = torch.Generator().manual_seed(0)
        >>> sample_logits(torch.tensor([[0.0, 3.0, 1.0]]), top_k=1, generator=g).tolist()
        [1]
    """
    if temperature < 0 or not 0.0 < top_p <= 1.0 or top_k < 0:
        raise ValueError(f"bad sampling controls: T={temperature}, top_k={top_k}, top_p={top_p}")
    if temperature == 0.0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, -1)
        # drop a token when the mass before it already reaches top_p (the first always stays)
        drop = (probs.cumsum(-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, -torch.inf)
        logits = torch.full_like(logits, -torch.inf).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _positions(mask: Tensor) -> Tensor:
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


class LMPolicy(nn.Module):
    """A causal LM and its tokenizer, as an RL policy.

    Args:
        model: a ``transformers`` causal LM (or a peft model around one).
        tokenizer: a :class:`TokenizerLike` (e.g. :class:`fugu.llm.tokenizer.CharTokenizer`).
        value_head: add a linear value head on the last hidden state.
    """

    def __init__(self, model: Any, tokenizer: TokenizerLike, *, value_head: bool = False) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        hidden = int(getattr(model.config, "hidden_size", 0) or model.config.n_embd)
        self.value_head = nn.Linear(hidden, 1) if value_head else None
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.model.parameters()).device

    def encode_prompts(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``[B, P]`` left-padded ids (each prompt after ``bos``) and their bool mask."""
        tok = self.tokenizer
        rows = [tok.encode(p, bos=True) for p in prompts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = torch.tensor(r)
            mask[i, width - len(r) :] = True
        return ids.to(self.device), mask.to(self.device)

    def encode_completions(self, completions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``[B, T]`` right-padded ids (each completion followed by ``eos``) and their mask."""
        tok = self.tokenizer
        rows = [tok.encode(c, eos=True) for c in completions]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = True
        return ids.to(self.device), mask.to(self.device)

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was)

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 16,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Generation:
        """Sample one completion per prompt, all rows at once.

        Args:
            prompts: the prompt texts (repeat a prompt for several completions of it).
            max_new_tokens: budget; rows without ``eos`` by then are ``truncated``.
            temperature: 0 for greedy decoding.
            top_k: keep the ``k`` most likely tokens (0: all).
            top_p: nucleus mass.
            generator: the source of randomness (same seed, same completions).
            use_cache: reuse keys and values of past tokens (``False`` recomputes the whole
                sequence at each step; the outputs are the same).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        tok = self.tokenizer
        ids, mask = self.encode_prompts(prompts)
        full_ids, full_mask = ids, mask
        step_ids, step_pos = ids, _positions(mask)
        cache: Any = None
        finished = torch.zeros(len(prompts), dtype=torch.bool, device=ids.device)
        tokens: list[Tensor] = []
        counted: list[Tensor] = []
        with self._eval_mode():
            for _ in range(max_new_tokens):
                if use_cache:
                    kwargs = {self._cache_kw: cache} if cache is not None else {}
                    out = self.model(
                        input_ids=step_ids,
                        attention_mask=full_mask.long(),
                        position_ids=step_pos,
                        use_cache=True,
                        **kwargs,
                    )
                    cache = getattr(out, "cache", None) or out.past_key_values
                else:
                    out = self.model(
                        input_ids=full_ids,
                        attention_mask=full_mask.long(),
                        position_ids=_positions(full_mask),
                        use_cache=False,
                    )
                nxt = sample_logits(
                    out.logits[:, -1],
                    temperature=temperature,
                    top_k=top_k,
                    top_p=top_p,
                    generator=generator,
                )
                nxt = torch.where(finished, torch.full_like(nxt, tok.pad_id), nxt)
                counted.append(~finished)
                tokens.append(nxt)
                finished = finished | (nxt == tok.eos_id)
                step_pos = _positions(full_mask)[:, -1:] + 1
                full_ids = torch.cat([full_ids, nxt[:, None]], 1)
                full_mask = torch.cat(
                    [full_mask, torch.ones_like(nxt[:, None], dtype=torch.bool)], 1
                )
                step_ids = nxt[:, None]
                if bool(finished.all()):
                    break
        completion = torch.stack(tokens, 1)
        completion_mask = torch.stack(counted, 1)
        texts = [tok.decode(row.tolist()) for row in completion.cpu()]
        return Generation(ids, mask, completion, completion_mask, ~finished, texts)

    def _forward(self, ids: Tensor, mask: Tensor, *, hidden: bool = False) -> Any:
        return self.model(
            input_ids=ids,
            attention_mask=mask.long(),
            position_ids=_positions(mask),
            use_cache=False,
            output_hidden_states=hidden,
        )

    def token_logprobs(
        self,
        prompt_ids: Tensor,
        prompt_mask: Tensor,
        completion_ids: Tensor,
        completion_mask: Tensor,
        *,
        temperature: float = 1.0,
    ) -> Tensor:
        """``[B, T]`` log-probability of each completion token given the prompt and the tokens
        before it (differentiable; values at masked positions are meaningless)."""
        ids = torch.cat([prompt_ids, completion_ids], 1)
        mask = torch.cat([prompt_mask, completion_mask], 1)
        logits = self._forward(ids, mask).logits[:, prompt_ids.shape[1] - 1 : -1].float()
        if temperature != 1.0:
            logits = logits / temperature
        logp = torch.log_softmax(logits, -1)
        return logp.gather(-1, completion_ids[..., None]).squeeze(-1)

    def generation_logprobs(self, gen: Generation) -> Tensor:
        """:meth:`token_logprobs` of a :class:`Generation`."""
        return self.token_logprobs(
            gen.prompt_ids, gen.prompt_mask, gen.completion_ids, gen.completion_mask
        )

    def values(self, prompt_ids: Tensor, prompt_mask: Tensor) -> Tensor:
        """``[B]`` value-head estimate at the last prompt token."""
        if self.value_head is None:
            raise ValueError("this policy has no value head (build it with value_head=True)")
        out = self._forward(prompt_ids, prompt_mask, hidden=True)
        last = out.hidden_states[-1][:, -1]
        return self.value_head(last.float()).squeeze(-1)

    def score_actions(
        self,
        observations: Sequence[str],
        actions: Sequence[Sequence[str]],
        *,
        normalize: Literal["token", "none"] = "token",
    ) -> list[Tensor]:
        """Log-likelihood of each valid action (followed by ``eos``) after its observation.

        Args:
            observations: one prompt per decision.
            actions: the admissible action strings of each decision.
            normalize: ``"token"`` divides each action's summed log-probability by its token
                count (so long actions are not penalised for their length), ``"none"`` keeps
                the sum.

        Returns:
            One ``[num_actions]`` tensor per observation (differentiable); a softmax over it
            is the policy's distribution over the valid actions.
        """
        if len(observations) != len(actions) or any(len(a) == 0 for a in actions):
            raise ValueError("need one non-empty action list per observation")
        flat_obs = [o for o, acts in zip(observations, actions) for _ in acts]
        flat_act = [a for acts in actions for a in acts]
        p_ids, p_mask = self.encode_prompts(flat_obs)
        c_ids, c_mask = self.encode_completions(flat_act)
        logp = self.token_logprobs(p_ids, p_mask, c_ids, c_mask)
        weights = c_mask.to(logp.dtype)
        total = (logp * weights).sum(-1)
        if normalize == "token":
            total = total / weights.sum(-1)
        return list(torch.split(total, [len(a) for a in actions]))

    def act(
        self,
        observation: str,
        actions: Sequence[str],
        *,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[int, Tensor]:
        """Choose among ``actions``: the index and the log-probability of the choice under the
        softmax of the normalised scores."""
        with torch.no_grad():
            scores = self.score_actions([observation], [actions])[0]
        logp = torch.log_softmax(scores, -1)
        if greedy:
            index = int(logp.argmax())
        else:
            index = int(torch.multinomial(logp.exp(), 1, generator=generator))
        return index, logp[index]


def build_tiny_lm(
    tokenizer: TokenizerLike,
    *,
    n_layer: int = 2,
    d_model: int = 64,
    n_head: int = 4,
    max_positions: int = 64,
    arch: Literal["gpt2", "llama"] = "gpt2",
    value_head: bool = False,
    seed: int = 0,
) -> LMPolicy:
    """A small randomly initialised causal LM (``transformers``), seeded, dropout off.

    Example:
        >>> from fugu.llm.tokenizer import CharTokenizer
        >>> policy = build_tiny_lm(CharTokenizer(), n_layer=1, d_model=16, n_head=2)
        >>> len(policy.generate(["1+1="], max_new_tokens=3).texts)
        1
    """
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise missing_dependency("transformers", "llm") from err
    common: dict[str, Any] = {
        "vocab_size": tokenizer.vocab_size,
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "pad_token_id": tokenizer.pad_id,
    }
    if arch == "gpt2":
        config: Any = transformers.GPT2Config(
            n_positions=max_positions,
            n_embd=d_model,
            n_layer=n_layer,
            n_head=n_head,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **common,
        )
    elif arch == "llama":
        config = transformers.LlamaConfig(
            hidden_size=d_model,
            intermediate_size=4 * d_model,
            num_hidden_layers=n_layer,
            num_attention_heads=n_head,
            num_key_value_heads=n_head,
            max_position_embeddings=max_positions,
            **common,
        )
    else:
        raise ValueError(f"unknown arch {arch!r}; choose 'gpt2' or 'llama'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(config)
        policy = LMPolicy(model, tokenizer, value_head=value_head)
    model.eval()
    return policy


def apply_lora(
    policy: LMPolicy,
    *,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: Sequence[str] | None = None,
) -> LMPolicy:
    """Wrap the policy's model with LoRA adapters (``peft``); only the adapters (and the value
    head) stay trainable. ``target_modules`` defaults to the attention projections of GPT-2
    (``c_attn``) or Llama (``q_proj``, ``v_proj``)."""
    try:
        import peft
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise missing_dependency("peft", "llm") from err
    if target_modules is None:
        kind = getattr(policy.model.config, "model_type", "")
        target_modules = ["c_attn"] if kind == "gpt2" else ["q_proj", "v_proj"]
    config = peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        fan_in_fan_out=getattr(policy.model.config, "model_type", "") == "gpt2",
    )
    policy.model = peft.get_peft_model(policy.model, config)
    return policy
