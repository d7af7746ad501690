"""Math helpers for numba kernels that keep results bit-identical to NumPy's scalar functions.

:func:`sincos` returns ``(sin(x), cos(x))`` with one call to the C library's ``sincos`` on
glibc (Linux), which shares the argument reduction of both functions and so costs about half
of ``np.sin(x)`` plus ``np.cos(x)``, while giving exactly the same bits (glibc computes
``sincos`` with the code of ``sin`` and ``cos``; ``tests/envs/test_libm.py`` checks it).
Elsewhere it calls ``sin`` and ``cos``. Usable only inside ``@njit`` functions; cacheable.

Example:
    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def both(x):
    ...     return sincos(x)
    >>> both(0.5) == (np.sin(0.5), np.cos(0.5))
    True
"""

from __future__ import annotations

import sys
from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["HAS_SINCOS", "sincos"]

HAS_SINCOS = sys.platform.startswith("linux")
"""Whether :func:`sincos` calls the C library's ``sincos`` (glibc) rather than sin and cos."""


@intrinsic
def sincos(typingctx: Any, x: Any) -> Any:  # pragma: no cover - runs at numba compile time
    """``(sin(x), cos(x))`` for a float64 ``x``, in one libm call where available."""
    if not isinstance(x, types.Float):
        return None
    signature = types.UniTuple(types.float64, 2)(x)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        double = ir.DoubleType()
        value = context.cast(builder, args[0], sig.args[0], types.float64)
        if HAS_SINCOS:
            fnty = ir.FunctionType(
                ir.VoidType(), [double, double.as_pointer(), double.as_pointer()]
            )
            fn = cgutils.get_or_insert_function(builder.module, fnty, "sincos")
            sin_ptr = cgutils.alloca_once(builder, double)
            cos_ptr = cgutils.alloca_once(builder, double)
            builder.call(fn, [value, sin_ptr, cos_ptr])
            sin, cos = builder.load(sin_ptr), builder.load(cos_ptr)
        else:
            fnty = ir.FunctionType(double, [double])
            sin = builder.call(cgutils.get_or_insert_function(builder.module, fnty, "sin"), [value])
            cos = builder.call(cgutils.get_or_insert_function(builder.module, fnty, "cos"), [value])
        return context.make_tuple(builder, sig.return_type, [sin, cos])

    return signature, codegen
