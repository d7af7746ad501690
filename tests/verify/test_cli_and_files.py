"""Property files fail clearly; `fugu verify` runs on a tiny trained checkpoint."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main
from fugu.safety.properties import PropertyError, load_properties, parse_properties

GOOD = """
[[property]]
name = "upright: never push left"
kind = "never_action"
low = [-0.1, -0.1, -0.02, -0.1]
high = [0.1, 0.1, 0.02, 0.1]
action = 0

[[property]]
kind = "output_bounds"
low = [-0.1, -0.1, -0.02, -0.1]
high = [0.1, 0.1, 0.02, 0.1]
output = 0
lower = -1000.0
upper = 1000.0
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[property]\n", "not valid TOML"),
        ("x = 1\n", "unknown top-level key"),
        ("", "no \\[\\[property\\]\\] tables"),
        ('[[property]]\nkind = "sometimes"\nlow = [0]\nhigh = [1]', "kind must be one of"),
        ('[[property]]\nkind = "never_action"\nhigh = [1]\naction = 0', "missing 'low'"),
        ('[[property]]\nkind = "never_action"\nlow = [0]\nhigh = [1]', "missing 'action'"),
        (
            '[[property]]\nkind = "never_action"\nlow = [0, 1]\nhigh = [1]\naction = 0',
            "low has 2 values, high 1",
        ),
        (
            '[[property]]\nkind = "never_action"\nlow = [0]\nhigh = [1]\naction = 0.5',
            "action must be a whole number",
        ),
        (
            '[[property]]\nkind = "output_bounds"\nlow = [0]\nhigh = [1]\noutput = 0',
            "give 'lower', 'upper' or both",
        ),
        (
            '[[property]]\nkind = "monotonic"\nlow = [0]\nhigh = [1]\noutput = 0\ninput = 0\n'
            'direction = "up"',
            "direction must be",
        ),
        (
            '[[property]]\nname = "p"\nkind = "never_action"\nlow = [0]\nhigh = [1]\naction = 0\n'
            "colour = 1",
            "property 1 \\('p'\\): unknown key",
        ),
    ],
)
def test_property_file_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(PropertyError, match=message):
        parse_properties(text, "props.toml")


def test_missing_file_and_size_mismatch(tmp_path) -> None:
    with pytest.raises(PropertyError, match="does not exist"):
        load_properties(tmp_path / "none.toml")
    (prop,) = parse_properties(
        '[[property]]\nkind = "never_action"\nlow = [0]\nhigh = [1]\naction = 0'
    )
    with pytest.raises(
        PropertyError, match="the box has 1 dimensions, the policy's observations 4"
    ):
        prop.check_sizes(4, 2)


def test_fugu_verify_reports_every_property_and_engine(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "train", "cartpole-v1", "--env.num-envs", "4", "--train.num-steps", "32",
            "--train.total-timesteps", "256", "--ppo.update-epochs", "1", "--quiet",
            "--policy.activation", "relu", "--policy.hidden-size", "8",
            "--policy.num-layers", "1", "--run-dir", str(run),
        ]
    )  # fmt: skip
    assert code == 0
    props = tmp_path / "props.toml"
    props.write_text(GOOD)
    capsys.readouterr()
    code = main(["verify", str(run), "--property", str(props), "--json", "--engine", "ibp",
                 "--engine", "z3"])  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["engine"]) for r in lines] == [
        ("upright: never push left", "ibp"),
        ("upright: never push left", "z3"),
        ("property 2", "ibp"),
        ("property 2", "z3"),
    ]
    assert all(r["status"] in ("holds", "violated", "unknown") for r in lines)
    assert {r["status"] for r in lines[2:]} == {"holds"}
    assert lines[0]["status"] in (lines[1]["status"], "unknown")  # IBP never contradicts z3
    assert code == (1 if lines[1]["status"] == "violated" else 0)
    code = main(["verify", str(run), "--property", str(props), "--engine", "ibp"])
    out = capsys.readouterr().out
    assert "policy of cartpole-v1" in out and "property 2" in out and "HOLDS" in out
    props.write_text("[[property]]\n")
    assert main(["verify", str(run), "--property", str(props), "--engine", "ibp"]) == 2
    assert "fugu verify: error:" in capsys.readouterr().err
