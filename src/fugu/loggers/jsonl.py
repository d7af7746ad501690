"""A JSON-lines metric sink: one object per logged step, ``{"step": ..., "key": value, ...}``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from fugu.loggers.base import NullLogger

__all__ = ["JsonlLogger", "read_jsonl"]


class JsonlLogger(NullLogger):
    """Append scalar metrics to a ``.jsonl`` file, one line per :meth:`log_metrics` call.

    Non-finite values are written as ``null`` (strict JSON). Histograms, images and videos are
    ignored. The file is opened for append, so a resumed run continues the same file.

    Args:
        path: The file to append to (parent directories are created).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> with JsonlLogger(path) as logger:
        ...     logger.log_metrics({"loss/value": 0.5, "perf/sps": float("nan")}, step=64)
        >>> read_jsonl(path)
        [{'step': 64, 'loss/value': 0.5, 'perf/sps': None}]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Append one line holding ``step`` and the metrics."""
        if self._file is None:
            return
        row: dict[str, Any] = {"step": int(step)}
        for key, value in metrics.items():
            number = float(value)
            row[key] = number if math.isfinite(number) else None
        self._file.write(json.dumps(row) + "\n")

    def flush(self) -> None:
        """Flush the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read every row of a ``metrics.jsonl`` file, skipping a torn last line (crash mid-write)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
