"""Rollout storage: preallocated ``[T, N, ...]`` tensors, one per declared field.

The fields are declared, not written out: the standard per-step ones (:func:`rollout_fields`)
plus whatever the algorithm asks for (its ``storage_fields``: log-probabilities, values, env
extras such as ``action_masks`` or ``costs``). :meth:`RolloutStorage.batch` hands them over as
one :class:`~fugu.buffers.batch.Batch`, after crediting what non-live rows received to their
previous live step and building ``next_values`` when values are stored.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from fugu.buffers.batch import Batch, PolicyState
from fugu.core.schema import Field
from fugu.core.spaces import action_shape
from fugu.ops import credit_to_live_steps, next_values_from, pending_live_steps

__all__ = ["RolloutStorage", "rollout_fields", "torch_dtype"]


def torch_dtype(dtype: np.dtype | str) -> torch.dtype:
    """The torch dtype of a numpy dtype.

    Example:
        >>> torch_dtype(np.dtype("bool")), torch_dtype("float32")
        (torch.bool, torch.float32)
    """
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype


def rollout_fields(observation_space: spaces.Box, action_space: spaces.Space) -> dict[str, Field]:
    """The per-step fields every rollout stores.

    Actions are stored as int64 (discrete) or float32 (Box), the dtypes the distributions
    take; ``masks`` (the row was live) start true.

    Example:
        >>> f = rollout_fields(spaces.Box(-1, 1, (4,)), spaces.Discrete(2))
        >>> list(f), f["actions"].dtype
        (['observations', 'actions', 'rewards', 'terminals', 'truncations', 'masks', \
'starts'], dtype('int64'))
    """
    discrete = not isinstance(action_space, spaces.Box)
    return {
        "observations": Field("observations", observation_space.shape, observation_space.dtype),
        "actions": Field(
            "actions", action_shape(action_space), np.int64 if discrete else np.float32
        ),
        "rewards": Field("rewards", (), np.float32),
        "terminals": Field("terminals", (), np.bool_),
        "truncations": Field("truncations", (), np.bool_),
        "masks": Field("masks", (), np.bool_, fill=True),
        "starts": Field("starts", (), np.bool_),
    }


class RolloutStorage:
    """``num_steps x num_rows`` tensors of one rollout, one per field, allocated once.

    Args:
        fields: The fields to store (:func:`rollout_fields` plus the algorithm's).
        num_steps: Horizon.
        num_rows: Stored rows (the learner's rows of every env shard).
        device: Where the tensors live.

    Attributes:
        tensors: ``name -> [T, N, *shape]`` tensor.
        last_values: ``[N]`` values after the last step (when ``values`` is stored).
        final_values: ``[T, N]`` values of final observations of truncated steps (same).
        initial_state: Recurrent state before step 0.

    Example:
        >>> f = rollout_fields(spaces.Box(-1, 1, (4,)), spaces.Discrete(2))
        >>> s = RolloutStorage(f, 8, 3)
        >>> s.tensors["observations"].shape, s.tensors["actions"].dtype
        (torch.Size([8, 3, 4]), torch.int64)
    """

    def __init__(
        self,
        fields: Mapping[str, Field],
        num_steps: int,
        num_rows: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.fields = dict(fields)
        self.num_steps = int(num_steps)
        self.num_rows = int(num_rows)
        self.tensors: dict[str, Tensor] = {
            name: torch.full(
                (num_steps, num_rows, *f.shape), f.fill, dtype=torch_dtype(f.dtype), device=device
            )
            for name, f in self.fields.items()
        }
        self.has_values = "values" in self.fields
        self.last_values = torch.zeros(num_rows, device=device)
        self.final_values = torch.zeros((num_steps, num_rows), device=device)
        self.initial_state: PolicyState = None

    def batch(self) -> Batch:
        """The filled rollout as a :class:`~fugu.buffers.batch.Batch` (views where possible).

        When some row was not live at some step, the rewards and episode ends it received then
        are credited to its previous live step (:func:`fugu.ops.credit_to_live_steps`) and
        ``next_values`` skip non-live steps. With values stored, a row waiting at the last
        step has its last move's outcome still ahead (:func:`fugu.ops.pending_live_steps`):
        that step is marked not live (left out of the update) and bootstraps the row's
        earlier steps with its value.
        """
        data = dict(self.tensors)
        masks = data["masks"]
        all_live = bool(masks.all())
        final_values: Tensor | None = self.final_values
        if not all_live:
            data["rewards"], data["terminals"], data["truncations"], final_values = (
                credit_to_live_steps(
                    data["rewards"], data["terminals"], data["truncations"], masks, final_values
                )
            )
        last_values = self.last_values
        if self.has_values and not all_live:
            pending = pending_live_steps(masks, data["terminals"], data["truncations"])
            rows = (pending >= 0).nonzero().squeeze(-1)
            if rows.numel():
                steps = pending[rows]
                masks = masks.clone()
                masks[steps, rows] = False
                data["masks"] = masks
                last_values = last_values.clone()
                last_values[rows] = data["values"][steps, rows]
        if self.has_values:
            assert final_values is not None
            data["next_values"] = next_values_from(
                data["values"],
                last_values,
                data["truncations"],
                final_values,
                None if all_live else masks,
            )
        return Batch(data, self.initial_state, {"all_live": all_live})
