"""The declared schema of per-row buffers: fields, standard fields, extras in buffers and envs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gymnasium import spaces

from fugu.core import STANDARD_FIELD_NAMES, EnvBuffers, EnvContractError, PufferEnv
from fugu.core.schema import (
    COSTS,
    ROLES,
    Field,
    achieved_goals_field,
    action_masks_field,
    extra_fields_dict,
    global_state_field,
    goals_field,
    num_logits,
    roles_field,
    schema,
    standard_fields,
)

OBS = spaces.Box(-1, 1, (3,), np.float32)
ACT = spaces.Discrete(4)


def test_field_normalises_dtype_and_shape_and_allocates_fill() -> None:
    f = Field("goals", [2, np.int64(3)], "float64", fill=1.5, doc="d")
    assert f.dtype == np.dtype(np.float64) and isinstance(f.dtype, np.dtype)
    assert f.shape == (2, 3) and all(type(d) is int for d in f.shape)
    assert f.row_shape(4) == (4, 2, 3)
    a = f.allocate(4)
    assert a.shape == (4, 2, 3) and a.dtype == np.float64 and (a == 1.5).all()
    assert Field("x") == Field("x", (), np.float32, 0, "")  # defaults: float32 scalar
    assert hash(f) == hash(Field("goals", (2, 3), np.float64, 1.5, "d"))
    assert pickle.loads(pickle.dumps(f)) == f
    with pytest.raises(AttributeError):
        f.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["", "two words", "1st", 3])
def test_field_rejects_names_that_are_not_identifiers(name: object) -> None:
    with pytest.raises(EnvContractError, match="identifier"):
        Field(name)  # type: ignore[arg-type]


def test_well_known_fields() -> None:
    masks = action_masks_field(7)
    assert (masks.name, masks.shape, masks.dtype) == ("action_masks", (7,), np.bool_)
    assert masks.fill is True
    assert masks.allocate(2).all()
    assert (COSTS.name, COSTS.shape, COSTS.dtype) == ("costs", (), np.float32)
    assert roles_field() is ROLES and (ROLES.name, ROLES.dtype) == ("roles", np.int32)
    for make, name in (
        (global_state_field, "global_state"),
        (goals_field, "goals"),
        (achieved_goals_field, "achieved_goals"),
    ):
        f = make((2, 5))
        assert (f.name, f.shape, f.dtype) == (name, (2, 5), np.float32)


def test_num_logits() -> None:
    assert num_logits(spaces.Discrete(5)) == 5
    assert num_logits(spaces.MultiDiscrete([2, 3, 4])) == 9
    with pytest.raises(EnvContractError, match="Discrete or MultiDiscrete"):
        num_logits(spaces.Box(-1, 1, (2,)))


def test_standard_fields_follow_the_spaces() -> None:
    f = standard_fields(spaces.Box(0, 255, (2, 3), np.uint8), spaces.MultiDiscrete([3, 4]))
    assert tuple(f) == STANDARD_FIELD_NAMES
    assert f["observations"].shape == (2, 3) and f["observations"].dtype == np.uint8
    assert f["final_observations"] == Field(
        "final_observations", (2, 3), np.uint8, 0, f["final_observations"].doc
    )
    assert f["actions"].shape == (2,) and f["actions"].dtype == np.int32
    box = standard_fields(OBS, spaces.Box(-1, 1, (2,)))["actions"]
    assert box.shape == (2,) and box.dtype == np.float32
    assert f["rewards"].dtype == np.float32
    assert {f[n].dtype for n in ("terminals", "truncations", "masks")} == {np.dtype(np.bool_)}
    assert f["masks"].fill is True and not f["terminals"].fill
    # the buffer layout is the schema's
    layout = EnvBuffers.layout(OBS, ACT, 5)
    assert layout == {n: (g.row_shape(5), g.dtype) for n, g in standard_fields(OBS, ACT).items()}


def test_extra_fields_are_validated() -> None:
    for name in STANDARD_FIELD_NAMES:
        with pytest.raises(EnvContractError, match="collides with the standard"):
            extra_fields_dict([Field(name)])
    with pytest.raises(EnvContractError, match="declared twice"):
        extra_fields_dict([COSTS, Field("costs", dtype=np.float64)])
    with pytest.raises(EnvContractError, match="Field objects"):
        extra_fields_dict(["costs"])  # type: ignore[list-item]
    assert list(schema(OBS, ACT, [COSTS, ROLES])) == [*STANDARD_FIELD_NAMES, "costs", "roles"]


def test_buffers_carry_extras_through_allocate_rows_and_check() -> None:
    masks = action_masks_field(4)
    b = EnvBuffers.allocate(OBS, ACT, 6, [COSTS, masks])
    assert list(b.extras) == ["costs", "action_masks"] and b.extra_fields["costs"] is COSTS
    assert b.extras["action_masks"].shape == (6, 4) and b.extras["action_masks"].all()
    assert b.extras["costs"].dtype == np.float32 and not b.extras["costs"].any()
    part = b.rows(2, 5)
    assert part.num_rows == 3 and part.extra_fields == b.extra_fields
    part.extras["costs"][:] = 2.0
    part.extras["action_masks"][0, 1] = False
    assert b.extras["costs"].tolist() == [0, 0, 2, 2, 2, 0]
    assert not b.extras["action_masks"][2, 1]
    part.check(OBS, ACT, 3, [COSTS, masks])
    assert list(b.arrays()) == [*STANDARD_FIELD_NAMES, "costs", "action_masks"]
    layout = EnvBuffers.layout(OBS, ACT, 6, [COSTS, masks])
    assert layout["action_masks"] == ((6, 4), np.dtype(np.bool_))
    # arrays adopted as they are
    again = EnvBuffers.from_arrays(schema(OBS, ACT, [COSTS, masks]), b.arrays())
    assert again.extras["costs"] is b.extras["costs"] and again.rewards is b.rewards


def test_check_reports_missing_unexpected_and_wrong_extras() -> None:
    plain = EnvBuffers.allocate(OBS, ACT, 2)
    with pytest.raises(EnvContractError, match=r"carry extra fields \[\] but the env declares"):
        plain.check(OBS, ACT, 2, [COSTS])
    with pytest.raises(EnvContractError, match="carry extra fields"):
        EnvBuffers.allocate(OBS, ACT, 2, [COSTS]).check(OBS, ACT, 2)
    wrong = EnvBuffers.allocate(OBS, ACT, 2, [Field("costs", dtype=np.float64)])
    with pytest.raises(EnvContractError, match="'costs' must have shape"):
        wrong.check(OBS, ACT, 2, [COSTS])


def test_env_buffers_describe_bare_extra_arrays() -> None:
    b = EnvBuffers.allocate(OBS, ACT, 2)
    arrays = {n: getattr(b, n) for n in STANDARD_FIELD_NAMES}
    with_extra = EnvBuffers(**arrays, extras={"costs": np.zeros(2, np.float32)})
    assert with_extra.extra_fields["costs"].dtype == np.float32
    with pytest.raises(EnvContractError, match="do not match"):
        EnvBuffers(**arrays, extras={"costs": np.zeros(2)}, extra_fields={"roles": ROLES})


class Costly(PufferEnv):
    """Two rows whose cost is the action they took."""

    def __init__(self, buffers: EnvBuffers | None = None) -> None:
        super().__init__(OBS, ACT, 2, buffers, extra_fields=(COSTS,))

    def reset(self, seed=None):
        return self.observations, []

    def step(self, actions):
        self.costs[:] = self._write_actions(actions)
        return self.observations, self.rewards, self.terminals, self.truncations, []


def test_puffer_env_exposes_extras_and_batches_carry_them() -> None:
    env = Costly()
    assert env.extra_fields == {"costs": COSTS}
    assert env.extras["costs"] is env.costs is env.buffers.extras["costs"]
    env.async_reset(0)
    assert env.recv().extras["costs"] is env.costs
    env.send(np.array([1, 3]))
    assert env.recv().extras["costs"].tolist() == [1.0, 3.0]
    big = EnvBuffers.allocate(OBS, ACT, 4, [COSTS])
    adopted = Costly(buffers=big.rows(2, 4))
    adopted.step(np.array([2, 2]))
    assert big.extras["costs"].tolist() == [0, 0, 2, 2]
    with pytest.raises(EnvContractError, match="carry extra fields"):
        Costly(buffers=EnvBuffers.allocate(OBS, ACT, 2))


def test_env_without_extras_gives_empty_batch_extras() -> None:
    env = PufferEnv(OBS, ACT, 1)
    assert env.extras == {} and env.extra_fields == {}
