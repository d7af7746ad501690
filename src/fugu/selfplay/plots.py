"""The learner's Elo over a self-play run, as a PNG (matplotlib, from the ``hpo`` extra)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_elo"]


def plot_elo(
    history: Sequence[Mapping[str, float]],
    path: str | Path,
    round_robin: Mapping[str, tuple[int, float]] | None = None,
) -> Path:
    """Draw ``selfplay/elo`` of each epoch of ``history`` against env steps into ``path``.

    Args:
        history: :attr:`fugu.selfplay.run.SelfPlay.history` (``step`` and ``selfplay/elo``).
        path: The PNG to write.
        round_robin: Optionally, round-robin ratings of snapshots as ``name -> (step, elo)``,
            drawn as points on a second axis.

    Raises:
        ImportError: matplotlib is missing (``pip install fugu-rl[hpo]``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is in the dev extra
        raise ImportError("the Elo plot needs matplotlib: pip install 'fugu-rl[hpo]'") from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["selfplay/elo"] for h in history], label="learner (online Elo)")
    ax.set_xlabel("env steps (learner rows)")
    ax.set_ylabel("online Elo")
    if round_robin:
        other = ax.twinx()
        points = sorted(round_robin.values())
        other.plot([p[0] for p in points], [p[1] for p in points], "o-", color="tab:orange",
                   label="snapshots (round-robin Elo)")  # fmt: skip
        other.set_ylabel("round-robin Elo")
        other.legend(loc="lower right")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
