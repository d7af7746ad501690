"""Vectorization backends behind fugu.core.VecEnv: Serial, Multiprocessing, Native passthrough.

Example:
    >>> import fugu.vector
    >>> env = fugu.vector.make("cartpole-v1", num_envs=2, backend="serial")
    >>> env.reset(seed=0)[0].shape
    (2, 4)
    >>> env.close()
"""

from fugu.vector.backends import BACKENDS, make
from fugu.vector.base import VecEnvBase
from fugu.vector.factory import EnvFactory
from fugu.vector.multiproc import Multiprocessing
from fugu.vector.serial import Serial

__all__ = ["BACKENDS", "EnvFactory", "Multiprocessing", "Serial", "VecEnvBase", "make"]
