from __future__ import annotations

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.llm.tasks import ArithmeticTask, CountdownTask, evaluate_expression
from fugu.llm.textenv import TaskEnv, TextGridWorld
from fugu.llm.tokenizer import DEFAULT_ALPHABET, CharTokenizer


def test_tokenizer_round_trip() -> None:
    tok = CharTokenizer()
    text = DEFAULT_ALPHABET + "12+34=46"
    assert tok.decode(tok.encode(text, bos=True, eos=True)) == text
    assert tok.encode("a", bos=True)[0] == tok.bos_id
    assert tok.decode([*tok.encode("x"), tok.eos_id, *tok.encode("y")]) == "x"
    assert tok.encode("A") == [tok.unk_id]  # unknown characters are not silently changed
    with pytest.raises(ValueError):
        CharTokenizer("aa")


def test_arithmetic_verifier_and_split() -> None:
    task = ArithmeticTask(max_digits=2, ops="+-*")
    rng = np.random.default_rng(0)
    problems = task.sample(rng, 200)
    assert all(task.verify(p, p.solution) == 1.0 for p in problems)
    assert all(task.verify(p, str(int(p.answer) + 1)) == 0.0 for p in problems)
    train = {p.prompt for p in problems}
    test = {p.prompt for p in task.sample(rng, 200, "test")}
    assert not train & test
    assert task.verify(task._make(12, "*", 7), " 84 ") == 1.0


def test_arithmetic_enumeration_partitions() -> None:
    task = ArithmeticTask(max_digits=2, max_operand=19, test_fraction=0.3)
    train, test = task.problems("train"), task.problems("test")
    assert len(train) + len(test) == 400
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    assert 0.2 < len(test) / 400 < 0.4


def test_tasks_are_seeded() -> None:
    for task in (ArithmeticTask(), CountdownTask()):
        a = task.sample(np.random.default_rng(3), 20)
        b = task.sample(np.random.default_rng(3), 20)
        assert a == b


def test_countdown_verifier() -> None:
    task = CountdownTask(num_numbers=3)
    problems = task.sample(np.random.default_rng(0), 100)
    assert all(task.verify(p, p.solution) == 1.0 for p in problems)
    p = problems[0]
    n = p.meta["numbers"]
    assert task.verify(p, str(p.meta["target"])) == float(p.meta["target"] in n)
    # using a number twice is wrong even when the value is right
    p2 = task.sample(np.random.default_rng(5), 1)[0]
    x = p2.meta["numbers"][0]
    doubled = f"{x}+{x}-{x}-{x}+{p2.solution}"
    assert task.verify(p2, doubled) == 0.0
    assert task.verify(p2, "") == 0.0
    assert evaluate_expression("1/0") is None
    assert evaluate_expression("2**3") is None
    assert evaluate_expression("(1+2") is None


def test_task_env() -> None:
    env = TaskEnv(ArithmeticTask(max_digits=1))
    with pytest.raises(APIUsageError):
        env.step("1")
    obs = env.reset(seed=1)
    assert obs.endswith("=") and env.valid_actions() is None
    out = env.step(env.problem.solution)
    assert out.done and out.reward == 1.0
    assert TaskEnv(ArithmeticTask()).reset(seed=4) == TaskEnv(ArithmeticTask()).reset(seed=4)


def test_text_grid_world_reaches_goal_along_shortest_path() -> None:
    env = TextGridWorld(size=4, num_walls=2, max_steps=20)
    for seed in range(5):
        obs = env.reset(seed=seed)
        assert obs.count("a") == 1 and obs.count("g") == 1 and obs.count("#") == 2
        dist = env.shortest_path_length()
        if dist is None:
            continue
        total, done, steps = 0.0, False, 0
        while not done:  # greedy walk by BFS distance
            best = min(
                env.valid_actions() or [],
                key=lambda a: _distance_after(env, a),
            )
            out = env.step(best)
            total, done, steps = total + out.reward, out.done, steps + 1
        assert out.info["reached"] and steps == dist
    with pytest.raises(ValueError):
        env.reset(seed=0)
        env.step("jump")


def _distance_after(env: TextGridWorld, action: str) -> float:
    saved = env.agent
    moves = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
    dr, dc = moves[action]
    cell = (saved[0] + dr, saved[1] + dc)
    if env._free(cell):
        env.agent = cell
    d = env.shortest_path_length()
    env.agent = saved
    return float("inf") if d is None else float(d)


def test_reasoning_gym_adapter() -> None:
    pytest.importorskip("reasoning_gym")
    from fugu.llm.tasks import ReasoningGymTask

    task = ReasoningGymTask("basic_arithmetic", size=20)
    problems = task.sample(np.random.default_rng(0), 5)
    assert all(task.verify(p, p.answer) == 1.0 for p in problems)
    assert task.verify(problems[0], "not a number") < 1.0
    assert task.sample(np.random.default_rng(0), 5) == problems
