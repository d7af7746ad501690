"""Serve any fugu VecEnv over gRPC: one unary method, raw-buffer frames, sessions per client.

A client opens a *session* (op ``hello``); the server builds the session's envs with
:func:`fugu.vector.make` (any backend: native, serial, multiprocessing), one vec env per batch
the client asks for, so the batches of one client step independently and concurrently (numba
kernels release the GIL). Each request then names its session, batch and sequence number;
``reset`` and ``step`` answer with the raw buffers of every declared field of the batch
(:mod:`fugu.vector.wire`). Nothing a client sends is unpickled or executed.

Safety. The server binds to ``127.0.0.1`` unless told otherwise; with a ``token`` every call
must carry ``authorization: Bearer <token>`` metadata (compared in constant time); with
``tls_cert`` and ``tls_key`` (PEM files) it speaks TLS only, so the token and the buffers are
encrypted on the network. Every bad
request is answered with a gRPC status and leaves the server serving:

=====================  ==============================================================
``UNAUTHENTICATED``     missing or wrong token
``INVALID_ARGUMENT``    not a fugu frame, truncated/padded buffer, wrong field layout, bad meta
``FAILED_PRECONDITION`` other protocol version, step before reset, env id mismatch
``ABORTED``             sequence number out of order (the session state is unchanged)
``UNIMPLEMENTED``       unknown op
``NOT_FOUND``           unknown (or expired) session
``OUT_OF_RANGE``        batch index outside the session's batches
``RESOURCE_EXHAUSTED``  too many clients, or a message over ``max_message_bytes`` (gRPC's own)
``INTERNAL``            the env itself failed (the session is closed)
=====================  ==============================================================

Example:
    >>> server = EnvServer("cartpole-v1", num_envs=4)
    >>> port = server.start()
    >>> port > 0
    True
    >>> server.stop()
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError, MissingDependencyError
from fugu.core.schema import Field, schema
from fugu.vector import wire

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "EnvServer", "import_grpc", "read_pem"]

DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
"""Largest request or answer (64 MiB) unless told otherwise."""


def import_grpc() -> Any:
    """``grpc``, or :class:`MissingDependencyError` naming the ``remote`` extra."""
    try:
        import grpc
    except ImportError as error:  # pragma: no cover - grpcio is in the dev extra
        raise MissingDependencyError(
            "gRPC env serving needs grpcio: pip install 'fugu-rl[remote]'"
        ) from error
    return grpc


def read_pem(path: str | Path, what: str) -> bytes:
    """The bytes of PEM file ``path`` (``what`` names it in the error when it cannot be read).

    Raises:
        APIUsageError: The file is missing, unreadable or not PEM.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise APIUsageError(f"cannot read the {what} {str(path)!r}: {error.strerror}") from None
    if b"-----BEGIN" not in data:
        raise APIUsageError(f"the {what} {str(path)!r} is not a PEM file (no -----BEGIN line)")
    return data


class _Reject(Exception):
    """A request refused with a gRPC status code name and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Session:
    envs: list[Any]
    rows: int
    in_fields: list[Field]
    out_fields: list[Field]
    outputs: list[list[np.ndarray]]
    locks: list[threading.Lock]
    seqs: list[int]
    started: list[bool]
    last_used: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        for env in self.envs:
            with contextlib.suppress(Exception):
                env.close()
        self.envs = []


class EnvServer:
    """A gRPC server stepping fugu vec envs for remote clients (:class:`fugu.vector.remote.Remote`).

    Args:
        env: An env id (fugu or Gymnasium) or a callable accepted by :func:`fugu.vector.make`.
        num_envs: Env instances per session (split evenly over the batches a client asks for).
        host: Interface to bind (``"127.0.0.1"``: this machine only; ``"0.0.0.0"``: all).
        port: TCP port (0: any free port; :meth:`start` returns it).
        token: When set, every call must carry ``authorization: Bearer <token>`` metadata.
        max_clients: Sessions open at once; one more ``hello`` gets ``RESOURCE_EXHAUSTED``.
        max_message_bytes: Largest request or answer.
        session_timeout_s: A session idle this long is closed when a new client arrives.
        tls_cert: PEM certificate (chain) of the server; with ``tls_key`` the server speaks
            TLS only (clients pass the CA that signed it as ``tls_ca``).
        tls_key: PEM private key of ``tls_cert``.
        make_kwargs: Further arguments for :func:`fugu.vector.make` (``backend``,
            ``num_workers``, ``env_kwargs``, ...).
    """

    def __init__(
        self,
        env: str | Callable[..., Any],
        num_envs: int = 1,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        max_clients: int = 4,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        session_timeout_s: float = 300.0,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        make_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise APIUsageError("TLS needs both tls_cert and tls_key (PEM files), or neither")
        self._tls = None
        if tls_cert is not None and tls_key is not None:
            self._tls = (read_pem(tls_key, "TLS key"), read_pem(tls_cert, "TLS certificate"))
        if int(num_envs) < 1:
            raise APIUsageError(f"num_envs must be >= 1, got {num_envs}")
        if int(max_clients) < 1:
            raise APIUsageError(f"max_clients must be >= 1, got {max_clients}")
        self.env, self.num_envs = env, int(num_envs)
        self.host, self.port = host, int(port)
        self.max_clients = int(max_clients)
        self.max_message_bytes = int(max_message_bytes)
        self.session_timeout_s = float(session_timeout_s)
        self.make_kwargs = dict(make_kwargs or {})
        self._token = None if token is None else f"Bearer {token}".encode()
        self._sessions: dict[int, _Session] = {}
        self._opening = 0  # hellos building their envs (they count against max_clients)
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def address(self) -> str:
        """``host:port`` to pass to ``fugu.vector.make(backend="remote", address=...)``."""
        return f"{self.host}:{self.port}"

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS (started with ``tls_cert`` and ``tls_key``)."""
        return self._tls is not None

    @property
    def num_sessions(self) -> int:
        """Sessions open now."""
        return len(self._sessions)

    def start(self) -> int:
        """Bind and start serving in background threads; return the port."""
        grpc = import_grpc()
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # clients ping every 10 s to notice a dead server; allow it
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
        workers = max(8, 4 * self.max_clients)
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fugu-serve"),
            options=options,
            maximum_concurrent_rpcs=4 * workers,
        )
        handlers = {
            wire.METHOD.rsplit("/", 1)[1]: grpc.unary_unary_rpc_method_handler(self._handle),
            wire.STREAM_METHOD.rsplit("/", 1)[1]: grpc.stream_stream_rpc_method_handler(
                self._handle_stream
            ),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(wire.SERVICE, handlers),)
        )
        target = f"{self.host}:{self.port}"
        if self._tls is None:
            port = self._server.add_insecure_port(target)
        else:
            try:
                credentials = grpc.ssl_server_credentials([self._tls])
                port = self._server.add_secure_port(target, credentials)
            except RuntimeError as error:
                raise APIUsageError(f"cannot use the TLS certificate and key: {error}") from None
        if port == 0:
            raise APIUsageError(f"cannot bind {self.host}:{self.port} (port in use?)")
        self.port = port
        self._server.start()
        return port

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); True when it stopped."""
        return bool(self._server.wait_for_termination(timeout))

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving and close every session's envs. Idempotent."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    # -- requests ---------------------------------------------------------------------------
    def _handle(self, request: bytes, context: Any) -> bytes:
        grpc = import_grpc()
        try:
            return self._dispatch(request, context)
        except _Reject as reject:
            context.abort(getattr(grpc.StatusCode, reject.code), str(reject))
        except wire.FrameError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _handle_stream(self, requests: Any, context: Any) -> Any:
        """One answer per request, in order; a refused request ends the stream with its code."""
        for request in requests:
            yield self._handle(request, context)

    def _dispatch(self, request: bytes, context: Any) -> bytes:
        if self._token is not None:
            sent = dict(context.invocation_metadata()).get("authorization", "")
            if not hmac.compare_digest(str(sent).encode(), self._token):
                raise _Reject("UNAUTHENTICATED", "missing or wrong token (authorization metadata)")
        msg = wire.decode(request)
        if msg.version != wire.VERSION:
            raise _Reject(
                "FAILED_PRECONDITION",
                f"protocol version {msg.version} is not supported (server speaks {wire.VERSION})",
            )
        if msg.op not in wire.OPS:
            raise _Reject("UNIMPLEMENTED", f"unknown op {msg.op} (known: {sorted(wire.OPS)})")
        if msg.op == wire.OP_HELLO:
            return self._hello(msg)
        session = self._sessions.get(msg.session)
        if session is None:
            raise _Reject("NOT_FOUND", f"no open session {msg.session} (closed or expired)")
        if msg.op == wire.OP_CLOSE:
            with self._lock:
                self._sessions.pop(msg.session, None)
            session.close()
            return wire.encode(wire.OP_CLOSE, msg.session, msg.seq)
        if not 0 <= msg.batch < len(session.envs):
            raise _Reject(
                "OUT_OF_RANGE", f"batch {msg.batch} outside the session's {len(session.envs)}"
            )
        with session.locks[msg.batch]:
            expected = session.seqs[msg.batch] + 1
            if msg.seq != expected:
                raise _Reject(
                    "ABORTED",
                    f"out-of-order request: sequence {msg.seq} for batch {msg.batch}, "
                    f"expected {expected}",
                )
            answer = (
                self._step(session, msg) if msg.op == wire.OP_STEP else self._reset(session, msg)
            )
            session.seqs[msg.batch] = expected
            session.last_used = time.monotonic()
            return answer

    def _hello(self, msg: wire.Message) -> bytes:
        wanted = msg.meta.get("env")
        if isinstance(self.env, str) and wanted not in (None, self.env):
            raise _Reject("FAILED_PRECONDITION", f"this server serves {self.env!r}, not {wanted!r}")
        num_batches = msg.meta.get("num_batches", 1)
        if not isinstance(num_batches, int) or num_batches < 1 or self.num_envs % num_batches:
            raise _Reject(
                "INVALID_ARGUMENT",
                f"num_batches must be a positive divisor of num_envs ({self.num_envs}), "
                f"got {num_batches!r}",
            )
        self._reserve_slot()
        try:
            session = self._open(num_batches)
        except BaseException:
            with self._lock:
                self._opening -= 1
            raise
        with self._lock:
            self._opening -= 1
            sid = secrets.randbits(62) + 1
            self._sessions[sid] = session
        env0 = session.envs[0]
        meta = {
            "env": self.env if isinstance(self.env, str) else getattr(self.env, "__name__", "?"),
            "num_envs": self.num_envs,
            "num_batches": num_batches,
            "rows_per_batch": session.rows,
            "observation_space": wire.space_to_json(env0.single_observation_space),
            "action_space": wire.space_to_json(env0.single_action_space),
            "extra_fields": [wire.field_to_json(f) for f in env0.extra_fields.values()],
            "max_message_bytes": self.max_message_bytes,
        }
        return wire.encode(wire.OP_HELLO, sid, 0, meta=meta)

    def _reserve_slot(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [
                sid for sid, s in self._sessions.items()
                if now - s.last_used > self.session_timeout_s
            ]  # fmt: skip
            stale = [self._sessions.pop(sid) for sid in expired]
            if len(self._sessions) + self._opening >= self.max_clients:
                raise _Reject(
                    "RESOURCE_EXHAUSTED",
                    f"too many clients: {self.max_clients} sessions are open; close one first",
                )
            self._opening += 1
        for session in stale:
            session.close()

    def _open(self, num_batches: int) -> _Session:
        from fugu.vector.backends import make

        per_batch = self.num_envs // num_batches
        envs: list[Any] = []
        try:
            for _ in range(num_batches):
                envs.append(make(self.env, per_batch, **self.make_kwargs))
        except APIUsageError as error:
            for env in envs:
                env.close()
            raise _Reject("INVALID_ARGUMENT", f"cannot build the env: {error}") from None
        except BaseException:
            for env in envs:
                env.close()
            raise
        env0 = envs[0]
        rows = int(env0.num_agents)
        fields = schema(env0.single_observation_space, env0.single_action_space, env0.extra_fields)
        out_fields = [f for name, f in fields.items() if name != "actions"]
        outputs = [[_buffer(env, f.name) for f in out_fields] for env in envs]
        return _Session(
            envs,
            rows,
            [fields["actions"]],
            out_fields,
            outputs,
            [threading.Lock() for _ in envs],
            [0] * num_batches,
            [False] * num_batches,
        )

    def _reset(self, session: _Session, msg: wire.Message) -> bytes:
        seed = msg.meta.get("seed")
        if not (seed is None or isinstance(seed, int) or _int_list(seed, session.rows)):
            raise _Reject("INVALID_ARGUMENT", f"seed must be null, an int or {session.rows} ints")
        if len(msg.body):
            raise _Reject(
                "INVALID_ARGUMENT", f"reset carries no buffers, got {len(msg.body)} bytes"
            )
        _, infos = self._env_call(session, msg.batch, "reset", seed)
        session.started[msg.batch] = True
        return self._answer(session, msg, infos)

    def _step(self, session: _Session, msg: wire.Message) -> bytes:
        if not session.started[msg.batch]:
            raise _Reject("FAILED_PRECONDITION", "step before reset: reset the batch first")
        actions = wire.read_fields(msg, session.in_fields, session.rows)["actions"]
        *_, infos = self._env_call(session, msg.batch, "step", actions)
        return self._answer(session, msg, infos)

    def _env_call(self, session: _Session, batch: int, name: str, arg: Any) -> Any:
        try:
            return getattr(session.envs[batch], name)(arg)
        except APIUsageError as error:
            raise _Reject("INVALID_ARGUMENT", f"{name} refused: {error}") from None
        except Exception as error:
            with self._lock:
                for sid, s in list(self._sessions.items()):
                    if s is session:
                        del self._sessions[sid]
            session.close()
            raise _Reject(
                "INTERNAL",
                f"the env failed in {name} ({type(error).__name__}: {error}); "
                "the session is closed",
            ) from None

    def _answer(self, session: _Session, msg: wire.Message, infos: Sequence[Any]) -> bytes:
        return wire.encode(
            msg.op,
            msg.session,
            msg.seq,
            session.outputs[msg.batch],
            meta={"infos": list(infos)} if infos else None,
            layout=wire.layout_id(session.out_fields, session.rows),
            batch=msg.batch,
        )


def _buffer(env: Any, name: str) -> np.ndarray:
    extras = getattr(env, "extras", {})
    return extras[name] if name in extras else getattr(env, name)  # type: ignore[no-any-return]


def _int_list(seed: Any, rows: int) -> bool:
    return isinstance(seed, list) and len(seed) == rows and all(isinstance(s, int) for s in seed)
