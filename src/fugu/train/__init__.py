"""The training loop: collection, updates, evaluation, callbacks, checkpoints.

The package is also callable: ``fugu.train("cartpole-v1", **overrides)`` is
:func:`fugu.learn` (:func:`fugu.train.agent.learn`), which trains and returns an
:class:`~fugu.train.agent.Agent`. Importing it imports nothing else.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    """``fugu.train(...)``: the package, callable as :func:`fugu.train.agent.learn`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from fugu.train.agent import learn

        return learn(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
