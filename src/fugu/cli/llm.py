"""``fugu llm sft|grpo|reward-model``: train tiny language-model policies on token tasks.

- ``fugu llm sft --task arithmetic --steps 300 --out runs/lm``: a tiny transformer from scratch,
  teacher-forced on the task's generated solutions; reports held-out accuracy.
- ``fugu llm grpo --init runs/lm --steps 40 [--dapo]``: GRPO (or DAPO with ``--dapo``; every
  switch also has its own flag) against the task's verifier; held-out accuracy before and after.
- ``fugu llm reward-model --task arithmetic``: a Bradley-Terry reward model on synthetic
  correct-over-wrong preferences; held-out pairwise accuracy.
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The three subcommands (building the parser imports no torch)."""
    sub = parser.add_subparsers(dest="llm_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--task", choices=["arithmetic", "countdown"], default="arithmetic")
        p.add_argument("--digits", type=int, default=2, help="arithmetic operand width")
        p.add_argument("--max-operand", type=int, default=19, help="arithmetic largest operand")
        p.add_argument("--numbers", type=int, default=3, help="countdown numbers per problem")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
        p.add_argument("--eval-size", type=int, default=200, help="held-out problems scored")

    sft = sub.add_parser("sft", help="supervised warm start on generated solutions")
    common(sft)
    sft.add_argument("--steps", type=int, default=300)
    sft.add_argument("--batch-size", type=int, default=64)
    sft.add_argument("--lr", type=float, default=3e-3)
    sft.add_argument("--layers", type=int, default=2)
    sft.add_argument("--d-model", type=int, default=64)
    sft.add_argument("--heads", type=int, default=4)
    sft.add_argument("--arch", choices=["gpt2", "llama"], default="gpt2")
    sft.add_argument("--init", default=None, help="continue from a saved policy directory")
    sft.add_argument("--out", default=None, help="directory to save the policy in")

    grpo = sub.add_parser("grpo", help="GRPO / DAPO against the task's verifier")
    common(grpo)
    grpo.add_argument("--init", required=True, help="saved policy directory (from 'fugu llm sft')")
    grpo.add_argument("--out", default=None, help="directory to save the trained policy in")
    grpo.add_argument("--steps", type=int, default=40)
    grpo.add_argument("--group-size", type=int, default=8)
    grpo.add_argument("--prompts", type=int, default=32, help="prompts (groups) per step")
    grpo.add_argument("--minibatches", type=int, default=4, help="optimiser steps per batch")
    grpo.add_argument("--max-new-tokens", type=int, default=0, help="0: the task's default")
    grpo.add_argument("--lr", type=float, default=3e-4, help="(benchmarked: 1e-3 stalls)")
    grpo.add_argument("--temperature", type=float, default=1.0)
    grpo.add_argument("--kl-coef", type=float, default=0.0)
    grpo.add_argument("--dapo", action="store_true", help="turn on all four DAPO techniques")
    grpo.add_argument("--clip-high", type=float, default=None)
    grpo.add_argument("--token-level", action="store_true")
    grpo.add_argument("--dynamic-sampling", action="store_true")
    grpo.add_argument("--overlong-buffer", type=int, default=0)
    grpo.add_argument("--overlong-filter", action="store_true")

    rm = sub.add_parser("reward-model", help="Bradley-Terry reward model on preferences")
    common(rm)
    rm.add_argument("--pairs", type=int, default=2000, help="training preference pairs")
    rm.add_argument("--steps", type=int, default=300)
    rm.add_argument("--lr", type=float, default=1e-3)


def _task(args: argparse.Namespace) -> tuple[Any, int]:
    from fugu.llm.tasks import ArithmeticTask, CountdownTask

    if args.task == "arithmetic":
        task = ArithmeticTask(max_digits=args.digits, max_operand=args.max_operand)
        return task, args.digits + 3
    return CountdownTask(num_numbers=args.numbers), 6 * args.numbers


def _progress(label: str, total: int, every: int) -> Any:
    start = time.perf_counter()

    def report(step: int, value: float) -> None:
        if step % every == 0 or step == total - 1:
            rate = (step + 1) / max(time.perf_counter() - start, 1e-9)
            print(f"{label} {step + 1}/{total}  loss {value:.4f}  {rate:.1f} steps/s", flush=True)

    return report


def _held_out(args: argparse.Namespace, task: Any) -> Any:
    import numpy as np

    return task.sample(np.random.default_rng(10_000 + args.seed), args.eval_size, "test")


def _sft(args: argparse.Namespace) -> int:
    from fugu.llm.policy import build_tiny_lm
    from fugu.llm.sft import SFTConfig, evaluate, train_sft
    from fugu.llm.store import load_policy, save_policy
    from fugu.llm.tokenizer import CharTokenizer

    task, budget = _task(args)
    if args.init:
        policy = load_policy(args.init)
    else:
        policy = build_tiny_lm(
            CharTokenizer(),
            n_layer=args.layers,
            d_model=args.d_model,
            n_head=args.heads,
            arch=args.arch,
            seed=args.seed,
        )
    config = SFTConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr)
    every = max(1, args.steps // 10)
    train_sft(
        policy, task.sample, config, seed=args.seed, callback=_progress("sft", args.steps, every)
    )
    acc = evaluate(policy, task, _held_out(args, task), max_new_tokens=budget)
    print(f"held-out accuracy ({task.name}): {acc:.3f}")
    if args.out:
        print(f"saved to {save_policy(policy, args.out)}")
    return 0


def _grpo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fugu.llm.grpo import TokenGRPO, TokenGRPOConfig, task_reward
    from fugu.llm.sft import evaluate
    from fugu.llm.store import load_policy, save_policy

    task, budget = _task(args)
    budget = args.max_new_tokens or budget
    policy = load_policy(args.init)
    base = (
        TokenGRPOConfig.dapo(max_new_tokens=budget)
        if args.dapo
        else TokenGRPOConfig(
            max_new_tokens=budget,
            clip_high=args.clip_high,
            token_level=args.token_level,
            dynamic_sampling=args.dynamic_sampling,
            overlong_buffer=args.overlong_buffer,
            overlong_filter=args.overlong_filter,
        )
    )
    config = replace(
        base,
        group_size=args.group_size,
        prompts_per_step=args.prompts,
        minibatches=args.minibatches,
        lr=args.lr,
        temperature=args.temperature,
        kl_coef=args.kl_coef,
    )
    held_out = _held_out(args, task)
    before = evaluate(policy, task, held_out, max_new_tokens=budget)
    print(f"held-out accuracy before: {before:.3f}")
    trainer = TokenGRPO(policy, task_reward(task), config, seed=args.seed)
    every = max(1, args.steps // 10)
    start = time.perf_counter()
    for step in range(args.steps):
        m = trainer.step(task.sample)
        if step % every == 0 or step == args.steps - 1:
            print(
                f"grpo {step + 1}/{args.steps}  score {m['score']:.3f}  "
                f"refills {m['refill_rounds']:.0f}  clip {m['clip_frac']:.3f}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
    after = evaluate(policy, task, held_out, max_new_tokens=budget)
    print(f"held-out accuracy after:  {after:.3f}  ({after - before:+.3f})")
    if args.out:
        print(f"saved to {save_policy(policy, args.out)}")
    return 0


def _reward_model(args: argparse.Namespace) -> int:
    import numpy as np

    from fugu.llm.reward import arithmetic_preferences, build_reward_model, train_bradley_terry
    from fugu.llm.tasks import ArithmeticTask
    from fugu.llm.tokenizer import CharTokenizer

    task, _ = _task(args)
    if not isinstance(task, ArithmeticTask):
        print("reward-model: synthetic preferences exist for --task arithmetic only")
        return 2
    rng = np.random.default_rng(args.seed)
    train = arithmetic_preferences(task, rng, args.pairs, "train")
    test = arithmetic_preferences(task, rng, max(args.pairs // 4, 1), "test")
    model = build_reward_model(CharTokenizer(), seed=args.seed)
    every = max(1, args.steps // 10)
    report = train_bradley_terry(
        model,
        train,
        test,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        callback=_progress("reward-model", args.steps, every),
    )
    print(
        f"pairwise accuracy: train {report.train_accuracy:.3f}, held-out {report.test_accuracy:.3f}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to the subcommand."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    handlers = {"sft": _sft, "grpo": _grpo, "reward-model": _reward_model}
    return handlers[args.llm_command](args)
