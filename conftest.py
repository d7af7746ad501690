"""Hooks for every collected test, doctests in ``src/`` and ``docs/`` included.

Each test gets its own temporary folder as the process's temp dir (``tempfile.gettempdir()``
and ``TMPDIR``), so examples that call ``tempfile.mkdtemp()`` write under pytest's managed
temporary folders and never leave folders behind in the system's temp dir.
"""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(autouse=True)
def _private_tempdir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path_factory.mktemp("tempdir")  # beside the test's tmp_path, not in it
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
