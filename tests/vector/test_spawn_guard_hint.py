"""A script without a main guard that starts spawned workers fails with a message that names
the guard (each spawned worker re-imports the script and dies making its own workers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """\
import fugu.vector
env = fugu.vector.make("CartPole-v1", num_envs=2, backend="multiprocessing", num_workers=2)
env.reset(seed=0)
env.close()
"""


def test_spawn_without_main_guard_says_to_add_it(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "WorkerError" in result.stderr
    assert 'if __name__ == "__main__":' in result.stderr.splitlines()[-1]
