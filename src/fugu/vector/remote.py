"""Remote backend: a VecEnv whose rows are stepped by a :class:`fugu.vector.serve.EnvServer`.

``Remote`` speaks the VecEnv protocol of every fugu backend (``reset``/``step`` and
``async_reset``/``send``/``recv`` with round-robin batches, declared extra fields included):
each batch is one gRPC call carrying the batch's actions as one raw buffer, answered by one
message holding every declared field of the batch (:mod:`fugu.vector.wire`). ``send`` starts
the call and returns, so while the policy computes one batch the others travel and step on
the server.

A server that dies or stops answering is reported as :class:`~fugu.core.errors.WorkerError`
within a bounded time: a closed connection at once, a hung server after ``timeout_s`` (the
deadline of every call); gRPC keepalive pings notice a silent network within ~15 s.

Example:
    >>> from fugu.vector.serve import EnvServer
    >>> server = EnvServer("cartpole-v1", num_envs=4)
    >>> _ = server.start()
    >>> env = Remote(server.address, num_envs=4, batch_size=2)
    >>> obs, infos = env.reset(seed=0)
    >>> obs.shape, env.num_batches
    ((4, 4), 2)
    >>> env.close(); server.stop()
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.env import EnvBuffers, Infos
from fugu.core.errors import APIUsageError, WorkerError
from fugu.core.schema import Field, schema
from fugu.vector import wire
from fugu.vector.base import Seed, VecEnvBase, instance_seed
from fugu.vector.serve import DEFAULT_MAX_MESSAGE_BYTES, import_grpc, read_pem

__all__ = ["Remote"]

# gRPC codes that mean the server is gone or wedged: the vec env is then unusable.
_FATAL = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "NOT_FOUND", "CANCELLED", "UNKNOWN")


class _Stream:
    """One batch's bidirectional stream: frames in, answers out, in order."""

    def __init__(self, rpc_stream: Any, metadata: Any) -> None:
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.call = rpc_stream(iter(self._queue.get, None), metadata=metadata)
        self.outstanding = 0
        self.since = 0.0  # when the oldest unanswered request was sent (0: none)
        self.timed_out = False

    def send(self, frame: bytes) -> None:
        if not self.outstanding:
            self.since = time.monotonic()
        self.outstanding += 1
        self._queue.put(frame)

    def recv(self) -> bytes:
        answer: bytes = next(self.call)
        self.outstanding -= 1
        self.since = time.monotonic() if self.outstanding else 0.0
        return answer

    def close(self) -> None:
        self._queue.put(None)
        self.call.cancel()


class Remote(VecEnvBase):
    """Steps the rows of a remote :class:`~fugu.vector.serve.EnvServer` session.

    Args:
        address: ``host:port`` of the server (``fugu serve ENV --port N``).
        env: The env id the client expects; the server refuses a session for another one
            (``None``: whatever it serves).
        num_envs: Env instances expected (``None``: the server's); must equal the server's.
        batch_size: Instances per :meth:`recv` batch (default: all, one batch); must divide
            ``num_envs``. Each batch is a separate vec env on the server.
        seed: Seed of the first reset that gets none.
        token: Token of a server started with ``--token``.
        timeout_s: Deadline of every call: a server that does not answer within it is
            reported as dead.
        connect_timeout_s: How long to wait for the server to come up.
        max_message_bytes: Largest message sent or received.
        tls: Speak TLS (the server was started with ``--tls-cert``/``--tls-key``). Default:
            on when ``tls_ca`` is given. Without ``tls_ca`` the system's CAs are trusted.
        tls_ca: PEM file of the CA that signed the server's certificate (for a self-signed
            certificate: the certificate itself).
        tls_server_name: The name to check the server's certificate against, when it differs
            from the host in ``address`` (e.g. a certificate for ``envhost`` reached by IP).
    """

    def __init__(
        self,
        address: str,
        env: str | None = None,
        num_envs: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tls: bool | None = None,
        tls_ca: str | Path | None = None,
        tls_server_name: str | None = None,
    ) -> None:
        grpc = import_grpc()
        self.address, self.timeout_s = address, float(timeout_s)
        self._metadata = None if token is None else (("authorization", f"Bearer {token}"),)
        self._session = 0
        self._error: str | None = None
        self.tls = bool(tls_ca is not None if tls is None else tls)
        if tls_ca is not None and not self.tls:
            raise APIUsageError("tls_ca is given but tls=False; drop one of them")
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", int(max_message_bytes)),
            ("grpc.max_send_message_length", int(max_message_bytes)),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 0),
        ]
        if self.tls:
            roots = None if tls_ca is None else read_pem(tls_ca, "TLS CA certificate")
            if tls_server_name is not None:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._rpc = self._channel.unary_unary(wire.METHOD)
        self._rpc_stream = self._channel.stream_stream(wire.STREAM_METHOD)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=connect_timeout_s)
        except grpc.FutureTimeoutError:
            self._channel.close()
            hint = (
                "a TLS server needs a client with tls_ca= (or tls=True)"
                if not self.tls
                else "is it a plain-text server, or does tls_ca not sign its certificate?"
            )
            raise WorkerError(
                f"no fugu env server answers at {address} (waited {connect_timeout_s:g} s); "
                f"start one with `fugu serve ENV --port N`; {hint}"
            ) from None
        num_batches = 1
        if batch_size is not None:
            if num_envs is None or int(batch_size) < 1 or int(num_envs) % int(batch_size):
                self._channel.close()
                raise APIUsageError(
                    f"batch_size ({batch_size}) needs num_envs and must divide it ({num_envs})"
                )
            num_batches = int(num_envs) // int(batch_size)
        try:
            hello = self._result(
                self._call(wire.OP_HELLO, meta={"env": env, "num_batches": num_batches})
            )
        except BaseException:
            self._channel.close()
            raise
        self._session = hello.session
        meta = hello.meta
        if num_envs is not None and int(num_envs) != meta["num_envs"]:
            self._bye()
            raise APIUsageError(
                f"the server at {address} serves {meta['num_envs']} envs, not {num_envs}; "
                "pass its num_envs (or None)"
            )
        obs_space = wire.space_from_json(meta["observation_space"])
        act_space = wire.space_from_json(meta["action_space"])
        extras = [wire.field_from_json(f) for f in meta["extra_fields"]]
        self.rows_per_batch = int(meta["rows_per_batch"])
        buffers = EnvBuffers.allocate(
            obs_space, act_space, self.rows_per_batch * num_batches, extras
        )
        instances = int(meta["num_envs"])
        super().__init__(obs_space, act_space, buffers, instances, instances // num_batches, seed)
        self.env_id = meta["env"]
        fields = schema(obs_space, act_space, extras)
        self._in_fields: list[Field] = [fields["actions"]]
        self._out_fields: list[Field] = [f for n, f in fields.items() if n != "actions"]
        self._in_layout = wire.layout_id(self._in_fields, self.rows_per_batch)
        self._seqs = [0] * num_batches
        self._streams: list[_Stream | None] = [None] * num_batches
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="fugu-remote-watch", daemon=True)
        self._watchdog.start()

    # -- calls ------------------------------------------------------------------------------
    def _call(self, op: int, meta: Any = None) -> Any:
        """A unary call (hello, close): its future."""
        frame = wire.encode(op, self._session, 0, meta=meta)
        return self._rpc.future(frame, timeout=self.timeout_s, metadata=self._metadata)

    def _result(self, future: Any) -> wire.Message:
        grpc = import_grpc()
        try:
            return wire.decode(future.result())
        except grpc.RpcError as error:
            raise self._failure(error, False) from None

    def _failure(self, error: Any, timed_out: bool) -> Exception:
        """The exception for a failed call; fatal ones make this vec env unusable."""
        code, details = error.code(), error.details()
        if timed_out or code.name == "DEADLINE_EXCEEDED":
            text = (
                f"remote env server at {self.address} did not answer within "
                f"{self.timeout_s:g} s (hung or overloaded)"
            )
        elif code.name == "UNAVAILABLE":
            text = f"remote env server at {self.address} is gone ({details})"
        else:
            text = f"remote env server at {self.address} answered {code.name}: {details}"
            if code.name not in _FATAL:
                return APIUsageError(text)
        self._error = text + "; close() this vec env and make a new one"
        return WorkerError(self._error)

    def _request(self, op: int, batch: int, buffers: Any = (), meta: Any = None) -> None:
        self._seqs[batch] += 1
        layout = self._in_layout if buffers else 0
        frame = wire.encode(
            op, self._session, self._seqs[batch], buffers, meta=meta, layout=layout, batch=batch
        )
        if self._streams[batch] is None:
            self._streams[batch] = _Stream(self._rpc_stream, self._metadata)
        self._streams[batch].send(frame)  # type: ignore[union-attr]

    def _collect(self, batch: int) -> Infos:
        stream = self._streams[batch]
        if stream is None or not stream.outstanding:
            return []
        grpc = import_grpc()
        try:
            msg = wire.decode(stream.recv())
        except grpc.RpcError as error:
            stream.close()  # a refused request ends its stream: open a new one next time
            self._streams[batch] = None
            self._seqs[batch] -= 1  # the server did not advance
            raise self._failure(error, stream.timed_out) from None
        except StopIteration:
            self._error = f"remote env server at {self.address} ended the stream of batch {batch}"
            raise WorkerError(self._error) from None
        arrays = wire.read_fields(msg, self._out_fields, self.rows_per_batch)
        rows = self._batch_views[batch][0].arrays()
        for name, array in arrays.items():
            np.copyto(rows[name], array)
        return msg.meta.get("infos", [])  # type: ignore[no-any-return]

    def _watch(self) -> None:
        """Cancel a stream whose answer is overdue, so the waiting call reports it."""
        while not self._stop.wait(min(1.0, self.timeout_s / 4)):
            now = time.monotonic()
            for stream in list(self._streams):
                if stream is not None and stream.since and now - stream.since > self.timeout_s:
                    stream.timed_out = True
                    stream.call.cancel()

    # -- hooks ------------------------------------------------------------------------------
    def _reset_all(self, seed: Seed) -> Infos:
        self._start_reset(seed)
        infos: Infos = []
        for batch in range(self.num_batches):
            infos.extend(self._collect(batch))
        return infos

    def _step_all(self) -> Infos:
        for batch in range(self.num_batches):
            self._start_step(batch)
        infos: Infos = []
        for batch in range(self.num_batches):
            infos.extend(self._collect(batch))
        return infos

    def _start_reset(self, seed: Seed) -> None:
        for batch, (lo, hi) in enumerate(self._batch_rows):
            part = instance_seed(seed, lo, hi)
            self._request(wire.OP_RESET, batch, meta={"seed": part} if part is not None else None)

    def _start_step(self, batch: int) -> None:
        self._request(wire.OP_STEP, batch, [self._batch_views[batch][0].actions])

    def _wait(self, batch: int) -> Infos:
        return self._collect(batch)

    def _close(self) -> None:
        self._stop.set()
        for stream in self._streams:
            if stream is not None:
                stream.close()
        self._streams = [None] * len(self._streams)
        self._bye()

    def _bye(self) -> None:
        if self._session and self._error is None:
            with contextlib.suppress(Exception):
                self._call(wire.OP_CLOSE).result(timeout=min(self.timeout_s, 5.0))
        self._session = 0
        self._channel.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
