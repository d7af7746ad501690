"""The Python snippets of the API pages run as written (they are plain code blocks, so the
docs' copy button copies runnable code, without prompts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ["python-api.md", "coming-from.md"]


def python_blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text("utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(page)
    assert blocks, f"{page} has no python snippet"
    monkeypatch.chdir(tmp_path)  # runs/ and saved agents go to a temporary folder
    for block in blocks:
        exec(compile(block, f"{page}", "exec"), {"__name__": "__main__"})
    assert (tmp_path / "runs").is_dir()
    assert capsys.readouterr().out.strip()
