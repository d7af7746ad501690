"""The training loop's configuration (:class:`TrainConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from fugu.core.errors import APIUsageError

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to collect: the knobs of :class:`fugu.train.loop.Trainer`.

    The number of env rows is the vec env's (``EnvConfig.num_envs`` in an experiment).

    Example:
        >>> TrainConfig(total_timesteps=10_000, num_steps=8).num_updates(num_rows=64)
        20
    """

    algo: str = "ppo"
    """The registered algorithm to train (``fugu algos`` lists them); its settings are the
    section of its name (``[ppo]``)."""
    total_timesteps: int = 1_000_000
    """Env steps (summed over rows) to train for; schedules decay over them."""
    num_steps: int = 16
    """Rollout horizon: steps per row collected before each update."""
    seed: int = 0
    """Seed of the envs' reset, and of the policy's initialisation when the trainer builds it."""
    device: str = "cpu"
    """Torch device of the policy and the update (``"cpu"``, ``"cuda"``, ``"cuda:1"``)."""
    double_buffer: bool = False
    """Collect from two env shards, one stepping on a worker thread while the policy acts on
    the other (native envs release the GIL). Pays off when an env step costs about as much as
    the policy's forward pass; for CartPole's ~50 ns steps the thread hand-off costs more, so
    it is off by default (see docs/ppo.md)."""
    torch_threads: int | None = 1
    """``torch.set_num_threads`` for the process (``None`` leaves torch's default)."""
    episode_window: int = 100
    """Recent episodes kept in ``Trainer.episode_returns`` (solve detection)."""
    stop_on_solve: bool = False
    """End the run once ``env.solve_threshold`` is met and 100 deterministic episodes confirm
    it (the final checkpoint is then the solving policy, not one trained on past it)."""
    solve_check_deterministic: bool = True
    """Whether the episodes confirming a solve for ``stop_on_solve`` play the policy's most
    likely action (``True``) or sample from it (``False``): sampling is the check for a policy
    whose solving behaviour is stochastic (its mode may loop or stall); the summary says which
    was used."""

    def __post_init__(self) -> None:
        if self.total_timesteps < 1 or self.num_steps < 1:
            raise APIUsageError("TrainConfig needs total_timesteps >= 1 and num_steps >= 1")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise APIUsageError("TrainConfig.torch_threads must be >= 1 or None")
        if self.episode_window < 1:
            raise APIUsageError("TrainConfig.episode_window must be >= 1")

    def batch_size(self, num_rows: int) -> int:
        """Samples per epoch: ``num_rows * num_steps``."""
        return int(num_rows) * self.num_steps

    def num_updates(self, num_rows: int) -> int:
        """Epochs needed to reach ``total_timesteps`` with ``num_rows`` rows (at least 1)."""
        return max(-(-self.total_timesteps // self.batch_size(num_rows)), 1)
