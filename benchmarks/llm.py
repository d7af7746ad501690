"""GRPO and DAPO on a tiny transformer trained from scratch on CPU.

Per seed: a 2-layer, d=64 GPT-2 (``transformers``, character tokenizer) is warm-started by SFT
on generated solutions of 1-2 digit addition (operands 0..19; a fixed 30% of operand pairs is
held out and never trained on). The solutions come from a noisy teacher that forgets the carry
on half of the carrying sums, so SFT alone learns both the right and the wrong answer and the
verifier's reward has something to fix. Then each rung of the DAPO ladder trains a copy of that SFT
model with GRPO for the same number of steps:

    grpo            symmetric clip 0.2, per-sequence loss averaging, no dynamic sampling
    +clip-higher    clip 0.2 / 0.28
    +token-level    token-level loss averaging
    +overlong       overlong filtering and the soft overlong punishment
    +dynamic        dynamic sampling with refill (= DAPO)

Greedy accuracy on all held-out problems is measured after SFT and after each run; rungs are
interleaved per seed so machine load hits all alike. A Bradley-Terry reward model is trained on
chosen (correct) / rejected (wrong) answers of training problems and scored on held-out ones.
Prints one JSON line per measurement and a summary with means and 95% t-intervals over seeds.

    python benchmarks/llm.py --first-seed 0 --seeds 1 --sft-steps 300 --grpo-steps 40 --prompts 32 \
        --minibatches 4 --rm-steps 0   # one seed of docs/grpo-llm.md
    python benchmarks/llm.py --summarize run*.jsonl   # the summary over saved seeds
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from fugu.llm.grpo import TokenGRPO, TokenGRPOConfig, task_reward
from fugu.llm.policy import build_tiny_lm
from fugu.llm.reward import arithmetic_preferences, build_reward_model, train_bradley_terry
from fugu.llm.sft import SFTConfig, evaluate, train_sft
from fugu.llm.tasks import ArithmeticTask, Problem
from fugu.llm.tokenizer import CharTokenizer

# t quantiles (two-sided 95%) for small samples
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = _T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, half


def noisy_teacher(task: ArithmeticTask, error_rate: float):  # type: ignore[no-untyped-def]
    """SFT data from a teacher that forgets the carry on ``error_rate`` of carrying sums."""

    def sample(rng: np.random.Generator, n: int) -> list[Problem]:
        out = []
        for p in task.sample(rng, n):
            a, b = (int(x) for x in p.prompt[:-1].split("+"))
            if a % 10 + b % 10 >= 10 and rng.random() < error_rate:
                p = replace(p, solution=str((a // 10 + b // 10) * 10 + (a + b) % 10))
            out.append(p)
        return out

    return sample


def ladder(base: TokenGRPOConfig) -> list[tuple[str, TokenGRPOConfig]]:
    """The DAPO ablation: each technique added to the previous rung."""
    clip = replace(base, clip_high=0.28)
    token = replace(clip, token_level=True)
    overlong = replace(
        token, overlong_filter=True, overlong_buffer=max(1, base.max_new_tokens // 4)
    )
    dynamic = replace(overlong, dynamic_sampling=True)
    return [
        ("grpo", base),
        ("+clip-higher", clip),
        ("+token-level", token),
        ("+overlong", overlong),
        ("+dynamic(=dapo)", dynamic),
    ]


def sampled_accuracy(policy, task, problems, budget: int, seed: int, draws: int = 4) -> float:  # type: ignore[no-untyped-def]
    """Mean accuracy of ``draws`` temperature-1 samples per problem (less coarse than greedy)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    return statistics.fmean(
        evaluate(policy, task, problems, max_new_tokens=budget, temperature=1.0, generator=gen)
        for _ in range(draws)
    )


def summarize(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """Means and 95% t-intervals over seeds of each stage; gains are paired with the seed's SFT."""
    runs = [r for r in records if "stage" in r and r["stage"] != "reward_model"]
    sft = {r["seed"]: r for r in runs if r["stage"] == "sft"}
    stages = list(dict.fromkeys(str(r["stage"]) for r in runs))
    out: list[dict[str, object]] = []
    previous = "sft"
    for name in stages:
        rows = [r for r in runs if r["stage"] == name and r["seed"] in sft]

        def col(key: str, rows: list[dict[str, object]] = rows) -> list[float]:
            return [float(r[key]) for r in rows if key in r]  # type: ignore[arg-type]

        def avg(key: str, digits: int = 3) -> float | None:
            values = col(key)
            return round(statistics.fmean(values), digits) if values else None

        mean, half = interval(col("held_out_accuracy"))
        line: dict[str, object] = {
            "summary": name,
            "held_out_accuracy": round(mean, 4),
            "ci95": round(half, 4),
            "seeds": len(rows),
            "cpu_s": avg("cpu_s", 1),
            "wall_s": avg("wall_s", 1),
        }
        if name != "sft":
            gains = col("gain_over_sft")
            d_mean, d_half = interval(gains)
            sampled = col("sampled_gain_over_sft")
            s_mean, s_half = interval(sampled) if sampled else (math.nan, math.nan)
            prev = {r["seed"]: r for r in runs if r["stage"] == previous}
            steps = [
                float(r["held_out_accuracy"]) - float(prev[r["seed"]]["held_out_accuracy"])  # type: ignore[arg-type]
                for r in rows
                if r["seed"] in prev
            ]
            p_mean, p_half = interval(steps) if steps else (math.nan, math.nan)
            line |= {
                "gain_over_sft": round(d_mean, 4),
                "gain_ci95": round(d_half, 4),
                "seeds_improved": sum(g > 0 for g in gains),
                "vs": previous,
                "gain_over_previous": _round(p_mean),
                "gain_over_previous_ci95": _round(p_half),
                "sampled_gain_over_sft": _round(s_mean),
                "sampled_gain_ci95": _round(s_half),
                "refill_rounds_per_step": avg("refill_rounds_per_step"),
                "sampling_cost_ratio": avg("sampling_cost_ratio"),
                "batch_fill": avg("batch_fill"),
            }
        out.append(line)
        previous = name
    return out


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=200)
    parser.add_argument("--grpo-steps", type=int, default=25)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--minibatches", type=int, default=2)
    parser.add_argument("--sft-lr", type=float, default=3e-3)
    parser.add_argument("--rungs", default="all", help="comma list of rung names, or 'all'")
    parser.add_argument(
        "--sft-control-steps",
        type=int,
        default=0,
        help="also continue SFT for this many steps from the SFT model (the more-SFT control)",
    )
    parser.add_argument("--rm-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--teacher-error", type=float, default=0.5)
    parser.add_argument(
        "--summarize", nargs="+", metavar="JSONL", help="only print the summary of saved runs"
    )
    args = parser.parse_args()
    if args.summarize:
        saved = []
        for path in args.summarize:
            with open(path) as f:
                saved += [json.loads(x) for x in f if x.strip()]
        for line in summarize(saved):
            emit(line)
        return
    torch.set_num_threads(args.threads)

    tok = CharTokenizer()
    task = ArithmeticTask(max_digits=2, max_operand=19, test_fraction=0.3)
    held_out = task.problems("test")
    budget = 4  # two digits, eos, and one token to spare
    base = TokenGRPOConfig(
        group_size=args.group_size,
        prompts_per_step=args.prompts,
        max_new_tokens=budget,
        lr=args.lr,
        minibatches=args.minibatches,
    )
    rungs = ladder(base)
    if args.rungs != "all":
        wanted = set(args.rungs.split(","))
        rungs = [r for r in rungs if r[0] in wanted]
    records: list[dict[str, object]] = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        policy = build_tiny_lm(tok, n_layer=2, d_model=64, n_head=4, seed=seed)
        start, cpu_start = time.perf_counter(), time.process_time()
        teacher = noisy_teacher(task, args.teacher_error)
        train_sft(policy, teacher, SFTConfig(steps=args.sft_steps, lr=args.sft_lr), seed=seed)
        sft_wall = time.perf_counter() - start
        sft_cpu = time.process_time() - cpu_start
        acc_sft = evaluate(policy, task, held_out, max_new_tokens=budget)
        sampled_sft = sampled_accuracy(policy, task, held_out, budget, seed)
        record: dict[str, object] = {
            "seed": seed,
            "stage": "sft",
            "held_out_accuracy": acc_sft,
            "sampled_accuracy": sampled_sft,
            "wall_s": sft_wall,
            "cpu_s": sft_cpu,
            "problems": len(held_out),
        }
        records.append(record)
        emit(record)
        if args.sft_control_steps > 0:
            control = copy.deepcopy(policy)
            start, cpu_start = time.perf_counter(), time.process_time()
            more = SFTConfig(steps=args.sft_control_steps, lr=args.sft_lr)
            train_sft(control, teacher, more, seed=500 + seed)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            acc = evaluate(control, task, held_out, max_new_tokens=budget)
            sampled_acc = sampled_accuracy(control, task, held_out, budget, seed)
            record = {
                "seed": seed,
                "stage": f"sft+{args.sft_control_steps}",
                "held_out_accuracy": acc,
                "gain_over_sft": acc - acc_sft,
                "sampled_accuracy": sampled_acc,
                "sampled_gain_over_sft": sampled_acc - sampled_sft,
                "wall_s": wall,
                "cpu_s": cpu,
                "refill_rounds_per_step": 0.0,
                "sampling_cost_ratio": 1.0,
                "batch_fill": 1.0,
            }
            records.append(record)
            emit(record)
        for name, config in rungs:
            model = copy.deepcopy(policy)
            trainer = TokenGRPO(model, task_reward(task), config, seed=1000 + seed)
            rounds, sampled, fill = 0.0, 0.0, 0.0
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(args.grpo_steps):
                m = trainer.step(task.sample)
                rounds += m["refill_rounds"]
                sampled += m["completions_sampled"]
                fill += m["groups"] / config.prompts_per_step
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            acc = evaluate(model, task, held_out, max_new_tokens=budget)
            sampled_acc = sampled_accuracy(model, task, held_out, budget, seed)
            nominal = args.grpo_steps * config.prompts_per_step * config.group_size
            record = {
                "seed": seed,
                "stage": name,
                "held_out_accuracy": acc,
                "gain_over_sft": acc - acc_sft,
                "sampled_accuracy": sampled_acc,
                "sampled_gain_over_sft": sampled_acc - sampled_sft,
                "wall_s": wall,
                "cpu_s": cpu,
                "refill_rounds_per_step": rounds / args.grpo_steps,
                "completions_sampled": sampled,
                "sampling_cost_ratio": sampled / nominal,
                "batch_fill": fill / args.grpo_steps,
            }
            records.append(record)
            emit(record)

    for line in summarize(records):
        emit(line)

    if args.rm_steps > 0:
        accs = []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            train = arithmetic_preferences(task, rng, 2000, "train")
            test = arithmetic_preferences(task, rng, 500, "test")
            model = build_reward_model(tok, n_layer=2, d_model=64, n_head=4, seed=seed)
            start = time.perf_counter()
            report = train_bradley_terry(model, train, test, steps=args.rm_steps, seed=seed)
            accs.append(report.test_accuracy)
            emit(
                {
                    "seed": seed,
                    "stage": "reward_model",
                    "train_accuracy": report.train_accuracy,
                    "held_out_accuracy": report.test_accuracy,
                    "wall_s": time.perf_counter() - start,
                }
            )
        mean, half = interval(accs)
        emit(
            {
                "summary": "reward_model",
                "held_out_accuracy": round(mean, 4),
                "ci95": round(half, 4),
                "seeds": len(accs),
            }
        )


if __name__ == "__main__":
    main()
