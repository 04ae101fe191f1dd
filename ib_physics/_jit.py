"""The one set of Numba flags used by every kernel of the package.

Kernels are serial and release the GIL (``nogil``); parallelism comes from
running disjoint index ranges on threads (:mod:`ib_physics.parallel`), which keeps
compile times to seconds and results independent of the thread count.
``cache=True`` keeps compiled kernels on disk across processes. ``fastmath`` is
off on purpose: tests pin results bitwise across thread counts and chunkings, and
reassociation would change them. ``error_model="numpy"`` lets divisions by zero
produce inf/nan instead of raising inside hot loops (inputs are validated in
Python before any kernel runs).
"""

from __future__ import annotations

import types
from typing import Any, Callable

from numba import njit

__all__ = ["kernel", "inline_kernel", "contracting_kernel", "variant"]

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

#: Serial kernel decorator.
kernel = njit(**_OPTIONS)
#: Small device-style helper, inlined at the Numba IR level into its callers.
inline_kernel = njit(inline="always", **_OPTIONS)
#: Serial kernel whose multiply-adds may fuse into FMA instructions (LLVM's ``contract`` flag
#: alone: no reassociation, so sums keep their order and results stay independent of threads
#: and chunks; the last bit can differ from a machine without FMA). For estimator kernels whose
#: cost is polynomial arithmetic, not for the simulation engines' pinned paths.
contracting_kernel = njit(fastmath={"contract"}, **_OPTIONS)


def variant(dispatcher: Any, name: str, **constants: Any) -> Any:
    """The kernel ``dispatcher`` compiled again as ``name`` with module constants replaced.

    Numba reads module globals as compile-time constants and prunes branches on them before
    typing, so ``if CONSTANT:`` blocks of a variant built with ``CONSTANT=False`` are neither
    typed nor compiled (nor are the kernels they call). The variant has its own name, hence its
    own on-disk cache entry. Call it at the end of the module, once every helper exists: the
    variant sees the module's globals as they are then.
    """
    func: Callable[..., Any] = dispatcher.py_func
    scope = dict(func.__globals__)
    for key, value in constants.items():
        if key not in scope:
            raise KeyError(f"{func.__name__} has no module constant {key!r}")
        scope[key] = value
    code = func.__code__.replace(co_name=name, co_qualname=name)
    copy = types.FunctionType(code, scope, name, func.__defaults__, func.__closure__)
    copy.__qualname__ = name
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    caching = type(dispatcher._cache).__name__ != "NullCache"
    options = {k: v for k, v in dispatcher.targetoptions.items() if k != "nopython"}  # njit implies it
    return njit(cache=caching, **options)(copy)
