"""Typed dataclass fields from strings and plain values: the engine of config overrides.

:func:`coerce` turns a value read from TOML/JSON or typed on the command line into the type a
dataclass field declares (``int``, ``float``, ``bool``, ``str``, ``Literal``, ``X | None``,
``tuple[...]``, ``list[...]``, ``dict``), with an error that names the field and the type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from fugu.core.errors import APIUsageError

__all__ = ["coerce", "field_types", "from_dict", "to_dict", "type_name"]

T = TypeVar("T")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every init field of dataclass ``cls``, in declaration order.

    Example:
        >>> @dataclasses.dataclass
        ... class C:
        ...     a: int = 1
        ...     b: "float | None" = None
        >>> field_types(C)
        {'a': <class 'int'>, 'b': float | None}
    """
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def type_name(tp: Any) -> str:
    """A short readable name of a type annotation.

    Example:
        >>> type_name(int), type_name(Literal["a", "b"]), type_name(tuple[int, ...])
        ('int', "one of 'a', 'b'", 'tuple[int, ...]')
    """
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _parse_scalar_string(text: str, tp: Any) -> Any:
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (use true or false)")
    if tp is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an integer") from None
            if not number.is_integer():
                raise ValueError(f"{text!r} is not an integer") from None
            return int(number)
    if tp is float:
        return float(text.replace("_", ""))
    if tp is str:
        return text
    raise ValueError(f"cannot parse {text!r}")


def coerce(value: Any, tp: Any, name: str = "value") -> Any:
    """Convert ``value`` (a string from the CLI, or a plain value from TOML/JSON) to type ``tp``.

    Args:
        value: The raw value.
        tp: The field's type annotation.
        name: The field's name, for error messages.

    Raises:
        APIUsageError: The value does not fit the type.

    Example:
        >>> coerce("1e6", int), coerce("3e-4", float), coerce("false", bool)
        (1000000, 0.0003, False)
        >>> coerce("64,64", tuple[int, ...]), coerce([1, 2], tuple[int, ...])
        ((64, 64), (1, 2))
        >>> coerce("none", int | None), coerce(3, float)
        (None, 3.0)
        >>> coerce("fast", Literal["slow", "medium"], "train.mode")
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: train.mode: 'fast' is not one of 'slow', 'medium'
    """
    try:
        return _coerce(value, tp)
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise APIUsageError(f"{name}: {error}") from None


def _coerce(value: Any, tp: Any) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ValueError(f"{value!r} is not {type_name(tp)}")
    if origin in (Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.strip().lower() in _NONE)
        if is_none and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option)
            except (ValueError, TypeError) as error:
                errors.append(str(error))
        raise ValueError(f"{value!r} is not {type_name(tp)} ({'; '.join(errors)})")
    if origin in (tuple, list):
        items = value
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                items = json.loads(text)
            else:
                items = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(items, (list, tuple)):
            raise TypeError(f"{value!r} is not a sequence ({type_name(tp)})")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ValueError(f"{value!r} needs {len(args)} items ({type_name(tp)})")
            return tuple(_coerce(item, arg) for item, arg in zip(items, args))
        item_type = args[0] if args else Any
        converted = [_coerce(item, item_type) for item in items]
        return tuple(converted) if origin is tuple else converted
    if origin in (dict, Mapping) or tp is dict:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Mapping):
            raise TypeError(f"{value!r} is not a table/dict (on the command line: JSON)")
        return dict(value)
    if tp in (bool, int, float, str):
        if isinstance(value, str):
            return _parse_scalar_string(value, tp)
        if tp is bool:
            if isinstance(value, bool):
                return value
            raise TypeError(f"{value!r} is not a boolean")
        if isinstance(value, bool):
            raise TypeError(f"{value!r} is not {tp.__name__}")
        if tp is int:
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"{value!r} is not an integer")
        if tp is float:
            if isinstance(value, (int, float)):
                return float(value)
            raise TypeError(f"{value!r} is not a number")
        raise TypeError(f"{value!r} is not a string")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], section: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, coercing each value to its field's type.

    Raises:
        APIUsageError: A key is not a field of ``cls`` (the message lists the valid ones) or a
            value does not fit its field's type.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Opt:
        ...     lr: float = 0.1
        ...     steps: int = 10
        >>> from_dict(Opt, {"lr": 1, "steps": "1e3"})
        Opt(lr=1.0, steps=1000)
        >>> from_dict(Opt, {"learning_rate": 1}, "opt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: unknown key 'opt.learning_rate'; valid keys of [opt]: ...
    """
    if not isinstance(data, Mapping):
        raise APIUsageError(f"[{section or cls.__name__}] must be a table, got {data!r}")
    types_ = field_types(cls)
    prefix = f"{section}." if section else ""
    unknown = [key for key in data if key not in types_]
    if unknown:
        raise APIUsageError(
            f"unknown key {prefix + unknown[0]!r}; valid keys of [{section or cls.__name__}]: "
            + ", ".join(types_)
        )
    values = {key: coerce(value, types_[key], prefix + key) for key, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        if isinstance(error, APIUsageError):
            raise
        raise APIUsageError(f"[{section or cls.__name__}]: {error}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass (or nested containers of them) as plain JSON-ready values (tuples -> lists).

    Example:
        >>> @dataclasses.dataclass
        ... class P:
        ...     sizes: tuple[int, ...] = (64, 64)
        >>> to_dict(P())
        {'sizes': [64, 64]}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, Mapping):
        return {str(key): to_dict(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(item) for item in obj]
    return obj
