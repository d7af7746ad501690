"""gRPC env serving: the Remote backend steps exactly like a local one, declared extras travel,
bad requests get clear status codes without harming the server, and a dead server is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

import fugu.vector
from fugu.core.errors import APIUsageError, WorkerError
from fugu.core.schema import Field
from fugu.vector import wire
from fugu.vector.serve import EnvServer

ROUNDS = 60


def _actions(n: int, rounds: int = ROUNDS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (rounds, n)).astype(np.int32)


def _compare_sync(remote, local, actions: np.ndarray, compare_infos: bool) -> None:
    a, ia = remote.reset(seed=5)
    b, ib = local.reset(seed=5)
    np.testing.assert_array_equal(a, b)
    if compare_infos:
        assert ia == ib
    for row in actions:
        ra, la = remote.step(row), local.step(row)
        for x, y in zip(ra[:4], la[:4]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(remote.final_observations, local.final_observations)
        np.testing.assert_array_equal(remote.masks, local.masks)
        if compare_infos:
            assert ra[4] == la[4]


@pytest.fixture
def native_server() -> Iterator[EnvServer]:
    server = EnvServer("cartpole-v1", num_envs=8)
    server.start()
    yield server
    server.stop()


def test_native_round_trip_equals_local_stepping(native_server: EnvServer) -> None:
    remote = fugu.vector.make("cartpole-v1", 8, backend="remote", address=native_server.address)
    local = fugu.vector.make("cartpole-v1", 8, backend="native", env_kwargs={"info_interval": 128})
    try:
        assert remote.single_observation_space == local.single_observation_space
        assert remote.single_action_space == local.single_action_space
        _compare_sync(remote, local, _actions(8, 300), compare_infos=True)
    finally:
        remote.close()
        local.close()


def test_async_batches_come_back_round_robin_and_equal_local(native_server: EnvServer) -> None:
    remote = fugu.vector.make(
        "cartpole-v1", 8, backend="remote", address=native_server.address, batch_size=4
    )
    local = fugu.vector.make("cartpole-v1", 8, backend="native")
    try:
        remote.async_reset(seed=3)
        local.reset(seed=3)
        actions = _actions(8)
        for row in actions:
            for lo in (0, 4):
                batch = remote.recv()
                np.testing.assert_array_equal(batch.env_ids, np.arange(lo, lo + 4))
                np.testing.assert_array_equal(batch.observations, local.observations[lo : lo + 4])
                remote.send(row[lo : lo + 4])
            local.step(row)
    finally:
        remote.close()
        local.close()


def test_gymnasium_round_trip_equals_local_serial() -> None:
    server = EnvServer("CartPole-v1", num_envs=3, make_kwargs={"backend": "serial"})
    server.start()
    remote = fugu.vector.make("CartPole-v1", 3, backend="remote", address=server.address)
    local = fugu.vector.make("CartPole-v1", 3, backend="serial")
    try:
        _compare_sync(remote, local, _actions(3), compare_infos=True)
    finally:
        remote.close()
        local.close()
        server.stop()


@pytest.mark.parametrize(
    ("env_id", "env_kwargs", "name"),
    [
        ("hazard-nav-v1", {}, "costs"),
        ("connect4-v1", {"opponent": "random", "illegal_move": "random"}, "action_masks"),
    ],
)
def test_declared_extra_fields_travel(env_id: str, env_kwargs: dict, name: str) -> None:
    server = EnvServer(env_id, num_envs=4, make_kwargs={"env_kwargs": env_kwargs, "seed": 1})
    server.start()
    remote = fugu.vector.make(env_id, 4, backend="remote", address=server.address, batch_size=2)
    local = fugu.vector.make(env_id, 4, env_kwargs=env_kwargs, seed=1)
    try:
        assert remote.extra_fields == local.extra_fields
        remote.reset(seed=2)
        local.reset(seed=2)
        rng = np.random.default_rng(0)
        for _ in range(30):
            sample = np.stack([local.single_action_space.sample() for _ in range(4)])
            actions = sample if name == "costs" else rng.integers(0, 7, 4).astype(np.int32)
            remote.step(actions)
            local.step(actions)
            np.testing.assert_array_equal(remote.extras[name], local.extras[name])
            np.testing.assert_array_equal(getattr(remote, name), local.extras[name])
            np.testing.assert_array_equal(remote.observations, local.observations)
    finally:
        remote.close()
        local.close()
        server.stop()


def test_pettingzoo_env_is_served_with_its_roles_and_global_state() -> None:
    pytest.importorskip("mpe2")
    from fugu.bridges.entry import EntryPointEnv

    factory = EntryPointEnv("mpe2.simple_spread_v3:parallel_env")
    server = EnvServer(factory, num_envs=2, make_kwargs={"backend": "serial"})
    server.start()
    remote = fugu.vector.make("simple-spread", 2, backend="remote", address=server.address)
    local = fugu.vector.make(factory, 2, backend="serial")
    try:
        assert remote.num_agents == local.num_agents == 6  # 3 agents x 2 copies, one row each
        assert set(remote.extra_fields) == {"roles", "global_state"}
        np.testing.assert_array_equal(remote.reset(seed=0)[0], local.reset(seed=0)[0])
        rng = np.random.default_rng(0)
        for _ in range(20):
            actions = rng.integers(0, 5, 6).astype(local.actions.dtype)
            for x, y in zip(remote.step(actions)[:4], local.step(actions)[:4]):
                np.testing.assert_array_equal(x, y)
            for name in ("roles", "global_state"):
                np.testing.assert_array_equal(remote.extras[name], local.extras[name])
    finally:
        remote.close()
        local.close()
        server.stop()


# -- bad requests ---------------------------------------------------------------------------
TOKEN = "s3cret"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
ACTIONS = [Field("actions", (), np.int32)]


@pytest.fixture(scope="module")
def guarded() -> Iterator[EnvServer]:
    server = EnvServer(
        "cartpole-v1", num_envs=4, token=TOKEN, max_clients=2, max_message_bytes=1 << 16
    )
    server.start()
    yield server
    server.stop()


def _unary(server: EnvServer, frame: bytes, metadata=AUTH) -> tuple[grpc.StatusCode, bytes]:
    with grpc.insecure_channel(server.address) as channel:
        try:
            return grpc.StatusCode.OK, channel.unary_unary(wire.METHOD)(
                frame, metadata=metadata, timeout=10
            )
        except grpc.RpcError as error:
            assert error.details()  # every refusal says why
            return error.code(), b""


def _hello(server: EnvServer) -> int:
    code, answer = _unary(server, wire.encode(wire.OP_HELLO, 0, 0))
    assert code == grpc.StatusCode.OK
    return wire.decode(answer).session


def _close(server: EnvServer, session: int) -> None:
    assert _unary(server, wire.encode(wire.OP_CLOSE, session, 0))[0] == grpc.StatusCode.OK


def _step(session: int, seq: int, n: int = 4, **kwargs) -> bytes:
    actions = kwargs.pop("actions", np.zeros(n, np.int32))
    layout = kwargs.pop("layout", wire.layout_id(ACTIONS, n))
    return wire.encode(wire.OP_STEP, session, seq, [actions], layout=layout, **kwargs)


def _bad_cases(session: int) -> dict[str, tuple[bytes, object, grpc.StatusCode]]:
    reset = wire.encode(wire.OP_RESET, session, 1, meta={"seed": 0})
    ok = _step(session, 2)
    code = grpc.StatusCode
    return {
        "short header": (b"FUGU\x01", AUTH, code.INVALID_ARGUMENT),
        "bad magic": (b"NOPE" + ok[4:], AUTH, code.INVALID_ARGUMENT),
        "wrong version": (wire.encode(wire.OP_RESET, session, 1, version=9), AUTH,
                          code.FAILED_PRECONDITION),
        "unknown op": (wire.encode(77, session, 1), AUTH, code.UNIMPLEMENTED),
        "no token": (reset, None, code.UNAUTHENTICATED),
        "wrong token": (reset, (("authorization", "Bearer nope"),), code.UNAUTHENTICATED),
        "unknown session": (wire.encode(wire.OP_RESET, 12345, 1), AUTH, code.NOT_FOUND),
        "step before reset": (_step(session, 1), AUTH, code.FAILED_PRECONDITION),
        "out-of-order sequence": (wire.encode(wire.OP_RESET, session, 5), AUTH, code.ABORTED),
        "batch out of range": (wire.encode(wire.OP_RESET, session, 1, batch=3), AUTH,
                               code.OUT_OF_RANGE),
        "bad meta": (ok[: wire.HEADER.size - 8] + (3).to_bytes(4, "little") + b"\0" * 4 + b"{x",
                     AUTH, code.INVALID_ARGUMENT),
        "bad seed": (wire.encode(wire.OP_RESET, session, 1, meta={"seed": "x"}), AUTH,
                     code.INVALID_ARGUMENT),
        "oversized": (_step(session, 1, actions=np.zeros(1 << 15, np.int32)), AUTH,
                      code.RESOURCE_EXHAUSTED),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    ["short header", "bad magic", "wrong version", "unknown op", "no token", "wrong token",
     "unknown session", "step before reset", "out-of-order sequence", "batch out of range",
     "bad meta", "bad seed", "oversized"],
)  # fmt: skip
def test_bad_request_gets_a_status_and_the_server_still_serves(
    guarded: EnvServer, case: str
) -> None:
    session = _hello(guarded)
    frame, metadata, expected = _bad_cases(session)[case]
    assert _unary(guarded, frame, metadata)[0] == expected
    # the refused request changed nothing: the session steps from sequence 1
    reset = wire.encode(wire.OP_RESET, session, 1, meta={"seed": 0})
    assert _unary(guarded, reset)[0] == grpc.StatusCode.OK
    assert _unary(guarded, _step(session, 2))[0] == grpc.StatusCode.OK
    _close(guarded, session)


def test_wrong_layout_and_truncated_buffers_are_refused(guarded: EnvServer) -> None:
    session = _hello(guarded)
    assert _unary(guarded, wire.encode(wire.OP_RESET, session, 1))[0] == grpc.StatusCode.OK
    wrong_layout = _step(session, 2, layout=wire.layout_id(ACTIONS, 5))
    truncated = _step(session, 2)[:-3]
    wrong_dtype = _step(session, 2, actions=np.zeros(4, np.int64))
    out_of_range = _step(session, 2, actions=np.full(4, 7, np.int32))
    for frame in (wrong_layout, truncated, wrong_dtype, out_of_range):
        assert _unary(guarded, frame)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _unary(guarded, _step(session, 2))[0] == grpc.StatusCode.OK
    _close(guarded, session)


def test_too_many_clients_are_refused_until_one_leaves(guarded: EnvServer) -> None:
    first, second = _hello(guarded), _hello(guarded)
    assert (
        _unary(guarded, wire.encode(wire.OP_HELLO, 0, 0))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    with pytest.raises(APIUsageError, match="RESOURCE_EXHAUSTED"):
        fugu.vector.make("cartpole-v1", 4, backend="remote", address=guarded.address, token=TOKEN)
    _close(guarded, first)
    env = fugu.vector.make("cartpole-v1", 4, backend="remote", address=guarded.address, token=TOKEN)
    assert env.reset(seed=0)[0].shape == (4, 4)
    env.close()
    _close(guarded, second)
    assert guarded.num_sessions == 0


def test_client_side_mistakes_are_clear(guarded: EnvServer) -> None:
    with pytest.raises(APIUsageError, match="UNAUTHENTICATED"):
        fugu.vector.make("cartpole-v1", 4, backend="remote", address=guarded.address)
    with pytest.raises(APIUsageError, match="serves 4 envs"):
        fugu.vector.make("cartpole-v1", 6, backend="remote", address=guarded.address, token=TOKEN)
    with pytest.raises(APIUsageError, match="serves 'cartpole-v1'"):
        fugu.vector.make("CartPole-v1", 4, backend="remote", address=guarded.address, token=TOKEN)
    with pytest.raises(APIUsageError, match="address"):
        fugu.vector.make("cartpole-v1", 4, backend="remote")
    env = fugu.vector.make("cartpole-v1", 4, backend="remote", address=guarded.address, token=TOKEN)
    with pytest.raises(APIUsageError, match="before reset"):
        env.step(np.zeros(4, np.int32))
    env.reset(seed=0)
    with pytest.raises(APIUsageError, match="INVALID_ARGUMENT"):
        env.step(np.full(4, 9, np.int32))  # refused by the server's env: the session lives on
    env.step(np.zeros(4, np.int32))
    env.close()
    env.close()  # idempotent
    assert guarded.num_sessions == 0


# -- the CLI and a dying server -------------------------------------------------------------
def _serve(*args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "fugu.cli.main", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stdout.readline()
    assert "serving" in line, line
    return process, "127.0.0.1:" + line.strip().rsplit(":", 1)[1]


def test_cli_serve_starts_serves_and_stops_on_sigterm() -> None:
    process, address = _serve("cartpole-v1", "--num-envs", "4", "--token", TOKEN)
    try:
        env = fugu.vector.make("cartpole-v1", 4, backend="remote", address=address, token=TOKEN)
        env.reset(seed=0)
        env.step(np.ones(4, np.int32))
        env.close()
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopped" in out


def test_server_death_is_reported_not_hung() -> None:
    process, address = _serve("cartpole-v1", "--num-envs", "4")
    env = fugu.vector.make("cartpole-v1", 4, backend="remote", address=address)
    try:
        env.reset(seed=0)
        env.step(np.zeros(4, np.int32))
        env.timeout_s = 2.0
        process.send_signal(signal.SIGSTOP)  # hung: no answer within timeout_s
        with pytest.raises(WorkerError, match="did not answer within 2 s"):
            env.step(np.zeros(4, np.int32))
        with pytest.raises(WorkerError):  # and it stays failed
            env.step(np.zeros(4, np.int32))
    finally:
        env.close()
        process.send_signal(signal.SIGCONT)
    env = fugu.vector.make("cartpole-v1", 4, backend="remote", address=address)
    env.async_reset(seed=0)
    env.recv()
    process.kill()  # dead: the connection closes
    process.wait()
    env.send(np.zeros(4, np.int32))
    with pytest.raises(WorkerError, match="gone"):
        env.recv()
    env.close()
