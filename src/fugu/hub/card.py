"""The model card (``README.md``) of a pushed policy: Hub metadata, results, how to use it.

Example:
    >>> text = model_card(
    ...     repo_id="user/cartpole-ppo", env_id="cartpole-v1", algo="ppo",
    ...     config={"seed": 1}, results={"mean_return": 500.0, "episodes": 10},
    ... )
    >>> text.splitlines()[0], "library_name: fugu" in text, "| mean_return | 500 |" in text
    ('---', True, True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["model_card"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _front_matter(repo_id: str, env_id: str, algo: str, results: Mapping[str, Any]) -> list[str]:
    lines = [
        "---",
        "library_name: fugu",
        "tags:",
        "- reinforcement-learning",
        "- fugu",
        f"- {env_id}",
        f"- {algo}",
    ]
    mean = results.get("mean_return")
    if isinstance(mean, (int, float)):
        lines += [
            "model-index:",
            f"- name: {repo_id.split('/')[-1]}",
            "  results:",
            "  - task:",
            "      type: reinforcement-learning",
            "      name: reinforcement-learning",
            "    dataset:",
            f"      name: {env_id}",
            "      type: " + env_id,
            "    metrics:",
            "    - type: mean_reward",
            f"      value: {float(mean):.4g}",
            "      name: mean_reward",
        ]
    return [*lines, "---", ""]


def model_card(
    *,
    repo_id: str,
    env_id: str,
    algo: str,
    config: Mapping[str, Any],
    results: Mapping[str, Any],
    export: Mapping[str, Any] | None = None,
    gif: str | None = None,
) -> str:
    """The Markdown model card of a pushed policy.

    Args:
        repo_id: ``user/name`` of the repository.
        env_id: The env the policy was trained on.
        algo: The algorithm's registry name.
        config: The resolved experiment config (shown folded, in full).
        results: Figures for the results table (evaluation and training summary).
        export: The ONNX export's parity report (:meth:`fugu.export.ExportResult.to_dict`).
        gif: File name of an evaluation GIF in the repository.
    """
    lines = _front_matter(repo_id, env_id, algo, results)
    lines += [
        f"# {algo.upper()} on {env_id}",
        "",
        f"A policy trained with [fugu](https://pypi.org/project/fugu-rl/) ({algo}) on `{env_id}`.",
        "",
    ]
    if gif:
        lines += [f"![evaluation episode]({gif})", ""]
    if results:
        lines += ["## Results", "", "| metric | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in results.items()]
        lines.append("")
    lines += [
        "## Use it",
        "",
        "```python",
        "import fugu",
        "from fugu.hub import pull",
        "",
        f'agent = fugu.load(pull("{repo_id}"))',
        "print(agent.evaluate(episodes=10).mean_return)",
        "```",
        "",
        f"or `fugu pull {repo_id}` then `fugu eval --checkpoint <the printed folder>`.",
        "",
    ]
    if export:
        recurrent = "lstm" in str(export.get("architecture"))
        lines += [
            "## ONNX",
            "",
            "`policy.onnx` takes `obs [batch, *obs_shape]` float32"
            + (" and the LSTM state `h`, `c` (zeros at an episode's start)" if recurrent else "")
            + " and returns `actions` and `params` (the actor head's outputs)"
            + (" and the next state `h_out`, `c_out`" if recurrent else "")
            + ", checked against "
            f"torch on {export.get('num_observations')} observations: max abs error "
            f"{float(export.get('max_abs_error', 0.0)):.2e}, action agreement "
            f"{100 * float(export.get('action_agreement', 0.0)):.2f}% (`export.json`).",
            "",
        ]
    lines += [
        "## Files",
        "",
        "| file | what |",
        "|---|---|",
        "| `manifest.json` | the checkpoint manifest (config, counters, checksums) |",
        "| `weights.safetensors` | every module's weights |",
        "| `state.pt` | the rest of the training state (optimizer, RNG); a pickle |",
        "| `config.json` | the resolved experiment config |",
        "| `policy.onnx`, `export.json` | the ONNX export and its parity report |",
        "",
        "## Config",
        "",
        "<details><summary>resolved experiment config</summary>",
        "",
        "```json",
        json.dumps(dict(config), indent=2, sort_keys=True, default=str),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)
