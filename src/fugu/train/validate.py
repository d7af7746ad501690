"""Checks made before a run acts: the device, writable paths, the env id, spaces a checkpoint
records. Each raises :class:`~fugu.core.errors.APIUsageError` with what to do instead, so a
user mistake is one message, never a traceback or a half-made run folder.
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError, UnknownEnvError

__all__ = [
    "check_device",
    "check_env_id",
    "check_solve_metric",
    "check_spaces",
    "check_writable",
    "describe_space",
]


def check_device(device: str | torch.device) -> torch.device:
    """The torch device ``device`` names, checked to exist on this machine.

    Raises:
        APIUsageError: Not a device name, or a device this machine does not have.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
        >>> check_device("tpu9")
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: unknown torch device 'tpu9': use cpu, cuda, cuda:N or mps
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise APIUsageError(
            f"unknown torch device {str(device)!r}: use cpu, cuda, cuda:N or mps"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            cuda = torch.version.cuda
            build = "without CUDA" if cuda is None else f"with CUDA {cuda}"
            raise APIUsageError(
                f"device {str(device)!r}: CUDA is not available here (torch {torch.__version__} "
                f"is built {build}, or no GPU is visible); use the cpu device (see the "
                "troubleshooting page)"
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise APIUsageError(
                f"device {str(device)!r}: this machine has {count} CUDA device(s) (cuda:0 "
                f"to cuda:{count - 1})"
            )
    elif parsed.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise APIUsageError(f"device {str(device)!r}: MPS is not available; use cpu")
    elif parsed.type != "cpu":
        raise APIUsageError(f"device {str(device)!r} is not supported: use cpu, cuda or mps")
    return parsed


def check_writable(path: str | Path, what: str) -> Path:
    """``path`` (a file or folder to create) can be written: its nearest existing ancestor is
    a folder where a file can be created (tried with a temporary file, removed at once).

    Example:
        >>> check_writable("/proc/x/s.json", "--summary-json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: --summary-json /proc/x/s.json: cannot write in /proc ...
    """
    path = Path(path)
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    if parent != path.absolute() and not parent.is_dir():
        raise APIUsageError(f"{what} {path}: {parent} is a file, not a folder")
    target = parent if parent.is_dir() else parent.parent
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as error:
        raise APIUsageError(
            f"{what} {path}: cannot write in {target} ({error.strerror or error}); choose "
            "another path"
        ) from None
    return path


def check_env_id(env_id: Any) -> str:
    """``env_id`` names a fugu env, a Gymnasium env or an entry point (``module:factory``,
    whose module must import and hold the factory).

    Raises:
        UnknownEnvError: It does not (the message suggests the closest ids).
        APIUsageError: It is not a string.
    """
    if not isinstance(env_id, str):
        raise APIUsageError(
            f"an env id must be a string such as 'cartpole-v1', got {type(env_id).__name__} "
            f"{env_id!r} (fugu.registered_ids() lists them)"
        )
    from fugu.core.registry import default_registry

    if env_id in default_registry:
        return env_id
    from fugu.bridges.entry import EntryPointEnv, is_entry_point

    if is_entry_point(env_id):
        EntryPointEnv(env_id).load()  # a clear error when the module or factory is missing
        return env_id
    import gymnasium

    if env_id in gymnasium.registry:
        return env_id
    close = difflib.get_close_matches(env_id, default_registry.ids(), n=3, cutoff=0.6)
    if len(close) < 3:
        close += difflib.get_close_matches(env_id, list(gymnasium.registry), n=3 - len(close))
    hint = f" did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownEnvError(
        f"unknown env id {env_id!r};{hint} 'fugu envs' lists fugu's envs, and any Gymnasium "
        "id works too"
    )


def check_solve_metric(env_id: str, metric: str) -> str:
    """``metric`` is a score the env reports per episode, where fugu can tell before training:
    a native env lists its scores in ``score_keys`` (others are checked at the first episodes).

    Raises:
        APIUsageError: A native env does not report ``metric``.

    Example:
        >>> check_solve_metric("bitflip-v1", "success")
        'success'
        >>> check_solve_metric("bitflip-v1", "win")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: env.solve_metric 'win' is not reported by bitflip-v1; ...
    """
    if metric == "episode_return":
        return metric
    from fugu.core.registry import default_registry

    if env_id not in default_registry:
        return metric
    entry = default_registry.spec(env_id).load()
    keys = getattr(entry, "score_keys", None)
    if isinstance(entry, type) and keys is not None:
        reported = ["episode_return", "episode_length", *keys]
        if metric not in reported:
            raise APIUsageError(
                f"env.solve_metric {metric!r} is not reported by {env_id}; it reports {reported}"
            )
    return metric


def describe_space(space: Any) -> dict[str, Any]:
    """A JSON-ready description of a single space (recorded in checkpoint manifests).

    Example:
        >>> describe_space(spaces.Discrete(2))
        {'type': 'Discrete', 'n': 2}
        >>> describe_space(spaces.Box(-1.0, 1.0, (3,)))
        {'type': 'Box', 'shape': [3], 'dtype': 'float32'}
    """
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": [int(n) for n in space.nvec.ravel()]}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype)}
    return {"type": type(space).__name__, "repr": repr(space)}


def check_spaces(
    metadata: Mapping[str, Any], observation_space: Any, action_space: Any, checkpoint: Any
) -> None:
    """The spaces a checkpoint recorded (``metadata["spaces"]``) match an env's.

    Raises:
        APIUsageError: They differ (the message names the env the checkpoint was trained on).
    """
    recorded = metadata.get("spaces")
    if not isinstance(recorded, Mapping):
        return  # written before spaces were recorded: loading the weights checks the shapes
    trained_on = metadata.get("env", "another env")
    for name, space in (("observation", observation_space), ("action", action_space)):
        mine = describe_space(space)
        theirs = recorded.get(name)
        if theirs is not None and theirs != mine:
            raise APIUsageError(
                f"checkpoint {checkpoint} was trained on {trained_on!r}, whose {name} space "
                f"{theirs} differs from this env's {mine}; evaluate it on {trained_on!r} "
                "(leave out the env id to use the checkpoint's)"
            )
