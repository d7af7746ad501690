"""The Python API in three names: ``fugu.train`` (also ``fugu.learn``), :class:`Agent`, and
``fugu.load``.

``fugu.train(env_id, algo="ppo", **overrides)`` trains any registered algorithm with the
env's preset and your overrides, and returns an :class:`Agent`: ``predict`` actions for
observations, ``evaluate`` it for whole episodes, ``save`` it, and ``fugu.load`` it back.

Example:
    >>> import tempfile
    >>> import fugu
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     agent = fugu.train("cartpole-v1", total_timesteps=2048, num_envs=8, run_dir=tmp)
    ...     path = agent.save(f"{tmp}/agent")
    ...     action = fugu.load(path).predict([0.0, 0.0, 0.01, 0.0])
    >>> action in (0, 1), agent.predict([[0.0, 0.0, 0.01, 0.0]] * 3).shape
    (True, (3,))

Training runs spawn no processes for native envs, but Gymnasium envs with more than one worker
do: in a script, put the call under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fugu.checkpoint import find_latest_valid, load_checkpoint, save_checkpoint
from fugu.core.errors import APIUsageError
from fugu.train.aliases import normalize_overrides
from fugu.train.build import build_algorithm
from fugu.train.evaluate import EvalResult, evaluate_policy
from fugu.train.experiment import ExperimentConfig, section_type
from fugu.train.fields import field_types
from fugu.train.session import BEST_DIR, TrainSummary, load_module_weights, module_weights
from fugu.train.validate import check_device, check_env_id, check_spaces, describe_space

__all__ = ["Agent", "learn", "load"]


class Agent:
    """A trained algorithm with its config: predict, evaluate, save.

    Build one with ``fugu.train(...)`` or ``fugu.load(path)``.

    Attributes:
        algo: The algorithm (any :class:`~fugu.algos.base.Algorithm`); acting goes through
            its ``act``.
        config: The experiment config it was trained with.
        observation_space: The env's single observation space (a flat Box).
        action_space: The env's single action space.
        summary: The training run's :class:`~fugu.train.session.TrainSummary` (``None`` for a
            loaded agent).
        path: The checkpoint it was loaded from (``None`` for a fresh one).
    """

    def __init__(
        self,
        algo: Any,
        config: ExperimentConfig,
        observation_space: Any,
        action_space: Any,
        summary: TrainSummary | None = None,
        path: Path | None = None,
    ) -> None:
        self.algo = algo
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.summary = summary
        self.path = path
        for module in algo.modules().values():
            module.eval()

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"Agent(env={self.config.env.id!r}, algo={self.config.algo!r}{where})"

    @property
    def env_id(self) -> str:
        """The env it was trained on."""
        return self.config.env.id

    def _observations(self, obs: Any) -> tuple[torch.Tensor, bool]:
        shape = tuple(self.observation_space.shape)
        array = np.asarray(obs, dtype=self.observation_space.dtype)
        single = array.shape == shape
        if single:
            array = array[None]
        if array.shape[1:] != shape:
            raise APIUsageError(
                f"predict expects one observation of shape {shape} or a batch [B, *{shape}], "
                f"got shape {np.asarray(obs).shape} (the agent was trained on {self.env_id!r})"
            )
        return torch.as_tensor(array, device=self.algo.device), single

    def predict(
        self,
        obs: Any,
        deterministic: bool = True,
        action_masks: Any = None,
    ) -> Any:
        """Actions for one observation or a batch.

        Args:
            obs: One observation (the env's single observation shape) or a batch ``[B, ...]``.
            deterministic: Take the policy's most likely action (``False``: sample).
            action_masks: For envs with illegal actions: bool ``[B, n]`` (or ``[n]``), true for
                legal actions.

        Returns:
            One action (an ``int`` for a Discrete space, an array otherwise) for one
            observation, else an array of ``B`` actions. A recurrent policy starts from a
            fresh state at every call: use :meth:`predict_recurrent` to carry it.
        """
        actions, _ = self.predict_recurrent(obs, None, deterministic, action_masks)
        return actions

    def predict_recurrent(
        self,
        obs: Any,
        state: Any = None,
        deterministic: bool = True,
        action_masks: Any = None,
    ) -> tuple[Any, Any]:
        """Like :meth:`predict`, carrying a recurrent policy's state: ``(actions, state)``.

        Pass ``state=None`` at the start of episodes, then the returned state.
        """
        tensor, single = self._observations(obs)
        if state is None:
            state = self.algo.initial_state(tensor.shape[0])
        extras: dict[str, torch.Tensor] = {}
        if action_masks is not None:
            masks = torch.as_tensor(np.asarray(action_masks, dtype=bool), device=self.algo.device)
            extras["action_masks"] = masks[None] if single else masks
        with torch.inference_mode():
            out = self.algo.act(tensor, state, extras, deterministic)
        actions = out.actions.cpu().numpy()
        if single:
            actions = actions[0]
            if actions.ndim == 0:
                return actions.item(), out.state
        return actions, out.state

    def make_env(self, num_envs: int = 1, **kwargs: Any) -> Any:
        """A new env like the one it was trained on (the recorded ``env.kwargs``, updated)."""
        from fugu.core.registry import make

        env_kwargs = {**self.config.env.kwargs, **kwargs}
        if num_envs != 1:
            env_kwargs["num_envs"] = num_envs
        return make(self.env_id, **env_kwargs)

    def evaluate(
        self,
        episodes: int = 10,
        *,
        env: Any = None,
        deterministic: bool = True,
        seed: int = 0,
        num_envs: int = 1,
    ) -> EvalResult:
        """Play whole episodes; an :class:`~fugu.train.evaluate.EvalResult` (``mean_return``,
        ``returns``, ``lengths``).

        Args:
            episodes: Episodes to finish.
            env: A fugu env to play on (default: a new one like the training env).
            deterministic: Most likely actions (``False``: sample).
            seed: Reset seed.
            num_envs: Rows of the default env played at once.
        """
        own = env is None
        env = self.make_env(num_envs) if own else env
        try:
            return evaluate_policy(env, self.algo, episodes, deterministic=deterministic, seed=seed)
        finally:
            if own:
                env.close()

    def save(self, path: str | Path) -> Path:
        """Write the agent's weights and config as a checkpoint under ``path``.

        Returns:
            The checkpoint directory (``path/step-<N>``), loadable with ``fugu.load`` and
            ``fugu eval --checkpoint``.
        """
        step = 0 if self.summary is None else int(self.summary.timesteps)
        if self.path is not None:
            manifest = json.loads((self.path / "manifest.json").read_text("utf-8"))
            step = int(manifest["counters"]["global_step"])
        return save_checkpoint(
            path,
            weights=module_weights(self.algo.modules()),
            state={"agent": True},
            counters={"global_step": step},
            config=self.config.to_dict(),
            metadata={
                "env": self.env_id,
                "algo": self.config.algo,
                "kind": "agent",
                "spaces": {
                    "observation": describe_space(self.observation_space),
                    "action": describe_space(self.action_space),
                },
            },
        )


def learn(
    env_id: str,
    algo: str = "ppo",
    overrides: Mapping[str, Any] | None = None,
    *,
    preset: str | Path | None = None,
    run_dir: str | Path | None = None,
    root: str | Path = "runs",
    quiet: bool = True,
    callbacks: Sequence[Any] = (),
    **options: Any,
) -> Agent:
    """Train ``algo`` on ``env_id`` and return the trained :class:`Agent`.

    The config is the env's preset (``fugu train ENV --print-config`` shows it) with your
    overrides on top; the run is logged and checkpointed in ``run_dir`` like ``fugu train``.

    Args:
        env_id: A fugu env id (``fugu envs``) or a Gymnasium id.
        algo: A registered algorithm (``fugu algos``).
        overrides: ``{"section.key": value}`` (``{"ppo.clip_coef": 0.1}``).
        preset: A TOML preset to use instead of the env's.
        run_dir: Where the run is written (default ``root/<env>-<algo>-<seed>-<time>``).
        root: Parent of default run directories.
        quiet: No progress logging.
        callbacks: Per-epoch callbacks (see :func:`fugu.train.run.train`).
        **options: More overrides: short names (``total_timesteps``, ``num_envs``, ``lr``,
            ``learning_rate``, ``gamma``, ``device``, ``num_steps``, ``seed``) or
            ``section__key=value`` (``ppo__clip_coef=0.1``).

    Returns:
        The agent holding the final weights; ``agent.summary`` is the run's summary (its
        ``best_checkpoint``: the best weights, ``fugu.load`` it to get them).

    Raises:
        APIUsageError: An unknown env, algorithm, option or device (before anything is
            written).
    """
    from fugu.train.run import train as run_training

    check_env_id(env_id)
    merged = {**dict(overrides or {}), **options}
    seed = merged.pop("seed", None)
    section_type(algo)  # an unknown algorithm: a message listing the registered ones
    values = normalize_overrides(merged, algo)
    if seed is not None:  # seeds the trainer and, when it has one, the algorithm
        values["train.seed"] = seed
        if "seed" in field_types(section_type(algo)):
            values[f"{algo}.seed"] = seed
    values["train.algo"] = algo
    config = ExperimentConfig.from_preset(env_id, values, preset=preset)
    holder: dict[str, Any] = {}

    def keep_trainer(context: Any) -> None:
        holder["trainer"] = context.trainer

    # the trainer is closed when train() returns; its algorithm (and weights) stays usable
    summary = run_training(
        config,
        callbacks=[*callbacks, keep_trainer],
        run_dir=run_dir,
        quiet=quiet,
        root=root,
    )
    trainer = holder["trainer"]
    env = trainer.envs[0]
    return Agent(
        trainer.algo, config, env.single_observation_space, env.single_action_space, summary
    )


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint a path names: itself, the newest valid one of a folder of checkpoints,
    or a run dir's ``checkpoints/best`` (else its latest).

    Raises:
        CheckpointError: Nothing there, or no valid checkpoint (the message says why).
    """
    from fugu.checkpoint import CheckpointError

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no run or checkpoint at {path}: no such file or directory")
    if (path / "manifest.json").is_file():
        return path
    best = path / "checkpoints" / BEST_DIR
    found = find_latest_valid(best) if best.is_dir() else None
    found = found or find_latest_valid(path)
    if found is None:
        raise CheckpointError(
            f"no valid checkpoint at {path} (a checkpoint is a directory with a "
            "manifest.json: pass it, a run dir, or a folder of checkpoints)"
        )
    return found


def load(path: str | Path, device: str | None = None) -> Agent:
    """Load an :class:`Agent` from a checkpoint.

    Args:
        path: A checkpoint directory, a folder of checkpoints (its newest valid one), or a
            run dir (its ``checkpoints/best`` when there is one, else its latest checkpoint).
        device: Where to put the weights (default ``cpu``).

    Raises:
        CheckpointError: No valid checkpoint there (the message says why).
    """
    path = find_checkpoint(path)
    device = "cpu" if device is None else device
    check_device(device)
    loaded = load_checkpoint(path)
    config = ExperimentConfig.from_dict(loaded.config).with_overrides({"train.device": device})
    probe_env = None
    try:
        from fugu.core.registry import make

        probe_env = make(config.env.id, **config.env.kwargs)
        observation_space = probe_env.single_observation_space
        action_space = probe_env.single_action_space
    finally:
        if probe_env is not None:
            probe_env.close()
    check_spaces(loaded.manifest.get("metadata", {}), observation_space, action_space, path)
    algo = build_algorithm(config, observation_space, action_space)
    load_module_weights(algo.modules(), loaded.weights)
    return Agent(algo, config, observation_space, action_space, path=path)
