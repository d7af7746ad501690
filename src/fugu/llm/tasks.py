"""Procedural token tasks with verifiable answers: arithmetic and countdown.

A :class:`Problem` holds a prompt, its reference answer and a worked solution (the text an
SFT warm start imitates). Each task draws problems from a ``numpy`` generator (same seed, same
problems), keeps a held-out split apart from the training split, and scores a completion with
its verifier (1.0 correct, 0.0 not). :class:`ReasoningGymTask` adapts any dataset of the
optional ``reasoning-gym`` package.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Protocol

import numpy as np

from fugu.core.errors import missing_dependency

__all__ = [
    "ArithmeticTask",
    "CountdownTask",
    "Problem",
    "ReasoningGymTask",
    "Task",
    "evaluate_expression",
]

Split = Literal["train", "test"]


@dataclass(frozen=True)
class Problem:
    """One prompt with its answer.

    Attributes:
        prompt: the text the model continues.
        answer: the reference answer (for display and exact-match tasks).
        solution: a correct completion (what SFT imitates).
        meta: task-specific data the verifier needs (numbers, target...).
    """

    prompt: str
    answer: str
    solution: str
    meta: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """What GRPO, SFT and the benchmarks need from a task."""

    name: str

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train") -> list[Problem]:
        """``n`` problems of ``split`` drawn with ``rng``."""
        ...

    def verify(self, problem: Problem, completion: str) -> float:
        """Reward of ``completion`` for ``problem`` (1.0 correct, 0.0 wrong)."""
        ...


def _held_out(key: int, test_fraction: float) -> bool:
    # A fixed multiplicative hash: the split depends on the problem only, never on the seed.
    return ((key * 2654435761) % 2**32) / 2**32 < test_fraction


class ArithmeticTask:
    """``a+b=`` (or ``-``, ``*``) with operands of 1 to ``max_digits`` digits.

    The prompt is ``"12+7="``, the solution ``"19"``; the verifier compares the completion
    (stripped) with the exact result. A fixed fraction of operand pairs is held out: ``split
    ="test"`` draws only those, ``"train"`` never does.

    Args:
        max_digits: largest operand width.
        max_operand: largest operand (default: ``10**max_digits - 1``).
        ops: operators to draw from.
        test_fraction: share of operand pairs in the held-out split.

    Example:
        >>> task = ArithmeticTask(max_digits=1)
        >>> p = task.sample(np.random.default_rng(0), 1)[0]
        >>> task.verify(p, p.solution), task.verify(p, "x")
        (1.0, 0.0)
    """

    def __init__(
        self,
        max_digits: int = 2,
        ops: str = "+",
        test_fraction: float = 0.2,
        max_operand: int | None = None,
    ) -> None:
        if max_digits < 1 or not ops or set(ops) - set("+-*"):
            raise ValueError(f"need max_digits >= 1 and ops from '+-*', got {max_digits}, {ops!r}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.max_digits = max_digits
        self.high = 10**max_digits if max_operand is None else min(max_operand + 1, 10**max_digits)
        self.ops = ops
        self.test_fraction = test_fraction
        self.name = f"arithmetic{max_digits}{ops}" + (f"<={max_operand}" if max_operand else "")

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train") -> list[Problem]:
        """``n`` problems of ``split``."""
        high = self.high
        out: list[Problem] = []
        while len(out) < n:
            a, b = (int(v) for v in rng.integers(0, high, size=2))
            op = self.ops[int(rng.integers(len(self.ops)))]
            key = (a * high + b) * 3 + "+-*".index(op)
            if _held_out(key, self.test_fraction) != (split == "test"):
                continue
            out.append(self._make(a, op, b))
        return out

    def problems(self, split: Split = "test") -> list[Problem]:
        """Every problem of ``split``, in a fixed order (small operand widths only)."""
        if self.high > 100:
            raise ValueError("enumerating problems needs operands below 100")
        high = self.high
        out = []
        for op in self.ops:
            for a in range(high):
                for b in range(high):
                    key = (a * high + b) * 3 + "+-*".index(op)
                    if _held_out(key, self.test_fraction) == (split == "test"):
                        out.append(self._make(a, op, b))
        return out

    @staticmethod
    def _make(a: int, op: str, b: int) -> Problem:
        value = a + b if op == "+" else a - b if op == "-" else a * b
        return Problem(f"{a}{op}{b}=", str(value), str(value), {"value": value})

    def verify(self, problem: Problem, completion: str) -> float:
        """1.0 when the completion is exactly the result."""
        return 1.0 if completion.strip() == problem.answer else 0.0


def evaluate_expression(text: str) -> tuple[Fraction, list[int]] | None:
    """Value and literals of an arithmetic expression of integers, ``+ - * /`` and brackets.

    Returns ``None`` for anything else (names, calls, powers, division by zero, bad syntax):
    the expression is walked node by node, never ``eval``-ed.

    Example:
        >>> evaluate_expression("(3+5)*2")
        (Fraction(16, 1), [3, 5, 2])
        >>> evaluate_expression("__import__('os')") is None
        True
    """
    if len(text) > 64 or not re.fullmatch(r"[0-9+\-*/() ]+", text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    literals: list[int] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            literals.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right  # ZeroDivisionError caught below
        raise ValueError("unsupported")

    try:
        value = walk(tree.body)
    except (ValueError, ZeroDivisionError):
        return None
    return value, literals


class CountdownTask:
    """Reach a target from given numbers with ``+ - *`` (each number at most once).

    The prompt is ``"3 5 2>16:"``; a solution is an expression such as ``"(3+5)*2"``. The
    verifier accepts any expression whose value is the target and whose literals are a
    sub-multiset of the given numbers.

    Args:
        num_numbers: how many numbers per problem (2 to 4).
        max_number: numbers are drawn from ``1..max_number``.
        test_fraction: share of number sets in the held-out split.

    Example:
        >>> task = CountdownTask(num_numbers=3)
        >>> p = task.sample(np.random.default_rng(1), 1)[0]
        >>> task.verify(p, p.solution)
        1.0
    """

    def __init__(self, num_numbers: int = 3, max_number: int = 9, test_fraction: float = 0.2):
        if not 2 <= num_numbers <= 4 or max_number < 2:
            raise ValueError(f"need 2 <= num_numbers <= 4 and max_number >= 2, got {num_numbers}")
        self.num_numbers = num_numbers
        self.max_number = max_number
        self.test_fraction = test_fraction
        self.name = f"countdown{num_numbers}"

    def _expression(self, rng: np.random.Generator, numbers: list[int]) -> str:
        parts = [str(v) for v in numbers]
        while len(parts) > 1:
            i = int(rng.integers(len(parts) - 1))
            op = "+-*"[int(rng.integers(3))]
            left, right = parts[i], parts[i + 1]
            joined = f"{left}{op}{right}"
            parts[i : i + 2] = [f"({joined})" if len(parts) > 2 else joined]
        return parts[0]

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train") -> list[Problem]:
        """``n`` problems of ``split`` (targets are positive integers)."""
        out: list[Problem] = []
        while len(out) < n:
            numbers = [int(v) for v in rng.integers(1, self.max_number + 1, self.num_numbers)]
            expr = self._expression(rng, numbers)
            result = evaluate_expression(expr)
            assert result is not None
            value = result[0]
            if value <= 0 or value.denominator != 1:
                continue
            target = int(value)
            key = hash_numbers(numbers, target)
            if _held_out(key, self.test_fraction) != (split == "test"):
                continue
            prompt = " ".join(str(v) for v in numbers) + f">{target}:"
            out.append(Problem(prompt, str(target), expr, {"numbers": numbers, "target": target}))
        return out

    def verify(self, problem: Problem, completion: str) -> float:
        """1.0 when the expression reaches the target using the given numbers at most once."""
        result = evaluate_expression(completion.strip())
        if result is None:
            return 0.0
        value, literals = result
        if value != problem.meta["target"]:
            return 0.0
        return 1.0 if not Counter(literals) - Counter(problem.meta["numbers"]) else 0.0


def hash_numbers(numbers: list[int], target: int) -> int:
    """An order-independent integer key of a countdown problem (for the held-out split)."""
    key = target
    for v in sorted(numbers):
        key = key * 131 + v
    return key


class ReasoningGymTask:
    """A ``reasoning-gym`` dataset as a :class:`Task` (needs the ``llm`` extra).

    The dataset's questions are prompts, its ``score_answer`` is the verifier; train and test
    splits are different dataset seeds.

    Args:
        dataset: a reasoning-gym dataset name (e.g. ``"basic_arithmetic"``).
        size: entries per split.
        **kwargs: the dataset's own configuration.
    """

    def __init__(self, dataset: str, size: int = 1000, **kwargs: Any) -> None:
        try:
            import reasoning_gym
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise missing_dependency("reasoning_gym", "llm") from err
        self._rg = reasoning_gym
        self.name = f"rg:{dataset}"
        self._data = {
            split: reasoning_gym.create_dataset(dataset, size=size, seed=seed, **kwargs)
            for split, seed in (("train", 0), ("test", 1))
        }

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train") -> list[Problem]:
        """``n`` entries of ``split`` drawn with replacement."""
        data = self._data[split]
        out = []
        for i in rng.integers(0, len(data), n):
            entry = data[int(i)]
            answer = str(entry["answer"])
            out.append(Problem(str(entry["question"]), answer, answer, {"entry": entry}))
        return out

    def verify(self, problem: Problem, completion: str) -> float:
        """The dataset's own score of ``completion``."""
        data = self._data["train"]
        return float(data.score_answer(completion.strip(), problem.meta["entry"]))
