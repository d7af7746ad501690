"""A Weights & Biases sink: online, or offline (``mode="offline"``, no API key needed).

Sweeps are logged as W&B groups: every trial of a sweep passes the same ``group``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError, missing_dependency
from fugu.loggers.base import NullLogger
from fugu.loggers.media import check_frames, check_image, encode_gif

__all__ = ["WandbLogger"]

_MODES = ("online", "offline", "disabled")


class WandbLogger(NullLogger):
    """Log to a W&B run.

    Args:
        project: The W&B project.
        mode: ``"online"``, ``"offline"`` (written under ``dir``, sync later with
            ``wandb sync``) or ``"disabled"``.
        name: The run's display name.
        group: Group of runs (one per sweep), shown together in the W&B UI.
        dir: Directory for W&B's files (``WANDB_DIR`` when ``None``).
        config: The resolved experiment config.
        run_id: A stable id, so a resumed fugu run continues the same W&B run.

    Raises:
        MissingDependencyError: ``wandb`` is not installed (extra ``wandb``).
    """

    def __init__(
        self,
        project: str,
        mode: str = "offline",
        name: str | None = None,
        group: str | None = None,
        dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> None:
        if mode not in _MODES:
            raise APIUsageError(f"wandb mode must be one of {_MODES}, got {mode!r}")
        try:
            import wandb
        except ImportError as error:  # pragma: no cover - wandb is in the dev extras
            raise missing_dependency("wandb", "wandb") from error
        self._wandb = wandb
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self._run: Any = wandb.init(
            project=project,
            mode=mode,  # type: ignore[arg-type]
            name=name,
            group=group,
            dir=None if dir is None else str(dir),
            config=dict(config) if config is not None else None,
            id=run_id,
            resume="allow" if run_id is not None else None,
            reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off"),
        )
        self._media_dir = Path(tempfile.mkdtemp(prefix="fugu-wandb-media-"))

    @property
    def run(self) -> Any:
        """The underlying ``wandb`` run (``None`` once closed)."""
        return self._run

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Update the run's config."""
        if self._run is not None:
            self._run.config.update(dict(config), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalars at ``step`` (non-finite values are skipped)."""
        if self._run is None:
            return
        row = {key: float(v) for key, v in metrics.items() if math.isfinite(float(v))}
        self._run.log(row, step=int(step))

    def log_histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """Log a histogram of ``values``."""
        if self._run is None:
            return
        data = np.asarray(values, dtype=np.float64).ravel()
        data = data[np.isfinite(data)]
        if data.size:
            self._run.log({tag: self._wandb.Histogram(data.tolist())}, step=int(step))

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log an RGB ``uint8 [H, W, 3]`` image."""
        if self._run is not None:
            self._run.log({tag: self._wandb.Image(check_image(image))}, step=int(step))

    def log_video(self, tag: str, frames: np.ndarray, step: int, fps: int = 30) -> None:
        """Log RGB ``uint8 [T, H, W, 3]`` frames as a GIF video."""
        if self._run is None:
            return
        path = self._media_dir / f"{tag.replace('/', '_')}-{int(step)}.gif"
        path.write_bytes(encode_gif(check_frames(frames), fps))
        self._run.log({tag: self._wandb.Video(str(path), format="gif")}, step=int(step))

    def close(self) -> None:
        """Finish the run. Idempotent."""
        if self._run is not None:
            self._run.finish()
            self._run = None
            shutil.rmtree(self._media_dir, ignore_errors=True)
