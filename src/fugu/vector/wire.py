"""The wire format of fugu's gRPC env serving: one framed message per batch, no codegen.

Every request and every answer is one byte string:

- a 40-byte header (:data:`HEADER`, little endian): magic ``b"FUGU"``, protocol version, op,
  the *layout id* of the raw buffers that follow, the batch index, the session id, the
  sequence number and the length of the JSON ``meta`` segment;
- ``meta``: a small JSON object (seeds, infos, the env's description);
- the raw bytes of the declared fields, each buffer whole and in declaration order (rows of
  one batch, never one message per row).

The layout id is a CRC-32 of the fields' names, row shapes and dtypes
(:func:`layout_id`), so a peer that disagrees on the schema (a different env, extra fields or
number of rows) is rejected before any buffer is read. Spaces travel as JSON
(:func:`space_to_json`), never pickled: the server executes nothing a client sends.

Example:
    >>> import numpy as np
    >>> from fugu.core.schema import Field
    >>> fields = [Field("actions", (), np.int32)]
    >>> frame = encode(OP_STEP, 7, 1, [np.arange(3, dtype=np.int32)], layout=layout_id(fields, 3))
    >>> msg = decode(frame)
    >>> msg.op == OP_STEP, msg.session, msg.seq
    (True, 7, 1)
    >>> read_fields(msg, fields, 3)["actions"].tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from fugu.core.schema import Field

__all__ = [
    "HEADER",
    "MAGIC",
    "OPS",
    "VERSION",
    "FrameError",
    "Message",
    "decode",
    "encode",
    "field_from_json",
    "field_to_json",
    "layout_id",
    "read_fields",
    "space_from_json",
    "space_to_json",
]

MAGIC = b"FUGU"
VERSION = 1
"""Protocol version; a peer speaking another one is refused (``FAILED_PRECONDITION``)."""
HEADER = struct.Struct("<4sHHIIQQI4x")
"""magic, version, op, layout id, batch, session, seq, meta length (40 bytes)."""

OP_HELLO, OP_RESET, OP_STEP, OP_CLOSE = 1, 2, 3, 4
OPS = {OP_HELLO: "hello", OP_RESET: "reset", OP_STEP: "step", OP_CLOSE: "close"}
"""Ops a client may send, by number."""
SERVICE = "fugu.vector.VecEnvService"
METHOD = f"/{SERVICE}/Call"
"""Unary method: one frame in, one frame out (hello, close, or any op)."""
STREAM_METHOD = f"/{SERVICE}/Stream"
"""Bidirectional stream: a batch's frames in order, one answer per request (the fast path)."""


class FrameError(ValueError):
    """A message that is not a well-formed fugu frame (the text says what is wrong)."""


class Message(NamedTuple):
    """A decoded frame; ``body`` is a zero-copy view of the raw buffers."""

    version: int
    op: int
    layout: int
    batch: int
    session: int
    seq: int
    meta: dict[str, Any]
    body: memoryview


def layout_id(fields: Iterable[Field], num_rows: int) -> int:
    """CRC-32 naming the buffers of ``fields`` for ``num_rows`` rows, in order (cached).

    Example:
        >>> from fugu.core.schema import COSTS
        >>> layout_id([COSTS], 4) == layout_id([COSTS], 4) != layout_id([COSTS], 5)
        True
    """
    return _layout(tuple(fields), int(num_rows))[0]


@functools.lru_cache(maxsize=256)
def _layout(fields: tuple[Field, ...], num_rows: int) -> tuple[int, tuple[int, ...]]:
    """The layout id and the byte size of each field's buffer."""
    text = ";".join(f"{f.name}:{f.row_shape(num_rows)}:{f.dtype.str}" for f in fields)
    sizes = tuple(
        int(np.prod(f.row_shape(num_rows), dtype=np.int64)) * f.dtype.itemsize for f in fields
    )
    return zlib.crc32(text.encode()) or 1, sizes


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def encode(
    op: int,
    session: int,
    seq: int,
    buffers: Sequence[np.ndarray] = (),
    *,
    meta: Mapping[str, Any] | None = None,
    layout: int = 0,
    batch: int = 0,
    version: int = VERSION,
) -> bytes:
    """One frame: the header, the JSON ``meta`` and the raw bytes of ``buffers`` (one copy)."""
    text = json.dumps(meta, default=_json_default).encode() if meta else b""
    head = HEADER.pack(MAGIC, version, op, layout, batch, session, seq, len(text))
    parts: list[Any] = [head, text]
    for array in buffers:
        parts.append(memoryview(np.ascontiguousarray(array)).cast("B"))  # type: ignore[arg-type]
    return b"".join(parts)


def decode(frame: bytes) -> Message:
    """Parse a frame's header and meta; raise :class:`FrameError` when it is not one."""
    if len(frame) < HEADER.size:
        raise FrameError(
            f"message of {len(frame)} bytes is shorter than the {HEADER.size}-byte header"
        )
    magic, version, op, layout, batch, session, seq, meta_len = HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r} (expected {MAGIC!r}): not a fugu frame")
    end = HEADER.size + meta_len
    if end > len(frame):
        raise FrameError(f"meta segment of {meta_len} bytes runs past the end of the message")
    meta: dict[str, Any] = {}
    if meta_len:
        try:
            meta = json.loads(bytes(frame[HEADER.size : end]))
        except (ValueError, UnicodeDecodeError) as error:
            raise FrameError(f"meta segment is not JSON ({error})") from None
        if not isinstance(meta, dict):
            raise FrameError("meta segment must be a JSON object")
    return Message(version, op, layout, batch, session, seq, meta, memoryview(frame)[end:])


def read_fields(message: Message, fields: Sequence[Field], num_rows: int) -> dict[str, np.ndarray]:
    """Views of the raw buffers of ``fields`` (``num_rows`` rows each) in ``message``.

    Raises:
        FrameError: The layout id differs from ``fields``' or the body has the wrong length.
    """
    expected, sizes = _layout(tuple(fields), int(num_rows))
    if message.layout != expected:
        raise FrameError(
            f"field layout {message.layout:#010x} does not match the session's {expected:#010x} "
            f"({', '.join(f.name for f in fields)} for {num_rows} rows)"
        )
    if sum(sizes) != len(message.body):
        raise FrameError(
            f"body holds {len(message.body)} bytes, the declared fields need {sum(sizes)}: "
            "truncated or padded buffer"
        )
    out, offset = {}, 0
    for f, size in zip(fields, sizes):
        chunk = message.body[offset : offset + size]
        out[f.name] = np.frombuffer(chunk, dtype=f.dtype).reshape(f.row_shape(num_rows))
        offset += size
    return out


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Box, Discrete or MultiDiscrete space as JSON-ready data (no pickle)."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).str,
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": np.dtype(space.dtype).str,
        }
    raise FrameError(f"cannot send {type(space).__name__} spaces over the wire")


def space_from_json(data: Mapping[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_json`.

    Example:
        >>> space_from_json(space_to_json(spaces.Discrete(3, start=1)))
        Discrete(3, start=1)
    """
    kind = data.get("type")
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        low = np.asarray(data["low"], dtype=dtype).reshape(data["shape"])
        high = np.asarray(data["high"], dtype=dtype).reshape(data["shape"])
        return spaces.Box(low, high, dtype=dtype)  # type: ignore[arg-type]
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data["start"]))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(
            np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]), start=np.asarray(data["start"])
        )
    raise FrameError(f"unknown space type {kind!r}")


def field_to_json(f: Field) -> dict[str, Any]:
    """A :class:`Field` as JSON-ready data."""
    fill = f.fill.item() if isinstance(f.fill, np.generic) else f.fill
    return {
        "name": f.name,
        "shape": list(f.shape),
        "dtype": f.dtype.str,
        "fill": fill,
        "doc": f.doc,
    }


def field_from_json(data: Mapping[str, Any]) -> Field:
    """Inverse of :func:`field_to_json`."""
    return Field(data["name"], data["shape"], np.dtype(data["dtype"]), data["fill"], data["doc"])
