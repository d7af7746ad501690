"""Shield synthesis: the winning region of a finite safety game, and its safe-action table.

The agent picks an action, the environment then picks one of the action's possible outcomes
(adversarially: any of them may happen). A state is *winning* when the agent can keep every
future state safe whatever the environment does. The winning region is the greatest fixpoint
``W = safe ∩ {s : ∃a ∀o. next(s, a, o) ∈ W}``, computed by shrinking ``safe`` until it stops
changing; an action is safe in a state when all its outcomes stay in ``W``. A shield that only
allows those actions keeps a row in ``W`` forever (Alshiekh et al. 2018).

Example:
    A walk on 0..4 where 0 and 4 are unsafe; action 0 moves by -1 or 0, action 1 by 0 or +1:

    >>> import numpy as np
    >>> succ = np.array([[[max(s - 1, 0), s], [s, min(s + 1, 4)]] for s in range(5)])
    >>> winning, table = solve_safety_game(succ, np.array([False, True, True, True, False]))
    >>> winning.tolist()
    [False, True, True, True, False]
    >>> table[1].tolist(), table[2].tolist(), table[3].tolist()
    ([False, True], [True, True], [True, False])
"""

from __future__ import annotations

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["solve_safety_game"]


def solve_safety_game(
    successors: np.ndarray, safe: np.ndarray, max_iterations: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """The winning states and the safe-action table of a safety game.

    Args:
        successors: int ``[num_states, num_actions, num_outcomes]``: the states an action
            may lead to (repeat an outcome to pad actions with fewer).
        safe: bool ``[num_states]``: the states that are not violations.
        max_iterations: Bound on the fixpoint iterations (never reached: each one removes a
            state).

    Returns:
        ``(winning bool [num_states], table bool [num_states, num_actions])``; ``table[s, a]``
        is True when every outcome of ``a`` in ``s`` is winning (False everywhere outside the
        winning region).
    """
    successors = np.asarray(successors, dtype=np.int64)
    winning = np.asarray(safe, dtype=bool).copy()
    if successors.ndim != 3 or winning.shape != (successors.shape[0],):
        raise APIUsageError(
            "successors must be [num_states, num_actions, num_outcomes] and safe [num_states], "
            f"got {successors.shape} and {winning.shape}"
        )
    if successors.size and (successors.min() < 0 or successors.max() >= len(winning)):
        raise APIUsageError(f"successor states must be in [0, {len(winning)})")
    for _ in range(max_iterations):
        table = winning[successors].all(axis=2) & winning[:, None]
        still = table.any(axis=1)
        if (still == winning).all():
            return winning, table
        winning = still
    raise APIUsageError("the safety game did not converge")  # pragma: no cover
