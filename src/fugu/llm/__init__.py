"""Language models as policies: token tasks, a text env API, an LM policy, GRPO/DAPO on tokens,
SFT, reward models, AI feedback and constitutional principles.

Modules (import what you need; nothing is imported here):

- :mod:`fugu.llm.tokenizer`: a character-level tokenizer with pad/bos/eos;
- :mod:`fugu.llm.tasks`: seeded arithmetic and countdown problems with verifiers;
- :mod:`fugu.llm.textenv`: the text-action env interface, a task env and a text grid world;
- :mod:`fugu.llm.policy`: a causal LM as a policy (sampling, KV cache, action scoring, value
  head, LoRA);
- :mod:`fugu.llm.agent`: play a policy on a text env (valid actions or free generation);
- :mod:`fugu.llm.store`: save and load tiny policies;
- :mod:`fugu.llm.sft`: teacher-forced warm start on generated solutions;
- :mod:`fugu.llm.grpo`: GRPO and DAPO on token sequences;
- :mod:`fugu.llm.reward`: preference datasets and a Bradley-Terry reward model;
- :mod:`fugu.llm.feedback`: AI-feedback labellers (rule- and model-based);
- :mod:`fugu.llm.constitution`: written principles as penalties, critique and revision;
- :mod:`fugu.llm.rlhf`: GRPO against a learned reward (RLHF/RLAIF).
"""
